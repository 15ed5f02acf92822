"""``spinexr evaluate`` of the committed demo pack on MR phantoms (the VinDr MRI layout): the
end-to-end stenosis block instead of the radiograph blocks."""
from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from spinexr.cli import main

MODELS = Path(__file__).resolve().parents[2] / "models"


def test_demo_pack_grades_stenosis_on_mr_phantoms(tmp_path, capsys):
    data, out = tmp_path / "mri", tmp_path / "out"
    assert main(["phantom", "--task", "mri", "--layout", "vindr", "--n", "6", "--seed", "31",
                 "--split", "test", "--out", str(data), "--quiet"]) == 0
    assert main(["evaluate", "--pack", str(MODELS / "demo"), "--vertebrae",
                 str(MODELS / "vertebrae"), "--data", str(data), "--out", str(out),
                 "--n-boot", "20", "--decode-workers", "0"]) == 0
    m = json.loads((out / "metrics.json").read_text())
    e2e = m["end_to_end"]
    assert e2e["modality"] == {"radiograph": 0, "mri": 6} and e2e["gate"]["n"] == 6
    assert e2e["triage"] is None and e2e["lesions"] is None and e2e["grades"] == {}
    assert "triage: not measured on MR slices" in e2e["notes"]
    st = e2e["stenosis"]
    assert st["n_slices"] == 6 and st["n_truth"] == 30        # five regions per slice
    assert st["n_matched"] + st["n_missed"] == st["n_truth"]
    assert st["n_predicted"] == st["n_matched"] + st["n_extra"]
    assert math.isfinite(st["qwk"]) and -1 <= st["qwk"] <= 1
    assert sum(map(sum, st["confusion"])) == st["n_matched"]
    assert sum(r["n_truth"] for r in st["per_region"].values()) == st["n_truth"]
    # each model alone: the region detector on the region boxes; no triage on MR slices
    assert "stenosis_region_detector" in m["detection"] and m["triage"] is None
    assert "stenosis_confusion.png" in m["plots"]
    assert (out / "stenosis_confusion.png").stat().st_size > 0
    assert "stenosis (6 MR slices): qwk" in capsys.readouterr().out


@pytest.mark.slow
def test_a_mixed_set_scores_each_block_on_its_own_images(tmp_path):
    """Radiographs (split train) and MR slices (split val) in one VinDr root, no test split:
    every image is evaluated; triage counts the radiographs, stenosis the MR slices."""
    data, out = tmp_path / "mixed", tmp_path / "out"
    assert main(["phantom", "--n", "2", "--seed", "3", "--split", "train", "--size", "640",
                 "480", "--out", str(data), "--quiet"]) == 0
    assert main(["phantom", "--task", "mri", "--layout", "vindr", "--n", "2", "--seed", "31",
                 "--split", "val", "--out", str(data), "--quiet"]) == 0
    assert main(["evaluate", "--pack", str(MODELS / "demo"), "--vertebrae",
                 str(MODELS / "vertebrae"), "--data", str(data), "--out", str(out),
                 "--n-boot", "0", "--decode-workers", "0"]) == 0
    e2e = json.loads((out / "metrics.json").read_text())["end_to_end"]
    assert e2e["modality"] == {"radiograph": 2, "mri": 2} and e2e["gate"]["n"] == 4
    assert e2e["triage"]["n"] + e2e["triage"]["excluded_unlabelled"] == 2
    assert e2e["stenosis"]["n_slices"] == 2 and e2e["stenosis"]["n_truth"] == 10
    # the class list mixes lesions and regions: no detector's labels cover it
    assert any(n.startswith("lesions: not measured, dataset classes") for n in e2e["notes"])
