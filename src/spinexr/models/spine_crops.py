"""Vertebra-window crops for triage: classify each vertebra with its discs, then pool.

Whole-image CNNs see a small lesion (an osteophyte is ~2 % of the image side) as a few pixels
at any input size a CPU or a single GPU trains comfortably. The window design keeps the
lesion large instead: the vertebra detector finds the vertebral bodies, each body gives one
window (the body, the discs above and below and its margins), every window is resized to the
classifier's input and scored, and an image's logit is the maximum over its windows (multiple
instance learning with max pooling: an image is abnormal if any window is).

Training and serving crop identically: both call :func:`vertebra_windows` on the output of the
same packed vertebra detector (:func:`spinexr.analyze.vertebra_chain` at ``conf``), so no
window in training comes from ground-truth boxes the deployed system would not have.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Mapping, Sequence

import numpy as np

from spinexr.errors import ConfigError
from spinexr.types import Box

#: Logit given to an image without any window (no vertebra found): "normal", confidently.
NO_WINDOW_LOGIT = -20.0
AGGREGATES = ("max",)


@dataclass(frozen=True)
class CropSpec:
    """How windows are made and pooled.

    Attributes:
        detector: key of the vertebra detector in the pack.
        width: window width as a multiple of the vertebral body's width.
        height: window height as a multiple of the body's height (2.2 reaches the middle of
            the neighbouring bodies, so both discs are inside).
        conf: detector confidence for the bodies.
        aggregate: pooling of window logits into the image logit (``max``).
        min_cover: a lesion box labels a window abnormal when at least this fraction of its
            area lies inside the window (training targets only).
        stretch: rescale each window's intensities so its 1st..99th percentiles span [0, 1]
            (exposure differs between radiographs far more than between a lesion and bone).
    """

    detector: str = "vertebra_detector"
    width: float = 1.8
    height: float = 2.2
    conf: float = 0.25
    aggregate: str = "max"
    min_cover: float = 0.5
    stretch: bool = True

    def __post_init__(self) -> None:
        if self.width <= 0 or self.height <= 0:
            raise ConfigError(f"window scale {self.width} x {self.height} must be > 0", "crops")
        if not 0 < self.conf < 1 or not 0 < self.min_cover <= 1:
            raise ConfigError(f"conf {self.conf} and min_cover {self.min_cover} must be in "
                              "(0, 1)", "crops")
        if self.aggregate not in AGGREGATES:
            raise ConfigError(f"aggregate {self.aggregate!r}; use one of {AGGREGATES}", "crops")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> CropSpec:
        known = set(cls.__dataclass_fields__)
        unknown = sorted(set(d) - known)
        if unknown:
            raise ConfigError(f"unknown crop settings {unknown}; known: {sorted(known)}",
                              "crops")
        return cls(**dict(d))


def vertebra_windows(vertebrae: Sequence[Box], width: int, height: int,
                     spec: CropSpec = CropSpec()) -> list[Box]:
    """One window per vertebral body, centred on it, clipped to the image, top to bottom."""
    out = []
    for b in sorted(vertebrae, key=lambda v: v.center[1]):
        cx, cy = b.center
        hw, hh = b.width * spec.width / 2, b.height * spec.height / 2
        x1, y1 = max(0.0, cx - hw), max(0.0, cy - hh)
        x2, y2 = min(float(width), cx + hw), min(float(height), cy + hh)
        if x2 - x1 >= 2 and y2 - y1 >= 2:
            out.append(Box(x1, y1, x2, y2, "window", level=b.level))
    return out


def crop(pixels: np.ndarray, window: Box) -> np.ndarray:
    """The window's pixels (a view: no copy)."""
    x1, y1 = int(np.floor(window.x1)), int(np.floor(window.y1))
    x2, y2 = int(np.ceil(window.x2)), int(np.ceil(window.y2))
    return pixels[max(0, y1):y2, max(0, x1):x2]


def window_pixels(pixels: np.ndarray, window: Box, spec: CropSpec) -> np.ndarray:
    """What the window classifiers see before resizing: the crop, contrast-stretched when
    ``spec.stretch`` (a new float32 array then; else a view)."""
    region = crop(pixels, window)
    if not spec.stretch or region.size == 0:
        return region
    lo, hi = np.percentile(region, (1.0, 99.0))
    if hi - lo < 1e-6:
        return np.zeros_like(region, dtype=np.float32)
    return np.clip((region - lo) / (hi - lo), 0.0, 1.0).astype(np.float32)


