"""Input-gate metrics on toy outcomes whose values are derived by hand."""
from __future__ import annotations

import math

import numpy as np
import pytest

from spinexr.errors import ConfigError
from spinexr.evaluate import gate_confusion, gate_metrics, wilson_interval
from spinexr.evaluate.gate import cost_summary, per_view

# 4 spine: accepted, accepted, uncertain, refused; 6 other: refused x3, uncertain, accepted,
# refused (the last two near cases: one accepted, one refused).
OUTCOMES = ["accepted", "accepted", "uncertain", "refused",
            "refused", "refused", "refused", "uncertain", "accepted", "refused"]
SPINE = [True] * 4 + [False] * 6
NEAR = [False] * 8 + [True, True]
VIEWS = ["AP", "AP", "lateral", "lateral", "chest", "chest", "hand", "hand", "pelvis", "pelvis"]


@pytest.mark.parametrize("k, n, lo, hi", [
    (8, 10, 0.4902, 0.9433),      # Newcombe (1998) table / any Wilson calculator
    (0, 10, 0.0, 0.2775),         # no successes: not the empty [0, 0] of the Wald interval
    (10, 10, 0.7225, 1.0),
    (1, 2, 0.0945, 0.9055),
    (81, 263, 0.2553, 0.3662),    # Newcombe (1998), example (b): 0.2553 to 0.3662
])
def test_wilson_interval_matches_published_values(k, n, lo, hi):
    np.testing.assert_allclose(wilson_interval(k, n), (lo, hi), atol=5e-5)


def test_wilson_interval_by_the_formula_at_another_z():
    # z = 1: centre (0.5 + 1/8) / (1 + 1/4) = 0.5, half = sqrt(1/16 + 1/64) / 1.25
    half = math.sqrt(1 / 16 + 1 / 64) / 1.25
    np.testing.assert_allclose(wilson_interval(2, 4, z=1.0), (0.5 - half, 0.5 + half),
                               atol=1e-12)


def test_wilson_interval_of_nothing_is_nan_and_bad_counts_are_refused():
    assert all(math.isnan(v) for v in wilson_interval(0, 0))
    with pytest.raises(ConfigError, match="0 <= k <= n"):
        wilson_interval(3, 2)
    with pytest.raises(ConfigError, match="whole numbers"):
        wilson_interval(1.5, 3)


def test_confusion_counts_each_outcome_per_label():
    assert gate_confusion(OUTCOMES, SPINE) == {"accepted": {"spine": 2, "other": 1},
                                               "uncertain": {"spine": 1, "other": 1},
                                               "refused": {"spine": 1, "other": 4}}


def test_headline_figures():
    m = gate_metrics(OUTCOMES, SPINE, near=NEAR, views=VIEWS)
    assert (m["n"], m["n_spine"], m["n_other"], m["n_near"]) == (10, 4, 6, 2)
    assert m["sensitivity"] == pytest.approx(3 / 4)            # accepted or uncertain
    assert m["sensitivity_strict"] == pytest.approx(2 / 4)     # accepted only
    assert m["specificity"] == pytest.approx(4 / 6)            # refused only
    assert m["near_refused_or_uncertain"] == pytest.approx(1 / 2)
    np.testing.assert_allclose(m["sensitivity_ci"], wilson_interval(3, 4))
    np.testing.assert_allclose(m["specificity_ci"], wilson_interval(4, 6))
    np.testing.assert_allclose(m["near_refused_or_uncertain_ci"], wilson_interval(1, 2))
    assert math.isnan(m["auroc_p_spine"]) and m["auroc_p_spine_n"] == 0


def test_near_flags_on_spine_images_do_not_count():
    m = gate_metrics(["refused", "refused"], [True, False], near=[True, True])
    assert m["n_near"] == 1 and m["near_refused_or_uncertain"] == 1.0


def test_per_view_breakdown():
    table = per_view(VIEWS, OUTCOMES, SPINE)
    assert list(table) == ["AP", "chest", "hand", "lateral", "pelvis"]
    assert table["lateral"] == {"n": 2, "n_spine": 2, "n_other": 0, "accepted": 0,
                                "uncertain": 1, "refused": 1, "let_through": 1}
    assert table["pelvis"] == {"n": 2, "n_spine": 0, "n_other": 2, "accepted": 1,
                               "uncertain": 0, "refused": 1, "let_through": 1}
    assert sum(v["n"] for v in table.values()) == len(OUTCOMES)


def test_auroc_over_the_images_with_a_p_spine():
    # finite: spine 0.9, 0.4 / other 0.5, 0.1 -> pairs won 0.9>0.5, 0.9>0.1, 0.4>0.1 = 3 of 4
    p = [0.9, 0.4, None, 0.5, 0.1, np.nan]
    m = gate_metrics(["accepted"] * 6, [True, True, True, False, False, False], p_spine=p)
    assert m["auroc_p_spine"] == pytest.approx(3 / 4) and m["auroc_p_spine_n"] == 4


def test_auroc_is_nan_with_one_class_and_rates_are_nan_without_images():
    m = gate_metrics(["accepted", "refused"], [True, True], p_spine=[0.8, 0.2])
    assert math.isnan(m["auroc_p_spine"]) and m["auroc_p_spine_n"] == 2
    assert math.isnan(m["specificity"]) and all(math.isnan(v) for v in m["specificity_ci"])
    assert math.isnan(m["near_refused_or_uncertain"])


def test_bad_inputs_are_refused():
    with pytest.raises(ConfigError, match="not among"):
        gate_confusion(["maybe"], [True])
    with pytest.raises(ConfigError, match="2 outcomes but 1 labels"):
        gate_metrics(["accepted", "refused"], [True])
    with pytest.raises(ConfigError, match="near-case flags"):
        gate_metrics(["accepted"], [True], near=[True, False])


def test_cost_summary():
    read = [0.1, 0.2, 0.3, 0.4, 1.0]
    gate = [0.5, 0.5, np.nan, 0.5, 0.5]            # the third file was never gated
    c = cost_summary(read, gate, wall_s=2.0)
    assert c["read_s"]["mean"] == pytest.approx(0.4) and c["read_s"]["p50"] == pytest.approx(0.3)
    # p95 interpolates between the 4th and 5th of 5 values: 0.4 + 0.8 * (1.0 - 0.4)
    assert c["read_s"]["p95"] == pytest.approx(0.88) and c["read_s"]["n"] == 5
    assert c["gate_s"] == {"mean": 0.5, "p50": 0.5, "p95": 0.5, "n": 4}
    assert c["images_per_s"] == pytest.approx(2.5) and c["total_s"] == 2.0
