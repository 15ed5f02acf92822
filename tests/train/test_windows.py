"""Window triage training data: recipe parsing, folds, negatives, pooled out-of-fold logits,
and a classify recipe with ``model.windows`` end to end (stand-in vertebra detector)."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import yaml

from spinexr.errors import ConfigError
from spinexr.labels import VERTEBRA_CLASS
from spinexr.models.spine_crops import NO_WINDOW_LOGIT, CropSpec
from spinexr.train.oof import OutOfFold
from spinexr.train.windows import (parse_lesions, parse_windows, pooled_oof, train_windows,
                                   window_folds)
from spinexr.types import Box


def test_parse_windows_resolves_parts_and_paths(tmp_path):
    recipe = tmp_path / "cfg" / "r.yaml"
    w = parse_windows({"pack": "part:vertebrae", "width": 1.5, "negatives": 2}, recipe,
                      out=tmp_path / "runs" / "triage")
    assert w.pack == tmp_path / "runs" / "vertebrae" / "pack"
    assert w.spec == CropSpec(width=1.5) and w.negatives == 2
    rel = parse_windows({"pack": "../packs/v"}, recipe)
    assert rel.pack == (tmp_path / "packs" / "v").resolve()
    assert parse_windows(None, recipe) is None
    with pytest.raises(ConfigError, match="needs 'pack'"):
        parse_windows({"width": 2}, recipe)
    with pytest.raises(ConfigError, match="part of a pack recipe"):
        parse_windows({"pack": "part:vertebrae"}, recipe, out=None)
    with pytest.raises(ConfigError, match="unknown crop settings"):
        parse_windows({"pack": "x", "hieght": 2}, recipe)


def test_parse_windows_lesions_for_graders(tmp_path):
    labels = ("normal", "fracture", "dislocation")
    w = parse_windows({"pack": "p", "lesions": {"fracture": ["Vertebral collapse"],
                                                "dislocation": ["Spondylolisthesis"]}},
                      tmp_path / "r.yaml", labels=labels)
    assert w.lesions == {1: frozenset({"Vertebral collapse"}),
                         2: frozenset({"Spondylolisthesis"})}
    grades = ("healthy", "doubtful", "minimal")
    assert parse_lesions(["Osteophytes"], grades, "x") == {1: frozenset({"Osteophytes"}),
                                                          2: frozenset({"Osteophytes"})}
    assert parse_lesions([], grades, "x") == {1: None, 2: None}     # any lesion box
    assert parse_lesions(None, grades, "x") == {}                   # triage: 0/1 windows
    with pytest.raises(ConfigError, match="not one of the abnormal labels"):
        parse_lesions({"healthy": ["Osteophytes"]}, grades, "x")
    with pytest.raises(ConfigError, match="unknown lesion classes"):
        parse_lesions(["Osteophyte"], grades, "x")
    with pytest.raises(ConfigError, match="list of lesion classes"):
        parse_lesions("Osteophytes", grades, "x")


def test_window_recipe_targets_give_the_image_grade_to_its_lesion_windows(tmp_path):
    wins = [Box(0, 0, 10, 10, "window"), Box(10, 0, 20, 10, "window")]
    boxes = [Box(2, 2, 6, 6, "Vertebral collapse"), Box(12, 2, 16, 6, "Spondylolisthesis")]
    grader = parse_windows({"pack": "p", "lesions": {"fracture": ["Vertebral collapse"],
                                                     "dislocation": ["Spondylolisthesis"]}},
                           tmp_path / "r.yaml", labels=("normal", "fracture", "dislocation"))
    assert grader.window_targets(wins, boxes, 1).tolist() == [1, 0]
    assert grader.window_targets(wins, boxes, 2).tolist() == [0, 2]
    assert grader.window_targets(wins, boxes, 0).tolist() == [0, 0]   # a normal image
    triage = parse_windows({"pack": "p"}, tmp_path / "r.yaml")
    assert triage.window_targets(wins, boxes, 1).tolist() == [1, 1]


def test_training_windows_keep_positives_and_some_negatives():
    owner = np.array([0, 0, 0, 0, 1, 1, 1, 2])
    targets = np.array([0, 1, 0, 0, 0, 0, 0, 1])
    keep = train_windows(np.ones(8, bool), owner, targets, negatives=1, seed=0)
    assert {1, 7} <= set(keep.tolist())                    # every positive
    assert np.bincount(owner[keep], minlength=3).tolist() == [2, 1, 1]
    assert train_windows(np.ones(8, bool), owner, targets, 1, 0).tolist() == keep.tolist()
    everything = train_windows(np.ones(8, bool), owner, targets, negatives=10, seed=0)
    assert everything.tolist() == list(range(8))
    graded = train_windows(np.ones(8, bool), owner, targets * 3, negatives=0, seed=0)
    assert graded.tolist() == [1, 7]                       # every grade > 0 is a positive


def test_window_folds_follow_the_image_folds():
    owner = np.array([0, 0, 1, 1, 1, 2, 3, 3])
    targets = np.zeros(8, np.int64)
    image_folds = [(np.array([0, 1]), np.array([2, 3])), (np.array([2, 3]), np.array([0, 1]))]
    folds = window_folds(image_folds, owner, targets, negatives=5, seed=0)
    (tr0, va0), (tr1, va1) = folds
    assert va0.tolist() == [5, 6, 7] and va1.tolist() == [0, 1, 2, 3, 4]
    assert tr0.tolist() == [0, 1, 2, 3, 4] and tr1.tolist() == [5, 6, 7]
    assert sorted(va0.tolist() + va1.tolist()) == list(range(8))   # each window once


def test_pooled_oof_is_the_max_window_per_image():
    window = OutOfFold(np.array([[0.1], [2.0], [-3.0]], np.float32), np.array([0, 1, 0]),
                       np.array([0, 0, 1]), (2, 3), (0.9, 0.8))
    folds = [(np.array([2]), np.array([0])), (np.array([0]), np.array([1, 2]))]
    got = pooled_oof(window, np.array([0, 0, 1]), np.array([1, 0, 0]), folds, "max")
    np.testing.assert_allclose(got.logits[:, 0], [2.0, -3.0, NO_WINDOW_LOGIT])
    assert got.targets.tolist() == [1, 0, 0] and got.fold_of.tolist() == [0, 1, 1]
    assert got.best_epochs == (2, 3)


class _Column:
    """Stand-in vertebra detector: six bodies stacked down the middle of any image."""

    def predict(self, images, conf=0.25, **_):
        out = []
        for im in images:
            h, w = im.shape
            step = h / 7
            out.append([Box(0.3 * w, step * (i + 0.6), 0.7 * w, step * (i + 1.2),
                            VERTEBRA_CLASS, score=0.9) for i in range(6)])
        return out


def _vertebra_pack(root: Path, monkeypatch) -> str:
    """A pack holding a (never used) YOLO vertebra detector; every detector is the stand-in."""
    import torch

    from spinexr.models.pack import ModelPack, save_pack, save_weights
    from spinexr.models.yolo import build_detection_model

    torch.manual_seed(0)
    sha = save_weights(build_detection_model("yolo11n", [VERTEBRA_CLASS]).state_dict(),
                       root / "vertebra_detector.safetensors")
    save_pack(root, {"name": "v", "version": "0", "synthetic": True, "models": {
        "vertebra_detector": {"kind": "detector", "arch": "yolo11n", "dtype": "float16",
                              "weights": "vertebra_detector.safetensors", "sha256": sha,
                              "labels": [VERTEBRA_CLASS], "input": {"size": 64}}}})
    monkeypatch.setattr(ModelPack, "detector", lambda self, key, **_: _Column())
    return sha


_TRAIN = {"folds": 2, "epochs": 2, "patience": 1, "batch": 8, "progress": False,
          "tensorboard": False, "threads": 1, "device": "cpu"}


@pytest.mark.slow
def test_window_recipe_end_to_end(tmp_path, monkeypatch):
    from spinexr.cli import main
    from spinexr.models.pack import load_pack
    from spinexr.models.spine_crops import WindowTriage

    sha = _vertebra_pack(tmp_path / "runs" / "vertebrae" / "pack", monkeypatch)
    for split, n, seed in (("train", 16, 0), ("test", 6, 1)):
        assert main(["phantom", "--n", str(n), "--seed", str(seed), "--out",
                     str(tmp_path / "data"), "--split", split, "--size", "320", "256",
                     "--quiet"]) == 0
    doc = {"name": "w", "task": "classify",
           "data": {"root": "data", "format": "vindr",
                    "splits": {"train": "train", "test": "test"}},
           "model": {"head": "binary", "input": {"size": 32},
                     "windows": {"pack": "part:vertebrae", "negatives": 2},
                     "members": [{"key": "a", "arch": "test_resnet"}]},
           "train": _TRAIN, "card": {"synthetic": True}}
    cfg = tmp_path / "r.yaml"
    cfg.write_text(yaml.safe_dump(doc))
    out = tmp_path / "runs" / "triage"
    assert main(["train", str(cfg), "--out", str(out)]) == 0
    pack = load_pack(out / "pack")
    assert pack.manifest.ensemble.windows.detector == "vertebra_detector"
    assert pack.model_spec("vertebra_detector").sha256 == sha   # copied into the pack
    assert isinstance(pack.triage(), WindowTriage)
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["oof"]["n"] == 16 and metrics["test"]["n"] == 6   # image level, not windows
    with np.load(out / "oof.npz") as z:
        assert z["a.logits"].shape == (16, 1)


@pytest.mark.slow
def test_window_grader_recipe_end_to_end(tmp_path, monkeypatch):
    from spinexr.cli import main
    from spinexr.models.pack import load_pack
    from spinexr.models.spine_crops import WindowGrader

    _vertebra_pack(tmp_path / "runs" / "vertebrae" / "pack", monkeypatch)
    for split, n, seed in (("train", 16, 0), ("test", 6, 1)):
        assert main(["phantom", "--n", str(n), "--seed", str(seed), "--out",
                     str(tmp_path / "data"), "--split", split, "--size", "320", "256",
                     "--layout", "coco", "--abnormal-rate", "0.8", "--quiet"]) == 0
    doc = {"name": "g", "task": "classify",
           "data": {"root": "data", "format": "coco", "target": "grades.degeneration",
                    "splits": {"train": "train", "test": "test"}},
           "model": {"head": "ordinal",
                     "labels": ["healthy", "doubtful", "minimal", "moderate", "severe"],
                     "input": {"size": 32},
                     "windows": {"pack": "part:vertebrae", "negatives": 2,
                                 "lesions": ["Osteophytes", "Disc space narrowing"]},
                     "members": [{"key": "degeneration", "arch": "test_resnet"}]},
           "train": {**_TRAIN, "loss": {"name": "coral"}}, "card": {"synthetic": True}}
    cfg = tmp_path / "g.yaml"
    cfg.write_text(yaml.safe_dump(doc))
    out = tmp_path / "runs" / "degeneration"
    assert main(["train", str(cfg), "--out", str(out)]) == 0
    pack = load_pack(out / "pack")
    assert pack.manifest.ensemble is None
    assert pack.model_spec("degeneration").windows.detector == "vertebra_detector"
    grader = pack.grader("degeneration")
    assert isinstance(grader, WindowGrader) and grader.head == "ordinal"
    probs = grader.predict_proba([np.full((320, 256), 0.5, np.float32)])
    assert probs.shape == (1, 5) and np.isclose(probs.sum(), 1.0)
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["oof"]["n"] == 16 and metrics["test"]["n"] == 6
    assert {"qwk", "balanced_accuracy", "mae"} <= set(metrics["test"])
    with np.load(out / "oof.npz") as z:
        assert z["degeneration.logits"].shape == (16, 4)   # pooled: one row per image

    # a grader recipe without `lesions` cannot label its windows
    doc["model"]["windows"].pop("lesions")
    cfg.write_text(yaml.safe_dump(doc))
    assert main(["train", str(cfg), "--out", str(tmp_path / "runs" / "bad")]) == 2
