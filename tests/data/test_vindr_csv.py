"""VinDr-SpineXR CSVs as published: grouping, spellings, aliases, and every kind of bad row."""
from __future__ import annotations

import logging
from pathlib import Path

import pytest

from spinexr.data import load_vindr
from spinexr.errors import DatasetError
from spinexr.types import Box

HEADER = "study_id,series_id,image_id,rad_id,lesion_type,xmin,ymin,xmax,ymax\n"

GOOD_TRAIN = HEADER + (
    "st1,se1,imA,rad2,Osteophytes,10.5,20,30.25,40\n"          # 2
    "st1,se1,imA,rad3,Spondylolysthesis,1,2,3,4\n"             # 3: published spelling
    "st1,se2,imB,rad2,No finding,,,,\n"                        # 4
    "st2,se3,imC,rad1,Fracture,5,5,15,15\n"                    # 5: rare class -> Other lesions
    "st2,se3,imC,rad2,Osteophytes,5,5,15,15\n"                 # 6: second reader, same box kept
)


def _dataset(root: Path, write_dicom, train: str = GOOD_TRAIN, test: str | None = None,
             images=("imA", "imB", "imC"), size=(64, 48)) -> Path:
    (root / "annotations").mkdir(parents=True)
    (root / "annotations" / "train.csv").write_text(train)
    if test is not None:
        (root / "annotations" / "test.csv").write_text(test)
    for image_id in images:
        write_dicom(root / "train_images" / f"{image_id}.dicom", *size)
    return root


def test_published_csv_groups_rows_into_samples(tmp_path, write_dicom):
    ds = load_vindr(_dataset(tmp_path, write_dicom))
    assert ds.format == "vindr" and ds.problems == ()
    a, b, c = ds.samples
    assert (a.image_id, a.group, a.label, a.split) == ("imA", "st1", 1, "train")
    assert a.boxes == (Box(10.5, 20, 30.25, 40, "Osteophytes"),
                       Box(1, 2, 3, 4, "Spondylolisthesis"))
    assert (b.image_id, b.group, b.label, b.boxes) == ("imB", "st1", 0, ())
    assert [x.label for x in c.boxes] == ["Other lesions", "Osteophytes"]
    assert (a.width, a.height) == (64, 48)  # from the DICOM header
    assert a.image_path == tmp_path / "train_images" / "imA.dicom"


def test_split_selects_one_csv_and_check_files_false_reads_no_images(tmp_path):
    (tmp_path / "annotations").mkdir()
    (tmp_path / "annotations" / "train.csv").write_text(GOOD_TRAIN)
    (tmp_path / "annotations" / "test.csv").write_text(HEADER + "st9,se9,imZ,r,No finding,,,,\n")
    ds = load_vindr(tmp_path, split="test", check_files=False)
    assert [(s.image_id, s.split, s.width) for s in ds.samples] == [("imZ", "test", None)]
    assert len(load_vindr(tmp_path, check_files=False).samples) == 4
    with pytest.raises(DatasetError, match="split 'val'"):
        load_vindr(tmp_path, split="val")


BAD_TRAIN = HEADER + (
    "st1,se1,imA,r1,Osteophytes,10,20,30,40\n"           # 2 good
    "st1,se1,imB,r1,Osteophytes,10,abc,30,40\n"          # 3 non-numeric
    "st1,se1,imC,r1,Osteophytes,30,20,10,40\n"           # 4 x1 >= x2
    "st1,se1,imD,r1,Tumour,10,20,30,40\n"                # 5 unknown class
    "st1,se1,imE,r1,Osteophytes,10,20\n"                 # 6 malformed line
    "st1,se1,imF,r1,No finding,,,,\n"                    # 7 No finding ...
    "st1,se1,imF,r1,Osteophytes,1,1,5,5\n"               # 8 ... and a lesion
    "st1,se1,imG,r1,Osteophytes,1,1,5,5\n"               # 9 missing image file
    "st1,se1,imH,r1,Osteophytes,10,20,70,40\n"           # 10 outside the 64x48 image
    "st1,se1,imI,r1,No finding,,,,\n"                    # 11 duplicate id (also in test.csv)
    "st1,se1,imJ,r1,Osteophytes,,,,\n"                   # 12 missing coordinates
    "st1,se1,,r1,No finding,,,,\n"                       # 13 empty image id
    "st1,se1,imK,r1,Osteophytes,1,40,5,30\n"             # 14 y1 >= y2
    "st1,se1,imL,r1,Osteophytes,-3,1,5,5\n"              # 15 negative
)
BAD_TEST = HEADER + "st7,se7,imI,r1,No finding,,,,\n"   # test.csv:2


