"""YOLO txt: Roboflow-style data.yaml paths, pixel conversion, polygons, groups, bad lines."""
from __future__ import annotations

import logging

import pytest

from spinexr.data import derive_group, load_yolo
from spinexr.errors import DatasetError
from spinexr.types import Box

RF = "_jpg.rf.0123456789abcdef0123456789abcdef"


def _tree(root, write_png, labels: dict[str, str], yaml="names: ['Vertebrae', 'Pedicle']\n"
          "train: ../train/images\n", split="train", size=(100, 50)):
    (root / "data.yaml").parent.mkdir(parents=True, exist_ok=True)
    (root / "data.yaml").write_text(yaml)
    for stem, text in labels.items():
        write_png(root / split / "images" / f"{stem}.png", *size)
        if text is not None:
            (root / split / "labels").mkdir(parents=True, exist_ok=True)
            (root / split / "labels" / f"{stem}.txt").write_text(text)
    return root


def test_boxes_in_pixels_polygons_and_background_images(tmp_path, write_png):
    _tree(tmp_path, write_png, {
        f"11{RF}": "0 0.5 0.5 0.2 0.4\n1 0.1 0.2 0.3 0.2 0.3 0.6 0.1 0.6 0.1 0.2\n",
        "bg": None,                      # no label file: a background image, no boxes
        "empty": "",
    })
    ds = load_yolo(tmp_path)
    assert ds.format == "yolo" and ds.classes == ("Vertebrae", "Pedicle") and ds.problems == ()
    a, bg, empty = ds.samples
    assert a.image_id == f"11{RF}" and a.group == "11" and (a.width, a.height) == (100, 50)
    assert a.boxes == (Box(40, 15, 60, 35, "Vertebrae"), Box(10, 10, 30, 30, "Pedicle"))
    assert (bg.boxes, bg.label, empty.boxes, empty.label) == ((), 0, (), 0)
    assert a.label == 1 and a.split == "train"


def test_groups_csv_overrides_file_names(tmp_path, write_png):
    _tree(tmp_path, write_png, {"p1_a": "", "p1_b": "", "p2_a": ""})
    (tmp_path / "groups.csv").write_text("image_id,group\np1_a,P1\np1_b,P1\n")
    assert [s.group for s in load_yolo(tmp_path).samples] == ["P1", "P1", "p2_a"]


def test_splits_from_yaml_and_disk_and_the_val_alias(tmp_path, write_png):
    _tree(tmp_path, write_png, {"x1": ""}, split="test")  # not in data.yaml, found on disk
    _tree(tmp_path, write_png, {"v1": ""}, split="valid")
    _tree(tmp_path, write_png, {"t1": ""},
          yaml="names: [a, b]\ntrain: ../train/images\nval: ../valid/images\n")
    ds = load_yolo(tmp_path / "data.yaml")
    assert [(s.image_id, s.split) for s in ds.samples] == [
        ("t1", "train"), ("v1", "valid"), ("x1", "test")]
    assert [s.image_id for s in load_yolo(tmp_path, split="val").samples] == ["v1"]
    with pytest.raises(DatasetError, match="split 'holdout'"):
        load_yolo(tmp_path, split="holdout")


def test_names_as_mapping_and_path_key(tmp_path, write_png):
    yaml = "path: data\ntrain: images/train\nnames:\n  0: a\n  1: b\n"
    write_png(tmp_path / "data" / "images" / "train" / "x.png", 10, 10)
    (tmp_path / "data" / "labels" / "train").mkdir(parents=True)
    (tmp_path / "data" / "labels" / "train" / "x.txt").write_text("1 0.5 0.5 1 1\n")
    (tmp_path / "data.yaml").write_text(yaml)
    (s,) = load_yolo(tmp_path).samples
    assert (s.split, s.boxes) == ("train", (Box(0, 0, 10, 10, "b"),))


BAD_LABELS = (
    "0 0.5 0.5 0.2 0.2\n"       # 1 good
    "2 0.5 0.5 0.2 0.2\n"       # 2 class id outside names
    "0 0.5 0.5 0.2\n"           # 3 wrong field count
    "0 0.5 1.5 0.2 0.2\n"       # 4 coordinate outside [0, 1]
    "0 0.5 0.5 zero 0.2\n"      # 5 non-numeric
    "0 0.95 0.5 0.2 0.2\n"      # 6 box edge outside the image
    "0 0.5 0.5 0.0 0.2\n"       # 7 empty box
    "0.5 0.5 0.5 0.2 0.2\n"     # 8 class id not an integer
)


def test_every_bad_line_is_reported(tmp_path, write_png, caplog):
    _tree(tmp_path, write_png, {"bad": BAD_LABELS, "good": "1 0.5 0.5 0.5 0.5\n"})
    (tmp_path / "train" / "labels" / "orphan.txt").write_text("0 0.5 0.5 0.1 0.1\n")
    (tmp_path / "train" / "images" / "notes.txt").write_text("hello")
    with pytest.raises(DatasetError) as info:
        load_yolo(tmp_path)
    label = tmp_path / "train" / "labels" / "bad.txt"
    expected = [
        (label, 2, "class id 2 outside names (0..1)"),
        (label, 3, "malformed line: 4 fields"),
        (label, 4, "outside [0, 1]"),
        (label, 5, "non-numeric value(s) ['zero']"),
        (label, 6, "box edges [0.85, 0.4, 1.05, 0.6] outside the image"),
        (label, 7, "empty box"),
        (label, 8, "class id 0.5 outside names"),
        (tmp_path / "train" / "images" / "notes.txt", 1, "not an image file"),
        (tmp_path / "train" / "labels" / "orphan.txt", 1, "label file without an image"),
    ]
    problems = info.value.problems
    assert len(problems) == len(expected)
    for (path, line, what), problem in zip(expected, problems):
        assert problem.startswith(f"{path}:{line}: ") and what in problem, problem
    with caplog.at_level(logging.WARNING, logger="spinexr.data"):
        ds = load_yolo(tmp_path, strict=False)
    assert [s.image_id for s in ds.samples] == ["good"]
    assert [r.getMessage() for r in caplog.records] == list(ds.problems)


def test_missing_yaml_or_names(tmp_path, write_png):
    with pytest.raises(DatasetError, match="no data.yaml"):
        load_yolo(tmp_path)
    _tree(tmp_path, write_png, {"a": ""}, yaml="train: train/images\n")
    with pytest.raises(DatasetError, match="'names' must be a list"):
        load_yolo(tmp_path)
    (tmp_path / "data.yaml").write_text("names: [a]\ntest: ../nowhere/images\n")
    with pytest.raises(DatasetError, match=r"data.yaml:2: test images directory"):
        load_yolo(tmp_path)
    assert len(load_yolo(tmp_path, split="train").samples) == 1


@pytest.mark.parametrize("stem,group", [
    ("11_jpg.rf.fe6c90a8cef7cb614c56b1d1388969ea", "11"),
    ("N73--Lt-LAIS--F--14-Yrs_jpg.rf.777e827eec916a3e5e38f2af77a52a9e", "N73--Lt-LAIS--F--14-Yrs"),
    ("Image_032_2ndbatch_png.rf.bef0f711e4d4a7161f54245b94b67a53", "Image_032_2ndbatch"),
    ("plain_name", "plain_name"),
    ("x_jpg.rf.short", "x_jpg.rf.short"),
])
def test_derive_group(stem, group):
    assert derive_group(stem) == group
