"""The dataset layouts ``spinexr evaluate --task gate`` reads (no models, no pixels decoded)."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from spinexr.cli.gate_data import load_gate_set
from spinexr.errors import DatasetError


def _touch(root: Path, *files: str) -> None:
    for f in files:
        (root / f).parent.mkdir(parents=True, exist_ok=True)
        (root / f).write_bytes(b"x")


def test_manifest_csv_with_near_case_text_and_modality(tmp_path):
    _touch(tmp_path, "a.png", "b.png", "c.dcm", "d.png")
    (tmp_path / "manifest.csv").write_text(
        "file,label,view,near_case,modality\n"
        "a.png,spine,AP lumbar,,X-ray\n"
        "b.png,negative,Pelvis AP,,\n"          # near from the view
        "c.dcm,other,axial CT pelvis,,CT\n"     # not a radiograph: not near
        "d.png,other,knee,yes,\n")              # near from the column
    s = load_gate_set(tmp_path)
    assert s.layout == "manifest.csv"
    assert [(i.file, i.label, i.near_case) for i in s.items] == [
        ("a.png", "spine", False), ("b.png", "other", True), ("c.dcm", "other", False),
        ("d.png", "other", True)]


def test_manifest_problems_are_listed_by_line(tmp_path):
    _touch(tmp_path, "a.png")
    (tmp_path / "manifest.csv").write_text("file,label,near_case\na.png,spine,perhaps\n"
                                           "a.png,spine,\nb.png,other,\n")
    with pytest.raises(DatasetError) as info:
        load_gate_set(tmp_path)
    assert info.value.problems == ("manifest.csv:2: near_case 'perhaps'; use true or false",
                                   f"manifest.csv:4: file b.png not found under {tmp_path}")
    (tmp_path / "manifest.csv").write_text("file,label\na.png,spine\na.png,spine\n")
    with pytest.raises(DatasetError, match="a.png is listed twice"):
        load_gate_set(tmp_path)


def test_folders_are_searched_recursively_without_hidden_files(tmp_path):
    _touch(tmp_path, "spine/lumbar/x.jpg", "spine/IM0001", "other/y.png", "other/readme.txt",
           "other/.DS_Store", "near/pelvis/z.png", "extra/w.png")
    s = load_gate_set(tmp_path)
    assert s.layout == "folders"
    assert [(i.file, i.label, i.view, i.near_case) for i in s.items] == [
        ("spine/IM0001", "spine", "spine", False),
        ("spine/lumbar/x.jpg", "spine", "spine/lumbar", False),
        ("other/y.png", "other", "other", False),
        ("near/pelvis/z.png", "other", "near/pelvis", True)]


def test_yolo_set_with_split_folders(tmp_path):
    _touch(tmp_path, "train/images/a.jpg", "test/images/b.jpg", "test/labels/b.txt")
    assert [i.file for i in load_gate_set(tmp_path, split="test").items] == ["test/images/b.jpg"]
    s = load_gate_set(tmp_path / "test")
    assert s.layout == "yolo" and [(i.label, i.split) for i in s.items] == [("spine", None)]


def test_split_file_in_either_shape(tmp_path):
    _touch(tmp_path / "data", "spine/a.png", "other/b.png", "other/c.png")
    by_file = tmp_path / "by_file.json"
    by_file.write_text(json.dumps({"spine/a.png": "test", "other/b.png": "train",
                                   "other/c.png": "test"}))
    s = load_gate_set(tmp_path / "data", split_file=by_file, split="test")
    assert [i.file for i in s.items] == ["spine/a.png", "other/c.png"]
    # {split: [files]}, files relative to the split file's folder
    by_split = tmp_path / "by_split.json"
    by_split.write_text(json.dumps({"val": ["data/spine/a.png"], "test": ["data/other/b.png"]}))
    s = load_gate_set(tmp_path / "data", split_file=by_split, split="val")
    assert [i.file for i in s.items] == ["spine/a.png"] and s.split_file_unmatched == 0


def test_split_errors_name_what_is_there(tmp_path):
    _touch(tmp_path / "data", "spine/a.png")
    with pytest.raises(DatasetError, match="no file has a split: pass --split-file"):
        load_gate_set(tmp_path / "data", split="test")
    split = tmp_path / "s.json"
    split.write_text(json.dumps({"spine/a.png": "train"}))
    with pytest.raises(DatasetError, match=r"no file in split 'test'; splits present: \['train'\]"):
        load_gate_set(tmp_path / "data", split_file=split, split="test")
    split.write_text(json.dumps({"elsewhere/a.png": "train"}))
    with pytest.raises(DatasetError, match="none of the 1 files it lists"):
        load_gate_set(tmp_path / "data", split_file=split)
    split.write_text(json.dumps(["spine/a.png"]))
    with pytest.raises(DatasetError, match=r"\{file: split\} or \{split: \[files\]\}"):
        load_gate_set(tmp_path / "data", split_file=split)
