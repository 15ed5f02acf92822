"""The ONNX Runtime engine: which engine a model runs on, agreement with torch, denormals."""
from __future__ import annotations

import json
import logging
import shutil

import numpy as np
import pytest
import torch

from spinexr.errors import ConfigError
from spinexr.models.onnx_runtime import (OnnxEngineError, OrtModel, flush_denormals,
                                         select_engine)
from spinexr.models.pack import load_pack


def _images(n, seed=1):
    rng = np.random.default_rng(seed)
    return [rng.random((40 + 7 * i, 30 + 5 * i), dtype=np.float32) for i in range(n)]


def test_ort_model_refuses_a_wrong_input_shape(exported):
    _, paths = exported
    with pytest.raises(ConfigError, match=r"takes \('N', 1, 32, 32\)"):
        OrtModel(paths["clf"], threads=1)(np.zeros((1, 1, 16, 16), np.float32))


def test_auto_runs_a_current_export_on_onnxruntime(exported):
    root, _ = exported
    pack = load_pack(root)
    clf, ref = pack.classifier("clf"), pack.classifier("clf", engine="torch")
    assert (clf.backend, ref.backend) == ("onnxruntime", "torch")
    assert isinstance(clf.model, torch.nn.Module)  # explanations still get a torch module
    images = _images(3)
    np.testing.assert_allclose(clf.predict_logits(images), ref.predict_logits(images),
                               atol=1e-4, rtol=0)
    assert pack.triage().members["clf"].backend == "onnxruntime"
    assert pack.triage(engine="torch").members["clf"].backend == "torch"
    assert pack.classifier("clf") is clf  # built once, session reused


def test_detector_on_onnxruntime_returns_the_torch_boxes(exported):
    root, _ = exported
    pack = load_pack(root)
    det, ref = pack.detector("det", engine="onnx"), pack.detector("det", engine="torch")
    assert det.backend == "onnxruntime"
    image = np.random.default_rng(3).random((90, 70), dtype=np.float32)
    got, want = det.predict([image], conf=0.0)[0], ref.predict([image], conf=0.0)[0]
    assert len(want) > 0 and len(got) == len(want)
    key = lambda b: (b.x1, b.y1)  # noqa: E731
    for a, b in zip(sorted(got, key=key), sorted(want, key=key)):
        np.testing.assert_allclose([a.x1, a.y1, a.x2, a.y2], [b.x1, b.y1, b.x2, b.y2], atol=1.0)
        assert a.label == b.label and a.score == pytest.approx(b.score, abs=1e-4)


def test_changed_weights_make_the_export_stale(exported, tiny_onnx_pack, tmp_path, caplog):
    root = shutil.copytree(exported[0], tmp_path / "pack")
    models = json.loads((root / "pack.json").read_text())["models"]
    models["clf"] = tiny_onnx_pack.classifier_spec(root, seed=1)  # retrained after the export
    tiny_onnx_pack.save(root, models)
    pack = load_pack(root)
    with caplog.at_level(logging.WARNING, logger="spinexr.models.onnx"):
        assert pack.classifier("clf").backend == "torch"
    assert "stale" in caplog.text and "spinexr export" in caplog.text
    assert pack.detector("det").backend == "onnxruntime"  # its weights did not change
    with pytest.raises(OnnxEngineError, match=r"stale.*`spinexr export --pack .* --format onnx`"):
        pack.classifier("clf", engine="onnx")


def test_onnx_without_an_export_names_the_command(classifier_pack):
    pack = load_pack(classifier_pack)
    with pytest.raises(OnnxEngineError, match=r"no ONNX export for model 'clf'.*spinexr export"):
        pack.classifier("clf", engine="onnx")
    assert pack.classifier("clf").backend == "torch"  # auto falls back


def test_a_replaced_onnx_file_is_not_used(exported, tmp_path):
    root = shutil.copytree(exported[0], tmp_path / "pack")
    (root / "onnx" / "clf.onnx").write_bytes(b"not onnx")
    assert load_pack(root).classifier("clf").backend == "torch"


def test_engine_names_and_devices_are_checked(exported):
    pack = load_pack(exported[0])
    with pytest.raises(ConfigError, match="engine 'tensorrt' is not one of"):
        select_engine(pack, "clf", "tensorrt")
    with pytest.raises(ConfigError, match="runs ONNX Runtime on the CPU"):
        select_engine(pack, "clf", "onnx", "cuda:0")
    assert select_engine(pack, "clf", "auto", "cuda:0") is None  # torch on CUDA


def test_denormals_are_flushed_inside_and_restored_after_inference(exported):
    tiny = np.array([1e-40], np.float32)
    assert (tiny * np.float32(1))[0] > 0  # IEEE subnormals (hypothesis, for one, needs them)
    with flush_denormals():
        assert (tiny * np.float32(1))[0] == 0
    pack = load_pack(exported[0])
    image = np.random.default_rng(0).random((50, 40), dtype=np.float32)
    for engine in ("onnx", "torch"):
        pack.classifier("clf", engine=engine).predict_logits([image])
        pack.detector("det", engine=engine).predict([image])
        assert (tiny * np.float32(1))[0] > 0, engine
