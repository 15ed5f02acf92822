"""``result.json``: an :class:`~spinexr.types.Analysis` as plain JSON, and its published schema.

The schema ships in the package (``spinexr/report/schema/analysis-v1.schema.json``). Minor
versions (``1.x``) only add optional keys; removing or retyping a key needs a ``v2`` schema.
The document never holds patient identifiers: it is built from the ``Analysis`` alone, never
from the DICOM header.
"""
from __future__ import annotations

import json
import math
import os
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any, Mapping

from spinexr.errors import FileAccessError, SpinexrError
from spinexr.report import notices
from spinexr.types import Analysis, Box, Finding, GateResult, Grade, LevelNaming, TriageResult

#: Version of the result.json contract written by this module. 1.1 added ``gate.outcome``,
#: ``gate.uncertain``, ``gate.p_spine``, ``warnings`` and ``levels``; 1.2 added ``modality``
#: and, on grades of a region (MRI stenosis), ``region`` and ``score``.
SCHEMA_VERSION = "1.2"
SCHEMA_RESOURCE = "schema/analysis-v1.schema.json"

DISCLAIMER = ("spinexr is research software, not a medical device. Its output is not a diagnosis "
              "and must not be used for clinical decisions without review by a qualified "
              "radiologist.")
SYNTHETIC_DISCLAIMER = ("The model pack was trained on synthetic images: not for clinical use. "
                        "Its results say nothing about real patients.")


class ResultValidationError(SpinexrError, ValueError):
    """A result document that does not follow the published schema.

    Attributes:
        problems: one ``"$.json.path: what is wrong"`` line per violation.
    """

    code = "invalid_result"

    def __init__(self, problems: list[str], source: str | None = None) -> None:
        self.problems = tuple(problems)
        shown = "\n  ".join(problems[:20])
        more = f"\n  ... and {len(problems) - 20} more" if len(problems) > 20 else ""
        super().__init__(f"result does not follow schema {SCHEMA_RESOURCE} "
                         f"({len(problems)} problem(s)):\n  {shown}{more}", source)


def disclaimer(synthetic: bool) -> str:
    """The disclaimer every output carries; longer for a synthetic-trained pack."""
    return f"{SYNTHETIC_DISCLAIMER} {DISCLAIMER}" if synthetic else DISCLAIMER


def analysis_to_dict(a: Analysis, *, source_path: str | None = None) -> dict:
    """The ``result.json`` document of an analysis (see the schema for every key).

    Args:
        a: the analysis.
        source_path: the path to record under ``source.path``; default ``a.source.path``.

    Returns:
        A JSON-ready dict: boxes ``[x1, y1, x2, y2]`` in source pixels, ``image_size``
        ``[width, height]``, ``spacing_mm`` ``[row, column]`` or ``None``, non-finite numbers
        as ``None`` (which the schema rejects where a number is required). ``warnings`` holds
        the cautions of :func:`spinexr.report.notices.warnings` (uncertain input, levels
        counted, unconfirmed, heads that disagree). ``outputs`` is empty and ``notes`` lists
        nothing until
        :func:`~spinexr.report.write_outputs` fills them.
    """
    src = a.source
    return {
        "schema_version": SCHEMA_VERSION,
        "image_id": a.image_id,
        "modality": a.modality,
        "source": {
            "path": source_path if source_path is not None else src.path,
            "study_instance_uid": src.study_instance_uid,
            "series_instance_uid": src.series_instance_uid,
            "sop_instance_uid": src.sop_instance_uid,
            "sop_class_uid": src.sop_class_uid,
        },
        "gate": _gate(a.gate),
        "triage": _triage(a.triage) if a.triage is not None else None,
        "findings": [_finding(f) for f in a.findings],
        "vertebrae": [{"box": _box(v), "level": v.level, "score": _num(v.score)}
                      for v in a.vertebrae],
        "grades": [_grade(g) for g in a.grades],
        "heatmaps": [{"method": h.method, "target": h.target, "model": h.model}
                     for h in a.heatmaps],
        "pack": {"name": a.pack.name, "version": a.pack.version,
                 "synthetic": bool(a.pack.synthetic)},
        "image_size": ([int(a.image_size[0]), int(a.image_size[1])]
                       if a.image_size is not None else None),
        "spacing_mm": _pair(a.spacing_mm),
        "timings": {str(k): _num(v) for k, v in a.timings.items()},
        "levels": _levels(a.levels) if a.levels is not None else None,
        "warnings": notices.warnings(a),
        "outputs": [],
        "notes": [],
        "disclaimer": disclaimer(a.pack.synthetic),
    }


