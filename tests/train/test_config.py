"""Recipes: phantom data sources are generated once, deterministically, under <out>/data."""
from __future__ import annotations

import pytest

from spinexr.errors import ConfigError
from spinexr.train.config import load_config, materialize_data

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
