"""Which models of a pack ``spinexr evaluate`` can measure on a dataset, and with which labels.

Reads the pack's typed manifest (:class:`~spinexr.models.manifest.PackManifest`) only: each
detector whose labels cover the dataset's box classes (matched by :func:`match_classes`), the
triage ensemble when samples carry normal/abnormal labels, and each classifier outside the
ensemble that has labels in the dataset.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

import numpy as np

from spinexr.labels import TRIAGE_CLASSES, canonical_lesion
from spinexr.models.grading import GRADING_TASKS
from spinexr.models.manifest import ModelSpec


# -- class names -----------------------------------------------------------------------------------
def _norm(name: str) -> str:
    """Case-, spacing- and number-insensitive key: ``"Vertebrae"`` and ``"vertebra"`` agree."""
    s = re.sub(r"[\s_\-]+", " ", name.strip().casefold())
    if s.endswith("ae"):
        return s[:-1]
    if s.endswith("ies"):
        return s[:-3] + "y"
    if s.endswith(("ses", "xes", "ches", "shes")):
        return s[:-2]
    return s[:-1] if s.endswith("s") and not s.endswith(("ss", "is", "us")) else s


def match_classes(source: Sequence[str], target: Sequence[str],
                  explicit: Mapping[str, str] | None = None) -> tuple[dict[str, str], list[str]]:
    """Map each ``source`` class (the dataset's) to a ``target`` class (the model's).

    Tried in order: the ``explicit`` map, the exact name, the canonical VinDr lesion name, and a
    case- and singular/plural-insensitive match (unambiguous only).

    Returns:
        (``{source: target}`` for the matched classes, the unmatched source classes).
    """
    explicit = dict(explicit or {})
    by_key: dict[str, list[str]] = {}
    for t in target:
        by_key.setdefault(_norm(t), []).append(t)
    mapping, missing = {}, []
    for s in source:
        candidates = [explicit.get(s), s, canonical_lesion(s)]
        hit = next((c for c in candidates if c is not None and c in target), None)
        if hit is None and len(by_key.get(_norm(s), [])) == 1:
            hit = by_key[_norm(s)][0]
        if hit is None:
            missing.append(s)
        else:
            mapping[s] = hit
    return mapping, missing


def positive_index(labels: Sequence[str]) -> int:
    """The positive class of a two-class model: the one named "abnormal" (any case), else 1."""
    mapping, missing = match_classes(labels, TRIAGE_CLASSES)
    if not missing and sorted(mapping.values()) == sorted(TRIAGE_CLASSES):
        return [mapping[n] for n in labels].index("abnormal")
    return 1


def default_operating_point(points: Mapping[str, float], asked: str | None = None) -> str:
    """``asked`` when given, else ``youden`` when the pack has it, else its first point."""
    if asked is not None:
        return asked
    return "youden" if "youden" in points else next(iter(points))


# -- labels ----------------------------------------------------------------------------------------
def binary_labels(dataset, samples) -> np.ndarray:
    """Image-level abnormal (1) / normal (0) labels, ``nan`` where unknown."""
    if dataset.format == "folders":
        mapping, _ = match_classes(dataset.classes, TRIAGE_CLASSES)
        index = {c: TRIAGE_CLASSES.index(t) for c, t in mapping.items()}
        return np.array([index.get(dataset.classes[s.label], np.nan) if s.label is not None
                         else np.nan for s in samples], dtype=float)
    return np.array([s.label if s.label in (0, 1) else np.nan for s in samples], dtype=float)


def grade_target(spec: ModelSpec) -> str | None:
    """The ``Sample.grades`` key a classifier predicts: its spec's ``target`` (``grades.<name>``
    or ``<name>``), else the grading task whose class vocabulary equals its labels."""
    # ``target`` is a training-recipe field the typed spec does not carry: read it from raw
    target = spec.target or ""
    if target:
        return target[len("grades."):] if target.startswith("grades.") else target
    return next((task for task, (names, *_) in GRADING_TASKS.items()
                 if tuple(names) == spec.labels), None)


def classifier_labels(spec: ModelSpec, dataset, samples) -> tuple[np.ndarray | None, str]:
    """(labels as model class indices with nan where unknown, or None; why not)."""
    labels = list(spec.labels)
    target = grade_target(spec)
    if target and any(target in s.grades for s in samples):
        y = [s.grades.get(target, np.nan) for s in samples]
        return np.array([v if v is not None else np.nan for v in y], dtype=float), ""
    if dataset.format == "folders":
        mapping, missing = match_classes(dataset.classes, labels)
        if not missing:
            return np.array([labels.index(mapping[dataset.classes[s.label]])
                             if s.label is not None else np.nan for s in samples], float), ""
        return None, f"dataset classes {missing} are not among the model's labels {labels}"
    if len(labels) == 2:
        return binary_labels(dataset, samples), ""
    return None, (f"no labels for it: samples have no grades[{target!r}] and the dataset is "
                  f"not a class-per-folder tree of {labels}")


# -- the plan --------------------------------------------------------------------------------------
@dataclass
class Plan:
    """What to measure.

    Attributes:
        detectors: key -> (dataset-to-model class map, the model's labels).
        triage: the loaded triage ensemble, or ``None``; ``triage_y`` its (N,) labels.
        classifiers: key -> (loaded model, its labels, (N,) class indices with nan).
        skipped: key -> why it is not measured.
    """

    detectors: dict[str, tuple[dict[str, str], list[str]]] = field(default_factory=dict)
    triage: Any = None
    triage_y: np.ndarray | None = None
    classifiers: dict[str, tuple[Any, list[str], np.ndarray]] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)

    @property
    def empty(self) -> bool:
        return not (self.detectors or self.triage is not None or self.classifiers)


def plan_evaluation(pack, dataset, samples, device: str = "cpu") -> Plan:
    """Decide which models of ``pack`` can be measured on ``samples`` and with which labels."""
    plan = Plan()
    manifest = pack.manifest
    members = set(manifest.ensemble.members) if manifest.ensemble else set()
    explicit = dict((manifest.test_set or {}).get("class_map") or {})
    for key, spec in manifest.models.items():
        if spec.kind == "detector":
            _plan_detector(plan, key, spec, dataset, explicit)
        elif key not in members:
            _plan_classifier(plan, pack, key, spec, dataset, samples, device)
    if manifest.ensemble is not None:
        plan.triage_y = binary_labels(dataset, samples)
        if np.isnan(plan.triage_y).all():
            plan.skipped["ensemble"] = "no sample has a normal/abnormal label"
        else:
            plan.triage = pack.triage(device=device)
    return plan


def _plan_detector(plan: Plan, key: str, spec: ModelSpec, dataset,
                   explicit: Mapping[str, str]) -> None:
    if dataset.format == "folders":
        plan.skipped[key] = "a class-per-folder dataset has no boxes"
        return
    # a per-model ``class_map`` is a recipe field the typed spec does not carry
    own = dict(spec.class_map)
    mapping, missing = match_classes(dataset.classes, spec.labels, {**explicit, **own})
    if missing:
        plan.skipped[key] = (f"dataset classes {missing} match none of the detector's "
                             f"labels {list(spec.labels)}")
    else:
        plan.detectors[key] = (mapping, list(spec.labels))


def _plan_classifier(plan: Plan, pack, key: str, spec: ModelSpec, dataset, samples,
                     device: str) -> None:
    y, why = classifier_labels(spec, dataset, samples)
    if y is None or np.isnan(y).all():
        plan.skipped[key] = why or "no sample has a label for it"
    else:
        plan.classifiers[key] = (pack.grader(key, device=device), list(spec.labels), y)
