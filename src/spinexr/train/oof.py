"""Out-of-fold predictions and the validation metrics of a classifier head.

Shared by the recipe parser (:mod:`spinexr.train.config`: which metrics a head can be
monitored on), the classify recipe (:mod:`spinexr.train.classify`) and vertebra-window
training (:mod:`spinexr.train.windows`), so that they import it and not one another.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from spinexr.evaluate.classification import auroc
from spinexr.models.classifier import expected_grade, probabilities


@dataclass(frozen=True)
class OutOfFold:
    """Out-of-fold logits of one member: row i comes from the fold model that held i out."""

    logits: np.ndarray          # (N, K) float32
    targets: np.ndarray         # (N,) int64
    fold_of: np.ndarray         # (N,) int: the fold in which row i was validation
    best_epochs: tuple[int, ...]  # per fold, 0-based
    fold_metrics: tuple[float | None, ...]


def head_metrics(logits: np.ndarray, y: np.ndarray, head: str,
                 temperature: float = 1.0) -> dict[str, float]:
    """Validation metrics of one head's logits: AUROC (binary), balanced accuracy, QWK, MAE."""
    from sklearn.metrics import balanced_accuracy_score, cohen_kappa_score

    probs = probabilities(logits, head, temperature)
    if head == "binary":
        return {"auroc": auroc(y, probs[:, 1])}
    pred = probs.argmax(axis=1)
    out = {"accuracy": float((pred == y).mean()),
           "balanced_accuracy": float(balanced_accuracy_score(y, pred))}
    if head == "ordinal" or probs.shape[1] > 2:
        with np.errstate(all="ignore"):
            kappa = cohen_kappa_score(y, pred, weights="quadratic",
                                      labels=list(range(probs.shape[1])))
        out["qwk"] = float(kappa) if np.isfinite(kappa) else 0.0
        out["mae"] = float(np.abs(expected_grade(probs) - y).mean())
    return out
