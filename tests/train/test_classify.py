"""The classify recipe: parsing, fitting on out-of-fold predictions only, end to end on phantoms."""
from __future__ import annotations

import inspect
import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import yaml

from spinexr.cli import main
from spinexr.errors import ConfigError
from spinexr.train.classify import final_epochs, fit_on_oof, load_oof, parse_recipe
from spinexr.train.config import load_config
from spinexr.train.oof import OutOfFold

TRIAGE = {
    "name": "t", "task": "classify",
    "data": {"root": "data", "format": "vindr", "splits": {"train": "train", "test": "test"}},
    "model": {"head": "binary", "input": {"size": 32},
              "members": [{"key": "a", "arch": "test_efficientnet"},
                          {"key": "b", "arch": "test_resnet", "train": {"lr": 2e-3}}]},
    "train": {"folds": 2, "epochs": 2, "patience": 1, "batch": 8, "lr": 3e-3,
              "progress": False, "tensorboard": False, "threads": 1, "device": "cpu",
              "augment": {"degrees": 3}},
    "card": {"synthetic": True, "intended_use": "tests"},
}


def _config(tmp_path: Path, doc: dict, name: str = "r.yaml"):
    path = tmp_path / name
    path.write_text(yaml.safe_dump(doc))
    return load_config(path)


def _with(doc: dict, section: str, **changes) -> dict:
    return {**doc, section: {**doc[section], **changes}}


def test_recipe_members_inherit_and_override_train_keys(tmp_path):
    recipe = parse_recipe(_config(tmp_path, TRIAGE))
    assert recipe.head == "binary" and recipe.labels == ("normal", "abnormal")
    a, b = recipe.members
    assert (a.train["lr"], b.train["lr"]) == (3e-3, 2e-3)
    assert a.pre.input_size == 32 and recipe.folds == 2
    assert recipe.operating_points == {"high_sensitivity": 0.95}
    assert recipe.regions is None
    assert parse_recipe(_config(tmp_path, _with(TRIAGE, "model", regions="cervical"))
                        ).regions == ("cervical",)


@pytest.mark.parametrize("section, changes, match", [
    ("train", {"epoch": 3}, r"unknown train keys \['epoch'\]"),
    ("train", {"augment": {"vflip": 0.5}}, "vertical flips"),
    ("train", {"loss": {"name": "coral"}}, "does not fit"),
    ("train", {"monitor": "qwk"}, "monitor 'qwk' is not measured for the binary head"),
    ("train", {"final": "average"}, "only 'retrain'"),
    ("model", {"head": "softmax", "labels": ["x", "y", "z"]}, "ensembles are for binary"),
    ("model", {"members": []}, "lists no backbone"),
    ("model", {"regions": ["sacral"]}, r"model.regions \['sacral'\]"),
])
def test_recipe_errors_are_named(tmp_path, section, changes, match):
    with pytest.raises(ConfigError, match=match):
        parse_recipe(_config(tmp_path, _with(TRIAGE, section, **changes)))


def test_classify_recipes_validate_on_folds_not_a_val_split(tmp_path):
    doc = _with(TRIAGE, "data", splits={"train": "train", "val": "val"})
    with pytest.raises(ConfigError, match="validates on k folds"):
        _config(tmp_path, doc)


def test_fitting_sees_out_of_fold_predictions_only():
    # the signature is the guarantee: there is no way to hand test data to the fit
    assert list(inspect.signature(fit_on_oof).parameters) == ["oof", "recipe"]


