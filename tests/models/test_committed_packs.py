"""Every committed model pack is re-evaluated on its fixed test set: a silent regression fails CI.

The recorded metric in ``models/<name>/pack.json`` was measured by the training command written
in its model card; here the committed (fp16) weights are run again through the one inference
path and must reproduce it.
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
    assert not pack.synthetic and "CC BY 4.0" in pack.manifest["card"]["licence"]
    test = pack.manifest["test_set"]
    samples = load_dataset(vertebrae_dir, test["format"], split=test["split"]).samples
    assert len(samples) == 141
    got = evaluate_detector(pack.detector("vertebra_detector"), samples, test["class_map"])
    recorded = pack.manifest["metrics"]["test"]
    assert got["n_images"] == recorded["n_images"] == 141
    assert got["map50"] == pytest.approx(recorded["map50"], abs=TOLERANCE)
    assert got["map50_95"] == pytest.approx(recorded["map50_95"], abs=TOLERANCE)


def test_committed_weights_stay_under_60_mb():
    """Everything under models/ but the git-ignored ONNX exports (``spinexr export`` output)."""
    total = sum(p.stat().st_size for p in (REPO / "models").rglob("*")
                if p.is_file() and "onnx" not in p.relative_to(REPO / "models").parts)
    assert total < 60 * 1024 * 1024, f"models/ holds {total / 2**20:.1f} MB"


def _demo_part(part: str, tmp_path: Path):
    """The demo pack, one part's recipe, and that part's fixed phantom test set regenerated
    from the recipe's seed (the training and validation sets are not written)."""
    from spinexr.train.config import load_config, materialize_data

    pack = load_pack(REPO / "models" / "demo")
    assert pack.synthetic and "not for clinical use" in pack.manifest["card"]["intended_use"]
    cfg = load_config(REPO / "configs" / "demo" / f"{part}.yaml")
    return pack, materialize_data(cfg, tmp_path / part, only=("test",))


@pytest.mark.slow
@pytest.mark.parametrize("part, key", [("vertebrae", "vertebra_detector"),
                                       ("lesions", "lesion_detector")])
def test_demo_detectors_reproduce_their_test_map(part, key, tmp_path, monkeypatch):
    monkeypatch.setenv("SPINEXR_CACHE", str(tmp_path / "cache"))
    from spinexr.train.detector import _load_splits, evaluate_detector

    pack, cfg = _demo_part(part, tmp_path)
    if part not in pack.manifest.get("parts", {}):
        pytest.fail(f"models/demo has no '{part}' part")
    cfg = replace(cfg, data=replace(cfg.data, splits={"test": cfg.data.splits["test"]}))
    samples = _load_splits(cfg)[0]["test"]
    got = evaluate_detector(pack.detector(key), samples, cfg.data.class_map)
    recorded = pack.manifest["metrics"][f"{part}/test"]
    assert got["n_images"] == recorded["n_images"]
    assert got["map50"] == pytest.approx(recorded["map50"], abs=TOLERANCE)
    assert got["map50_95"] == pytest.approx(recorded["map50_95"], abs=TOLERANCE)


@pytest.mark.slow
def test_demo_triage_reproduces_its_test_auroc(tmp_path, monkeypatch):
    monkeypatch.setenv("SPINEXR_CACHE", str(tmp_path / "cache"))
    from spinexr.train.classify import evaluate_test_once, parse_recipe

    pack, cfg = _demo_part("triage", tmp_path)
    got = evaluate_test_once(pack, cfg, parse_recipe(cfg))
    recorded = pack.manifest["metrics"]["triage/test"]
    assert got["n"] == recorded["n"] and got["n_positive"] == recorded["n_positive"]
    assert got["auroc"] == pytest.approx(recorded["auroc"], abs=TOLERANCE)
    for op in pack.manifest["ensemble"]["operating_points"]:
        assert got[op]["sensitivity"] == pytest.approx(recorded[f"{op}.sensitivity"],
                                                       abs=TOLERANCE)
