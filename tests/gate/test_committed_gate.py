"""The committed gate (models/vertebrae) re-measured on its fixed test sets through
``spinexr evaluate --task gate``: the radiographs test split (real spine and non-spine images,
never used to fit anything) and the vertebra test split (141 real spine films). The figures
recorded when the gate was trained (pack.json ``gate_report``) must come back."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from spinexr.cli import main
from spinexr.models import load_pack

REPO = Path(__file__).resolve().parents[2]
PACK = REPO / "models" / "vertebrae"
#: Files whose P(spine) sits within float noise of a threshold may flip between the training
#: run and this one (fp16 weights either way; JPEG 2000 decoded to the analyzer's resolution).
SLACK = 1


def _recorded(source: str) -> dict[str, dict]:
    report = load_pack(PACK).manifest.raw["gate_report"]["test"]
    return {k.split("/")[0]: v for k, v in report.items() if k.endswith("/" + source)}


def _run(tmp_path: Path, *args: str) -> dict:
    out = tmp_path / "eval"
    assert main(["evaluate", "--task", "gate", *args, "--pack", str(PACK), "--out",
                 str(out), "--batch", "8"]) == 0
    return json.loads((out / "metrics.json").read_text())


def _through(counts: dict) -> int:
    return counts["accepted"] + counts["uncertain"]


@pytest.mark.slow
def test_gate_reproduces_its_radiographs_test_split(radiographs_dir, tmp_path):
    recorded = _recorded("radiographs")
    got = _run(tmp_path, str(radiographs_dir), "--split-file", str(PACK / "gate_splits.json"),
               "--split", "test")
    conf = got["confusion"]
    # the CLI also counts files the reader refuses (colour photos, CT, MR): refused, never
    # let through; training measured the readable ones
    assert got["n_spine"] == recorded["spine"]["n"]
    assert got["n_other"] >= recorded["other"]["n"]
    spine_through = conf["accepted"]["spine"] + conf["uncertain"]["spine"]
    other_through = conf["accepted"]["other"] + conf["uncertain"]["other"]
    assert abs(spine_through - _through(recorded["spine"])) <= SLACK
    assert abs(other_through - _through(recorded["other"])) <= SLACK


@pytest.mark.slow
def test_gate_reproduces_its_vertebra_test_split(vertebrae_dir, tmp_path):
    recorded = _recorded("vertebrae")["spine"]
    got = _run(tmp_path, str(vertebrae_dir / "test"))
    assert got["n_spine"] == recorded["n"] == 141
    through = got["confusion"]["accepted"]["spine"] + got["confusion"]["uncertain"]["spine"]
    assert abs(through - _through(recorded)) <= SLACK


def test_the_gate_is_fitted_and_its_test_figures_are_recorded():
    manifest = load_pack(PACK).manifest
    gate = manifest.gate
    assert 0.0 < gate["uncertain"] <= gate["accept"] < 1.0
    assert manifest.models[gate["classifier"]].input.raw["contrast"] == "equalize"
    assert manifest.models[gate["detector"]].input.preprocess == "equalize"
    assert manifest.metrics["gate_test"]["n_other"] > 0
    assert (PACK / "gate_splits.json").is_file()
