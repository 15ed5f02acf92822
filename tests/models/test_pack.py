"""Model packs: save, load, verify; clear errors for missing or corrupt files."""
from __future__ import annotations

import json

import pytest
import torch

from spinexr.models.pack import ModelPackError, load_pack, save_pack, save_weights


def _pack(tmp_path, fp16=True):
    state = {"w": torch.linspace(-1, 1, 12).reshape(3, 4), "steps": torch.tensor([7])}
    sha = save_weights(state, tmp_path / "m.safetensors", fp16=fp16)
    manifest = {"name": "toy", "version": "0.1.0", "synthetic": True,
                "card": {"intended_use": "tests", "command": "pytest"},
                "models": {"m": {"kind": "classifier", "arch": "toy", "weights": "m.safetensors",
                                 "dtype": "float16" if fp16 else "float32", "sha256": sha,
                                 "head": "binary", "labels": ["normal", "abnormal"],
                                 "input": {"size": 8}}},
                "metrics": {"test": {"auroc": 0.5}}}
    save_pack(tmp_path, manifest)
    return state


def test_round_trip_keeps_weights_within_fp16_precision(tmp_path):
    state = _pack(tmp_path)
    pack = load_pack(tmp_path)
    assert (pack.name, pack.version, pack.synthetic) == ("toy", "0.1.0", True)
    loaded = pack.state_dict("m")
    torch.testing.assert_close(loaded["w"], state["w"], atol=1e-3, rtol=1e-3)
    assert loaded["steps"].item() == 7
    card = (tmp_path / "README.md").read_text()
    assert "synthetic" in card.lower() and "Not for clinical use" in card


def test_missing_manifest_is_named(tmp_path):
    with pytest.raises(ModelPackError, match="no pack.json"):
        load_pack(tmp_path)


def test_missing_weights_file_is_named(tmp_path):
    _pack(tmp_path)
    (tmp_path / "m.safetensors").unlink()
    with pytest.raises(ModelPackError, match=r"m\.safetensors.*weights file missing"):
        load_pack(tmp_path)


def test_corrupt_weights_fail_the_checksum(tmp_path):
    _pack(tmp_path)
    path = tmp_path / "m.safetensors"
    data = bytearray(path.read_bytes())
    data[-1] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(ModelPackError, match="sha256 mismatch"):
        load_pack(tmp_path)


def test_unknown_format_version_is_refused(tmp_path):
    _pack(tmp_path)
    manifest = json.loads((tmp_path / "pack.json").read_text())
    manifest["format_version"] = 99
    (tmp_path / "pack.json").write_text(json.dumps(manifest))
    with pytest.raises(ModelPackError, match="version 99"):
        load_pack(tmp_path)


def test_unknown_model_key_lists_the_known_ones(tmp_path):
    _pack(tmp_path)
    with pytest.raises(ModelPackError, match=r"no model 'x' \(has \['m'\]\)"):
        load_pack(tmp_path).model_spec("x")


def test_weights_of_another_architecture_are_refused_by_name(tmp_path):
    _pack(tmp_path)
    manifest = json.loads((tmp_path / "pack.json").read_text())
    manifest["models"]["m"].update(arch="resnet10t", head="binary", input={"size": 32})
    (tmp_path / "pack.json").write_text(json.dumps(manifest))
    with pytest.raises(ModelPackError, match=r"m\.safetensors: weights do not fit resnet10t"):
        load_pack(tmp_path).classifier("m", engine="torch")


def test_card_says_how_each_grader_runs():
    from spinexr.models.pack import render_card

    card = render_card({"name": "p", "version": "1", "models": {
        "cervical": {"kind": "classifier", "arch": "lcnet_035", "input": {"size": 96},
                     "labels": ["normal", "fracture"], "part": "cervical",
                     "windows": {"detector": "vertebra_detector"}, "regions": ["cervical"]},
        "plain": {"kind": "classifier", "arch": "resnet18", "input": {"size": 64}}}})
    line = next(x for x in card.splitlines() if x.startswith("- `cervical`"))
    assert "run on vertebra windows found by `vertebra_detector`" in line
    assert "for cervical studies only" in line and "part `cervical`" in line
    plain = next(x for x in card.splitlines() if x.startswith("- `plain`"))
    assert "windows" not in plain and "studies only" not in plain
