"""Contrast transforms that belong to a model's input contract (pure numpy, no I/O).

The real vertebra set the vertebra detector learns from was histogram-equalised by its
exporter; raw films are not. A model whose pack records ``"preprocess": "equalize"`` in its
input contract gets :func:`equalize_histogram` applied to every image, in training (when its
data set is written) and at inference (before letterboxing), so both see the same contrast.
"""
from __future__ import annotations

import numpy as np

from spinexr.errors import ConfigError

#: Preprocessing names a pack's input contract may record.
PREPROCESS = ("none", "equalize")


def equalize_histogram(pixels: np.ndarray, bins: int = 1024) -> np.ndarray:
    """Global histogram equalisation of a float image in [0, 1] (as OpenCV's ``equalizeHist``
    on 8-bit images, with ``bins`` levels).

    Args:
        pixels: (H, W) float array in [0, 1]; not modified.
        bins: number of grey levels of the histogram.

    Returns:
        a new float32 (H, W) array in [0, 1]: each level maps to its cumulative frequency,
        stretched so the darkest level present maps to 0. A constant image maps to zeros.
    """
    x = np.clip(np.asarray(pixels, dtype=np.float32), 0.0, 1.0)
    index = np.minimum((x * bins).astype(np.int64), bins - 1)
    hist = np.bincount(index.ravel(), minlength=bins)
    cdf = np.cumsum(hist).astype(np.float64)
    first = cdf[np.flatnonzero(hist)[0]] if hist.any() else 0.0
    span = cdf[-1] - first
    if span <= 0:
        return np.zeros_like(x)
    table = np.clip((cdf - first) / span, 0.0, 1.0).astype(np.float32)
    return table[index]


def apply_preprocess(pixels: np.ndarray, name: str | None) -> np.ndarray:
    """The input-contract step ``name`` (``None``/``"none"``: ``pixels`` unchanged)."""
    if name in (None, "none"):
        return pixels
    if name == "equalize":
        return equalize_histogram(pixels)
    raise ConfigError(f"preprocess {name!r}; use one of {PREPROCESS}", "input.preprocess")
