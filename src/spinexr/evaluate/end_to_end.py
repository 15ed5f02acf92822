"""What a user gets: metrics of the whole inference path, not of each model alone.

Per-model metrics (:func:`~spinexr.evaluate.coco_map`, :func:`~spinexr.evaluate.binary_metrics`,
:func:`~spinexr.evaluate.grade_metrics`) measure one network on every image at the score
threshold of the metric. A user of :class:`~spinexr.analyze.Analyzer` gets less: the input gate
refuses some images (no flag, no boxes, no grades), lesion boxes are kept after the triage
gating and the pack's confidence threshold, and grades come only where a grading head applies.
This module measures that, from one :class:`UserResult` per image and the ground truth.

Pure: dataclasses and arrays in, plain dicts out (``nan`` where undefined, with a note).
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, Mapping, Sequence

import numpy as np

from spinexr.errors import ConfigError
from spinexr.evaluate.classification import auroc, auroc_ci, grade_metrics, threshold_metrics
from spinexr.evaluate.detection import coco_map
from spinexr.types import GATE_OUTCOMES, Analysis, Box, Grade

__all__ = ["GradeTruth", "LesionTruth", "TriageTruth", "UserResult", "end_to_end_metrics",
           "gate_counts", "grade_task_metrics", "lesion_metrics", "triage_metrics"]


@dataclass(frozen=True)
class UserResult:
    """What the analyzer returned for one image, reduced to what is measured.

    Attributes:
        outcome: the gate's verdict, one of ``accepted``, ``uncertain``, ``refused``.
        probability: triage P(abnormal) in [0, 1]; ``None`` when refused or without triage.
        flagged: the triage decision at the analyzer's operating point.
        findings: lesion boxes kept after gating and thresholds, in source pixels
            (``0 <= x1 < x2 <= W``), each with ``score``.
        grades: task -> the image-level :class:`~spinexr.types.Grade` given.
        modality: ``Analysis.modality``: ``"radiograph"`` or ``"mri"`` (an MR slice).
        regions: the region grades given (each with its region ``box``, source pixels), e.g.
            the stenosis grades of an MR slice.
    """

    outcome: str
    probability: float | None = None
    flagged: bool = False
    findings: tuple[Box, ...] = ()
    grades: Mapping[str, Grade] = field(default_factory=dict)
    modality: str = "radiograph"
    regions: tuple[Grade, ...] = ()

    def __post_init__(self) -> None:
        if self.outcome not in GATE_OUTCOMES:
            raise ValueError(f"outcome {self.outcome!r} is not one of {GATE_OUTCOMES}")
        if self.outcome == "refused" and (self.probability is not None or self.flagged
                                          or self.findings or self.grades or self.regions):
            raise ValueError("a refused image has no triage, findings or grades")
        if self.probability is not None and not 0 <= self.probability <= 1:
            raise ValueError(f"probability {self.probability!r} is not in [0, 1]")

    @classmethod
    def of(cls, analysis: Analysis) -> UserResult:
        """The measured part of an :class:`~spinexr.types.Analysis`: image-level grades (a
        window grader's grade, located at its window, is one) in ``grades``, region grades in
        ``regions``."""
        t = analysis.triage
        return cls(outcome=analysis.gate.outcome, probability=t.probability if t else None,
                   flagged=bool(t is not None and t.abnormal),
                   findings=tuple(f.box for f in analysis.findings),
                   grades={g.task: g for g in analysis.grades if g.image_level},
                   modality=analysis.modality,
                   regions=tuple(g for g in analysis.grades if not g.image_level))


@dataclass(frozen=True)
class TriageTruth:
    """Image labels for triage: ``y`` (N,) 1 abnormal, 0 normal, ``nan`` unknown; the
    analyzer's ``operating_point`` and its ``threshold``; optional (N,) patient ``groups`` for
    the bootstrap CI."""

    y: np.ndarray
    operating_point: str
    threshold: float
    groups: Sequence | None = None


@dataclass(frozen=True)
class LesionTruth:
    """Ground-truth boxes per image (the dataset's class names, source pixels), each image's
    (width, height), the dataset-to-model ``class_map`` and the model's ``classes``."""

    boxes: Sequence[Sequence[Box]]
    sizes: Sequence[tuple[int, int]]
    class_map: Mapping[str, str]
    classes: Sequence[str]


@dataclass(frozen=True)
class GradeTruth:
    """One grading task: its name in results (``Grade.task``), the class ``labels`` in model
    order and ``y`` (N,) class indices into them, ``nan`` where unknown."""

    task: str
    labels: Sequence[str]
    y: np.ndarray


def gate_counts(results: Sequence[UserResult]) -> dict:
    """``{"n", "accepted", "uncertain", "refused"}``: how many images got each verdict."""
    counts = {o: sum(r.outcome == o for r in results) for o in GATE_OUTCOMES}
    return {"n": len(results), **counts}


def _user_probability(results: Sequence[UserResult]) -> np.ndarray:
    """(N,) P(abnormal) as a user sees it: 0 for a refused image (no flag)."""
    out = np.zeros(len(results))
    for i, r in enumerate(results):
        if r.outcome == "refused":
            continue
        if r.probability is None:
            raise ConfigError(f"image {i} was analysed ({r.outcome}) without a triage result "
                              "(an MR slice, or a pack without triage): triage cannot be "
                              "measured on it", "results")
        out[i] = r.probability
    return out


def triage_metrics(results: Sequence[UserResult], truth: TriageTruth, *, n_boot: int = 0,
                   seed: int = 0) -> dict:
    """Triage as a user gets it, over the labelled images.

    ``auroc`` counts every labelled image, a refused one with P(abnormal) = 0;
    ``auroc_analysed`` only the accepted and uncertain ones. The rates at the operating point
    use the analyzer's own decision (``UserResult.flagged``; a refused image is not flagged).

    Returns:
        ``{"operating_point", "threshold", "n", "n_pos", "auroc", "auroc_ci", "n_analysed",
        "n_pos_analysed", "auroc_analysed", "refused_abnormal", "refused_normal",
        "sensitivity", "specificity", "f1", "ppv", "npv", "accuracy", "balanced_accuracy",
        "tp", "fp", "tn", "fn", "excluded_unlabelled", "notes"}``.
    """
    y_all = np.asarray(truth.y, dtype=float)
    if y_all.shape != (len(results),):
        raise ConfigError(f"{y_all.size} labels for {len(results)} results", "y")
    keep = ~np.isnan(y_all)
    head = {"operating_point": truth.operating_point, "threshold": float(truth.threshold),
            "excluded_unlabelled": int((~keep).sum())}
    if not keep.any():
        return {**head, "n": 0, "notes": ["no image has a normal/abnormal label"]}
    y = y_all[keep].astype(int)
    p = _user_probability(results)[keep]
    analysed = np.array([r.outcome != "refused" for r in results])[keep]
    flagged = np.array([r.flagged for r in results], dtype=float)[keep]
    groups = None if truth.groups is None else np.asarray(truth.groups, dtype=object)[keep]
    # the decision is given (0/1): any threshold in (0, 1] counts exactly the flagged images
    calls = threshold_metrics(y, flagged, 0.5)
    notes = calls.pop("notes")
    part = {"auroc": auroc(y, p), "auroc_ci": auroc_ci(y, p, n_boot=n_boot, seed=seed,
                                                        groups=groups)["ci"],
            "n_analysed": int(analysed.sum()), "n_pos_analysed": int(y[analysed].sum()),
            "auroc_analysed": (auroc(y[analysed], p[analysed]) if analysed.any()
                               else float("nan")),
            "refused_abnormal": int(((y == 1) & ~analysed).sum()),
            "refused_normal": int(((y == 0) & ~analysed).sum())}
    if np.isnan(part["auroc_analysed"]):
        notes.append("auroc_analysed: undefined, the analysed images hold one class or none")
    return {**head, **calls, **part, "threshold": float(truth.threshold), "notes": notes}


def lesion_metrics(results: Sequence[UserResult], truth: LesionTruth) -> dict:
    """COCO mAP@0.5 and mAP@0.5:0.95 of the findings (refused images have none) against the
    truth boxes relabelled through ``class_map``.

    Returns:
        :func:`~spinexr.evaluate.coco_map`'s dict plus ``class_map``, ``n_findings`` and
        ``n_images_with_findings``.
    """
    if not (len(truth.boxes) == len(truth.sizes) == len(results)):
        raise ConfigError(f"{len(truth.boxes)} box lists and {len(truth.sizes)} sizes for "
                          f"{len(results)} results", "boxes")
    unmapped = sorted({b.label for boxes in truth.boxes for b in boxes} - set(truth.class_map))
    if unmapped:
        raise ConfigError(f"truth classes {unmapped} are not in the class map "
                          f"{dict(truth.class_map)}", "class_map")
    classes = list(truth.classes)
    unknown = sorted({b.label for r in results for b in r.findings} - set(classes))
    if unknown:
        raise ConfigError(f"findings of {unknown} are not among the classes {classes}",
                          "classes")
    relabelled = [[replace(b, label=truth.class_map[b.label]) for b in boxes]
                  for boxes in truth.boxes]
    found = [list(r.findings) for r in results]
    return {**coco_map(relabelled, found, list(truth.sizes), classes),
            "class_map": dict(truth.class_map), "n_findings": sum(len(f) for f in found),
            "n_images_with_findings": sum(bool(f) for f in found)}


def _grade_row(grade: Grade, labels: Sequence[str]) -> np.ndarray:
    """The grade's class probabilities in ``labels`` order (one-hot on its index if it has
    none)."""
    if grade.probabilities and set(labels) <= set(grade.probabilities):
        return np.array([float(grade.probabilities[n]) for n in labels])
    return np.eye(len(labels))[grade.index]


def grade_task_metrics(results: Sequence[UserResult], truth: GradeTruth) -> dict:
    """Grade metrics of one task on the labelled images that got that grade.

    Returns:
        ``{"n_labelled", "n_graded", "n_labelled_ungraded", "accuracy", "balanced_accuracy",
        "qwk", "macro_f1", "confusion", "notes"}`` (metrics ``nan`` when nothing was graded).
    """
    y = np.asarray(truth.y, dtype=float)
    if y.shape != (len(results),):
        raise ConfigError(f"task {truth.task!r}: {y.size} labels for {len(results)} results",
                          "y")
    labelled = ~np.isnan(y)
    graded = np.array([truth.task in r.grades for r in results]) & labelled
    counts = {"n_labelled": int(labelled.sum()), "n_graded": int(graded.sum()),
              "n_labelled_ungraded": int((labelled & ~graded).sum())}
    if not graded.any():
        nan = float("nan")
        return {**counts, "accuracy": nan, "balanced_accuracy": nan, "qwk": nan,
                "macro_f1": nan, "confusion": None,
                "notes": [f"no labelled image got a {truth.task!r} grade"]}
    prob = np.stack([_grade_row(results[i].grades[truth.task], truth.labels)
                     for i in np.flatnonzero(graded)])
    m = grade_metrics(y[graded], prob, list(truth.labels))
    return {**counts, **{k: m[k] for k in ("accuracy", "balanced_accuracy", "qwk", "macro_f1",
                                           "confusion", "notes")}}


def end_to_end_metrics(results: Sequence[UserResult], *, triage: TriageTruth | None = None,
                       lesions: LesionTruth | None = None, grades: Sequence[GradeTruth] = (),
                       n_boot: int = 0, seed: int = 0) -> dict:
    """Every end-to-end block that has truth: ``{"gate", "triage", "lesions", "grades"}``
    (``None`` for a block without truth; ``grades`` keyed by task)."""
    return {"gate": gate_counts(results),
            "triage": (triage_metrics(results, triage, n_boot=n_boot, seed=seed)
                       if triage is not None else None),
            "lesions": lesion_metrics(results, lesions) if lesions is not None else None,
            "grades": {g.task: grade_task_metrics(results, g) for g in grades}}


#: Parts of an ``end_to_end`` block that are settings, notes or timings, not figures.
NOT_FIGURES = frozenset({"settings", "notes", "timing_s", "class_map", "confusion", "auroc_ci",
                         "operating_point", "threshold"})


def headline_figures(block: Mapping[str, Any], prefix: str = "") -> dict[str, float]:
    """The figures of an ``end_to_end`` block (or any nested part of it) as flat
    ``"a.b.c" -> number`` pairs: every finite number and count, without settings, notes,
    timings, class maps, confusion matrices and intervals (:data:`NOT_FIGURES`)."""
    out: dict[str, float] = {}
    for key, value in block.items():
        if key in NOT_FIGURES:
            continue
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            out.update(headline_figures(value, name + "."))
        elif isinstance(value, (int, float)) and not isinstance(value, bool) \
                and np.isfinite(value):
            out[name] = float(value)
    return out