def _gate(g: GateResult) -> dict:
    return {"accepted": bool(g.accepted), "outcome": g.outcome, "uncertain": bool(g.uncertain),
            "p_spine": _num(g.p_spine), "reason": str(g.reason),
            "checks": _jsonable(dict(g.checks))}


def _levels(n: LevelNaming) -> dict:
    return {"confirmed": bool(n.confirmed), "anchor": str(n.anchor), "region": str(n.region),
            "note": n.note}


def _triage(t: TriageResult) -> dict:
    return {"probability": _num(t.probability), "abnormal": bool(t.abnormal),
            "operating_point": str(t.operating_point), "threshold": _num(t.threshold),
            "per_model": {str(k): _num(v) for k, v in t.per_model.items()},
            "decisions": {str(k): bool(v) for k, v in t.decisions.items()}}


def _finding(f: Finding) -> dict:
    return {"label": f.label, "score": _num(f.score), "box": _box(f.box), "level": f.level,
            "size_mm": _pair(f.size_mm)}


def _grade(g: Grade) -> dict:
    out = {"task": g.task, "label": g.label, "index": int(g.index),
           "probabilities": {str(k): _num(v) for k, v in g.probabilities.items()},
           "box": _box(g.box) if g.box is not None else None}
    if g.box is not None:   # a graded MR region, or the window that gave an image grade
        out.update(region=g.box.label, score=_num(g.box.score), level=g.box.level)
    return out


def _box(b: Box) -> list:
    return [_num(b.x1), _num(b.y1), _num(b.x2), _num(b.y2)]


def _pair(p) -> list | None:
    return None if p is None else [_num(p[0]), _num(p[1])]


def _num(x) -> float | None:
    if x is None:
        return None
    x = float(x)
    return x if math.isfinite(x) else None


def _jsonable(value: Any) -> Any:
    """Gate checks hold whatever the gate measured: make numpy scalars, tuples and odd objects
    JSON values."""
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, int):
        return int(value)
    if hasattr(value, "item") and getattr(value, "ndim", 0) == 0:   # numpy scalar
        return _jsonable(value.item())
    if hasattr(value, "tolist"):                                   # numpy array
        return _jsonable(value.tolist())
    if isinstance(value, float):
        return _num(value)
    return str(value)


@lru_cache(maxsize=1)
def load_schema() -> dict:
    """The published JSON Schema of result.json (draft 2020-12)."""
    text = resources.files("spinexr.report").joinpath(SCHEMA_RESOURCE).read_text("utf-8")
    return json.loads(text)


def validate_result(doc: Mapping[str, Any]) -> None:
    """Check a result document against the published schema (jsonschema, draft 2020-12).

    Raises:
        ResultValidationError: listing every violation with its JSON path.
    """
    import jsonschema

    validator = jsonschema.Draft202012Validator(load_schema())
    problems = [f"{e.json_path}: {e.message}" for e in validator.iter_errors(doc)]
    if problems:
        raise ResultValidationError(problems)


def json_bytes(doc: Mapping[str, Any]) -> bytes:
    """``doc`` validated and serialised as result.json is (UTF-8, indented, contract order).

    Raises:
        ResultValidationError: ``doc`` does not follow the schema.
    """
    validate_result(doc)
    return (json.dumps(doc, indent=2, ensure_ascii=False, allow_nan=False) + "\n").encode()


def write_json(doc: Mapping[str, Any], path: str | os.PathLike) -> Path:
    """Validate ``doc`` and write it as UTF-8 JSON (indented, keys in contract order).

    Raises:
        ResultValidationError: ``doc`` does not follow the schema (nothing is written).
        FileAccessError: the file cannot be written.
    """
    data = json_bytes(doc)
    path = Path(path)
    try:
        path.write_bytes(data)
    except OSError as exc:
        raise FileAccessError(f"cannot write result.json ({exc.strerror or exc})",
                              str(path)) from exc
    return path