def window_targets(windows: Sequence[Box], lesions: Sequence[Box],
                   min_cover: float = 0.5) -> np.ndarray:
    """1 for each window holding at least ``min_cover`` of some lesion box's area, else 0."""
    out = np.zeros(len(windows), dtype=np.int64)
    for i, w in enumerate(windows):
        for b in lesions:
            ix = max(0.0, min(w.x2, b.x2) - max(w.x1, b.x1))
            iy = max(0.0, min(w.y2, b.y2) - max(w.y1, b.y1))
            area = max(b.width * b.height, 1e-9)
            if ix * iy / area >= min_cover:
                out[i] = 1
                break
    return out


def pool_logits(window_logits: np.ndarray, owner: np.ndarray, n_images: int,
                aggregate: str = "max") -> np.ndarray:
    """Image logits (n_images, K) from window logits (M, K) and each window's image index.

    Binary heads (K = 1) pool the logit itself; two-class softmax heads pool the row whose
    positive-class margin is largest. Images without windows get :data:`NO_WINDOW_LOGIT`.
    """
    if aggregate not in AGGREGATES:
        raise ConfigError(f"aggregate {aggregate!r}; use one of {AGGREGATES}", "crops")
    z = np.asarray(window_logits, dtype=np.float32)
    owner = np.asarray(owner, dtype=np.int64)
    k = z.shape[1] if z.ndim == 2 else 1
    z = z.reshape(len(owner), k)
    out = np.zeros((n_images, k), dtype=np.float32)
    if k == 1:
        out[:] = NO_WINDOW_LOGIT
    else:
        out[:, 0], out[:, 1:] = 0.0, NO_WINDOW_LOGIT
    score = z[:, 0] if k == 1 else z[:, -1] - z[:, 0]
    best = np.full(n_images, -np.inf)
    for row, (img, s) in enumerate(zip(owner, score)):
        if s > best[img]:
            best[img] = s
            out[img] = z[row]
    return out


class WindowTriage:
    """A triage ensemble run on vertebra windows: same ``predict`` as
    :class:`~spinexr.models.ensemble.TriageEnsemble`, whole images in, one probability each.

    ``vertebrae`` (optional, per image) are bodies already found by the same detector at the
    same confidence, e.g. by the analyzer's gate, so the detector is not run twice.
    """

    def __init__(self, ensemble, detector, spec: CropSpec) -> None:
        self.ensemble, self.detector, self.spec = ensemble, detector, spec

    @property
    def members(self):
        return self.ensemble.members

    @property
    def weights(self):
        return self.ensemble.weights

    @property
    def operating_points(self):
        return self.ensemble.operating_points

    def windows(self, images: Sequence[np.ndarray],
                vertebrae: Sequence[Sequence[Box]] | None = None) -> list[list[Box]]:
        """The windows of each image (the detector runs only where ``vertebrae`` is None)."""
        from spinexr.analyze import vertebra_chain

        if vertebrae is None:
            vertebrae = [vertebra_chain(b) for b in
                         self.detector.predict(list(images), conf=self.spec.conf)]
        return [vertebra_windows(v, im.shape[1], im.shape[0], self.spec)
                for im, v in zip(images, vertebrae)]

    def predict(self, images: Sequence[np.ndarray],
                vertebrae: Sequence[Sequence[Box]] | None = None) -> dict[str, Any]:
        from spinexr.models.ensemble import positive_probability

        wins = self.windows(images, vertebrae)
        crops = [window_pixels(im, w, self.spec) for im, ws in zip(images, wins) for w in ws]
        owner = np.asarray([i for i, ws in enumerate(wins) for _ in ws], dtype=np.int64)
        per_model = {}
        for name, clf in self.ensemble.members.items():
            width = 1 if clf.head == "binary" else 2
            z = (clf.predict_logits(crops) if crops
                 else np.zeros((0, width), dtype=np.float32))
            pooled = pool_logits(z, owner, len(images), self.spec.aggregate)
            per_model[name] = positive_probability(pooled, clf.head,
                                                   self.ensemble.temperatures[name])
        out = self.ensemble.combine(per_model)
        out["windows"] = wins
        return out

    def spec_dict(self) -> dict[str, Any]:
        return {**self.ensemble.spec(), "crops": self.spec.to_dict()}
