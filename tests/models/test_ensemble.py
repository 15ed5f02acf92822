"""Ensemble fitting functions on toy arrays with hand-derived answers; TriageEnsemble."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from spinexr.errors import ConfigError
from spinexr.evaluate.classification import auroc, threshold_metrics
from spinexr.models.ensemble import (TriageEnsemble, fit_temperature, fit_weights,
                                     grid_step, simplex_grid, threshold_for_sensitivity,
                                     weighted_vote, youden_threshold)



def test_grid_auroc_by_ranks_matches_sklearn_with_ties():
    """fit_weights scores every weighting at once by ranks; that must be sklearn's AUROC."""
    from sklearn.metrics import roc_auc_score

    from spinexr.models.ensemble import _auroc_rows

    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 200)
    rows = np.round(rng.random((3, 200)) + 0.3 * y, 1)  # many ties
    got = _auroc_rows(rows, y.astype(bool))
    np.testing.assert_allclose(got, [roc_auc_score(y, r) for r in rows], atol=1e-12)
    assert np.isnan(_auroc_rows(rows, np.ones(200, bool))).all()  # one class: undefined


def test_simplex_grid_counts_and_sums():
    grid = simplex_grid(3, 0.5)
    assert grid.shape == (6, 3)
    np.testing.assert_allclose(grid.sum(axis=1), 1.0)
    assert {tuple(r) for r in grid} == {(1, 0, 0), (0, 1, 0), (0, 0, 1), (0.5, 0.5, 0),
                                        (0.5, 0, 0.5), (0, 0.5, 0.5)}
    assert len(simplex_grid(3, 0.02)) == 1326
    assert grid_step(3) == 0.02 and grid_step(8) > 0.02


def test_weighted_vote_by_hand():
    np.testing.assert_allclose(weighted_vote(np.array([[0.2, 0.8], [0.6, 0.4]]), [0.75, 0.25]),
                               [0.3, 0.7])


def test_fit_weights_recovers_the_informative_model():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 400)
    good = np.clip(0.35 * y + 0.65 * rng.random(400), 0, 1)
    noise = rng.random(400)
    w = fit_weights(np.stack([noise, good]), y)
    assert w.shape == (2,) and w.sum() == pytest.approx(1.0) and (w >= 0).all()
    assert w[1] > 0.8
    assert auroc(y, weighted_vote(np.stack([noise, good]), w)) >= auroc(y, good)
    np.testing.assert_array_equal(w, fit_weights(np.stack([noise, good]), y))  # deterministic


def test_fit_weights_prefers_equal_weights_among_ties():
    # both models rank perfectly: every weighting has AUROC 1, the equal one wins the tie
    y = np.array([0, 0, 1, 1])
    p = np.array([[0.1, 0.2, 0.8, 0.9], [0.0, 0.3, 0.6, 0.7]])
    np.testing.assert_allclose(fit_weights(p, y), [0.5, 0.5])


def test_fit_weights_finds_a_mixture_better_than_either_model():
    # y = [0, 0, 1, 1]; vote v = w a + (1 - w) b. The four negative/positive pairs need
    #   pos2 > neg0: 0.5w > 1 - w          -> w > 2/3
    #   pos3 > neg1: 0.1w + 1 - w > 0.4w   -> w < 1/1.3 = 0.769
    #   pos2 > neg1: 0.5w > 0.4w, pos3 > neg0: 0.1w > 0   (any w > 0)
    # so AUROC 1 exactly for 2/3 < w < 0.769 (A alone 0.75, B alone 0.5); on the 0.02 grid
    # that is 0.68 ... 0.76, and the tie-break takes the one nearest equal weights: 0.68.
    y = np.array([0, 0, 1, 1])
    a = np.array([0.0, 0.4, 0.5, 0.1])
    b = np.array([1.0, 0.0, 0.0, 1.0])
    assert (auroc(y, a), auroc(y, b)) == (0.75, 0.5)
    w = fit_weights(np.stack([a, b]), y)
    np.testing.assert_allclose(w, [0.68, 0.32])
    assert auroc(y, weighted_vote(np.stack([a, b]), w)) == 1.0


