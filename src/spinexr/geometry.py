"""Pure box geometry shared by every layer (no models, no I/O): the column of vertebral
bodies a spine radiograph shows."""
from __future__ import annotations

from dataclasses import replace
from typing import Sequence

import numpy as np

from spinexr.errors import ConfigError
from spinexr.types import Box, Radiograph


def vertebra_chain(boxes: Sequence[Box]) -> list[Box]:
    """The longest run of boxes stacked head to tail like a spine: consecutive centres no
    further apart horizontally than 1.5 median widths, and vertically than 2.5 median heights."""
    if not boxes:
        return []
    ordered = sorted(boxes, key=lambda b: b.center[1])
    w = float(np.median([b.width for b in ordered]))
    h = float(np.median([b.height for b in ordered]))
    best: list[Box] = []
    run = [ordered[0]]
    for prev, cur in zip(ordered, ordered[1:]):
        dx, dy = abs(cur.center[0] - prev.center[0]), cur.center[1] - prev.center[1]
        if dx <= 1.5 * w and 0 < dy <= 2.5 * h:
            run.append(cur)
        else:
            best, run = max(best, run, key=len), [cur]
    return max(best, run, key=len)


def source_scale(image: Radiograph) -> tuple[float, float]:
    """(x, y) factors from the analysed pixels to the stored image's pixels: 1 unless the
    image was decoded at a reduced resolution (``read_radiograph(reduce=/min_side=)``)."""
    if not image.info.reduce:
        return 1.0, 1.0
    rows, cols = image.info.stored_shape
    return cols / image.width, rows / image.height


def scale_box(box: Box, sx: float, sy: float) -> Box:
    """``box`` with its coordinates multiplied by (sx, sy), rounded to 0.01 px."""
    if sx == 1.0 and sy == 1.0:
        return box
    return replace(box, x1=round(box.x1 * sx, 2), y1=round(box.y1 * sy, 2),
                   x2=round(box.x2 * sx, 2), y2=round(box.y2 * sy, 2))


def crop_bounds(shape: tuple[int, int], box: Box, margin: float = 0.5
                ) -> tuple[int, int, int, int]:
    """``(y0, y1, x0, x1)`` of the crop :func:`crop_region` takes from an image of ``shape``
    (H, W): where a crop's pixels (or a map computed on them) sit in the image."""
    h, w = shape
    cx, cy = box.center
    half = max(box.width, box.height) * (0.5 + margin)
    x0, x1 = int(max(np.floor(cx - half), 0)), int(min(np.ceil(cx + half), w))
    y0, y1 = int(max(np.floor(cy - half), 0)), int(min(np.ceil(cy + half), h))
    if x1 <= x0 or y1 <= y0:
        raise ConfigError(f"box {box.as_list()} lies outside the {w}x{h} image", "box")
    return y0, y1, x0, x1


def crop_region(image: np.ndarray, box: Box, margin: float = 0.5) -> np.ndarray:
    """A square crop centred on ``box`` with side ``max(w, h) * (1 + 2 * margin)``, clipped to
    the image (so crops at an edge are not square). Returns a view of ``image``."""
    y0, y1, x0, x1 = crop_bounds(image.shape, box, margin)
    return image[y0:y1, x0:x1]
