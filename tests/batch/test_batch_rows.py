"""Analysis -> results.parquet row: every column from hand-built analyses."""
from __future__ import annotations

import json

from spinexr.batch.rows import COLUMN_NAMES, WORKER_LOST, analysis_row, error_row
from spinexr.types import (Analysis, Box, Finding, GateResult, Grade, PackInfo, SourceRef,
                           TriageResult)

PACK = PackInfo("demo", "1.0.0", True)


def _accepted() -> Analysis:
    box = Box(10.0, 20.0, 50.0, 60.0, "Osteophytes", score=0.75, level="L4")
    return Analysis(
        image_id="sop-1", source=SourceRef("a/x.dcm", "st-1", "se-1", "sop-1"),
        image_size=(400, 500), spacing_mm=(0.2, 0.2),
        gate=GateResult(True, "spine radiograph", uncertain=True, p_spine=0.5),
        pack=PACK, triage=TriageResult(0.625, True, "youden", 0.5),
        findings=(Finding(box, size_mm=(8.0, 8.0)),),
        grades=(Grade("degeneration", "minimal", 2, {"healthy": 0.25, "minimal": 0.75}),))


def test_an_analysed_image_fills_every_column():
    row = analysis_row("/in/x.dcm", _accepted())
    assert tuple(row) == COLUMN_NAMES
    assert row["image_id"] == "sop-1" and row["path"] == "/in/x.dcm"
    assert (row["study_instance_uid"], row["series_instance_uid"], row["sop_instance_uid"]) \
        == ("st-1", "se-1", "sop-1")
    assert row["accepted"] is True and row["outcome"] == "uncertain"
    assert row["probability"] == 0.625 and row["abnormal"] is True and row["p_spine"] == 0.5
    assert row["n_findings"] == 1 and row["pack"] == "demo@1.0.0"
    assert json.loads(row["findings"]) == [{"label": "Osteophytes", "score": 0.75, "level": "L4",
                                            "box": [10.0, 20.0, 50.0, 60.0],
                                            "size_mm": [8.0, 8.0]}]
    assert json.loads(row["grades"]) == [{"task": "degeneration", "label": "minimal", "index": 2,
                                          "probabilities": {"healthy": 0.25, "minimal": 0.75}}]
    assert row["error_code"] is None and row["error"] is None


def test_an_unreadable_file_is_a_refused_row_with_the_readers_code():
    a = Analysis(image_id="x", source=SourceRef("x.dcm"), image_size=None, spacing_mm=None,
                 gate=GateResult(False, "not a DICOM file"), pack=PACK)
    row = analysis_row("x.dcm", a, read_error=("not_an_image", "not a DICOM file"))
    assert (row["accepted"], row["outcome"]) == (False, "refused")
    assert (row["error_code"], row["error"]) == ("not_an_image", "not a DICOM file")
    assert row["probability"] is None and row["abnormal"] is None and row["findings"] == "[]"


def test_a_failed_analysis_is_an_error_row_named_after_the_file():
    row = error_row("s3://bucket/study/img.7.dcm", WORKER_LOST, "worker died")
    assert tuple(row) == COLUMN_NAMES
    assert row["image_id"] == "img.7" and row["outcome"] == "error" and row["accepted"] is False
    assert (row["error_code"], row["error"]) == ("worker_lost", "worker died")
