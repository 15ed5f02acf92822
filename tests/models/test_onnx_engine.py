"""ONNX export of a pack and the ONNX Runtime engine: agreement with torch, engine choice."""
from __future__ import annotations

import json
import logging
import shutil

import numpy as np
import pytest
import torch

from spinexr.errors import ConfigError
from spinexr.models import onnx_engine
from spinexr.models.classifier import Preprocess, create_classifier
from spinexr.models.onnx_engine import (OnnxEngineError, OnnxExportError, OrtModel, export_pack,
                                        select_engine)
from spinexr.models.pack import load_pack, sha256_file, save_pack, save_weights

TINY = "test_efficientnet"  # timm's own 99k-parameter test model
CLF_SIZE, DET_SIZE = 32, 64


def _classifier_spec(root, seed=0):
    torch.manual_seed(seed)
    model = create_classifier(TINY, 2, head="binary")
    sha = save_weights(model.state_dict(), root / "clf.safetensors")
    return {"kind": "classifier", "arch": TINY, "head": "binary", "labels": ["normal", "abnormal"],
            "input": Preprocess(CLF_SIZE).to_dict(), "weights": "clf.safetensors",
            "dtype": "float16", "sha256": sha}


def _detector_spec(root):
    from spinexr.models.yolo import build_detection_model

    torch.manual_seed(0)
    model = build_detection_model("yolo11n", ["Vertebra"])
    sha = save_weights(model.state_dict(), root / "det.safetensors")
    return {"kind": "detector", "arch": "yolo11n", "labels": ["Vertebra"],
            "input": {"size": DET_SIZE, "channels": 3}, "weights": "det.safetensors",
            "dtype": "float16", "sha256": sha}


def _save(root, models):
    save_pack(root, {"name": "tiny", "version": "0.1.0", "synthetic": True, "models": models,
                     "ensemble": {"members": ["clf"], "weights": {"clf": 1.0},
                                  "operating_points": {"youden": 0.5}}})
    return root


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """A pack with a tiny classifier and a YOLO11n detector, exported once for the module."""
    root = tmp_path_factory.mktemp("pack")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SPINEXR_CACHE", str(tmp_path_factory.mktemp("cache")))
        _save(root, {"clf": _classifier_spec(root), "det": _detector_spec(root)})
        paths = export_pack(root)
        yield root, paths


@pytest.fixture
def classifier_pack(tmp_path):
    """A pack with the classifier only, not exported."""
    return _save(tmp_path / "pack", {"clf": _classifier_spec(tmp_path / "pack")})


def _images(n, seed=1):
    rng = np.random.default_rng(seed)
    return [rng.random((40 + 7 * i, 30 + 5 * i), dtype=np.float32) for i in range(n)]


def test_export_writes_one_file_per_model_and_the_record(exported):
    root, paths = exported
    assert paths == {"clf": root / "onnx" / "clf.onnx", "det": root / "onnx" / "det.onnx"}
    assert sorted(p.name for p in (root / "onnx").iterdir()) == ["clf.onnx", "det.onnx",
                                                                 "export.json"]
    record = json.loads((root / "onnx" / "export.json").read_text())
    import onnxruntime

    from spinexr import __version__

    assert record["spinexr_version"] == __version__
    assert record["onnxruntime_version"] == onnxruntime.__version__
    manifest = json.loads((root / "pack.json").read_text())
    for key, path in paths.items():
        entry = record["models"][key]
        assert entry["sha256"] == sha256_file(path)
        assert entry["weights_sha256"] == manifest["models"][key]["sha256"]
        assert entry["check"]["passed"] and entry["check"]["max_abs_diff"] < 1e-3
    assert record["models"]["det"]["check"]["nms"]["max_box_diff_px"] <= 1.0
    # dynamic batch, fixed spatial size = the model's input size
    assert OrtModel(paths["clf"], threads=1).input_shape == (None, 1, CLF_SIZE, CLF_SIZE)
    assert OrtModel(paths["det"], threads=1).input_shape == (None, 3, DET_SIZE, DET_SIZE)


