"""Integrated Gradients (Sundararajan et al. 2017) through captum's ``IntegratedGradients``.

``IG_i(x) = (x_i - b_i) * integral_0^1 d score(b + a (x - b)) / dx_i da``, approximated with
``steps`` Gauss-Legendre points. Completeness: the attributions sum to
``score(x) - score(b)``, up to the approximation error that :func:`attribute` can return.

The baseline ``b`` is the image filled with one grey level (by default the preprocessing
mean, i.e. 0 after normalisation: "no information" for the network, whereas black is a strong
signal on a radiograph), with the letterbox padding left as it is. Attributions are signed
evidence for the target; the heatmap shows the positive part by default.
"""
from __future__ import annotations

import numpy as np
import torch

from spinexr.errors import ConfigError
from spinexr.explain.base import Canvas, Score, baseline_like, robust_scale
from spinexr.explain.saliency import check_sign, signed_part


def attribute(score: Score, x: torch.Tensor, baseline: torch.Tensor, *, steps: int = 32,
              internal_batch_size: int | None = 8, return_delta: bool = False):
    """Integrated Gradients of ``score`` (batch -> (B,)) from ``baseline`` to ``x``.

    Returns:
        attributions, same shape as ``x``; with ``return_delta``, also the convergence delta
        ``sum(attributions) - (score(x) - score(baseline))`` per image, shape (B,).
    """
    from captum.attr import IntegratedGradients

    ig = IntegratedGradients(score)
    out = ig.attribute(x, baselines=baseline, n_steps=int(steps),
                       internal_batch_size=internal_batch_size,
                       return_convergence_delta=return_delta)
    if return_delta:
        return out[0].detach(), out[1].detach()
    return out.detach()


def canvas_map(canvas: Canvas, *, steps: int = 32, internal_batch_size: int | None = 8,
               baseline: str | float = "mean", sign: str = "positive",
               percentile: float = 99.0) -> np.ndarray:
    """Integrated Gradients over the image region of the canvas, float32 (h, w) in [0, 1].

    Args:
        canvas: the prepared image and target.
        steps: integration points; the cost is ``steps`` forward and backward passes (32 at
            224 px with a ResNet-18: about 1.5 s on one free CPU core).
        internal_batch_size: interpolated images per forward pass (memory vs speed).
        baseline: ``"mean"`` (default, grey at the preprocessing mean), ``"black"`` or a grey
            level in [0, 1]; see :func:`~spinexr.explain.base.baseline_like`.
        sign: ``"positive"`` (default: evidence for the target) or ``"absolute"``.
        percentile: the map is divided by this percentile of its positive values, clipped.
    """
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise ConfigError(f"steps={steps!r}: need a positive integer", "steps")
    check_sign(sign)
    if internal_batch_size is not None and (isinstance(internal_batch_size, bool) or not
                                            isinstance(internal_batch_size, int) or
                                            internal_batch_size < 1):
        raise ConfigError(f"internal_batch_size={internal_batch_size!r}: need a positive "
                          "integer or None (all steps at once)", "internal_batch_size")
    attr = attribute(canvas.score, canvas.x, baseline_like(canvas, baseline), steps=steps,
                     internal_batch_size=internal_batch_size)
    values = signed_part(canvas.crop(attr[0, 0].float().cpu().numpy()), sign)
    return robust_scale(values, percentile)