def _bad(tmp_path, write_dicom):
    root = _dataset(tmp_path, write_dicom, BAD_TRAIN, BAD_TEST,
                    images=("imA", "imB", "imC", "imD", "imE", "imF", "imH", "imI", "imJ",
                            "imK", "imL"))
    write_dicom(root / "test_images" / "imI.dicom")
    return root


EXPECTED = [
    ("train.csv:3:", "non-numeric coordinate ymin='abc'"),
    ("train.csv:4:", "x1=30 >= x2=10"),
    ("train.csv:5:", "unknown class 'Tumour'"),
    ("train.csv:6:", "malformed line: 7 fields"),
    ("train.csv:7:", "'No finding' row and lesion rows (line 8)"),
    ("train.csv:9:", "missing image file"),
    ("train.csv:10:", "outside the 64x48 image"),
    ("train.csv:12:", "missing coordinate xmin=''"),
    ("train.csv:13:", "empty image_id"),
    ("train.csv:14:", "y1=40 >= y2=30"),
    ("train.csv:15:", "negative coordinate"),
    ("test.csv:2:", "duplicate image id 'imI', also at"),
]


def test_strict_raises_with_every_bad_row_by_file_and_line(tmp_path, write_dicom):
    root = _bad(tmp_path, write_dicom)
    with pytest.raises(DatasetError) as info:
        load_vindr(root)
    err = info.value
    assert "annotations" in str(err) and "12 problem(s)" in str(err)
    assert len(err.problems) == len(EXPECTED)
    for (where, what), problem in zip(EXPECTED, err.problems):
        assert f"{where} " in problem and what in problem, problem
        assert problem.startswith(str(root / "annotations"))


def test_lenient_returns_good_samples_and_warns(tmp_path, write_dicom, caplog):
    root = _bad(tmp_path, write_dicom)
    with caplog.at_level(logging.WARNING, logger="spinexr.data"):
        ds = load_vindr(root, strict=False)
    # imI is in train.csv and test.csv: ambiguous, so neither copy is kept
    assert [s.image_id for s in ds.samples] == ["imA"]
    assert len(ds.problems) == len(EXPECTED)
    logged = [r.getMessage() for r in caplog.records if r.name == "spinexr.data"]
    assert logged == list(ds.problems)
    assert all(r.levelno == logging.WARNING for r in caplog.records)


def test_missing_columns_and_unreadable_header(tmp_path, write_dicom):
    (tmp_path / "annotations").mkdir()
    (tmp_path / "annotations" / "train.csv").write_text("image_id,label\nimA,1\n")
    with pytest.raises(DatasetError, match=r"train.csv:1: missing column\(s\)"):
        load_vindr(tmp_path)
    (tmp_path / "annotations" / "train.csv").write_text(GOOD_TRAIN)
    for name in ("imA", "imB"):
        write_dicom(tmp_path / "train_images" / f"{name}.dicom", 64, 48)
    (tmp_path / "train_images" / "imC.dicom").write_bytes(b"not a dicom file")
    ds = load_vindr(tmp_path, strict=False)
    assert [s.image_id for s in ds.samples] == ["imA", "imB"]
    (problem,) = ds.problems
    assert "train.csv:5: image" in problem and "cannot read the image header" in problem


def test_not_a_vindr_root(tmp_path):
    with pytest.raises(DatasetError, match="not a VinDr-SpineXR layout"):
        load_vindr(tmp_path)
