"""Write a normalized radiograph as an 8-bit grayscale PNG (previews, reports)."""
from __future__ import annotations

import math
import os

import numpy as np

from spinexr.errors import ConfigError, FileAccessError


def to_uint8(image: np.ndarray) -> np.ndarray:
    """Map float [0, 1] (H, W) to uint8 0..255 by rounding; values outside are clipped."""
    if image.ndim != 2:
        raise ConfigError(f"a preview needs an (H, W) image, got shape {image.shape}")
    scaled = np.clip(np.nan_to_num(image.astype(np.float32, copy=False), nan=0.0), 0.0, 1.0)
    return np.rint(scaled * np.float32(255.0)).astype(np.uint8)


def save_png(image: np.ndarray, path: str | os.PathLike, *, max_side: int | None = None) -> None:
    """Write ``image`` (float (H, W) in [0, 1], bone bright) as an 8-bit grayscale PNG.

    Args:
        image: float array (H, W); values outside [0, 1] are clipped, NaN written as 0.
        path: the PNG to write (its folder must exist).
        max_side: when given and the longer side exceeds it, the image is shrunk with area
            averaging (Pillow's BOX filter) so that the longer side equals ``max_side``.

    Raises:
        ConfigError: ``image`` is not 2-D or ``max_side`` < 1.
        SpinexrError: the file cannot be written.
    """
    from PIL import Image

    if max_side is not None and max_side < 1:
        raise ConfigError(f"max_side must be >= 1, got {max_side}")
    out = Image.fromarray(to_uint8(image), mode="L")
    longest = max(out.size)
    if max_side is not None and longest > max_side:
        ratio = max_side / longest
        size = tuple(max(1, math.floor(s * ratio + 0.5)) for s in out.size)
        out = out.resize(size, Image.Resampling.BOX)
    try:
        out.save(os.fspath(path), format="PNG")
    except OSError as exc:
        raise FileAccessError(f"cannot write the PNG ({exc.strerror or exc})", os.fspath(path)) \
            from exc
