"""Lesion detection on vertebra windows, merged back to the image.

A whole-image detector letterboxes a 1024 px radiograph to its input side, and an osteophyte of
twenty pixels shrinks to a dozen or fewer: the smallest lesions fall below what a small detector
resolves. :class:`WindowDetector` runs the detector on vertebra windows instead (each vertebral
body with its discs, found by the pack's vertebra detector exactly as for the window triage, see
:mod:`spinexr.models.spine_crops`), so a lesion keeps about its size in source pixels; with
``whole`` (:attr:`~spinexr.models.spine_crops.CropSpec.whole`) the whole image is one more view,
for lesions larger than a window or outside every window. Boxes are mapped back to the image,
those cut by a window's inner edge are dropped (the neighbouring, overlapping window or the whole
view holds that lesion whole), and the views are merged by class-wise non-maximum suppression.

Training crops the same windows from the same detector's output (``model.windows`` of a detect
recipe, :func:`spinexr.train.detector.export_window_yolo`), so the model never learns from
windows the deployed system would not cut.
"""
from __future__ import annotations

import math
from typing import Sequence

import numpy as np

from spinexr.models.detector import from_tile, merge_boxes
from spinexr.models.spine_crops import CropSpec, _OnWindows, window_pixels
from spinexr.types import Box

Tile = tuple[int, int, int, int]


def window_tile(window: Box, shape: tuple[int, int]) -> Tile:
    """The integer pixel bounds ``(x0, y0, x1, y1)`` that
    :func:`~spinexr.models.spine_crops.crop` cuts for ``window`` in an (H, W) image."""
    h, w = shape
    return (max(0, int(math.floor(window.x1))), max(0, int(math.floor(window.y1))),
            min(w, int(math.ceil(window.x2))), min(h, int(math.ceil(window.y2))))


def image_views(shape: tuple[int, int], windows: Sequence[Box], whole: bool) -> list[Tile]:
    """The views a window detector runs on one (H, W) image: one tile per window, plus the
    whole image when ``whole`` or when the image has no window at all (no vertebra found: the
    detector then still looks at the image)."""
    h, w = shape
    tiles = [window_tile(win, shape) for win in windows]
    tiles = [t for t in tiles if t[2] - t[0] >= 2 and t[3] - t[1] >= 2]
    if whole or not tiles:
        tiles.append((0, 0, w, h))
    return tiles


def view_pixels(pixels: np.ndarray, tile: Tile, spec: CropSpec) -> np.ndarray:
    """What the detector sees of one view: the tile's pixels, stretched as windows are
    (``spec.stretch``)."""
    x0, y0, x1, y1 = tile
    return window_pixels(pixels, Box(x0, y0, x1, y1, "window"), spec)


class WindowDetector(_OnWindows):
    """A detector run on vertebra windows (and optionally the whole image), with the
    :meth:`~spinexr.models.detector.Detector.predict` interface of a whole-image detector plus
    optional ``vertebrae`` per image (bodies already found by the same vertebra detector at the
    same confidence, e.g. by the analyzer's gate, so it is not run twice).

    Args:
        detector: the inner :class:`~spinexr.models.detector.Detector` (``inner``; trained on
            windows), e.g. the lesion detector.
        vertebra_detector: the detector that finds the bodies the windows are cut around.
        spec: window geometry (:class:`~spinexr.models.spine_crops.CropSpec`).
    """

    def __init__(self, detector, vertebra_detector, spec: CropSpec) -> None:
        self.inner, self.detector, self.spec = detector, vertebra_detector, spec

    @property
    def names(self) -> tuple[str, ...]:
        return self.inner.names

    @property
    def imgsz(self) -> int:
        return self.inner.imgsz

    @property
    def backend(self) -> str:
        return self.inner.backend

    @property
    def model(self):
        """The inner detector's torch model."""
        return self.inner.model

    def predict(self, images: Sequence[np.ndarray], *, conf: float = 0.25, iou: float = 0.6,
                max_det: int = 300, vertebrae: Sequence[Sequence[Box]] | None = None
                ) -> list[list[Box]]:
        """Boxes of each (H, W) float image in [0, 1], in image pixels, merged over its views."""
        if not images:
            return []
        wins = self.windows(images, vertebrae)
        jobs = [(i, tile) for i, (im, ws) in enumerate(zip(images, wins))
                for tile in image_views(im.shape[:2], ws, self.spec.whole)]
        found = self.inner.predict([view_pixels(images[i], t, self.spec) for i, t in jobs],
                                     conf=conf, iou=iou, max_det=max_det)
        per_image: list[list[Box]] = [[] for _ in images]
        for (i, tile), boxes in zip(jobs, found):
            per_image[i] += from_tile(boxes, tile, images[i].shape[:2])
        return [merge_boxes(b, iou, max_det) for b in per_image]
