"""Class-per-folder trees, with and without a split level, and format detection."""
from __future__ import annotations

import pytest

from spinexr.data import detect_format, load_dataset, load_folders
from spinexr.errors import ConfigError, DatasetError


def test_split_level_and_sorted_classes(tmp_path, write_png):
    rf = "b_png.rf.0123456789abcdef0123456789abcdef"
    for rel in ("train/normal/a.png", f"train/abnormal/{rf}.png",
                "test/normal/c.png", "test/abnormal/d.dcm"):
        write_png(tmp_path / rel)
    ds = load_folders(tmp_path)
    assert ds.classes == ("abnormal", "normal") and ds.problems == ()
    got = [(s.split, s.image_id, s.label, s.group) for s in ds.samples]
    assert got == [("test", "d", 0, "d"), ("test", "c", 1, "c"),
                   ("train", rf, 0, "b"),
                   ("train", "a", 1, "a")]
    assert [s.image_id for s in load_folders(tmp_path, split="test").samples] == ["d", "c"]


def test_no_split_level_and_classes_txt_order(tmp_path, write_png):
    write_png(tmp_path / "fracture" / "a.png")
    write_png(tmp_path / "normal" / "b.jpg")
    (tmp_path / "classes.txt").write_text("normal\nfracture\ndislocation\n")
    ds = load_folders(tmp_path)
    assert ds.classes == ("normal", "fracture", "dislocation")
    assert [(s.image_id, s.label, s.split) for s in ds.samples] == [("a", 1, None), ("b", 0, None)]
    with pytest.raises(DatasetError, match="no split directory"):
        load_folders(tmp_path, split="train")


def test_unknown_class_dirs_stray_files_and_duplicates(tmp_path, write_png):
    (tmp_path / "classes.txt").write_text("normal\nabnormal\n")
    write_png(tmp_path / "train" / "normal" / "a.png")
    write_png(tmp_path / "train" / "abnormal" / "a.png")       # same id twice
    write_png(tmp_path / "train" / "other" / "b.png")
    (tmp_path / "train" / "normal" / "readme.txt").write_text("x")
    (tmp_path / "train" / "normal" / ".DS_Store").write_text("x")  # hidden files are ignored
    with pytest.raises(DatasetError) as info:
        load_folders(tmp_path)
    p = info.value.problems
    assert len(p) == 3
    assert p[0].startswith(f"{tmp_path / 'train' / 'normal' / 'a.png'}:1: duplicate image id 'a'")
    assert p[1].startswith(f"{tmp_path / 'train' / 'normal' / 'readme.txt'}:1: not an image file")
    assert p[2].startswith(f"{tmp_path / 'train' / 'other'}:1: class directory 'other'")
    assert load_folders(tmp_path, strict=False).samples == ()


def test_detect_format_on_each_layout(tmp_path, write_png):
    (tmp_path / "v" / "annotations").mkdir(parents=True)
    (tmp_path / "v" / "annotations" / "train.csv").write_text(
        "study_id,series_id,image_id,rad_id,lesion_type,xmin,ymin,xmax,ymax\n")
    (tmp_path / "c" / "annotations").mkdir(parents=True)
    (tmp_path / "c" / "annotations" / "instances_train.json").write_text("{}")
    (tmp_path / "y" / "train" / "labels").mkdir(parents=True)
    write_png(tmp_path / "y" / "train" / "images" / "a.png")
    write_png(tmp_path / "f" / "normal" / "a.png")
    (tmp_path / "empty").mkdir()
    assert [detect_format(tmp_path / d) for d in "vcyf"] == ["vindr", "coco", "yolo", "folders"]
    with pytest.raises(DatasetError, match="no known dataset layout"):
        detect_format(tmp_path / "empty")
    with pytest.raises(DatasetError, match="not found"):
        detect_format(tmp_path / "nowhere")
    with pytest.raises(ConfigError, match="format 'voc'"):
        load_dataset(tmp_path / "f", "voc")
