"""Grading: image-level grades (a :class:`Classifier` with the right head) and two-stage region
grading (detect regions, then grade each crop), as in seeds 002, 004 and 003.

Image-level tasks (:data:`GRADING_TASKS`): degeneration 0-4 (ordinal CORAL head, or softmax)
and cervical normal / fracture / dislocation (softmax: the classes are not ordered).

:class:`RegionGrader` runs a detector (``ModelPack.detector(key)``), crops each box as a square
with a margin (the same crop as ``spinexr phantom --layout folders --task mri`` writes for
training), prepares the crops with the classifier's own :func:`prepare`, and returns one
:class:`GradedBox` per detected region.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from spinexr.errors import ConfigError
from spinexr.geometry import crop_bounds, crop_region  # noqa: F401  (crop_bounds: re-exported)
from spinexr.labels import CERVICAL_CLASSES, DEGENERATION_GRADES, STENOSIS_GRADES
from spinexr.types import Box

#: Grading task -> (class names in grade order, default head, heads allowed).
GRADING_TASKS: dict[str, tuple[tuple[str, ...], str, tuple[str, ...]]] = {
    "degeneration": (DEGENERATION_GRADES, "ordinal", ("ordinal", "softmax")),
    "cervical": (CERVICAL_CLASSES, "softmax", ("softmax",)),
    "stenosis": (STENOSIS_GRADES, "ordinal", ("ordinal", "softmax")),
}


def grading_head(task: str, head: str | None = None) -> tuple[tuple[str, ...], str]:
    """Labels and head for a grading task; refuses an ordinal head on unordered classes."""
    if task not in GRADING_TASKS:
        raise ConfigError(f"grading task {task!r} is not one of {sorted(GRADING_TASKS)}", "task")
    labels, default, allowed = GRADING_TASKS[task]
    head = head or default
    if head not in allowed:
        raise ConfigError(f"{task} grading allows heads {allowed}, not {head!r}", "head")
    return labels, head


def create_grader(arch: str, task: str, *, head: str | None = None, drop_rate: float = 0.0):
    """An untrained model for a grading task: ``(model, labels, head)``."""
    from spinexr.models.classifier import create_classifier

    labels, head = grading_head(task, head)
    return create_classifier(arch, len(labels), head=head, drop_rate=drop_rate), labels, head


@dataclass(frozen=True)
class GradedBox:
    """A detected region and its grade.

    Attributes:
        box: the region in source-image pixels, ``[x1, y1, x2, y2]``, with detector score.
        grade: index of the most probable class (ordinal: of the decoded class probabilities).
        grade_name: the class name of ``grade``.
        probabilities: class probabilities in grade order, summing to 1.
        expected_grade: ``sum_k k p_k`` (ordinal heads), else ``None``.
    """

    box: Box
    grade: int
    grade_name: str
    probabilities: tuple[float, ...]
    expected_grade: float | None = None


class RegionGrader:
    """Detector + crop classifier: regions with grades.

    Args:
        detector: anything with ``predict(images, conf=...) -> list[list[Box]]``.
        classifier: a :class:`~spinexr.models.classifier.Classifier` trained on crops made by
            :func:`crop_region` with the same ``margin``.
        margin: crop margin as a fraction of the box's larger side.
        regions: keep only boxes with these labels (default all).
        conf: detector confidence threshold.
    """

    def __init__(self, detector, classifier, *, margin: float = 0.5,
                 regions: Sequence[str] | None = None, conf: float = 0.25) -> None:
        self.detector = detector
        self.classifier = classifier
        self.margin = float(margin)
        self.regions = None if regions is None else frozenset(regions)
        self.conf = float(conf)

    @classmethod
    def from_pack(cls, pack, detector_key: str, classifier_key: str, *,
                  device: str = "cpu") -> RegionGrader:
        """Build from a model pack; the classifier spec's ``crop`` gives margin and regions."""
        crop = dict(pack.model_spec(classifier_key).crop or {})
        return cls(pack.detector(detector_key, device=device),
                   pack.classifier(classifier_key, device=device),
                   margin=float(crop.get("margin", 0.5)), regions=crop.get("regions"),
                   conf=pack.model_spec(detector_key).thresholds.conf)

    def predict(self, images: Sequence[np.ndarray]) -> list[list[GradedBox]]:
        """Graded regions of each (H, W) float image in [0, 1]; one list per image."""
        from spinexr.models.classifier import expected_grade

        detections = self.detector.predict(list(images), conf=self.conf)
        crops, owners, boxes = [], [], []
        for i, (image, found) in enumerate(zip(images, detections)):
            for box in found:
                if self.regions is not None and box.label not in self.regions:
                    continue
                crops.append(crop_region(np.asarray(image), box, self.margin))
                owners.append(i)
                boxes.append(box)
        out: list[list[GradedBox]] = [[] for _ in images]
        if not crops:
            return out
        probs = self.classifier.predict_proba(crops)
        expected = expected_grade(probs) if self.classifier.head == "ordinal" else None
        labels = self.classifier.labels
        for j, (i, box) in enumerate(zip(owners, boxes)):
            grade = int(np.argmax(probs[j]))
            out[i].append(GradedBox(box=box, grade=grade, grade_name=labels[grade],
                                    probabilities=tuple(float(v) for v in probs[j]),
                                    expected_grade=None if expected is None
                                    else float(expected[j])))
        return out
