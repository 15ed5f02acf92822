"""Vertebra-window crops for triage and grading: classify each vertebra with its discs, then
pool.

Whole-image CNNs see a small lesion (an osteophyte is ~2 % of the image side) as a few pixels
at any input size a CPU or a single GPU trains comfortably. The window design keeps the
lesion large instead: the vertebra detector finds the vertebral bodies, each body gives one
window (the body, the discs above and below and its margins), every window is resized to the
classifier's input and scored, and an image's logit is the maximum over its windows (multiple
instance learning with max pooling: an image is abnormal if any window is).
:class:`WindowGrader` does the same for image-level grades (degeneration, cervical injury):
the image takes the grade of its most abnormal window.

Training and serving crop identically: both call :func:`vertebra_windows` on the output of the
same packed vertebra detector (:func:`spinexr.geometry.vertebra_chain` at ``conf``), so no
window in training comes from ground-truth boxes the deployed system would not have.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Collection, Mapping, Sequence

import numpy as np

from spinexr.errors import ConfigError
from spinexr.geometry import vertebra_chain
from spinexr.models.ensemble import positive_probability
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
        whole: detectors only (:class:`~spinexr.models.window_detector.WindowDetector`): also
            run the model on the whole image as one more view, for lesions larger than a
            window or outside every window.
    """

    detector: str = "vertebra_detector"
    width: float = 1.8
    height: float = 2.2
    conf: float = 0.25
    aggregate: str = "max"
    min_cover: float = 0.5
    stretch: bool = True
    whole: bool = False

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
                   min_cover: float = 0.5, *, value: int = 1,
                   kinds: Collection[str] | None = None) -> np.ndarray:
    """``value`` for each window holding at least ``min_cover`` of the area of a lesion box
    (of a class in ``kinds``; ``None``: any class), else 0.

    Triage labels windows 0/1; a grader gives the image's grade (``value``) to the windows
    holding the lesions that grade is made of (``kinds``) and 0 to the rest, so max pooling
    over the windows gives the image grade back.
    """
    out = np.zeros(len(windows), dtype=np.int64)
    if value == 0:
        return out
    boxes = [b for b in lesions if kinds is None or b.label in kinds]
    for i, w in enumerate(windows):
        for b in boxes:
            ix = max(0.0, min(w.x2, b.x2) - max(w.x1, b.x1))
            iy = max(0.0, min(w.y2, b.y2) - max(w.y1, b.y1))
            area = max(b.width * b.height, 1e-9)
            if ix * iy / area >= min_cover:
                out[i] = value
                break
    return out


def _head_of(k: int, head: str | None) -> str:
    return head or ("binary" if k == 1 else "softmax")


def window_score(z: np.ndarray, head: str) -> np.ndarray:
    """How abnormal each window row of logits (M, K) is, for choosing the row an image keeps:
    the logit (binary), the best abnormal class's margin over class 0 (softmax), the sum of
    the cumulative logits (ordinal: CORAL shares one score across its thresholds)."""
    if head == "binary" or z.shape[1] == 1:
        return z[:, 0]
    if head == "softmax":
        return z[:, 1:].max(axis=1) - z[:, 0]
    if head == "ordinal":
        return z.sum(axis=1)
    raise ConfigError(f"head {head!r}; use binary, softmax or ordinal", "head")


def pool_logits(window_logits: np.ndarray, owner: np.ndarray, n_images: int,
                aggregate: str = "max", head: str | None = None) -> np.ndarray:
    """Image logits (n_images, K) from window logits (M, K) and each window's image index.

    Each image keeps the row of its most abnormal window (:func:`window_score`; ``head``
    defaults to binary for K = 1, softmax otherwise). Images without windows get
    :data:`NO_WINDOW_LOGIT` for every abnormal output (class 0 for softmax heads).
    """
    if aggregate not in AGGREGATES:
        raise ConfigError(f"aggregate {aggregate!r}; use one of {AGGREGATES}", "crops")
    z = np.asarray(window_logits, dtype=np.float32)
    owner = np.asarray(owner, dtype=np.int64)
    k = z.shape[1] if z.ndim == 2 else 1
    z = z.reshape(len(owner), k)
    head = _head_of(k, head)
    out = np.full((n_images, k), NO_WINDOW_LOGIT, dtype=np.float32)
    if head == "softmax":
        out[:, 0] = 0.0
    rows = pooled_rows(z, owner, n_images, head)
    out[rows >= 0] = z[rows[rows >= 0]]
    return out


def pooled_rows(window_logits: np.ndarray, owner: np.ndarray, n_images: int,
                head: str | None = None) -> np.ndarray:
    """For each image, the row of its most abnormal window in ``window_logits`` (M, K), or -1
    for an image without windows: the window that gives the image its pooled logit."""
    z = np.asarray(window_logits, dtype=np.float32)
    owner = np.asarray(owner, dtype=np.int64)
    z = z.reshape(len(owner), z.shape[1] if z.ndim == 2 else 1)
    score = window_score(z, _head_of(z.shape[1], head))
    best, rows = np.full(n_images, -np.inf), np.full(n_images, -1, dtype=np.int64)
    for row, (img, s) in enumerate(zip(owner, score)):
        if s > best[img]:
            best[img], rows[img] = s, row
    return rows


