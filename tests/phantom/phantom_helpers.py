"""Helpers shared by the phantom tests: small images, so the default run stays fast."""
from __future__ import annotations

import numpy as np

from spinexr.types import Box

SMALL = (384, 320)


def box_pixels(img: np.ndarray, box: Box) -> np.ndarray:
    """The pixels of ``img`` inside ``box`` (rounded outwards)."""
    x0, y0 = int(np.floor(box.x1)), int(np.floor(box.y1))
    x1, y1 = int(np.ceil(box.x2)), int(np.ceil(box.y2))
    return img[y0:y1, x0:x1]


def overlaps(a: Box, b: Box, slack: float = 0.0) -> bool:
    """True when the boxes overlap or touch (within ``slack`` pixels)."""
    return (a.x1 <= b.x2 + slack and b.x1 <= a.x2 + slack and a.y1 <= b.y2 + slack
            and b.y1 <= a.y2 + slack)
