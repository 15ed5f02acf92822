"""Recording measured figures in a pack: ``headline_figures`` flattens an end_to_end block,
``record_metrics`` / ``spinexr pack record`` keep them with their command, weights untouched."""
from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import pytest

from spinexr.cli import main
from spinexr.evaluate.end_to_end import headline_figures
from spinexr.models.manifest import ModelPackError
from spinexr.models.pack import load_pack
from spinexr.models.replace import record_metrics

DEMO = Path(__file__).resolve().parents[2] / "models" / "demo"
BLOCK = {"gate": {"n": 3, "accepted": 2}, "settings": {"gating": "vindr", "lesion_conf": 0.25},
         "notes": ["x"], "timing_s": {"analysis": 9.0},
         "triage": {"auroc": 0.9, "auroc_ci": [0.8, 1.0], "threshold": 0.5, "tp": 2,
                    "ppv": float("nan"), "operating_point": "youden"},
         "lesions": {"map50": 0.4, "class_map": {"a": "a"},
                     "per_class": {"Osteophytes": {"ap50": 0.3, "n_true": 4},
                                   "Other lesions": {"ap50": None, "n_true": 0}}},
         "grades": {"degeneration": {"qwk": 0.7, "confusion": [[1]], "n_graded": 2,
                                     "flag": True}}}


def test_headline_figures_keep_numbers_and_drop_settings_notes_and_intervals():
    assert headline_figures(BLOCK) == {
        "gate.n": 3.0, "gate.accepted": 2.0, "triage.auroc": 0.9, "triage.tp": 2.0,
        "lesions.map50": 0.4, "lesions.per_class.Osteophytes.ap50": 0.3,
        "lesions.per_class.Osteophytes.n_true": 4.0,
        "lesions.per_class.Other lesions.n_true": 0.0,
        "grades.degeneration.qwk": 0.7, "grades.degeneration.n_graded": 2.0}


def _copy(tmp_path) -> Path:
    if not (DEMO / "pack.json").is_file():
        pytest.skip("the committed demo pack models/demo is missing")
    return Path(shutil.copytree(DEMO, tmp_path / "demo",
                                ignore=shutil.ignore_patterns("evaluation", "onnx")))


def test_record_metrics_stores_and_replaces_a_named_set_and_keeps_the_weights(tmp_path):
    root = _copy(tmp_path)
    before = {k: s.sha256 for k, s in load_pack(root).manifest.models.items()}
    record_metrics(root, "aims/x", {"b": 1, "a": 0.5}, command="make it")
    record_metrics(root, "aims/y", {"c": 2.0}, command="other")
    record_metrics(root, "aims/x", {"a": 0.25}, command="again")
    pack = load_pack(root)                                     # still verifies
    assert pack.manifest.metrics["aims/x"] == {"a": 0.25}
    assert pack.manifest.metrics["aims/y"] == {"c": 2.0}
    measured = pack.manifest.card["measured"]
    assert (measured["aims/x"], measured["aims/y"]) == ("again", "other")
    assert {k: s.sha256 for k, s in pack.manifest.models.items()} == before
    with pytest.raises(ModelPackError, match="no figures"):
        record_metrics(root, "aims/z", {}, command="nothing")


def test_pack_record_cli_takes_the_end_to_end_block_of_the_same_pack_only(tmp_path, capsys):
    root = _copy(tmp_path)
    pack = load_pack(root)
    metrics = tmp_path / "metrics.json"
    metrics.write_text(json.dumps({"pack": {"name": pack.name, "version": pack.version},
                                   "end_to_end": BLOCK}))
    assert main(["pack", "record", str(root), str(metrics), "--as", "aims/t",
                 "--command", "spinexr evaluate ..."]) == 0
    assert "10 figures of demo recorded as aims/t" in capsys.readouterr().out
    assert math.isclose(load_pack(root).manifest.metrics["aims/t"]["triage.auroc"], 0.9)
    other = tmp_path / "other.json"
    other.write_text(json.dumps({"pack": {"name": "elsewhere", "version": "9"},
                                 "end_to_end": BLOCK}))
    assert main(["pack", "record", str(root), str(other), "--as", "aims/u",
                 "--command", "c"]) == 2
    err = capsys.readouterr().err
    assert "of pack 'elsewhere'" in err and len(err.strip().splitlines()) == 1
    bare = tmp_path / "bare.json"
    bare.write_text(json.dumps({"pack": {"name": pack.name, "version": pack.version}}))
    assert main(["pack", "record", str(root), str(bare), "--as", "aims/v", "--command", "c"]) == 2
    assert "no end_to_end block" in capsys.readouterr().err
    assert "aims/u" not in load_pack(root).manifest.metrics


def test_the_card_shows_each_measured_set_with_its_command_rates_and_aims(tmp_path):
    root = _copy(tmp_path)
    record_metrics(root, "aims/x", {"triage.auroc": 0.91, "triage.tp": 7.0,
                                    "lesions.per_class.Osteophytes.ap50": 0.6},
                   command="spinexr phantom --seed 1 && spinexr evaluate")
    doc = json.loads((root / "pack.json").read_text())
    doc["card"]["aims"] = {"aims/x": {"triage.auroc": 0.95, "grades.cervical.qwk": 0.9}}
    from spinexr.models.pack import save_pack

    save_pack(root, doc)
    card = (root / "README.md").read_text()
    section = card.split("## Measured as a user gets it")[1]
    assert "spinexr phantom --seed 1 && spinexr evaluate" in section
    assert "| triage.auroc | 0.910 | >= 0.95 (not met) |" in section
    assert "| lesions.per_class.Osteophytes.ap50 | 0.600 |  |" in section
    assert "triage.tp" not in section                      # counts stay in pack.json
    assert "| grades.cervical.qwk | not measured | >= 0.9 |" in section
    assert "- aims/x:" not in card                          # not repeated in the plain list