def find_windows(detector, spec: CropSpec, images: Sequence[np.ndarray],
                 vertebrae: Sequence[Sequence[Box]] | None = None) -> list[list[Box]]:
    """The windows of each image (the detector runs only where ``vertebrae`` is None)."""
    if vertebrae is None:
        vertebrae = [vertebra_chain(b) for b in detector.predict(list(images), conf=spec.conf)]
    return [vertebra_windows(v, im.shape[1], im.shape[0], spec)
            for im, v in zip(images, vertebrae)]


def _crops(images: Sequence[np.ndarray], wins: Sequence[Sequence[Box]], spec: CropSpec
           ) -> tuple[list[np.ndarray], np.ndarray]:
    """Every window's pixels, and the image each belongs to (M,)."""
    crops = [window_pixels(im, w, spec) for im, ws in zip(images, wins) for w in ws]
    return crops, np.asarray([i for i, ws in enumerate(wins) for _ in ws], dtype=np.int64)


def _window_logits(clf, images: Sequence[np.ndarray], wins: Sequence[Sequence[Box]],
                   spec: CropSpec) -> np.ndarray:
    """One classifier's image logits: its window logits pooled per image."""
    crops, owner = _crops(images, wins, spec)
    return pool_logits(clf.predict_logits(crops), owner, len(images), spec.aggregate, clf.head)


class _OnWindows:
    """What window models share: a vertebra detector, a :class:`CropSpec`, and windows."""

    detector: Any
    spec: CropSpec

    def windows(self, images: Sequence[np.ndarray],
                vertebrae: Sequence[Sequence[Box]] | None = None) -> list[list[Box]]:
        """The windows of each image (the detector runs only where ``vertebrae`` is None)."""
        return find_windows(self.detector, self.spec, images, vertebrae)


class WindowTriage(_OnWindows):
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

    def predict(self, images: Sequence[np.ndarray],
                vertebrae: Sequence[Sequence[Box]] | None = None):
        """The ensemble's :class:`~spinexr.models.ensemble.TriageScores`, with ``windows``
        (each image's windows, top to bottom)."""
        from dataclasses import replace

        from spinexr.models.classifier import shared_logits   # torch: imported when used

        wins = self.windows(images, vertebrae)
        crops, owner = _crops(images, wins, self.spec)      # cut once for all members,
        logits = shared_logits(self.ensemble.members, crops)  # resized once per contract
        per_model = {name: positive_probability(
                         pool_logits(logits[name], owner, len(images), self.spec.aggregate,
                                     clf.head), clf.head, self.ensemble.temperatures[name])
                     for name, clf in self.ensemble.members.items()}
        return replace(self.ensemble.combine(per_model), windows=tuple(map(tuple, wins)))

    def spec_dict(self) -> dict[str, Any]:
        return {**self.ensemble.spec(), "crops": self.spec.to_dict()}


class WindowGrader(_OnWindows):
    """An image-level grader run on vertebra windows: each window is graded, and the image
    takes the grade of its most abnormal window (softmax or ordinal heads), calibrated by the
    classifier's temperature. Same ``predict_proba`` as a whole-image
    :class:`~spinexr.models.classifier.Classifier`, plus optional ``vertebrae`` per image
    (bodies already found by the same detector at the same confidence).
    """

    def __init__(self, classifier, detector, spec: CropSpec) -> None:
        self.classifier, self.detector, self.spec = classifier, detector, spec

    @property
    def labels(self):
        return self.classifier.labels

    @property
    def head(self) -> str:
        return self.classifier.head

    def predict_logits(self, images: Sequence[np.ndarray],
                       vertebrae: Sequence[Sequence[Box]] | None = None) -> np.ndarray:
        """Pooled image logits (N, K), before temperature."""
        return _window_logits(self.classifier, images, self.windows(images, vertebrae),
                              self.spec)

    def predict_proba(self, images: Sequence[np.ndarray],
                      vertebrae: Sequence[Sequence[Box]] | None = None) -> np.ndarray:
        """Class probabilities (N, C) of each whole image."""
        return self.predict_located(images, vertebrae)[0]

    def predict_located(self, images: Sequence[np.ndarray],
                        vertebrae: Sequence[Sequence[Box]] | None = None
                        ) -> tuple[np.ndarray, list[Box | None]]:
        """Class probabilities (N, C) of each whole image, and the window that gave each image
        its grade (the most abnormal one; it carries its vertebra's level), or ``None`` for an
        image without windows."""
        from spinexr.models.classifier import probabilities

        wins = self.windows(images, vertebrae)
        crops = [window_pixels(im, w, self.spec) for im, ws in zip(images, wins) for w in ws]
        owner = np.asarray([i for i, ws in enumerate(wins) for _ in ws], dtype=np.int64)
        flat = [w for ws in wins for w in ws]
        z = self.classifier.predict_logits(crops) if crops else np.zeros((0, len(self.labels)))
        pooled = pool_logits(z, owner, len(images), self.spec.aggregate, self.head)
        rows = pooled_rows(z, owner, len(images), self.head) if crops else \
            np.full(len(images), -1)
        return (probabilities(pooled, self.head, self.classifier.temperature),
                [flat[r] if r >= 0 else None for r in rows])
