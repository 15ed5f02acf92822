"""COCO JSON: bbox conversion, groups, file resolution, and bad records located by line."""
from __future__ import annotations

import json
import logging

import pytest

from spinexr.data import load_coco
from spinexr.errors import DatasetError
from spinexr.types import Box


def _line_of(text: str, marker: str) -> int:
    """1-based line of the first line containing ``marker``."""
    return next(i for i, t in enumerate(text.splitlines(), 1) if marker in t)


def _write(root, doc) -> str:
    (root / "annotations").mkdir(parents=True, exist_ok=True)
    # one object per line, so each record's line is easy to find
    text = "{\n" + ",\n".join(
        f'"{k}": [\n' + ",\n".join(json.dumps(o) for o in v) + "\n]" for k, v in doc.items()
    ) + "\n}\n"
    (root / "annotations" / "instances_train.json").write_text(text)
    return text


def test_bbox_groups_labels_and_file_resolution(tmp_path, write_png):
    write_png(tmp_path / "images" / "train" / "a.png", 40, 30)
    write_png(tmp_path / "annotations" / "b.png", 40, 30)        # beside the json
    write_png(tmp_path / "images" / "sub" / "c.png", 50, 60)     # relative to images/
    _write(tmp_path, {
        "categories": [{"id": 3, "name": "Spondylolysthesis"}, {"id": 1, "name": "Vertebra"}],
        "images": [{"id": 10, "file_name": "a.png", "width": 40, "height": 30, "study_id": "S1"},
                   {"id": 11, "file_name": "b.png", "width": 40, "height": 30, "patient_id": 7},
                   {"id": 12, "file_name": "sub/c.png"}],
        "annotations": [{"id": 1, "image_id": 10, "category_id": 3, "bbox": [1, 2, 10, 20]},
                        {"id": 2, "image_id": 12, "category_id": 1, "bbox": [0, 0, 50, 60.0]}],
    })
    ds = load_coco(tmp_path)
    assert ds.problems == () and ds.classes == ("Spondylolisthesis", "Vertebra")
    a, b, c = ds.samples
    assert (a.image_id, a.group, a.label, a.boxes) == (
        "a", "S1", 1, (Box(1, 2, 11, 22, "Spondylolisthesis"),))
    assert (b.image_id, b.group, b.label, b.boxes, b.image_path) == (
        "b", "7", 0, (), tmp_path / "annotations" / "b.png")
    assert (c.image_id, c.group, c.width, c.height) == ("sub/c", "sub/c", 50, 60)
    assert c.boxes == (Box(0, 0, 50, 60, "Vertebra"),) and a.split == "train"


BAD = {
    "categories": [{"id": 1, "name": "Osteophytes"}, {"id": 1, "name": "dup-cat"}],
    "images": [
        {"id": 1, "file_name": "ok.png", "width": 40, "height": 30},
        {"id": 2, "file_name": "nonnum.png", "width": 40, "height": 30},
        {"id": 3, "file_name": "empty.png", "width": 40, "height": 30},
        {"id": 4, "file_name": "outside.png", "width": 40, "height": 30},
        {"id": 5, "file_name": "unknowncat.png", "width": 40, "height": 30},
        {"id": 5, "file_name": "dupid.png", "width": 40, "height": 30},
        {"id": 6, "file_name": "missing.png", "width": 40, "height": 30},
        {"id": 7, "file_name": "badsize.png", "width": "40", "height": 30},
        {"file_name": "noid.png"},
    ],
    "annotations": [
        {"id": 1, "image_id": 1, "category_id": 1, "bbox": [1, 1, 5, 5]},
        {"id": 2, "image_id": 2, "category_id": 1, "bbox": [1, "x", 5, 5]},
        {"id": 3, "image_id": 3, "category_id": 1, "bbox": [1, 1, 0, 5]},
        {"id": 4, "image_id": 4, "category_id": 1, "bbox": [30, 1, 20, 5]},
        {"id": 5, "image_id": 5, "category_id": 9, "bbox": [1, 1, 5, 5]},
        {"id": 6, "image_id": 99, "category_id": 1, "bbox": [1, 1, 5, 5]},
        {"id": 7, "image_id": 3, "category_id": 1, "bbox": [1, 1, 5]},
    ],
}


def _bad(tmp_path, write_png) -> str:
    for name in ("ok", "nonnum", "empty", "outside", "unknowncat", "dupid", "badsize", "noid"):
        write_png(tmp_path / "images" / "train" / f"{name}.png", 40, 30)
    return _write(tmp_path, BAD)


def test_strict_lists_every_bad_record_with_its_line(tmp_path, write_png):
    text = _bad(tmp_path, write_png)
    with pytest.raises(DatasetError, match="11 problem") as info:
        load_coco(tmp_path)
    assert info.value.source == str(tmp_path / "annotations" / "instances_train.json")
    problems = info.value.problems
    expected = [
        ('"dup-cat"', "duplicate category id 1"),
        ('"dupid.png"', "duplicate image id 5"),
        ('"missing.png"', "missing image file 'missing.png'"),
        ('"badsize.png"', "width/height must be positive integers"),
        ('"noid.png"', "malformed image record"),
        ('"bbox": [1, "x"', "non-numeric coordinate"),
        ('"bbox": [1, 1, 0, 5]', "empty box: x1=1 >= x2=1"),
        ('"bbox": [30, 1, 20, 5]', "outside the 40x30 image"),
        ('"category_id": 9', "unknown class: category_id 9"),
        ('"image_id": 99', "unknown image id 99"),
        ('"bbox": [1, 1, 5]}', "malformed bbox"),
    ]
    path = tmp_path / "annotations" / "instances_train.json"
    want = sorted((_line_of(text, marker), what) for marker, what in expected)
    assert len(problems) == len(want)
    for (line, what), problem in zip(want, problems):
        assert problem.startswith(f"{path}:{line}: ") and what in problem, (line, problem)


def test_lenient_keeps_only_clean_images(tmp_path, write_png, caplog):
    _bad(tmp_path, write_png)
    with caplog.at_level(logging.WARNING, logger="spinexr.data"):
        ds = load_coco(tmp_path, strict=False)
    (ok,) = ds.samples
    assert (ok.image_id, ok.boxes) == ("ok", (Box(1, 1, 6, 6, "Osteophytes"),))
    assert len(caplog.records) == len(ds.problems) == 11


def test_invalid_json_is_reported_with_its_line(tmp_path):
    (tmp_path / "annotations").mkdir()
    text = '{\n "images": [\n  {"id": 1,}\n]}'
    (tmp_path / "annotations" / "instances_val.json").write_text(text)
    with pytest.raises(DatasetError) as info:
        load_coco(tmp_path, split="val")
    (problem,) = info.value.problems
    assert problem.startswith(f"{tmp_path / 'annotations' / 'instances_val.json'}:3: invalid JSON")


def test_missing_split(tmp_path):
    with pytest.raises(DatasetError, match="instances_<split>.json"):
        load_coco(tmp_path, split="train")
    with pytest.raises(DatasetError, match="not a COCO layout"):
        load_coco(tmp_path)
