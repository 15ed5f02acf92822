"""Losses for the three classifier heads, and class-balanced sampling weights.

* :func:`focal_loss` (Lin et al. 2017): ``FL(p_t) = -alpha_t (1 - p_t)^gamma log(p_t)``, binary
  (one logit) and multi-class (softmax); ``gamma=0`` and ``alpha=None`` give cross-entropy.
* :func:`coral_loss` (Cao et al. 2020): binary cross-entropy summed over the C-1 cumulative
  tasks ``y > k`` of an ordinal (CORAL) head.
* :func:`make_loss` picks one from a recipe's ``loss`` mapping.
"""
from __future__ import annotations

from typing import Any, Callable, Mapping, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from spinexr.errors import ConfigError

LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
LOSSES = ("focal", "ce", "coral")


def _reduce(loss: torch.Tensor, reduction: str) -> torch.Tensor:
    if reduction == "mean":
        return loss.mean()
    if reduction == "sum":
        return loss.sum()
    if reduction == "none":
        return loss
    raise ConfigError(f"reduction {reduction!r} is not one of mean, sum, none", "reduction")


def binary_focal_loss(logits: torch.Tensor, target: torch.Tensor, *, alpha: float | None = 0.25,
                      gamma: float = 2.0, reduction: str = "mean") -> torch.Tensor:
    """Focal loss of one logit per sample.

    Args:
        logits: (N,) or (N, 1) float logits of the positive class.
        target: (N,) 0/1 labels (any dtype).
        alpha: weight of positives (negatives get ``1 - alpha``); ``None``: no weighting.
        gamma: focusing exponent; 0 gives (weighted) binary cross-entropy.
    """
    z = logits.reshape(-1).float()
    y = target.reshape(-1).to(z.dtype)
    ce = F.binary_cross_entropy_with_logits(z, y, reduction="none")  # -log(p_t), stable
    p_t = torch.exp(-ce)
    loss = (1.0 - p_t).pow(gamma) * ce if gamma else ce
    if alpha is not None:
        loss = (alpha * y + (1.0 - alpha) * (1.0 - y)) * loss
    return _reduce(loss, reduction)


def softmax_focal_loss(logits: torch.Tensor, target: torch.Tensor, *,
                       alpha: float | Sequence[float] | None = None, gamma: float = 2.0,
                       reduction: str = "mean") -> torch.Tensor:
    """Multi-class focal loss on softmax probabilities.

    Args:
        logits: (N, C) float logits.
        target: (N,) integer class indices in 0..C-1.
        alpha: per-class weights (length C), one number for every class, or ``None``.
        gamma: focusing exponent; 0 gives (weighted) cross-entropy.
    """
    logp = F.log_softmax(logits.float(), dim=1)
    idx = target.reshape(-1, 1).long()
    logp_t = logp.gather(1, idx)[:, 0]
    loss = -logp_t * (1.0 - logp_t.exp()).pow(gamma) if gamma else -logp_t
    if alpha is not None:
        a = torch.as_tensor(alpha, dtype=loss.dtype, device=loss.device)
        loss = loss * (a[idx[:, 0]] if a.ndim else a)
    return _reduce(loss, reduction)


def coral_targets(target: torch.Tensor, num_classes: int) -> torch.Tensor:
    """(N, C-1) float levels ``[y > 0, y > 1, ..., y > C-2]`` of integer grades (N,)."""
    k = torch.arange(num_classes - 1, device=target.device)
    return (target.reshape(-1, 1).long() > k).float()


def coral_loss(logits: torch.Tensor, target: torch.Tensor, *,
               weights: Sequence[float] | None = None, reduction: str = "mean") -> torch.Tensor:
    """CORAL loss: binary cross-entropy of each cumulative logit, summed over the C-1 tasks.

    Args:
        logits: (N, C-1) logits of ``P(y > k)``.
        target: (N,) integer grades in 0..C-1.
        weights: optional importance of each of the C-1 tasks.
    """
    z = logits.float()
    levels = coral_targets(target, z.shape[1] + 1)
    per_task = F.binary_cross_entropy_with_logits(z, levels, reduction="none")
    if weights is not None:
        per_task = per_task * torch.as_tensor(weights, dtype=z.dtype, device=z.device)
    return _reduce(per_task.sum(dim=1), reduction)


def make_loss(head: str, spec: Mapping[str, Any] | None = None) -> LossFn:
    """The loss of a head from a recipe's ``loss`` mapping.

    ``{"name": "focal", "alpha": 0.25, "gamma": 2.0}`` (binary or softmax), ``{"name": "ce"}``
    (cross-entropy; ``label_smoothing`` for softmax), ``{"name": "coral"}`` (ordinal; the
    default and only choice for the ordinal head).
    """
    spec = dict(spec or {})
    name = spec.pop("name", "coral" if head == "ordinal" else "focal")
    if name not in LOSSES:
        raise ConfigError(f"loss {name!r} is not one of {LOSSES}", "train.loss.name")
    if (head == "ordinal") != (name == "coral"):
        raise ConfigError(f"loss {name!r} does not fit the {head!r} head; the ordinal head "
                          "trains with 'coral', the others with 'focal' or 'ce'", "train.loss")
    if name == "coral":
        return lambda z, y: coral_loss(z, y, **spec)
    if name == "ce":
        spec = {"alpha": None, "gamma": 0.0, **spec}
        if head == "softmax" and "label_smoothing" in spec:
            ls = float(spec.pop("label_smoothing"))
            return lambda z, y: F.cross_entropy(z.float(), y.long(), label_smoothing=ls)
    if head == "binary":
        return lambda z, y: binary_focal_loss(z, y, **spec)
    return lambda z, y: softmax_focal_loss(z, y, **spec)


def class_balanced_weights(labels: Sequence[int] | np.ndarray, num_classes: int, *,
                           power: float = 1.0) -> np.ndarray:
    """Per-sample weights ``1 / count[label] ** power`` for ``WeightedRandomSampler``.

    With ``power=1`` every class is drawn equally often in expectation. Classes absent from
    ``labels`` get no weight (nothing to draw). Returns float64 (N,), summing to 1.
    """
    y = np.asarray(labels, dtype=np.int64)
    if y.size and (y.min() < 0 or y.max() >= num_classes):
        raise ConfigError(f"labels must lie in 0..{num_classes - 1}, found {y.min()}..{y.max()}",
                          "labels")
    counts = np.bincount(y, minlength=num_classes).astype(np.float64)
    w = 1.0 / np.power(np.maximum(counts[y], 1.0), power)
    return w / w.sum() if w.size else w
