"""ECE, its bin table and the Brier score on inputs checked by hand."""
from __future__ import annotations

import numpy as np
import pytest

from spinexr.errors import ConfigError
from spinexr.evaluate import brier_score, calibration_metrics, expected_calibration_error


def test_ece_by_hand_with_two_bins():
    # bin [0, 0.5): p 0.2, 0.4 -> mean 0.3, observed 1/2 -> gap 0.2
    # bin [0.5, 1]: p 0.6, 0.8, 1.0 -> mean 0.8, observed 2/3 -> gap 2/15
    # ECE = 2/5 * 0.2 + 3/5 * 2/15 = 0.08 + 0.08 = 0.16
    y = [0, 1, 1, 0, 1]
    p = [0.2, 0.4, 0.6, 0.8, 1.0]
    m = expected_calibration_error(y, p, n_bins=2)
    assert m["ece"] == pytest.approx(0.16)
    assert m["mce"] == pytest.approx(0.2)
    lo, hi = m["bins"]
    assert (lo["lo"], lo["hi"], lo["count"]) == (0.0, 0.5, 2)
    assert lo["mean_prob"] == pytest.approx(0.3) and lo["observed"] == pytest.approx(0.5)
    assert hi["count"] == 3 and hi["observed"] == pytest.approx(2 / 3)
    assert m["mode"] == "binary" and m["n"] == 5


def test_perfectly_calibrated_bins_have_zero_ece():
    # 10 images at p=0.3 with 3 positives, 10 at p=0.7 with 7 positives
    y = [1] * 3 + [0] * 7 + [1] * 7 + [0] * 3
    p = [0.3] * 10 + [0.7] * 10
    assert expected_calibration_error(y, p)["ece"] == pytest.approx(0.0, abs=1e-12)


def test_values_on_bin_edges_go_to_the_upper_bin_and_one_to_the_last():
    for n_bins in (10, 15, 22, 23, 26):   # floor(k/n * n) misplaces some of these edges
        edges = [k / n_bins for k in range(n_bins)] + [1.0]
        m = expected_calibration_error([0] * len(edges), edges, n_bins=n_bins)
        assert [b["count"] for b in m["bins"]] == [1] * (n_bins - 1) + [2]


def test_empty_bins_are_nan_and_do_not_count():
    m = expected_calibration_error([1, 0], [0.95, 0.05], n_bins=10)
    assert m["bins"][5]["count"] == 0 and np.isnan(m["bins"][5]["mean_prob"])
    assert m["ece"] == pytest.approx(0.05)


def test_brier_binary_and_multiclass_by_hand():
    assert brier_score([1, 0], [0.8, 0.4]) == pytest.approx((0.04 + 0.16) / 2)
    # row 1: (0.7-1)^2 + 0.2^2 + 0.1^2 = 0.14; row 2: 0.5^2 + (0.5-1)^2 + 0 = 0.5
    prob = [[0.7, 0.2, 0.1], [0.5, 0.5, 0.0]]
    assert brier_score([0, 1], prob) == pytest.approx((0.14 + 0.5) / 2)


def test_multiclass_uses_top_label_confidence():
    # confidences 0.9 (right), 0.6 (wrong): 10 bins -> |1 - 0.9|/2 + |0 - 0.6|/2 = 0.35
    m = calibration_metrics([0, 0], [[0.9, 0.1], [0.4, 0.6]], n_bins=10)
    assert m["mode"] == "top-label" and m["ece"] == pytest.approx(0.35)
    assert "brier" in m


@pytest.mark.parametrize("y, p, kw, match", [
    ([0, 1], [0.2, np.nan], {}, "NaN"),
    ([0, 1], [0.2, 0.3], {"n_bins": 0}, "n_bins must be a positive integer"),
    ([0, 1], [[0.5, 0.7], [0.2, 0.8]], {}, None),   # rows need not sum to 1: allowed
    ([0, 1], [[1.5, -0.5], [0.2, 0.8]], {}, r"\[0, 1\]"),
])
def test_bad_input_is_refused(y, p, kw, match):
    if match is None:
        expected_calibration_error(y, p, **kw)
        return
    with pytest.raises(ConfigError, match=match):
        expected_calibration_error(y, p, **kw)