def test_fit_on_oof_by_construction(tmp_path):
    from spinexr.models.ensemble import (fit_weights, positive_probability, weighted_vote,
                                         youden_threshold)

    recipe = parse_recipe(_config(tmp_path, TRIAGE))
    rng = np.random.default_rng(0)
    y = np.arange(200) % 2
    good = (2.0 * (y - 0.5) + rng.normal(0, 1, 200))[:, None].astype(np.float32)
    poor = rng.normal(0, 1, (200, 1)).astype(np.float32)
    fold = (np.arange(200) // 2) % 2
    oof = {"a": OutOfFold(good, y, fold, (3, 4), (0.8, 0.8)),
           "b": OutOfFold(poor, y, fold, (0, 1), (0.5, 0.5))}
    fitted = fit_on_oof(oof, recipe)
    assert sum(fitted.weights.values()) == pytest.approx(1.0)
    # calibration flattens the uninformative member towards 0.5 (a large temperature), so it
    # barely moves the vote whatever its weight; the vote keeps a's ranking
    assert fitted.temperatures["b"] > 3 * fitted.temperatures["a"]
    assert fitted.metrics["auroc"] >= fitted.metrics["auroc_a"] - 0.01
    uncalibrated = fit_on_oof(oof, replace(recipe, calibrate=False))
    assert uncalibrated.weights["a"] > uncalibrated.weights["b"]
    assert uncalibrated.temperatures == {"a": 1.0, "b": 1.0}
    probs = np.stack([positive_probability(oof[k].logits, "binary", fitted.temperatures[k])
                      for k in "ab"])
    w = fit_weights(probs, y)
    assert fitted.operating_points["youden"] == youden_threshold(weighted_vote(probs, w), y)
    assert fitted.metrics["high_sensitivity"]["sensitivity"] >= 0.95
    assert 0.5 < fitted.metrics["auroc_a_fold_mean"] <= 1.0
    assert final_epochs(oof["a"]) == 4 and final_epochs(oof["b"]) == 2   # mean of 4,5 / 1,2


def _phantoms(root: Path, n: int, seed: int, split: str, *extra: str) -> None:
    assert main(["phantom", "--n", str(n), "--seed", str(seed), "--out", str(root),
                 "--split", split, "--size", "160", "128", "--quiet", *extra]) == 0


@pytest.mark.slow
def test_triage_recipe_end_to_end(tmp_path, capsys):
    from spinexr.models.pack import load_pack

    _phantoms(tmp_path / "data", 16, 0, "train", "--layout", "vindr")
    _phantoms(tmp_path / "data", 6, 1, "test", "--layout", "vindr")
    cfg = tmp_path / "r.yaml"
    cfg.write_text(yaml.safe_dump(TRIAGE))
    out = tmp_path / "run"
    assert main(["train", str(cfg), "--out", str(out)]) == 0
    assert "model pack written" in capsys.readouterr().out
    pack = load_pack(out / "pack")
    ens = pack.manifest.ensemble
    assert ens.members == ("a", "b") and sum(ens.weights.values()) == pytest.approx(1)
    assert set(ens.operating_points) == {"youden", "high_sensitivity"}
    assert pack.model_spec("a").input.size == 32
    # the ensemble is exactly what the saved out-of-fold predictions give
    fitted = fit_on_oof(load_oof(out / "oof.npz"), parse_recipe(load_config(cfg)))
    assert fitted.operating_points == pytest.approx(ens.operating_points)
    assert fitted.weights == pytest.approx(ens.weights)
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["test"]["n"] == 6 and metrics["oof"]["n"] == 16
    assert metrics["test"]["youden"]["threshold"] == ens.operating_points["youden"]
    from spinexr.io import read_radiograph
    from spinexr.data import load_dataset

    sample = load_dataset(tmp_path / "data", "vindr", split="test").samples[0]
    result = pack.triage().predict([read_radiograph(sample.image_path).pixels])
    assert result.probability.shape == (1,) and set(result.per_model) == {"a", "b"}
    # resuming a finished run changes nothing
    sha = pack.model_spec("a").sha256
    assert main(["train", str(cfg), "--out", str(out), "--resume"]) == 0
    assert load_pack(out / "pack").model_spec("a").sha256 == sha


@pytest.mark.slow
def test_grading_recipe_end_to_end(tmp_path):
    from spinexr.models.pack import load_pack

    _phantoms(tmp_path / "data", 16, 0, "train", "--layout", "folders", "--classes",
              "degeneration")
    doc = {**TRIAGE,
           "data": {"root": "data", "format": "folders", "splits": {"train": "train"}},
           "model": {"head": "ordinal", "input": {"size": 32},
                     "regions": ["lumbar", "cervical"],
                     "members": [{"key": "grader", "arch": "test_efficientnet"}]}}
    out = tmp_path / "run"
    cfg = tmp_path / "g.yaml"
    cfg.write_text(yaml.safe_dump(doc))
    assert main(["train", str(cfg), "--out", str(out)]) == 0
    pack = load_pack(out / "pack")
    assert pack.manifest.ensemble is None and pack.manifest.raw["task"] == "grading"
    assert pack.model_spec("grader").regions == ("lumbar", "cervical")
    assert pack.grader("grader") is pack.classifier("grader")   # no windows: whole image
    clf = pack.classifier("grader")
    assert clf.head == "ordinal" and len(clf.labels) == 5 and clf.temperature > 0
    probs = clf.predict_proba([np.zeros((50, 40), np.float32)])
    assert probs.shape == (1, 5) and probs.sum() == pytest.approx(1.0)
    assert {"qwk", "mae", "balanced_accuracy"} <= set(pack.manifest.metrics["oof"])


def _squares(root: Path, n: int) -> None:
    """A class-per-folder set a CNN learns in seconds: a bright square (abnormal) or none."""
    from PIL import Image

    rng = np.random.default_rng(0)
    for i in range(n):
        label = i % 2
        img = rng.random((48, 40)) * 0.4
        if label:
            r, c = rng.integers(4, 30, 2)
            img[r:r + 12, c:c + 8] += 0.6
        folder = root / "train" / ("abnormal" if label else "normal")
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.rint(img * 255).astype(np.uint8)).save(folder / f"img{i:03d}.png")
    (root / "classes.txt").write_text("normal\nabnormal\n")


