"""Box-level copy-paste of rare lesions, for detector training.

ultralytics' ``copy_paste`` needs instance masks; VinDr-SpineXR has boxes only. Here a rare
lesion is cut out of its source image with a margin, blended into a target image with a
feathered (soft-edged) alpha so no hard seam becomes a shortcut, and its box is added to the
target's labels. Pastes avoid existing boxes (IoU-free placement) and the image border.
Pure functions: arrays in, new arrays out, randomness from an explicit ``np.random.Generator``.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Sequence

import numpy as np

from spinexr.types import Box


@dataclass(frozen=True)
class Patch:
    """A lesion cut from a source image: pixels (h, w) float32 and the box inside the patch."""

    pixels: np.ndarray
    box: Box


def cut_patch(image: np.ndarray, box: Box, margin: float = 0.25) -> Patch:
    """Cut ``box`` from ``image`` (H, W) with ``margin`` x box size on each side."""
    h, w = image.shape
    mx, my = box.width * margin, box.height * margin
    x1, y1 = max(0, int(np.floor(box.x1 - mx))), max(0, int(np.floor(box.y1 - my)))
    x2, y2 = min(w, int(np.ceil(box.x2 + mx))), min(h, int(np.ceil(box.y2 + my)))
    inner = replace(box, x1=box.x1 - x1, y1=box.y1 - y1, x2=box.x2 - x1, y2=box.y2 - y1)
    return Patch(np.array(image[y1:y2, x1:x2], dtype=np.float32), inner)


def feather(shape: tuple[int, int], inner: Box) -> np.ndarray:
    """Alpha (h, w) in [0, 1]: 1 inside the box, falling linearly to 0 at the patch edge."""
    h, w = shape
    ys, xs = np.arange(h, dtype=np.float32) + 0.5, np.arange(w, dtype=np.float32) + 0.5
    ramp_x = np.minimum(np.clip(xs / max(inner.x1, 1e-6), 0, 1),
                        np.clip((w - xs) / max(w - inner.x2, 1e-6), 0, 1))
    ramp_y = np.minimum(np.clip(ys / max(inner.y1, 1e-6), 0, 1),
                        np.clip((h - ys) / max(h - inner.y2, 1e-6), 0, 1))
    return np.minimum(ramp_y[:, None], ramp_x[None, :])


def _overlaps(a: Box, others: Sequence[Box]) -> bool:
    return any(a.x1 < o.x2 and o.x1 < a.x2 and a.y1 < o.y2 and o.y1 < a.y2 for o in others)


def paste(image: np.ndarray, boxes: Sequence[Box], patches: Sequence[Patch],
          rng: np.random.Generator, *, tries: int = 20, border: float = 0.05
          ) -> tuple[np.ndarray, tuple[Box, ...]]:
    """Blend ``patches`` into a copy of ``image`` where they overlap no box; returns new boxes.

    Args:
        image: (H, W) float32 in [0, 1]; not modified.
        boxes: the image's existing boxes (kept, never covered).
        patches: lesions to paste; one that fits nowhere after ``tries`` is skipped.
        rng: the only source of randomness.
        border: fraction of each side kept free (collimation, markers).

    Returns:
        (new image, existing boxes + pasted boxes).
    """
    out = np.array(image, dtype=np.float32)
    h, w = out.shape
    placed = list(boxes)
    for patch in patches:
        ph, pw = patch.pixels.shape
        lo_x, lo_y = int(w * border), int(h * border)
        hi_x, hi_y = w - int(w * border) - pw, h - int(h * border) - ph
        if hi_x <= lo_x or hi_y <= lo_y:
            continue
        for _ in range(tries):
            x0, y0 = int(rng.integers(lo_x, hi_x)), int(rng.integers(lo_y, hi_y))
            new = replace(patch.box, x1=patch.box.x1 + x0, y1=patch.box.y1 + y0,
                          x2=patch.box.x2 + x0, y2=patch.box.y2 + y0)
            if not _overlaps(new, placed):
                alpha = feather((ph, pw), patch.box)
                region = out[y0:y0 + ph, x0:x0 + pw]
                out[y0:y0 + ph, x0:x0 + pw] = alpha * patch.pixels + (1 - alpha) * region
                placed.append(new)
                break
    return out, tuple(placed)


def rare_classes(counts: dict[str, int], ratio: float = 0.25) -> set[str]:
    """Classes with fewer boxes than ``ratio`` x the most frequent class."""
    if not counts:
        return set()
    top = max(counts.values())
    return {c for c, n in counts.items() if 0 < n < ratio * top}
