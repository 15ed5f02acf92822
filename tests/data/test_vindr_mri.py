"""The VinDr MRI variant (``region,level,grade`` columns) read back: region boxes with their
level, grades by name or index, no triage label, and every kind of bad region row."""
from __future__ import annotations

from pathlib import Path

import pytest

from spinexr.data import detect_format, load_dataset, load_vindr
from spinexr.data.vindr import MRI_COLUMNS
from spinexr.errors import DatasetError
from spinexr.labels import LESION_CLASSES, STENOSIS_REGIONS
from spinexr.types import Box

HEADER = ",".join(MRI_COLUMNS) + "\n"
GOOD = HEADER + (
    "st1,se1,imA,R1,central canal,L4-L5,moderate,10,20,30,40\n"
    "st1,se1,imA,R1,left neural foramen,L4-L5,Normal,31,20,41,30\n"   # any case
    "st2,se2,imB,R1,right lateral recess,,3,1,2,3,4\n"                 # index, no level
)


def _write(root: Path, name: str, text: str) -> Path:
    (root / "annotations").mkdir(parents=True, exist_ok=True)
    (root / "annotations" / name).write_text(text)
    return root


def test_region_rows_become_region_boxes_and_grades(tmp_path):
    root = _write(tmp_path, "test.csv", GOOD)
    assert detect_format(root) == "vindr"
    ds = load_dataset(root, check_files=False)
    assert ds.classes == STENOSIS_REGIONS and ds.problems == ()
    a, b = ds.samples
    assert (a.image_id, a.group, a.label, a.split) == ("imA", "st1", None, "test")
    assert a.boxes == (Box(10, 20, 30, 40, "central canal", level="L4-L5"),
                       Box(31, 20, 41, 30, "left neural foramen", level="L4-L5"))
    assert a.grades == {"central canal": 2, "left neural foramen": 0}
    assert b.grades == {"right lateral recess": 3} and b.boxes[0].level is None


def test_radiograph_and_mri_csvs_side_by_side_keep_both_vocabularies(tmp_path):
    root = _write(tmp_path, "test.csv", GOOD)
    _write(root, "train.csv", "study_id,series_id,image_id,rad_id,lesion_type,xmin,ymin,xmax,"
                              "ymax\nst9,se9,imZ,R1,No finding,,,,\n")
    ds = load_vindr(root, check_files=False)
    assert ds.classes == LESION_CLASSES + STENOSIS_REGIONS
    assert [(s.image_id, s.label) for s in ds.samples] == [("imZ", 0), ("imA", None),
                                                          ("imB", None)]


def test_bad_region_rows_are_listed_by_line(tmp_path):
    root = _write(tmp_path, "test.csv", HEADER + (
        "st1,se1,imA,R1,central canal,L4-L5,mild,10,20,30,40\n"          # 2 good
        "st1,se1,imB,R1,spinal cord,L4-L5,mild,10,20,30,40\n"            # 3 unknown region
        "st1,se1,imC,R1,central canal,L4-L5,critical,10,20,30,40\n"      # 4 unknown grade
        "st1,se1,imD,R1,central canal,L4-L5,4,10,20,30,40\n"             # 5 index too high
        "st1,se1,imE,R1,central canal,L4-L5,mild,10,20,30,40\n"          # 6 ...
        "st1,se1,imE,R1,central canal,L4-L5,mild,10,20,30,40\n"          # 7 twice
        "st1,se1,imF,R1,central canal,L4-L5,mild,10,x,30,40\n"))         # 8 bad coordinate
    with pytest.raises(DatasetError) as info:
        load_vindr(root, check_files=False)
    expected = [("test.csv:3:", "unknown region 'spinal cord'"),
                ("test.csv:4:", "unknown grade 'critical'"), ("test.csv:5:", "unknown grade '4'"),
                ("test.csv:7:", "region 'central canal' twice on image 'imE'"),
                ("test.csv:8:", "non-numeric coordinate ymin='x' for 'central canal'")]
    assert len(info.value.problems) == len(expected)
    for (where, what), problem in zip(expected, info.value.problems):
        assert f"{where} " in problem and what in problem, problem
    ds = load_vindr(root, check_files=False, strict=False)
    assert [s.image_id for s in ds.samples] == ["imA"]