@pytest.mark.slow
def test_out_of_fold_predictions_line_up_with_their_images(tmp_path):
    """On a learnable set the OOF AUROC is high: logits, folds and labels are aligned."""
    _squares(tmp_path / "sq", 48)
    doc = {**TRIAGE, "data": {"root": "sq", "format": "folders", "splits": {"train": "train"}},
           "model": {"head": "binary", "input": {"size": 32},
                     "members": [{"key": "r", "arch": "resnet10t"}]},
           "train": {**TRIAGE["train"], "epochs": 8, "patience": 8, "folds": 3,
                     "loss": {"name": "ce"},
                     "augment": {"hflip": 0.5, "degrees": 0, "scale": 0, "translate": 0}}}
    cfg = tmp_path / "s.yaml"
    cfg.write_text(yaml.safe_dump(doc))
    assert main(["train", str(cfg), "--out", str(tmp_path / "run")]) == 0
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["oof"]["auroc"] > 0.9


def test_recipe_evaluates_folds_with_the_serving_preprocessing():
    """The fold-validation transform of the recipe applied to cached canvases == prepare()."""
    from spinexr.models.classifier import Preprocess, prepare
    from spinexr.train.classify import _transforms
    from spinexr.train.images import load_images
    from spinexr.types import Sample

    rng = np.random.default_rng(4)
    images = {f"i{k}": rng.random((60 + 7 * k, 45), dtype=np.float32) for k in range(3)}
    samples = [Sample(image_id=k, image_path=Path(k), group=k) for k in images]
    pre = Preprocess(28, mean=0.4, std=0.3, interpolation="bilinear")
    cached = load_images(samples, [0, 1, 0], pre, None, decode=lambda p: images[str(p)],
                         progress=False)
    _, eval_tf = _transforms(pre, None)
    served = prepare(list(images.values()), pre)
    np.testing.assert_allclose(eval_tf(cached.batch([0, 1, 2])).numpy(), served.numpy(),
                               atol=0.5 / 65535 / pre.std + 1e-6)


def test_a_patient_in_train_and_test_is_refused_before_training(tmp_path):
    from spinexr.errors import DatasetError
    from spinexr.train.classify import check_test_groups

    root = tmp_path / "data"
    _phantoms(root, 2, 0, "train", "--layout", "vindr")
    _phantoms(root, 2, 0, "test", "--layout", "vindr")     # same seed: the same studies
    cfg = _config(tmp_path, TRIAGE)
    from spinexr.train.classify import load_role

    with pytest.raises(DatasetError, match="2 patient/study group"):
        check_test_groups(cfg, load_role(cfg, "train")[0])
