"""Replacing a pack keeps the replaced pack's figures in the card's history table."""
from __future__ import annotations

import json
from datetime import date

import pytest
import torch

from spinexr.cli import main
from spinexr.evaluate.curves import CurvePoint, LearningCurve
from spinexr.models.card import HistoryEntry, headline
from spinexr.models.pack import ModelPackError, load_pack, save_pack, save_weights
from spinexr.models.replace import replace_pack

CURVE = LearningCurve(monitor="auroc", mode="max", unit="images", best_epochs=(2,),
                      last_epochs=(2,), planned_epochs=5, source="fold0/metrics.csv",
                      points=(CurvePoint(1, 10, 0.9, {"auroc": 0.6, "val_loss": 0.8}),
                              CurvePoint(2, 20, 0.7, {"auroc": 0.7, "val_loss": 0.6})))


def _pack(root, version: str, auroc: float, *, weights: str = "m.safetensors", card=None):
    sha = save_weights({"w": torch.full((2,), auroc)}, root / weights)
    save_pack(root, {
        "name": "demo", "version": version, "card": dict(card or {}),
        "models": {"m": {"kind": "classifier", "arch": "toy", "head": "binary",
                         "weights": weights, "sha256": sha, "labels": ["a", "b"],
                         "input": {"size": 8}}},
        "metrics": {"triage/test": {"auroc": auroc, "n": 200},
                    "triage/oof": {"auroc": auroc - 0.1},
                    "lesions/val": {"map50": 0.3, "map50_95": 0.1}}})
    return root


def _history(root) -> list[HistoryEntry]:
    return [HistoryEntry.from_json(h) for h in load_pack(root).manifest.card["history"]]


def test_replacing_keeps_the_old_figures_newest_first(tmp_path):
    dest = tmp_path / "models" / "demo"
    replace_pack(_pack(tmp_path / "v1", "1.0.0", 0.70), dest, today=date(2026, 1, 5),
                 note="first")
    assert load_pack(dest).manifest.card["history"] == []
    assert load_pack(dest).manifest.card["date"] == "2026-01-05"
    replace_pack(_pack(tmp_path / "v2", "1.1.0", 0.75), dest, today=date(2026, 2, 5))
    replace_pack(_pack(tmp_path / "v3", "1.2.0", 0.80), dest, today=date(2026, 3, 5),
                 note="windows")
    history = _history(dest)
    assert [(h.version, h.date, h.note) for h in history] == [
        ("1.1.0", "2026-02-05", ""), ("1.0.0", "2026-01-05", "first")]
    assert history[1].metrics["triage/test"] == {"auroc": 0.70, "n": 200.0}
    pack = load_pack(dest)
    assert (pack.version, pack.manifest.card["note"]) == ("1.2.0", "windows")
    torch.testing.assert_close(pack.state_dict("m")["w"], torch.full((2,), 0.80), atol=1e-3,
                               rtol=0)


def test_the_card_shows_both_tables(tmp_path):
    dest = tmp_path / "demo"
    replace_pack(_pack(tmp_path / "v1", "1.0.0", 0.70), dest, today=date(2026, 1, 5))
    src = _pack(tmp_path / "v2", "1.1.0", 0.75,
                card={"learning_curves": {"m": CURVE.to_dict()}})
    replace_pack(src, dest, today=date(2026, 2, 5), note="retrained | longer")
    card = (dest / "README.md").read_text()
    assert "## Learning curves" in card and "## History" in card
    assert "| 2 | 20 | 0.7 | 0.6 | 0.7 | **best**, early stop (of 5 planned) |" in card
    lines = card.splitlines()
    top = lines.index("| version | installed | lesions | triage | note |")
    assert lines[top + 2] == ("| 1.1.0 (this pack) | 2026-02-05 | map50 0.300 (val) | "
                              "auroc 0.750 (test) | retrained / longer |")
    assert lines[top + 3] == "| 1.0.0 | 2026-01-05 | map50 0.300 (val) | auroc 0.700 (test) |  |"


def test_old_weights_go_other_files_stay_and_same_weights_are_refused(tmp_path):
    dest = _pack(tmp_path / "demo", "1.0.0", 0.70, weights="old.safetensors")
    (dest / "evaluation").mkdir()
    (dest / "evaluation" / "metrics.json").write_text("{}")
    replace_pack(_pack(tmp_path / "v2", "1.1.0", 0.75), dest, previous_date="2025-12-02")
    assert not (dest / "old.safetensors").exists() and (dest / "m.safetensors").is_file()
    assert (dest / "evaluation" / "metrics.json").is_file()
    assert _history(dest)[0].date == "2025-12-02"          # the old card had no date
    with pytest.raises(ModelPackError, match="already holds these weights"):
        replace_pack(tmp_path / "v2", dest)
    with pytest.raises(ModelPackError, match="same folder"):
        replace_pack(dest, dest)


def test_free_text_history_of_older_cards_is_kept(tmp_path):
    dest = _pack(tmp_path / "vertebrae", "2.0.0", 0.9,
                 card={"history": ["1.0.0: real set alone, test mAP@0.5 0.937."]})
    replace_pack(_pack(tmp_path / "v3", "3.0.0", 0.95), dest)
    history = _history(dest)
    assert [h.version for h in history] == ["2.0.0", ""]
    assert history[1].note == "1.0.0: real set alone, test mAP@0.5 0.937."
    assert "| 1.0.0: real set alone, test mAP@0.5 0.937. |" in (dest / "README.md").read_text()


def test_headline_prefers_test_then_val_then_oof_per_part():
    assert headline({"triage/oof": {"auroc": 0.6}, "triage/test": {"n": 3, "auroc": 0.7},
                     "gate_val": {"sensitivity": 1.0}, "val": {"map50_95": 0.4, "map50": 0.8},
                     "degeneration/oof": {"accuracy": 0.3, "qwk": 0.2}}) == {
        "triage": ("test", "auroc", 0.7), "gate": ("val", "sensitivity", 1.0),
        "": ("val", "map50", 0.8), "degeneration": ("oof", "qwk", 0.2)}


def test_cli_replace(tmp_path, capsys):
    dest = tmp_path / "demo"
    assert main(["pack", "replace", str(_pack(tmp_path / "v1", "1.0.0", 0.7)), str(dest)]) == 0
    assert main(["pack", "replace", str(_pack(tmp_path / "v2", "1.1.0", 0.8)), str(dest),
                 "--note", "retrained"]) == 0
    assert "first row of its history" in capsys.readouterr().out
    doc = json.loads((dest / "pack.json").read_text())
    assert doc["card"]["note"] == "retrained"
    assert [h["version"] for h in doc["card"]["history"]] == ["1.0.0"]
    assert doc["card"]["history"][0]["date"] == date.today().isoformat()
    assert main(["pack", "replace", str(tmp_path / "missing"), str(dest)]) == 2
    assert "no pack.json" in capsys.readouterr().err
