"""Recipes: phantom data sources are generated once, deterministically, under <out>/data;
``--set`` overrides; a validation split held out of train."""
from __future__ import annotations

from pathlib import Path

import pytest

from spinexr.errors import ConfigError
from spinexr.train.config import (HoldOut, apply_overrides, hold_out, load_config,
                                  materialize_data, part_overrides)
from spinexr.types import Box, Sample

RECIPE = """
name: tiny
task: detect
data:
  phantom:
    layout: yolo
    size: [160, 128]
    sets: {train: {n: 2, seed: 0}, valid: {n: 1, seed: 9}}
  format: yolo
  splits: {train: train, val: valid}
model: {arch: yolo11n, imgsz: 64}
"""


def test_phantom_sets_are_written_once_under_out(tmp_path):
    path = tmp_path / "r.yaml"
    path.write_text(RECIPE)
    cfg = materialize_data(load_config(path), tmp_path / "run")
    assert cfg.data.root == tmp_path / "run" / "data"
    images = sorted(p.name for p in cfg.data.root.rglob("*.png"))
    assert len(images) == 3
    stamp = {p: p.stat().st_mtime_ns for p in cfg.data.root.rglob("*.png")}
    again = materialize_data(load_config(path), tmp_path / "run")   # e.g. --resume
    assert again.data.root == cfg.data.root
    assert {p: p.stat().st_mtime_ns for p in cfg.data.root.rglob("*.png")} == stamp


def test_a_changed_phantom_set_is_refused_in_the_same_out(tmp_path):
    path = tmp_path / "r.yaml"
    path.write_text(RECIPE)
    materialize_data(load_config(path), tmp_path / "run")
    path.write_text(RECIPE.replace("n: 2, seed: 0", "n: 2, seed: 5"))
    with pytest.raises(ConfigError, match="different 'train' set"):
        materialize_data(load_config(path), tmp_path / "run")


def test_phantom_without_sets_is_a_config_error(tmp_path):
    path = tmp_path / "r.yaml"
    path.write_text(RECIPE.replace("    sets: {train: {n: 2, seed: 0}, valid: {n: 1, seed: 9}}\n",
                                   ""))
    with pytest.raises(ConfigError, match="needs 'sets'"):
        load_config(path)


def test_recipe_without_root_or_phantom_names_the_key(tmp_path):
    path = tmp_path / "r.yaml"
    path.write_text("task: detect\ndata: {format: yolo}\nmodel: {arch: yolo11n, imgsz: 64}\n")
    with pytest.raises(ConfigError, match="'root'"):
        load_config(path)


# --------------------------------------------------------------------------- --set overrides
DOC = {"name": "r", "task": "classify", "data": {"root": "d", "splits": {"train": "train"}},
       "model": {"input": {"size": 384}, "members": [{"key": "a", "arch": "resnet50"}]},
       "train": {"epochs": 40}}


def test_overrides_set_dotted_keys_with_yaml_values_in_a_copy():
    out = apply_overrides(DOC, ["train.epochs=1", "model.input.size=64",
                                "model.members.0.arch=resnet10t", "data.root=/tmp/v",
                                "train.loss={name: ce}", "card.version='2'"])
    assert out["train"]["epochs"] == 1 and out["model"]["input"]["size"] == 64
    assert out["model"]["members"] == [{"key": "a", "arch": "resnet10t"}]
    assert out["data"]["root"] == "/tmp/v" and out["train"]["loss"] == {"name": "ce"}
    assert out["card"] == {"version": "2"}         # a known section may be added
    assert DOC["train"]["epochs"] == 40 and DOC["model"]["members"][0]["arch"] == "resnet50"


def test_overrides_apply_in_order_and_null_and_lists_replace():
    out = apply_overrides(DOC, ["train.epochs=2", "train.epochs=3", "data.splits=null",
                                "model.members=[{key: b, arch: test_resnet}]"])
    assert out["train"]["epochs"] == 3 and out["data"]["splits"] is None
    assert out["model"]["members"] == [{"key": "b", "arch": "test_resnet"}]


@pytest.mark.parametrize("pair, match", [
    ("train.epochs", "'train.epochs' is not KEY=VALUE"),
    ("=1", "is not KEY=VALUE"),
    ("train..epochs=1", "is not KEY=VALUE"),
    ("lesions:train.epochs=1", "PART:KEY=VALUE only for pack recipes"),
    ("train.epochs=[1", "the value is not YAML"),
    ("trian.epochs=1", "the recipe has no 'trian' section"),
    ("train.epochs.max=1", "train.epochs is int, so it has no 'max'"),
    ("model.members.1.arch=x", "model.members is a list of 1, so it has no '1'"),
])
def test_a_bad_override_names_the_pair(pair, match):
    with pytest.raises(ConfigError, match=match):
        apply_overrides(DOC, [pair])


