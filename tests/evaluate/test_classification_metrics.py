"""Binary and grade metrics on toy inputs whose values are derived by hand."""
from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import balanced_accuracy_score, cohen_kappa_score, roc_auc_score

from spinexr.errors import ConfigError
from spinexr.evaluate import (auroc, auroc_ci, binary_metrics, bootstrap_indices, grade_metrics,
                              operating_point_metrics, roc_band)


def test_auroc_counts_correctly_ordered_pairs():
    # positives 0.35, 0.8 vs negatives 0.1, 0.4: pairs (0.35>0.1) (0.35<0.4) (0.8>0.1) (0.8>0.4)
    y, p = [0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8]
    assert binary_metrics(y, p, n_boot=0)["auroc"] == pytest.approx(3 / 4)
    # a tie between a positive and a negative counts one half: (1 + 0.5 + 1 + 1) / 4
    assert auroc(y, [0.1, 0.4, 0.4, 0.8]) == pytest.approx(3.5 / 4)


def test_auroc_equals_sklearn_on_random_scores_with_ties():
    rng = np.random.default_rng(3)
    y = rng.integers(0, 2, 200)
    p = np.round(rng.random(200) * 0.7 + 0.3 * y, 1)   # coarse: many ties
    assert auroc(y, p) == roc_auc_score(y, p)
    from spinexr.evaluate.classification import _auc_ranks   # the bootstrap's fast path
    assert _auc_ranks(y, p) == pytest.approx(roc_auc_score(y, p), abs=1e-12)


def test_threshold_metrics_from_a_hand_made_confusion_matrix():
    # threshold 0.5, called positive when p >= 0.5:
    #   positives: 0.9 0.6 0.5 (TP x3), 0.2 (FN)    negatives: 0.7 (FP), 0.1 0.3 0.4 0.0 (TN x4)
    y = [1, 1, 1, 1, 0, 0, 0, 0, 0]
    p = [0.9, 0.6, 0.5, 0.2, 0.7, 0.1, 0.3, 0.4, 0.0]
    m = binary_metrics(y, p, 0.5, n_boot=0)
    assert (m["tp"], m["fn"], m["fp"], m["tn"]) == (3, 1, 1, 4)
    assert (m["n"], m["n_pos"], m["threshold"]) == (9, 4, 0.5)
    assert m["sensitivity"] == pytest.approx(3 / 4)
    assert m["specificity"] == pytest.approx(4 / 5)
    assert m["ppv"] == pytest.approx(3 / 4) and m["npv"] == pytest.approx(4 / 5)
    assert m["f1"] == pytest.approx(2 * 3 / (2 * 3 + 1 + 1))
    assert m["accuracy"] == pytest.approx(7 / 9)
    assert m["balanced_accuracy"] == pytest.approx((3 / 4 + 4 / 5) / 2)
    assert [n.split(":")[0] for n in m["notes"]] == ["auroc_ci"]   # n_boot=0: no CI, said so
    assert all(np.isnan(m["auroc_ci"]))


def test_operating_points_share_the_auroc_and_move_the_threshold():
    y, p = [0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8]
    ops = operating_point_metrics(y, p, {"strict": 0.5, "sensitive": 0.3}, n_boot=50)
    assert set(ops) == {"strict", "sensitive"}
    assert ops["strict"]["auroc"] == ops["sensitive"]["auroc"] == pytest.approx(0.75)
    assert ops["strict"]["auroc_ci"] == ops["sensitive"]["auroc_ci"]
    assert (ops["strict"]["sensitivity"], ops["strict"]["specificity"]) == (0.5, 1.0)
    assert (ops["sensitive"]["sensitivity"], ops["sensitive"]["specificity"]) == (1.0, 0.5)
    with pytest.raises(ConfigError, match="no operating points"):
        operating_point_metrics(y, p, {})


def test_bootstrap_ci_is_seeded_brackets_the_auroc_and_narrows_with_n():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 400)
    p = np.clip(0.3 * y + 0.7 * rng.random(400), 0, 1)
    a = binary_metrics(y, p, n_boot=300, seed=7)
    b = binary_metrics(y, p, n_boot=300, seed=7)
    assert a["auroc_ci"] == b["auroc_ci"] and a["n_boot"] == 300
    lo, hi = a["auroc_ci"]
    assert lo < a["auroc"] < hi and hi - lo < 0.15
    small = binary_metrics(y[:60], p[:60], n_boot=300, seed=7)["auroc_ci"]
    assert small[1] - small[0] > hi - lo


def test_stratified_resamples_keep_class_counts():
    y = np.array([0] * 7 + [1] * 3)
    for idx in bootstrap_indices(y, 20, np.random.default_rng(0)):
        assert idx.size == 10 and y[idx].sum() == 3


def test_grouped_bootstrap_resamples_whole_patients():
    # 4 patients of 3 images each; a replicate holds each chosen patient's 3 images together
    groups = np.repeat(["a", "b", "c", "d"], 3)
    y = np.array([1, 1, 1, 0, 0, 0, 1, 0, 1, 0, 0, 0])
    for idx in bootstrap_indices(y, 20, np.random.default_rng(1), groups=groups):
        assert idx.size % 3 == 0
        chosen = groups[idx]
        for g in set(chosen.tolist()):
            assert (chosen == g).sum() % 3 == 0
    p = np.linspace(0, 1, 12)
    grouped = auroc_ci(y, p, n_boot=200, groups=groups)
    assert grouped["n_boot"] > 0 and grouped["ci"][0] <= grouped["ci"][1]


