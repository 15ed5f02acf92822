"""Gradient saliency (Simonyan et al. 2014) through captum's ``Saliency``.

The map is the gradient of the target score with respect to the normalised input pixels: how
much a small change of each pixel would move the score. Its sign says nothing about evidence
(it is a sensitivity), hence the absolute value by default. Gradients are noisy pixel to pixel;
``sigma`` smooths them with a Gaussian before scaling.
"""
from __future__ import annotations

import numpy as np
import torch

from spinexr.errors import ConfigError
from spinexr.explain.base import Canvas, Score, robust_scale

SIGNS = ("absolute", "positive")


def attribute(score: Score, x: torch.Tensor) -> torch.Tensor:
    """Signed gradient of ``score`` (batch -> (B,)) with respect to ``x``; same shape as x."""
    from captum.attr import Saliency

    x = x.detach().clone().requires_grad_(True)  # the leaf captum differentiates against
    return Saliency(score).attribute(x, abs=False).detach()


def check_sign(sign: str) -> str:
    """``sign`` if it is one of :data:`SIGNS`, else :class:`ConfigError`."""
    if sign not in SIGNS:
        raise ConfigError(f"sign={sign!r}: use one of {SIGNS}", "sign")
    return sign


def signed_part(values: np.ndarray, sign: str) -> np.ndarray:
    """``|values|`` for ``"absolute"``, ``max(values, 0)`` for ``"positive"``."""
    return np.abs(values) if check_sign(sign) == "absolute" else np.maximum(values, 0.0)


def canvas_map(canvas: Canvas, *, sign: str = "absolute", sigma: float = 0.0,
               percentile: float = 99.0) -> np.ndarray:
    """Saliency over the image region of the canvas, float32 (h, w) in [0, 1].

    Args:
        canvas: the prepared image and target.
        sign: ``"absolute"`` (default) or ``"positive"`` (only pixels whose increase raises
            the score).
        sigma: standard deviation of a Gaussian smoothing in canvas pixels (0: none).
        percentile: the map is divided by this percentile of its positive values, clipped.
    """
    check_sign(sign)
    if not sigma >= 0:
        raise ConfigError(f"sigma={sigma!r}: need >= 0", "sigma")
    grad = attribute(canvas.score, canvas.x)[0, 0].float().cpu().numpy()
    values = signed_part(canvas.crop(grad), sign)
    if sigma > 0:
        from scipy.ndimage import gaussian_filter

        values = gaussian_filter(values, float(sigma), mode="nearest")
    return robust_scale(values, percentile)