def test_youden_threshold_by_hand():
    # t=0.5: sens 2/3, spec 1 -> J 2/3; t=0.3: sens 1, spec 2/3 -> J 2/3; tie -> larger t
    p = np.array([0.1, 0.2, 0.3, 0.4, 0.5, 0.6])
    y = np.array([0, 0, 1, 0, 1, 1])
    assert youden_threshold(p, y) == 0.5
    assert youden_threshold(np.array([0.1, 0.4, 0.35, 0.8]), np.array([0, 0, 1, 1])) == 0.8
    with pytest.raises(ConfigError, match="both classes"):
        youden_threshold(p, np.ones(6, int))


@pytest.mark.parametrize("target, expected", [(0.95, 0.05), (0.8, 0.2), (0.81, 0.1),
                                              (0.1, 0.9), (1.0, 0.05)])
def test_threshold_for_sensitivity_by_hand(target, expected):
    pos = np.array([0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2, 0.1, 0.05])
    p = np.concatenate([pos, [0.01, 0.5, 0.95]])
    y = np.concatenate([np.ones(10, int), np.zeros(3, int)])
    t = threshold_for_sensitivity(p, y, target)
    assert t == expected
    assert threshold_metrics(y, p, t)["sensitivity"] >= target


def test_threshold_metrics_by_hand():
    p = np.array([0.9, 0.7, 0.2, 0.6, 0.1])
    y = np.array([1, 1, 1, 0, 0])
    m = threshold_metrics(y, p, 0.5)  # tp 2, fn 1, fp 1, tn 1
    assert m["sensitivity"] == pytest.approx(2 / 3) and m["specificity"] == 0.5
    assert m["ppv"] == pytest.approx(2 / 3) and m["f1"] == pytest.approx(4 / 6)
    assert m["accuracy"] == pytest.approx(3 / 5)


def _bce(z, y):
    p = 1 / (1 + np.exp(-z))
    return float(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p)))


def test_temperature_scaling_undoes_overconfidence():
    rng = np.random.default_rng(0)
    z = rng.normal(0, 2, 4000)
    y = (rng.random(4000) < 1 / (1 + np.exp(-z))).astype(int)
    t = fit_temperature(3.0 * z, y)  # logits three times too confident
    assert t == pytest.approx(3.0, rel=0.15)
    assert _bce(3.0 * z / t, y) < _bce(3.0 * z, y)
    assert fit_temperature(3.0 * z, y) == t  # deterministic


def test_temperature_scaling_softmax():
    rng = np.random.default_rng(1)
    z = rng.normal(0, 1.5, (3000, 3))
    p = np.exp(z) / np.exp(z).sum(1, keepdims=True)
    y = np.array([rng.choice(3, p=row) for row in p])
    assert fit_temperature(0.5 * z, y, "softmax") == pytest.approx(0.5, rel=0.15)


class _Stub:
    """A member that returns fixed logits, as a Classifier would."""

    def __init__(self, logits, head="binary"):
        self.logits, self.head = np.asarray(logits, float), head

    def predict_logits(self, images):
        return self.logits[:len(images)]


def test_triage_ensemble_by_hand():
    ens = TriageEnsemble({"a": _Stub([[0.0], [math.log(9)]]), "b": _Stub([[0.0], [0.0]])},
                         weights={"a": 0.5, "b": 0.5}, temperatures={"a": 2.0},
                         operating_points={"youden": 0.6, "high_sensitivity": 0.5})
    out = ens.predict([np.zeros((4, 4))] * 2)
    # a: sigmoid(0)=0.5, sigmoid(ln 9 / 2)=0.75; b: 0.5, 0.5
    np.testing.assert_allclose(out.per_model["a"], [0.5, 0.75])
    np.testing.assert_allclose(out.probability, [0.5, 0.625])
    np.testing.assert_array_equal(out.decisions["youden"], [False, True])
    np.testing.assert_array_equal(out.decisions["high_sensitivity"], [True, True])
    assert ens.spec()["weights"] == {"a": 0.5, "b": 0.5}


def test_triage_ensemble_accepts_two_class_softmax_members():
    ens = TriageEnsemble({"s": _Stub([[0.0, math.log(3)]], "softmax")}, {"s": 1.0})
    np.testing.assert_allclose(ens.predict([np.zeros((2, 2))]).probability, [0.75])


@pytest.mark.parametrize("weights, match", [({"a": 0.7}, "sum to 1"), ({"b": 1.0}, "members"),
                                            ({"a": -1.0}, ">= 0")])
def test_triage_ensemble_validates(weights, match):
    with pytest.raises(ConfigError, match=match):
        TriageEnsemble({"a": _Stub([[0.0]])}, weights)
