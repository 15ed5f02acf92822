"""Frozen dataclasses shared by every layer.

Box convention everywhere (as torchvision): ``[x1, y1, x2, y2]`` in pixels of the image the box
belongs to, ``0 <= x1 < x2 <= W`` and ``0 <= y1 < y2 <= H``, x to the right, y down.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import numpy as np


@dataclass(frozen=True)
class Box:
    """An axis-aligned box with a class name and, optionally, a score and vertebral level."""

    x1: float
    y1: float
    x2: float
    y2: float
    label: str
    score: float | None = None
    level: str | None = None

    @property
    def width(self) -> float:
        return self.x2 - self.x1

    @property
    def height(self) -> float:
        return self.y2 - self.y1

    @property
    def center(self) -> tuple[float, float]:
        return ((self.x1 + self.x2) / 2.0, (self.y1 + self.y2) / 2.0)

    def as_list(self) -> list[float]:
        return [self.x1, self.y1, self.x2, self.y2]

    def is_valid(self, width: int, height: int) -> bool:
        """True when the box is non-empty and lies inside a ``width`` x ``height`` image."""
        return (0 <= self.x1 < self.x2 <= width) and (0 <= self.y1 < self.y2 <= height)


@dataclass(frozen=True)
class SourceRef:
    """Where a radiograph came from. UIDs are ``None`` for non-DICOM input."""

    path: str | None
    study_instance_uid: str | None = None
    series_instance_uid: str | None = None
    sop_instance_uid: str | None = None
    sop_class_uid: str | None = None


@dataclass(frozen=True)
class ReadInfo:
    """What the reader saw and did, for ``spinexr inspect`` and audit.

    Attributes:
        format: ``"dicom"``, ``"png"``, ``"jpeg"`` or ``"tiff"``.
        transfer_syntax: Transfer Syntax UID (DICOM only).
        transfer_syntax_name: its name (DICOM only).
        photometric: Photometric Interpretation as read (raster: ``"MONOCHROME2"``).
        bits_stored: bits per stored sample.
        lut_path: the display pipeline applied, e.g. ``"rescale(0.684,200) > window(1600,2800,LINEAR) > invert"``.
        stored_shape: (rows, columns) of the stored image.
        reduce: reduced-resolution decoding level (image shrunk by ``2**reduce``), 0 for full size.
        decode_seconds: wall time to decode and normalize.
    """

    format: str
    transfer_syntax: str | None
    transfer_syntax_name: str | None
    photometric: str | None
    bits_stored: int | None
    lut_path: str
    stored_shape: tuple[int, int]
    reduce: int = 0
    decode_seconds: float = 0.0


@dataclass(frozen=True)
class Radiograph:
    """A grayscale radiograph ready for models.

    Attributes:
        pixels: float32 array (H, W), values in [0, 1], bone bright, read-only.
        spacing_mm: (row, column) pixel spacing in mm of ``pixels``, or ``None`` when unknown
            (missing or zero spacing is unknown, never 0).
        source: file path and DICOM UIDs.
        info: how it was decoded.
        meta: small PHI-free subset of the header (modality, body part, view position, ...).
        header: the DICOM header without Pixel Data, for writing outputs into the same study
            (``None`` for raster images). Holds patient data: never log it.
    """

    pixels: np.ndarray
    spacing_mm: tuple[float, float] | None
    source: SourceRef
    info: ReadInfo
    meta: Mapping[str, Any] = field(default_factory=dict)
    header: Any = field(default=None, compare=False, repr=False)

    @property
    def height(self) -> int:
        return int(self.pixels.shape[0])

    @property
    def width(self) -> int:
        return int(self.pixels.shape[1])

    @property
    def image_id(self) -> str:
        """SOP Instance UID for DICOM, else the file stem, else ``"image"``."""
        if self.source.sop_instance_uid:
            return self.source.sop_instance_uid
        if self.source.path:
            return Path(self.source.path).stem or "image"
        return "image"


@dataclass(frozen=True)
class Sample:
    """One labelled image of a dataset, whatever its layout on disk.

    Attributes:
        image_id: unique id within the dataset (VinDr: the image_id column).
        image_path: the image file.
        group: the grouping key for splits: patient id or study id (never split across folds).
        boxes: lesion (or region) boxes in image pixels.
        label: image-level label, e.g. 0 normal / 1 abnormal for triage, the class index for a
            class-per-folder tree; ``None`` when unknown.
        width, height: image size in pixels when known from the annotations.
        vertebrae: vertebral-body boxes with ``level`` set (phantoms), may be empty.
        grades: other image-level targets, e.g. ``{"degeneration": 2, "cervical": 0}``.
        split: the split it was read from (``"train"``, ``"test"``, ...), if any.
    """

    image_id: str
    image_path: Path
    group: str
    boxes: tuple[Box, ...] = ()
    label: int | None = None
    width: int | None = None
    height: int | None = None
    vertebrae: tuple[Box, ...] = ()
    grades: Mapping[str, int] = field(default_factory=dict)
    split: str | None = None


@dataclass(frozen=True)
class Finding:
    """One detected lesion. ``box`` is in source pixels with ``label``, ``score`` and ``level``
    (e.g. ``"L4"`` for a vertebra or ``"L4-L5"`` for a disc); ``size_mm`` is (width, height)
    when the pixel spacing is known."""

    box: Box
    size_mm: tuple[float, float] | None = None

    @property
    def label(self) -> str:
        return self.box.label

    @property
    def score(self) -> float:
        return float(self.box.score or 0.0)

    @property
    def level(self) -> str | None:
        return self.box.level


#: The three outcomes of the input gate.
GATE_OUTCOMES: tuple[str, ...] = ("accepted", "uncertain", "refused")


@dataclass(frozen=True)
class GateResult:
    """Whether the input is a usable spine radiograph; ``reason`` says why not (or what passed).

    Three outcomes (:attr:`outcome`): accepted; refused (``accepted`` False, nothing analysed);
    and uncertain (``accepted`` True and ``uncertain`` True): analysed, but the gate could not
    confirm a spine radiograph, and every output carries ``reason`` as a warning.
    ``p_spine`` is the gate's calibrated probability that the input is a spine radiograph
    (``None`` where no model judged it, e.g. refused by the image checks or the header).
    """

    accepted: bool
    reason: str
    checks: Mapping[str, Any] = field(default_factory=dict)
    uncertain: bool = False
    p_spine: float | None = None

    def __post_init__(self) -> None:
        if self.uncertain and not self.accepted:
            raise ValueError("a refused input cannot also be uncertain")

    @property
    def outcome(self) -> str:
        """``"accepted"``, ``"uncertain"`` or ``"refused"``."""
        if not self.accepted:
            return "refused"
        return "uncertain" if self.uncertain else "accepted"


@dataclass(frozen=True)
class TriageResult:
    """The ensemble's verdict. ``probability`` is the fused P(abnormal); ``abnormal`` the decision
    at ``operating_point`` (threshold ``threshold``); ``decisions`` the decision at every
    operating point of the pack; ``per_model`` each member's (calibrated) probability."""

    probability: float
    abnormal: bool
    operating_point: str
    threshold: float
    per_model: Mapping[str, float] = field(default_factory=dict)
    decisions: Mapping[str, bool] = field(default_factory=dict)