def test_part_overrides_prefix_one_part_plain_every_part():
    got = part_overrides(["train.epochs=1", "lesions:model.arch=yolo11n",
                          "triage:model.windows.pack=part:vertebrae"], ["triage", "lesions"])
    assert got == {"triage": ["train.epochs=1", "model.windows.pack=part:vertebrae"],
                   "lesions": ["train.epochs=1", "model.arch=yolo11n"]}
    with pytest.raises(ConfigError, match="no part 'lesion' in this pack recipe"):
        part_overrides(["lesion:train.epochs=1"], ["triage", "lesions"])


def test_load_config_applies_overrides_before_validation_and_records_them(tmp_path):
    path = tmp_path / "r.yaml"
    path.write_text(RECIPE)
    cfg = load_config(path, ["model.imgsz=32", "data.splits.val=train"])
    assert cfg.model["imgsz"] == 32 and cfg.data.splits["val"] == "train"
    assert cfg.card["overrides"] == ["model.imgsz=32", "data.splits.val=train"]
    with pytest.raises(ConfigError, match=r"r\.yaml: --set: 'task=segment'|task 'segment'"):
        load_config(path, ["task=segment"])
    with pytest.raises(ConfigError, match=r"r\.yaml: --set: 'modle.arch=x'"):
        load_config(path, ["modle.arch=x"])


# --------------------------------------------------------------------------- val hold-out
def _samples(n_studies: int) -> tuple[Sample, ...]:
    """Two views per study; every other study has an osteophyte box."""
    box = Box(1, 1, 5, 5, label="Osteophytes")
    return tuple(Sample(image_id=f"s{i}-{v}", image_path=Path(f"s{i}-{v}.dicom"), group=f"s{i}",
                        boxes=(box,) if i % 2 else (), label=i % 2)
                 for i in range(n_studies) for v in range(2))


def test_holdout_cuts_val_out_of_train_by_study():
    train, test = _samples(10), _samples(2)
    got = hold_out({"train": train, "test": test}, HoldOut(0.2, seed=0))
    assert got["test"] == test
    assert len(got["val"]) == 4 and len(got["train"]) == 16      # 2 of 10 studies, 2 views each
    assert {s.group for s in got["val"]}.isdisjoint({s.group for s in got["train"]})
    assert sorted(got["train"] + got["val"], key=lambda s: s.image_id) == \
        sorted(train, key=lambda s: s.image_id)
    assert {s.label for s in got["val"]} == {0, 1}                # stratified
    assert hold_out({"train": train, "test": test}, HoldOut(0.2, seed=0)) == got
    assert hold_out({"train": train}, None) == {"train": train}


def test_a_holdout_val_split_in_a_detect_recipe(tmp_path):
    path = tmp_path / "r.yaml"
    path.write_text(RECIPE.replace("splits: {train: train, val: valid}",
                                   "splits: {train: train, val: {holdout: 0.1, seed: 3}}"))
    cfg = load_config(path)
    assert cfg.data.splits == {"train": "train"} and cfg.data.holdout == HoldOut(0.1, 3)
    with pytest.raises(ConfigError,
                       match=r"data.splits.val is \{'holdout': 1.5, 'seed': 3\}; give a split"):
        load_config(path, ["data.splits.val.holdout=1.5"])
    with pytest.raises(ConfigError, match="holdout: ...} is for detect recipes"):
        load_config(path, ["task=classify"])


def test_spinexr_train_refuses_a_bad_set_before_training(tmp_path, capsys):
    from spinexr.cli import main

    path = tmp_path / "r.yaml"
    path.write_text(RECIPE)
    pack = tmp_path / "p.yaml"
    pack.write_text("name: p\ntask: pack\nparts: {lesions: r.yaml}\n")
    assert main(["train", str(path), "--out", str(tmp_path / "o"), "--set", "trian.epochs=1"]) == 2
    assert main(["train", str(pack), "--out", str(tmp_path / "o"), "--set", "x:train.epochs=1"]) == 2
    err = capsys.readouterr().err
    assert "no 'trian' section" in err and "no part 'x' in this pack recipe" in err
    assert not (tmp_path / "o").exists()
