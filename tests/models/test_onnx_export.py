"""ONNX export of a pack: one checked file per model, the record, failures named."""
from __future__ import annotations

import json

import numpy as np
import onnxruntime
import pytest
import torch

from spinexr import __version__
from spinexr.models import onnx_export
from spinexr.models.onnx_export import OnnxExportError, export_pack
from spinexr.models.onnx_runtime import OrtModel, read_export_record
from spinexr.models.pack import load_pack, sha256_file


def test_export_writes_one_file_per_model_and_the_record(exported, tiny_onnx_pack):
    root, paths = exported
    assert paths == {"clf": root / "onnx" / "clf.onnx", "det": root / "onnx" / "det.onnx"}
    assert sorted(p.name for p in (root / "onnx").iterdir()) == ["clf.onnx", "det.onnx",
                                                                 "export.json"]
    record = json.loads((root / "onnx" / "export.json").read_text())
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
    size = tiny_onnx_pack.clf_size
    assert OrtModel(paths["clf"], threads=1).input_shape == (None, 1, size, size)
    size = tiny_onnx_pack.det_size
    assert OrtModel(paths["det"], threads=1).input_shape == (None, 3, size, size)


@pytest.mark.parametrize("n", [1, 5])
def test_ort_logits_match_torch_for_any_batch(exported, tiny_onnx_pack, n):
    root, paths = exported
    clf = load_pack(root).classifier("clf", engine="torch")
    size = tiny_onnx_pack.clf_size
    batch = torch.randn((n, 1, size, size), generator=torch.Generator().manual_seed(n))
    np.testing.assert_allclose(OrtModel(paths["clf"], threads=1)(batch.numpy()),
                               clf.logits_from_batch(batch), atol=1e-4, rtol=0)


def test_a_failed_check_names_the_model_and_keeps_no_file(classifier_pack, monkeypatch):
    run = OrtModel.__call__
    monkeypatch.setattr(OrtModel, "__call__", lambda self, x: run(self, x) + 0.5)
    with pytest.raises(OnnxExportError, match=r"model 'clf'.*max \|logit difference\| 0\.5"):
        export_pack(classifier_pack)
    assert not (classifier_pack / "onnx" / "clf.onnx").exists()
    assert read_export_record(classifier_pack / "onnx") is None


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
    check = onnx_export._check_detector(torch_side, ort_side, 64)
    assert check["passed"] and check["nms"]["ties_broken"]
    assert check["nms"]["boxes_per_image"] == [1, 1, 1]
    assert check["nms"]["max_box_diff_px"] == pytest.approx(0.0)


def test_nms_check_fails_on_moved_boxes():
    check = onnx_export._check_detector(_FixedModel(_two_anchors(0.9, 0.1)),
                                        _FixedModel(_two_anchors(0.9, 0.1, shift=3.0)), 64)
    assert not check["passed"] and not check["nms"]["ties_broken"]
    assert "raw boxes differ by 3 px" in check["failure"]
    assert "worst match 3.0 px" in check["failure"]
