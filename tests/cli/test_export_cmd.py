"""``spinexr export`` called through spinexr.cli.main: files, export.json, the printed line."""
from __future__ import annotations

import json
import re

import torch

from spinexr.cli import main
from spinexr.models.classifier import Preprocess, create_classifier
from spinexr.models.pack import load_pack, save_pack, save_weights


def _pack(root):
    torch.manual_seed(0)
    model = create_classifier("test_efficientnet", 2, head="binary")
    sha = save_weights(model.state_dict(), root / "clf.safetensors")
    save_pack(root, {"name": "tiny", "version": "0.2.0", "models": {"clf": {
        "kind": "classifier", "arch": "test_efficientnet", "head": "binary",
        "labels": ["normal", "abnormal"], "input": Preprocess(32).to_dict(),
        "weights": "clf.safetensors", "dtype": "float16", "sha256": sha}}})
    return root


def test_export_writes_the_files_and_prints_diff_and_latency(tmp_path, capsys):
    root = _pack(tmp_path / "pack")
    assert main(["export", "--pack", str(root), "--format", "onnx", "--runs", "2",
                 "--threads", "1"]) == 0
    out, err = capsys.readouterr()
    assert err == ""
    record = json.loads((root / "onnx" / "export.json").read_text())
    assert record["pack"] == {"name": "tiny", "version": "0.2.0"}
    assert record["models"]["clf"]["check"]["passed"]
    line = next(x for x in out.splitlines() if x.strip().startswith("clf:"))
    size = (root / "onnx" / "clf.onnx").stat().st_size / 1e6
    assert f"clf.onnx  {size:.1f} MB" in line
    diff = float(re.search(r"max abs diff (\S+)", line).group(1))
    assert 0 <= diff < 1e-3
    assert re.search(r"batch 1: torch [\d.]+ ms, onnxruntime [\d.]+ ms \([\d.]+x, 1 thread\)", line)
    assert load_pack(root).classifier("clf").backend == "onnxruntime"


def test_out_elsewhere_is_not_used_automatically(tmp_path, capsys):
    root = _pack(tmp_path / "pack")
    assert main(["export", "--pack", str(root), "--out", str(tmp_path / "elsewhere"),
                 "--runs", "0"]) == 0
    out = capsys.readouterr().out
    assert (tmp_path / "elsewhere" / "clf.onnx").is_file()
    assert (tmp_path / "elsewhere" / "export.json").is_file()
    assert "batch 1" not in out and "note: inference uses" in out
    assert load_pack(root).classifier("clf").backend == "torch"


def test_a_missing_pack_is_one_error_line(tmp_path, capsys):
    assert main(["export", "--pack", str(tmp_path / "nope"), "--format", "onnx"]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err.count("\n") == 1 and err.startswith("error: ") and "no pack.json" in err


def test_int8_needs_calibration_images_and_the_packs_own_folder(tmp_path, capsys):
    root = _pack(tmp_path / "pack")
    assert main(["export", "--pack", str(root), "--int8", "clf"]) == 2
    assert "--int8 needs --calibration images" in capsys.readouterr().err
    assert main(["export", "--pack", str(root), "--int8", "clf", "--calibration", "x.png",
                 "--out", str(tmp_path / "elsewhere")]) == 2
    assert "leave --out out" in capsys.readouterr().err


def test_int8_lesion_detector_calibrated_on_analysed_phantoms(tmp_path, tiny_pack, capsys):
    from spinexr.phantom import XrayConfig, generate_xray, xray_to_dicom

    for seed in (1, 2):
        xray_to_dicom(generate_xray(seed, XrayConfig(size=(256, 200)))).save_as(
            tmp_path / f"{seed}.dcm", enforce_file_format=True)
    assert main(["export", "--pack", str(tiny_pack), "--int8", "lesions", "--calibration",
                 str(tmp_path / "*.dcm"), "--runs", "1", "--threads", "1"]) == 0
    out = capsys.readouterr().out
    assert re.search(r"int8 models calibrated on 2 image\(s\)", out)
    assert re.search(r"lesions: lesions\.int8\.onnx .* 2 calibration inputs .* int8 "
                     r"[\d.]+ ms", out)
    pack = load_pack(tiny_pack)
    assert pack.detector("lesions").engine.path.name == "lesions.int8.onnx"
    entry = json.loads((tiny_pack / "onnx" / "export.json").read_text())["models"]["lesions"]
    assert entry["precision"] == "int8" and entry["fp32_file"] == "lesions.onnx"
