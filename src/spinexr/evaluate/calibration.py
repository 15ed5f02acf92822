"""Calibration: expected calibration error with its reliability-diagram table, and Brier score.

Pure: numpy arrays in, plain dicts and floats out. Two input shapes, one call shape:

- binary: ``y_true`` (N,) in {0, 1}, ``prob`` (N,) probability of class 1. Bins are taken on
  ``prob``; a bin's "observed" value is its fraction of positives.
- multi-class: ``y_true`` (N,) class indices, ``prob`` (N, K) class probabilities. Bins are taken
  on the top-label confidence ``max(prob)``; "observed" is the fraction whose argmax is right.

Bins are equal-width on [0, 1]: bin ``b`` holds ``b/n_bins <= p < (b+1)/n_bins``, the last bin
also holds ``p == 1``.
"""
from __future__ import annotations

import numpy as np

from spinexr.errors import ConfigError
from spinexr.evaluate.classification import check_binary, check_multiclass

__all__ = ["brier_score", "calibration_metrics", "expected_calibration_error"]


def _confidence_and_hits(y_true, prob) -> tuple[np.ndarray, np.ndarray, str]:
    """(confidence (N,), observed outcome (N,) in {0, 1}, mode) for either input shape."""
    if np.ndim(prob) == 2:
        y, p, _ = check_multiclass(y_true, prob, None)
        if (p < 0).any() or (p > 1).any():
            raise ConfigError("prob must hold probabilities in [0, 1]", "prob")
        return p.max(axis=1), (p.argmax(axis=1) == y).astype(np.float64), "top-label"
    y, p = check_binary(y_true, prob)
    return p, y.astype(np.float64), "binary"


def _bin_index(p: np.ndarray, n_bins: int) -> np.ndarray:
    """Bin of each value, exact at the edges ``k / n_bins`` (a bare floor(p * n) is not)."""
    edges = np.arange(n_bins + 1) / n_bins
    idx = np.clip(np.floor(p * n_bins).astype(np.int64), 0, n_bins - 1)
    idx -= (p < edges[idx]) & (idx > 0)
    idx += (p >= edges[idx + 1]) & (idx < n_bins - 1)
    return idx


def expected_calibration_error(y_true, prob, n_bins: int = 10) -> dict:
    """ECE over ``n_bins`` equal-width bins, and the table behind a reliability diagram.

    ``ece = sum_b (n_b / N) * |observed_b - mean_prob_b|``; ``mce`` is the largest such gap
    over non-empty bins.

    Returns:
        ``{"ece", "mce", "n_bins", "n", "mode": "binary" | "top-label", "bins": [{"lo", "hi",
        "count", "mean_prob", "observed", "gap"}, ...]}``; empty bins have count 0 and ``nan``
        values.
    """
    if isinstance(n_bins, bool) or not isinstance(n_bins, (int, np.integer)) or n_bins < 1:
        raise ConfigError(f"n_bins must be a positive integer, got {n_bins!r}", "n_bins")
    conf, hit, mode = _confidence_and_hits(y_true, prob)
    idx = _bin_index(conf, int(n_bins))
    counts = np.bincount(idx, minlength=n_bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_prob = np.bincount(idx, conf, n_bins) / counts
        observed = np.bincount(idx, hit, n_bins) / counts
    gap = np.abs(observed - mean_prob)
    full = counts > 0
    bins = [{"lo": b / n_bins, "hi": (b + 1) / n_bins, "count": int(counts[b]),
             "mean_prob": float(mean_prob[b]), "observed": float(observed[b]),
             "gap": float(gap[b])} for b in range(n_bins)]
    return {"ece": float((counts[full] / conf.size * gap[full]).sum()),
            "mce": float(gap[full].max()), "n_bins": int(n_bins), "n": int(conf.size),
            "mode": mode, "bins": bins}


def brier_score(y_true, prob) -> float:
    """Mean squared error of the probabilities.

    Binary: ``mean((prob - y)^2)`` in [0, 1]. Multi-class: ``mean(sum_k (prob_k - onehot_k)^2)``
    (Brier's original definition, in [0, 2]).
    """
    if np.ndim(prob) == 2:
        y, p, _ = check_multiclass(y_true, prob, None)
        onehot = np.eye(p.shape[1])[y]
        return float(((p - onehot) ** 2).sum(axis=1).mean())
    y, p = check_binary(y_true, prob)
    return float(((p - y) ** 2).mean())


def calibration_metrics(y_true, prob, n_bins: int = 10) -> dict:
    """:func:`expected_calibration_error` plus ``"brier"``: all a calibration report needs."""
    return {**expected_calibration_error(y_true, prob, n_bins), "brier": brier_score(y_true, prob)}