#: The label of a grade's box when the box is the vertebra window that gave the image its grade.
WINDOW_LABEL = "vertebra window"


@dataclass(frozen=True)
class Grade:
    """An image- or region-level grade: ``task`` (e.g. ``"degeneration"``), the predicted
    ``label`` and its ``index``, class ``probabilities``, and its ``box``: none for a grade of
    the whole image, the vertebra window that gave an image its grade (labelled
    :data:`WINDOW_LABEL`), or the graded region (an MR slice's canal, recess or foramen)."""

    task: str
    label: str
    index: int
    probabilities: Mapping[str, float] = field(default_factory=dict)
    box: Box | None = None

    @property
    def image_level(self) -> bool:
        """Whether this grades the whole image (directly or through its most abnormal vertebra
        window), as opposed to one region of it."""
        return self.box is None or self.box.label == WINDOW_LABEL


@dataclass(frozen=True)
class Heatmap:
    """An explanation map aligned to the source image: float32 (H, W) in [0, 1]."""

    method: str
    target: str
    array: np.ndarray = field(compare=False, repr=False)
    model: str | None = None


@dataclass(frozen=True)
class LevelNaming:
    """How the vertebral levels of an analysis were named.

    Attributes:
        confirmed: True when the count starts from an anatomical landmark seen in the image
            (``anchor``); False when the names are counted from an assumed end of the column
            ("counted, unconfirmed": every output says so next to the level names).
        anchor: what the count starts from, e.g. ``"sacrum"``, ``"C2 (dens)"``, or, when
            unconfirmed, the assumption, e.g. ``"lowest body taken as L5"``.
        region: the spine region the names were counted in (``"cervical"``, ``"thoracic"``,
            ``"lumbar"``, ``"whole"``).
    """

    confirmed: bool
    anchor: str
    region: str

    @property
    def note(self) -> str:
        """The plain-words qualifier outputs print beside level names."""
        if self.confirmed:
            return f"levels anchored on the {self.anchor}"
        return f"levels counted, unconfirmed ({self.anchor})"


@dataclass(frozen=True)
class PackInfo:
    name: str
    version: str
    synthetic: bool


@dataclass(frozen=True)
class Analysis:
    """The result of the one inference path for one image (see ``spinexr.analyze``).

    A refused input has ``gate.accepted == False`` and no triage, findings or grades.
    """

    image_id: str
    source: SourceRef
    image_size: tuple[int, int] | None           # (width, height); None if unreadable
    spacing_mm: tuple[float, float] | None
    gate: GateResult
    pack: PackInfo
    triage: TriageResult | None = None
    findings: tuple[Finding, ...] = ()
    vertebrae: tuple[Box, ...] = ()
    grades: tuple[Grade, ...] = ()
    heatmaps: tuple[Heatmap, ...] = ()
    timings: Mapping[str, float] = field(default_factory=dict)
    levels: LevelNaming | None = None
    #: What was analysed: ``"radiograph"`` (triage, lesions, levels) or ``"mri"`` (an axial
    #: lumbar MR slice: one :class:`Grade` per stenosis region, with its box; see
    #: :mod:`spinexr.analyze_mri`).
    modality: str = "radiograph"
