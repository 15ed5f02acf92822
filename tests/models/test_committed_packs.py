"""Every committed model pack is re-evaluated on its fixed test set: a silent regression fails CI.

The recorded metric in ``models/<name>/pack.json`` was measured by the training command written
in its model card; here the committed (fp16) weights are run again through the one inference
path and must reproduce it.
"""
from __future__ import annotations

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
    total = sum(p.stat().st_size for p in (REPO / "models").rglob("*") if p.is_file())
    assert total < 60 * 1024 * 1024, f"models/ holds {total / 2**20:.1f} MB"