def test_one_class_only_gives_nan_auroc_with_a_reason():
    m = binary_metrics([0, 0, 0], [0.1, 0.2, 0.9], n_boot=100)
    assert np.isnan(m["auroc"]) and all(np.isnan(m["auroc_ci"]))
    assert np.isnan(m["sensitivity"]) and m["specificity"] == pytest.approx(2 / 3)
    assert any("one class only" in n for n in m["notes"])
    assert any("sensitivity: undefined" in n for n in m["notes"])


def test_nothing_called_positive_gives_nan_ppv_with_a_reason():
    m = binary_metrics([0, 1], [0.1, 0.2], threshold=0.9, n_boot=0)
    assert np.isnan(m["ppv"]) and any("ppv: undefined" in n for n in m["notes"])


@pytest.mark.parametrize("y, p, match", [
    ([0, 1], [0.2, np.nan], "prob holds NaN"),
    ([0, np.nan], [0.2, 0.3], "y_true holds NaN"),
    ([0, 2], [0.2, 0.3], "must be 0 .* or 1"),
    ([0, 1, 1], [0.2, 0.3], "3 samples, prob has 2"),
    ([], [], "no samples"),
    ([0, 1], [-0.5, 3.0], "not logits"),
    ([[0, 1]], [[0.1, 0.2]], "must be 1-D"),
])
def test_bad_binary_input_is_refused_by_name(y, p, match):
    with pytest.raises(ConfigError, match=match):
        binary_metrics(y, p, n_boot=0)


def test_bad_threshold_is_refused():
    with pytest.raises(ConfigError, match="threshold must be in"):
        binary_metrics([0, 1], [0.2, 0.8], threshold=1.5, n_boot=0)


def test_roc_band_brackets_the_curve():
    rng = np.random.default_rng(2)
    y = rng.integers(0, 2, 300)
    p = np.clip(0.3 * y + 0.7 * rng.random(300), 0, 1)
    band = roc_band(y, p, n_boot=200, points=21)
    assert band["fpr"].shape == band["tpr_lo"].shape == (21,) and band["n_boot"] == 200
    assert (band["tpr_lo"] <= band["tpr_hi"]).all()
    assert band["tpr_hi"][-1] == 1.0 and np.all(np.diff(band["tpr_lo"]) >= -1e-12)


def test_qwk_of_a_tiny_example_by_hand():
    # truth 0 1 2, prediction 0 2 2, weights (i-j)^2. Observed disagreement: one (1,2) -> 1.
    # Expected: rows [1,1,1] x columns [1,0,2] / 3 -> sum w*E = (8 + 3 + 4) / 3 = 5.
    # kappa = 1 - 1/5 = 0.8
    prob = np.array([[0.9, 0.05, 0.05], [0.1, 0.2, 0.7], [0.0, 0.1, 0.9]])
    m = grade_metrics([0, 1, 2], prob, names=["healthy", "doubtful", "minimal"])
    assert m["qwk"] == pytest.approx(0.8)
    assert m["confusion"] == [[1, 0, 0], [0, 0, 1], [0, 0, 1]]
    assert m["accuracy"] == pytest.approx(2 / 3)
    assert m["balanced_accuracy"] == pytest.approx((1 + 0 + 1) / 3)
    # F1 per class: healthy 1, doubtful 0, minimal 2*0.5*1/1.5 = 2/3
    assert m["macro_f1"] == pytest.approx((1 + 0 + 2 / 3) / 3)
    assert m["per_class"]["minimal"] == pytest.approx(
        {"precision": 0.5, "recall": 1.0, "f1": 2 / 3, "support": 1})
    assert np.isnan(m["per_class"]["doubtful"]["precision"])   # never predicted


def test_grade_metrics_agree_with_sklearn():
    rng = np.random.default_rng(5)
    y = rng.integers(0, 5, 300)
    prob = rng.random((300, 5)) + np.eye(5)[y] * 0.8
    m = grade_metrics(y, prob)
    pred = prob.argmax(1)
    assert m["qwk"] == pytest.approx(cohen_kappa_score(y, pred, weights="quadratic"))
    assert m["balanced_accuracy"] == pytest.approx(balanced_accuracy_score(y, pred))
    assert sum(map(sum, m["confusion"])) == 300 and list(m["per_class"]) == list("01234")


def test_grades_with_one_class_give_nan_qwk_with_a_reason():
    m = grade_metrics([1, 1], [[0, 1, 0], [0, 1, 0]])
    assert np.isnan(m["qwk"]) and any("qwk: undefined" in n for n in m["notes"])
    assert m["accuracy"] == 1.0


@pytest.mark.parametrize("y, prob, match", [
    ([0, 3], [[0.5, 0.5], [0.2, 0.8]], "class indices 0..1"),
    ([0, 1], [0.5, 0.5], r"\(N, K\)"),
    ([0, 1], [[0.5, np.nan], [0.2, 0.8]], "NaN"),
    ([0, 1, 1], [[0.5, 0.5], [0.2, 0.8]], "3 samples, prob has 2 rows"),
])
def test_bad_grade_input_is_refused(y, prob, match):
    with pytest.raises(ConfigError, match=match):
        grade_metrics(y, prob)


def test_inputs_are_not_modified():
    y, p = np.array([0, 1, 0, 1]), np.array([0.2, 0.7, 0.4, 0.9])
    y0, p0 = y.copy(), p.copy()
    binary_metrics(y, p, n_boot=10)
    np.testing.assert_array_equal(y, y0)
    np.testing.assert_array_equal(p, p0)
