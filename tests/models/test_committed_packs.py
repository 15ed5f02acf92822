"""Every committed model pack is re-evaluated on its fixed test set: a silent regression fails CI.

The metrics recorded in ``models/<name>/pack.json`` were measured per model by the training
command written in its model card: each network alone, on every test image, at the metric's own
score threshold. The per-model tests here run the committed (fp16) weights again through those
same per-model paths and must reproduce them.

What a user gets is measured apart: the whole analyzer (the one inference path: input gate,
triage, lesions after the triage gating and the pack's thresholds, grades) through the
``end_to_end`` block of ``spinexr evaluate``. No end-to-end figure was recorded when training
ended, so that test asserts the per-model figure ``spinexr evaluate`` reports against the
recorded one and checks the end-to-end block for completeness and consistency.
"""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from spinexr.models import load_pack

REPO = Path(__file__).resolve().parents[2]
TOLERANCE = 0.005


@pytest.mark.slow
def test_vertebrae_pack_reproduces_its_test_map(vertebrae_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("SPINEXR_CACHE", str(tmp_path))
    from spinexr.data import load_dataset
    from spinexr.train.detector import evaluate_detector

    pack = load_pack(REPO / "models" / "vertebrae")
    assert not pack.synthetic and "CC BY 4.0" in pack.manifest.card["licence"]
    test = pack.manifest.test_set
    samples = load_dataset(vertebrae_dir, test["format"], split=test["split"]).samples
    assert len(samples) == 141
    got = evaluate_detector(pack.detector("vertebra_detector"), samples, test["class_map"])
    recorded = pack.manifest.metrics["test"]
    assert got["n_images"] == recorded["n_images"] == 141
    assert got["map50"] == pytest.approx(recorded["map50"], abs=TOLERANCE)
    assert got["map50_95"] == pytest.approx(recorded["map50_95"], abs=TOLERANCE)


WEIGHT_SUFFIXES = {".safetensors", ".pt", ".pth", ".onnx", ".bin"}


def test_committed_weights_stay_under_60_mb():
    """Every weights file under models/ but the git-ignored ONNX exports (``spinexr export``
    output), in decimal megabytes; cards, manifests and evaluation plots are not weights."""
    weights = [p for p in (REPO / "models").rglob("*")
               if p.is_file() and p.suffix in WEIGHT_SUFFIXES
               and "onnx" not in p.relative_to(REPO / "models").parts]
    assert any(p.suffix == ".safetensors" for p in weights)
    total = sum(p.stat().st_size for p in weights)
    assert total < 60_000_000, f"models/ holds {total / 1e6:.1f} MB of weights"


@pytest.mark.parametrize("pack", ["vertebrae", "demo"])
def test_committed_packs_carry_their_test_evaluation(pack):
    """``spinexr evaluate`` output on each fixed test set (metrics.json and its plots) agrees
    with the metrics recorded in the pack when training ended."""
    import json

    manifest = load_pack(REPO / "models" / pack).manifest
    runs = sorted((REPO / "models" / pack / "evaluation").glob("**/metrics.json"))
    assert runs, f"models/{pack}/evaluation holds no metrics.json"
    for path in runs:
        doc = json.loads(path.read_text())
        assert doc["data"]["n_images"] > 0 and doc["data"]["split"] == "test", path
        assert list(path.parent.glob("*.png")), f"{path.parent} has no plots"
        part = path.parent.name if pack == "demo" else None
        recorded = manifest.metrics[f"{part}/test" if part else "test"]
        for key, det in doc.get("detection", {}).items():
            if (manifest.models[key].part if key in manifest.models else part) == part:
                assert det["map50"] == pytest.approx(recorded["map50"], abs=TOLERANCE), path
        if doc.get("triage"):
            assert doc["triage"]["auroc"] == pytest.approx(recorded["auroc"], abs=TOLERANCE)
        for key, grades in doc.get("classifiers", {}).items():
            if manifest.models[key].part == part:
                for name in ("accuracy", "balanced_accuracy", "qwk"):
                    assert grades[name] == pytest.approx(recorded[name], abs=TOLERANCE), path


def _demo_part(part: str, tmp_path: Path):
    """The demo pack, one part's recipe, and that part's fixed phantom test set regenerated
    from the recipe's seed (the training and validation sets are not written)."""
    from spinexr.train.compose import load_pack_recipe
    from spinexr.train.config import load_config, materialize_data

    pack = load_pack(REPO / "models" / "demo")
    assert pack.synthetic and "not for clinical use" in pack.manifest.card["intended_use"]
    if part not in pack.manifest.raw.get("parts", {}):
        pytest.fail(f"models/demo has no '{part}' part")
    recipe = load_pack_recipe(REPO / "configs" / "demo-phantom.yaml").parts[part]
    cfg = load_config(recipe)
    return pack, materialize_data(cfg, tmp_path / part, only=("test",))


@pytest.mark.slow
@pytest.mark.parametrize("part, key", [("vertebrae", "vertebra_detector"),
                                       ("lesions", "lesion_detector"),
                                       ("stenosis_regions", "stenosis_region_detector")])
def test_demo_detectors_reproduce_their_test_map(part, key, tmp_path, monkeypatch):
    monkeypatch.setenv("SPINEXR_CACHE", str(tmp_path / "cache"))
    from spinexr.train.detector import _load_splits, evaluate_detector

    pack, cfg = _demo_part(part, tmp_path)
    cfg = replace(cfg, data=replace(cfg.data, splits={"test": cfg.data.splits["test"]}))
    samples = _load_splits(cfg)[0]["test"]
    # as the analyzer runs it: on vertebra windows when the spec says so
    got = evaluate_detector(pack.image_detector(key), samples, cfg.data.class_map)
    recorded = pack.manifest.metrics[f"{part}/test"]
    assert got["n_images"] == recorded["n_images"]
    assert got["map50"] == pytest.approx(recorded["map50"], abs=TOLERANCE)
    assert got["map50_95"] == pytest.approx(recorded["map50_95"], abs=TOLERANCE)


@pytest.mark.slow
def test_demo_triage_reproduces_its_test_auroc(tmp_path, monkeypatch):
    monkeypatch.setenv("SPINEXR_CACHE", str(tmp_path / "cache"))
    from spinexr.train.classify import evaluate_test_once, parse_recipe

    pack, cfg = _demo_part("triage", tmp_path)
    got = evaluate_test_once(pack, cfg, parse_recipe(cfg))
    recorded = pack.manifest.metrics["triage/test"]
    assert got["n"] == recorded["n"] and got["n_positive"] == recorded["n_positive"]
    assert got["auroc"] == pytest.approx(recorded["auroc"], abs=TOLERANCE)
    for op in pack.manifest.ensemble.operating_points:
        assert got[op]["sensitivity"] == pytest.approx(recorded[f"{op}.sensitivity"],
                                                       abs=TOLERANCE)


@pytest.mark.slow
@pytest.mark.parametrize("part", ["degeneration", "cervical", "stenosis_grades"])
def test_demo_graders_reproduce_their_test_metrics(part, tmp_path, monkeypatch):
    """Degeneration and cervical injury run on vertebra windows (the pack's own vertebra
    detector finds them); stenosis grades are measured on region crops."""
    monkeypatch.setenv("SPINEXR_CACHE", str(tmp_path / "cache"))
    from spinexr.train.classify import evaluate_test_once, parse_recipe

    pack, cfg = _demo_part(part, tmp_path)
    got = evaluate_test_once(pack, cfg, parse_recipe(cfg))
    recorded = pack.manifest.metrics[f"{part}/test"]
    assert got["n"] == recorded["n"]
    for name in ("accuracy", "balanced_accuracy", "qwk", "mae"):
        assert got[name] == pytest.approx(recorded[name], abs=TOLERANCE), name


@pytest.mark.slow
def test_demo_pack_end_to_end_on_the_triage_test_set(tmp_path, monkeypatch):
    """``spinexr evaluate`` of models/demo (gate: models/vertebrae, as ``spinexr analyze``) on
    the triage part's fixed test set: 200 JPEG 2000 phantoms with labels and lesion boxes."""
    import json

    from spinexr.cli import main

    monkeypatch.setenv("SPINEXR_CACHE", str(tmp_path / "cache"))
    pack, cfg = _demo_part("triage", tmp_path)
    out = tmp_path / "evaluation"
    assert main(["evaluate", str(cfg.data.root), "--pack", str(REPO / "models" / "demo"),
                 "--vertebrae", str(REPO / "models" / "vertebrae"), "--split", "test",
                 "--out", str(out), "--n-boot", "0"]) == 0
    m = json.loads((out / "metrics.json").read_text())
    recorded = pack.manifest.metrics["triage/test"]
    # each model alone: the recorded figures
    assert m["triage"]["n"] == recorded["n"] == 200
    assert m["auroc"] == pytest.approx(recorded["auroc"], abs=TOLERANCE)
    assert m["operating_point"] == "youden"
    assert m["sensitivity"] == pytest.approx(recorded["youden.sensitivity"], abs=TOLERANCE)
    # end to end: every image accounted for, every count consistent
    e2e = m["end_to_end"]
    gate, triage, lesions = e2e["gate"], e2e["triage"], e2e["lesions"]
    assert gate["n"] == 200 == gate["accepted"] + gate["uncertain"] + gate["refused"]
    assert (triage["n"], triage["n_pos"]) == (200, recorded["n_positive"])
    assert triage["n_analysed"] == 200 - gate["refused"]
    assert triage["refused_abnormal"] + triage["refused_normal"] == gate["refused"]
    assert triage["tp"] + triage["fp"] + triage["tn"] + triage["fn"] == 200
    assert 0 <= triage["auroc"] <= 1 and triage["threshold"] == pytest.approx(
        pack.manifest.ensemble.operating_points["youden"])
    assert lesions["n_images"] == 200 and 0 <= lesions["map50_95"] <= lesions["map50"] <= 1
    assert lesions["class_map"] == m["detection"]["lesion_detector"]["class_map"]
    assert e2e["settings"]["gating"] == "vindr" and e2e["settings"]["gate_verified"]