@pytest.mark.parametrize("n", [1, 5])
def test_ort_logits_match_torch_for_any_batch(exported, n):
    root, paths = exported
    clf = load_pack(root).classifier("clf", engine="torch")
    batch = torch.randn((n, 1, CLF_SIZE, CLF_SIZE), generator=torch.Generator().manual_seed(n))
    np.testing.assert_allclose(OrtModel(paths["clf"], threads=1)(batch.numpy()),
                               clf.logits_from_batch(batch), atol=1e-4, rtol=0)


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


def test_changed_weights_make_the_export_stale(exported, tmp_path, caplog):
    root = shutil.copytree(exported[0], tmp_path / "pack")
    manifest = json.loads((root / "pack.json").read_text())
    manifest["models"]["clf"] = _classifier_spec(root, seed=1)  # retrained after the export
    _save(root, manifest["models"])
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


def test_a_failed_check_names_the_model_and_keeps_no_file(classifier_pack, monkeypatch):
    run = OrtModel.__call__
    monkeypatch.setattr(OrtModel, "__call__", lambda self, x: run(self, x) + 0.5)
    with pytest.raises(OnnxExportError, match=r"model 'clf'.*max \|logit difference\| 0\.5"):
        export_pack(classifier_pack)
    assert not (classifier_pack / "onnx" / "clf.onnx").exists()
    assert onnx_engine.read_export_record(classifier_pack / "onnx") is None


class _FixedModel:
    """Stands in for a detector's torch model and for its ORT session: fixed predictions."""

    device = torch.device("cpu")

    def __init__(self, preds):
        self.preds = torch.as_tensor(preds, dtype=torch.float32)

    def model(self, x):
        return self.preds.expand(len(x), -1, -1), None

    def __call__(self, x):
        return self.preds.expand(len(x), -1, -1).numpy()


def _two_anchors(first, second, shift=0.0):
    """Two overlapping boxes (xywh, IoU 2/3 > 0.6): NMS keeps only the higher scored one."""
    return [[[20.0 + shift, 24.0], [20.0, 20.0], [20.0, 20.0], [20.0, 20.0], [first, second]]]


def test_nms_ties_broken_the_other_way_pass_and_are_recorded():
    torch_side = _FixedModel(_two_anchors(0.5 + 1e-7, 0.5))
    ort_side = _FixedModel(_two_anchors(0.5, 0.5 + 1e-7))  # keeps the box 4 px to the right
    check = onnx_engine._check_detector(torch_side, ort_side, 64)
    assert check["passed"] and check["nms"]["ties_broken"]
    assert check["nms"]["boxes_per_image"] == [1, 1, 1]
    assert check["nms"]["max_box_diff_px"] == pytest.approx(0.0)


def test_nms_check_fails_on_moved_boxes():
    check = onnx_engine._check_detector(_FixedModel(_two_anchors(0.9, 0.1)),
                                        _FixedModel(_two_anchors(0.9, 0.1, shift=3.0)), 64)
    assert not check["passed"] and not check["nms"]["ties_broken"]
    assert "raw boxes differ by 3 px" in check["failure"]
    assert "worst match 3.0 px" in check["failure"]


def test_denormals_are_flushed_inside_and_restored_after_inference(exported):
    tiny = np.array([1e-40], np.float32)
    assert (tiny * np.float32(1))[0] > 0  # IEEE subnormals (hypothesis, for one, needs them)
    with onnx_engine.flush_denormals():
        assert (tiny * np.float32(1))[0] == 0
    pack = load_pack(exported[0])
    image = np.random.default_rng(0).random((50, 40), dtype=np.float32)
    for engine in ("onnx", "torch"):
        pack.classifier("clf", engine=engine).predict_logits([image])
        pack.detector("det", engine=engine).predict([image])
        assert (tiny * np.float32(1))[0] > 0, engine
