"""``spinexr evaluate --task gate`` through spinexr.cli.main: the committed vertebra pack on
phantom spines and plain non-spine images, a scripted gate for exact counts (uncertain and
P(spine) included), and the error paths."""
from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from spinexr.cli import main
from spinexr.phantom import XrayConfig, generate_xray, render_display, xray_to_dicom
from spinexr.types import GATE_OUTCOMES, GateResult, PackInfo

REPO = Path(__file__).resolve().parents[2]
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _png(path: Path, pixels: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray((np.clip(pixels, 0, 1) * 255).astype(np.uint8)).save(path)


def _folders(root: Path) -> Path:
    """spine/: a phantom DICOM and a phantom PNG; other/: blank, gradient, random texture and
    a file that is no image; near/: another texture."""
    (root / "spine").mkdir(parents=True)
    xray_to_dicom(generate_xray(3, XrayConfig(size=(320, 256)))).save_as(
        root / "spine" / "phantom3.dcm", enforce_file_format=True)
    _png(root / "spine" / "phantom4.png", render_display(generate_xray(4, XrayConfig(
        size=(320, 256)))))
    rng = np.random.default_rng(0)
    _png(root / "other" / "blank.png", np.zeros((128, 128)))
    _png(root / "other" / "gradient.png", np.tile(np.linspace(0, 1, 160), (128, 1)))
    _png(root / "other" / "texture.png", rng.random((128, 160)))
    (root / "other" / "notes.png").write_bytes(b"not an image")
    _png(root / "near" / "texture.png", rng.random((160, 128)))
    return root


def _read_csv(path: Path) -> list[dict]:
    with path.open(newline="") as f:
        return list(csv.DictReader(f))


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("SPINEXR_CACHE", str(tmp_path / "cache"))


def test_vertebra_pack_gate_on_phantoms_and_plain_images(tmp_path, cache, capsys):
    data, out = _folders(tmp_path / "data"), tmp_path / "out"
    code = main(["evaluate", "--task", "gate", str(data), "--pack",
                 str(REPO / "models" / "vertebrae"), "--out", str(out), "--batch", "3"])
    assert code == 0
    m = json.loads((out / "metrics.json").read_text())
    assert (m["n"], m["n_spine"], m["n_other"], m["n_near"]) == (7, 2, 5, 1)
    c = m["confusion"]
    assert sum(c[o][lab] for o in GATE_OUTCOMES for lab in ("spine", "other")) == m["n"]
    through = c["accepted"]["spine"] + c["uncertain"]["spine"]
    assert m["sensitivity"] == pytest.approx(through / m["n_spine"])
    assert m["specificity"] == pytest.approx(c["refused"]["other"] / m["n_other"])
    assert set(m["per_view"]) == {"spine", "other", "near"}
    assert m["cost"]["read_s"]["n"] == 7 and m["cost"]["gate_s"]["n"] == 6  # one unreadable

    rows = {r["file"]: r for r in _read_csv(out / "gate.csv")}
    assert len(rows) == 7 and rows["near/texture.png"]["near_case"] == "true"
    broken = rows["other/notes.png"]
    assert broken["outcome"] == "refused" and "not a PNG, JPEG or TIFF" in broken["reason"]
    assert "contrast" in rows["other/blank.png"]["reason"]      # the image checks refuse it
    missed = _read_csv(out / "misclassified.csv")
    assert len(missed) == (c["refused"]["spine"] + c["accepted"]["other"]
                           + c["uncertain"]["other"])
    assert all((r["label"] == "spine") == (r["outcome"] == "refused") for r in missed)

    printed = capsys.readouterr().out
    assert "sensitivity" in printed and "specificity" in printed and "cost per image" in printed
    assert not [p for p in out.iterdir() if p.name.startswith(".")]   # no temp files left


class _ScriptedAnalyzer:
    """The gate verdict written in each file's stem: ``<outcome>_<p x 100>_<anything>``."""

    info = PackInfo("scripted", "0", True)
    gate_thresholds = {"refuse below": 0.3, "accept from": 0.7}
    calls: list[int] = []

    def decode_side(self) -> int:
        return 256

    def gate(self, images):
        self.calls.append(len(images))
        out = []
        for im in images:
            outcome, p, _ = Path(im.source.path).stem.split("_", 2)
            out.append(GateResult(outcome != "refused", outcome, {"stem": outcome},
                                  uncertain=outcome == "uncertain", p_spine=int(p) / 100))
        return out


def _manifest_set(root: Path) -> Path:
    rng = np.random.default_rng(1)
    entries = [("spine/accepted_90_a.png", "spine", "AP whole spine", None),
               ("spine/uncertain_60_b.png", "positive", "lumbar lateral", None),
               ("spine/refused_20_c.png", "spine", "cervical AP", None),
               ("other/refused_10_d.png", "other", "chest PA", None),
               ("other/uncertain_50_e.png", "negative", "pelvis AP", None),          # near: view
               ("other/accepted_80_f.png", "other", "hand PA", True),                # near: key
               ("other/refused_30_g.png", "other", "lateral cephalogram", False)]     # key wins
    for file, *_ in entries:
        _png(root / file, rng.random((64, 64)))
    rows = [{"file": f, "label": lab, "view": v, **({} if n is None else {"near_case": n})}
            for f, lab, v, n in entries]
    (root / "manifest.json").write_text(json.dumps(rows))
    return root


def test_scripted_gate_gives_hand_counted_metrics(tmp_path, monkeypatch, capsys):
    import spinexr.cli.evaluate_gate as cmd

    monkeypatch.setattr(cmd, "_analyzer", lambda args: _ScriptedAnalyzer())
    data, out = _manifest_set(tmp_path / "data"), tmp_path / "out"
    split = tmp_path / "split.json"
    split.write_text(json.dumps({"test": [r["file"] for r in json.loads(
        (data / "manifest.json").read_text())], "train": ["other/unlisted.png"]}))
    _ScriptedAnalyzer.calls = []
    assert main(["evaluate", "--task", "gate", "--data", str(data), "--out", str(out),
                 "--split-file", str(split), "--split", "test", "--batch", "4"]) == 0
    assert _ScriptedAnalyzer.calls == [4, 3]
    m = json.loads((out / "metrics.json").read_text())
    assert m["confusion"] == {"accepted": {"spine": 1, "other": 1},
                              "uncertain": {"spine": 1, "other": 1},
                              "refused": {"spine": 1, "other": 2}}
    assert m["sensitivity"] == pytest.approx(2 / 3) and m["sensitivity_strict"] == pytest.approx(
        1 / 3)
    assert m["specificity"] == pytest.approx(2 / 4)
    # near: the pelvis (uncertain) and the hand flagged by its key (accepted): 1 of 2
    assert m["n_near"] == 2 and m["near_refused_or_uncertain"] == pytest.approx(1 / 2)
    # spine 0.9, 0.6, 0.2 vs other 0.1, 0.5, 0.8, 0.3: pairs won 4 + 3 + 1 = 8 of 12
    assert m["auroc_p_spine"] == pytest.approx(8 / 12)
    assert m["thresholds"] == _ScriptedAnalyzer.gate_thresholds
    assert m["data"]["split"] == "test" and m["data"]["split_file_unmatched"] == 1
    assert m["plots"] == ["p_spine.png"]
    assert (out / "p_spine.png").read_bytes()[:8] == PNG_MAGIC
    missed = {r["file"]: r for r in _read_csv(out / "misclassified.csv")}
    assert set(missed) == {"spine/refused_20_c.png", "other/uncertain_50_e.png",
                           "other/accepted_80_f.png"}
    assert missed["other/accepted_80_f.png"]["p_spine"] == "0.8"
    printed = capsys.readouterr().out
    assert "0.667 (95% CI 0.208-0.939)" in printed                    # Wilson, 2 of 3
    assert "uncertain" + 7 * " " + "1" + 6 * " " + "1" in printed     # the confusion row


def test_missing_data_folder_is_one_error_line(tmp_path, capsys):
    missing = tmp_path / "nowhere"
    code = main(["evaluate", "--task", "gate", str(missing), "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1
    assert err[0] == f"error: {missing}: dataset directory not found"
    assert not (tmp_path / "out").exists()


def test_unknown_layout_and_bad_manifest_are_refused(tmp_path, capsys):
    (tmp_path / "data").mkdir()
    args = ["evaluate", "--task", "gate", str(tmp_path / "data"), "--out", str(tmp_path / "o")]
    assert main(args) == 2
    assert "no manifest.json, manifest.csv" in capsys.readouterr().err
    (tmp_path / "data" / "manifest.json").write_text(json.dumps([{"file": "x.png",
                                                                  "label": "maybe"}]))
    assert main(args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "label 'maybe'" in err[0] and "x.png not found" in err[0]


def test_models_task_still_needs_a_pack_and_gate_flags_stay_with_the_gate(tmp_path, capsys):
    base = ["evaluate", str(tmp_path), "--out", str(tmp_path / "o")]
    assert main(base) == 2
    assert "--pack DIR is required" in capsys.readouterr().err
    assert main([*base, "--pack", str(tmp_path), "--split-file", "s.json"]) == 2
    assert "--split-file applies to --task gate only" in capsys.readouterr().err
    assert main([*base, "--data", str(tmp_path / "other")]) == 2
    assert "differ" in capsys.readouterr().err


@pytest.mark.slow
def test_real_gate_set_with_the_vertebra_pack(tmp_path, cache):
    """The real dev set of ../shared/data/radiographs: counts from its manifest, and the
    files spinexr analyze refused are the ones listed as misclassified spine."""
    import os

    shared = Path(os.environ.get("SPINEXR_SHARED", REPO.parent / "shared"))
    data = shared / "data" / "radiographs"
    if not (data / "manifest.json").is_file():
        pytest.skip(f"real gate set not found at {data}")
    out = tmp_path / "out"
    assert main(["evaluate", "--task", "gate", str(data), "--pack",
                 str(REPO / "models" / "vertebrae"), "--out", str(out)]) == 0
    m = json.loads((out / "metrics.json").read_text())
    assert (m["n"], m["n_spine"], m["n_other"], m["n_near"]) == (133, 13, 120, 5)
    assert m["data"]["layout"] == "manifest.json" and m["cost"]["read_s"]["n"] == 133
    rows = _read_csv(out / "gate.csv")
    missed = _read_csv(out / "misclassified.csv")
    assert [r["file"] for r in missed] == [
        r["file"] for r in rows if (r["label"] == "spine") == (r["outcome"] == "refused")]
