"""Studies, not just images: how the images of one study are grouped and judged together.

Grouping is by Study Instance UID and time: the node waits until a study has been quiet for
the window (no new image of it for ``study_window_s`` seconds; see
:meth:`spinexr.pacs.queue.DiskQueue.claim_ready`), then analyses all its waiting images in one
call of the process step. Each image keeps its own results (its SR, GSPS and SC go to the PACS
as usual); the study gets a verdict over every image of it the node has analysed so far,
including images that arrived in an earlier window: abnormal if any image is.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

from spinexr.types import Analysis


def image_abnormal(a: Analysis) -> bool | None:
    """One image's verdict: the triage decision of a radiograph (any finding when the pack
    has no triage), any region graded above the lowest grade on an MR slice; ``None`` when the
    image was refused."""
    if not a.gate.accepted:
        return None
    if a.modality == "mri":
        return any(g.index > 0 for g in a.grades)
    if a.triage is not None:
        return bool(a.triage.abnormal)
    return bool(a.findings)


@dataclass(frozen=True)
class StudyVerdict:
    """``images`` received, ``analysed`` (accepted or uncertain), ``abnormal`` images,
    ``refused`` (by the gate or the reader), ``skipped`` by the filter."""

    images: int
    analysed: int
    abnormal: int
    refused: int
    skipped: int

    @property
    def verdict(self) -> str:
        """``abnormal`` if any image is, ``normal`` if some were analysed and none is,
        ``refused`` when no image could be analysed."""
        if self.abnormal:
            return "abnormal"
        return "normal" if self.analysed else "refused"


def study_verdict(counts: Mapping[str, int]) -> StudyVerdict:
    """From :meth:`~spinexr.pacs.queue.DiskQueue.study_summary` counts."""
    analysed = counts.get("accepted", 0) + counts.get("uncertain", 0)
    refused = counts.get("refused", 0) + counts.get("failed", 0)
    skipped = counts.get("skipped", 0)
    images = sum(v for k, v in counts.items() if k != "abnormal")
    return StudyVerdict(images, analysed, counts.get("abnormal", 0), refused, skipped)


__all__ = ["StudyVerdict", "image_abnormal", "study_verdict"]
