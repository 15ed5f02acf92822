"""One ``results.parquet`` row per input, from its :class:`~spinexr.types.Analysis`. Pure.

Every input gets a row, whatever happened to it:

* analysed: ``outcome`` ``accepted`` or ``uncertain``, the triage figures, the findings and
  grades as JSON, ``error`` empty;
* refused (unreadable file, not a radiograph, not a spine): ``outcome`` ``refused``,
  ``gate_reason`` says why; for a file that could not be read, ``error_code`` / ``error`` carry
  the reader's code and reason (``not_an_image``, ``corrupt_image``, ...);
* failed (an exception in the analysis, a worker lost twice on it): ``outcome`` ``error``,
  ``error_code`` ``analysis_failed`` or ``worker_lost``, ``error`` the message.
"""
from __future__ import annotations

import json
from typing import Any

from spinexr.types import Analysis, Box, Finding, Grade

#: The columns of results.parquet, in order, with their kind (string, bool, float, int).
COLUMNS: tuple[tuple[str, str], ...] = (
    ("image_id", "string"), ("path", "string"),
    ("study_instance_uid", "string"), ("series_instance_uid", "string"),
    ("sop_instance_uid", "string"), ("modality", "string"),
    ("accepted", "bool"), ("outcome", "string"), ("gate_reason", "string"),
    ("p_spine", "float"), ("probability", "float"), ("abnormal", "bool"),
    ("n_findings", "int"), ("findings", "string"), ("grades", "string"),
    ("pack", "string"), ("error_code", "string"), ("error", "string"),
)
COLUMN_NAMES = tuple(name for name, _ in COLUMNS)
#: ``error_code`` of a failed analysis and of a chunk whose worker died on every try.
ANALYSIS_FAILED, WORKER_LOST = "analysis_failed", "worker_lost"


def analysis_row(path: str, a: Analysis, *, read_error: tuple[str, str] | None = None
                 ) -> dict[str, Any]:
    """The row of input ``path`` analysed (or refused) as ``a``; ``read_error`` is the reader's
    ``(code, reason)`` when the file could not be read."""
    src, tri = a.source, a.triage
    return {
        "image_id": a.image_id, "path": path,
        "study_instance_uid": src.study_instance_uid,
        "series_instance_uid": src.series_instance_uid,
        "sop_instance_uid": src.sop_instance_uid, "modality": a.modality,
        "accepted": bool(a.gate.accepted), "outcome": a.gate.outcome,
        "gate_reason": a.gate.reason,
        "p_spine": None if a.gate.p_spine is None else float(a.gate.p_spine),
        "probability": None if tri is None else float(tri.probability),
        "abnormal": None if tri is None else bool(tri.abnormal),
        "n_findings": len(a.findings),
        "findings": json.dumps([_finding(f) for f in a.findings]),
        "grades": json.dumps([_grade(g) for g in a.grades]),
        "pack": f"{a.pack.name}@{a.pack.version}",
        "error_code": read_error[0] if read_error else None,
        "error": read_error[1] if read_error else None,
    }


def error_row(path: str, code: str, message: str) -> dict[str, Any]:
    """The row of an input whose analysis failed (``code``: :data:`ANALYSIS_FAILED`,
    :data:`WORKER_LOST`); nothing was analysed."""
    row = dict.fromkeys(COLUMN_NAMES)
    stem = path.replace("\\", "/").rstrip("/").rsplit("/", 1)[-1].rsplit(".", 1)[0]
    row.update(image_id=stem or "input", path=path, accepted=False, outcome="error",
               gate_reason=message, n_findings=0, findings="[]", grades="[]",
               error_code=code, error=message)
    return row


def _box(b: Box) -> list[float]:
    return [float(v) for v in b.as_list()]


def _finding(f: Finding) -> dict[str, Any]:
    return {"label": f.label, "score": f.score, "level": f.level, "box": _box(f.box),
            "size_mm": None if f.size_mm is None else [float(v) for v in f.size_mm]}


def _grade(g: Grade) -> dict[str, Any]:
    out: dict[str, Any] = {"task": g.task, "label": g.label, "index": int(g.index),
                           "probabilities": {k: float(v) for k, v in g.probabilities.items()}}
    if g.box is not None:
        out["region"] = g.box.label
        out["box"] = _box(g.box)
    return out


__all__ = ["ANALYSIS_FAILED", "COLUMNS", "COLUMN_NAMES", "WORKER_LOST", "analysis_row",
           "error_row"]
