"""int8 models: the detector head stays float, calibration inputs are the ones the models
receive, the record points the runtime at the int8 files, refusals name the fix."""
from __future__ import annotations

import json
import shutil

import numpy as np
import onnx
import pytest

from spinexr.errors import ConfigError
from spinexr.models.onnx_quantize import (add_int8, detect_tail, quantize_int8,
                                          record_inputs)
from spinexr.models.onnx_runtime import OrtModel, read_export_record
from spinexr.models.pack import load_pack, sha256_file


def test_the_detect_heads_decoding_stays_float(exported):
    root, paths = exported
    tail = set(detect_tail(paths["det"]))
    graph = onnx.load(str(paths["det"])).graph
    by_name = {n.name: n for n in graph.node}
    last = next(n for n in graph.node if "output0" in n.output)     # the final concat
    assert last.name in tail
    assert {"Softmax", "Sigmoid", "Concat", "Conv"} <= {by_name[n].op_type for n in tail}
    # the raw head convolutions (6: box and class branch at 3 strides) and the DFL conv
    assert sum(by_name[n].op_type == "Conv" for n in tail) == 7
    assert len(tail) < len(graph.node) // 5       # the backbone and neck are quantised
    assert detect_tail(paths["clf"]) == []


@pytest.fixture
def calibrated(exported, tmp_path):
    """A copy of the exported tiny pack, both models called on 6 seeded images through
    their recorders: (root, recorders, images)."""
    root = tmp_path / "pack"
    shutil.copytree(exported[0], root)
    pack = load_pack(root)
    recorders = record_inputs(pack, ["clf", "det"])
    rng = np.random.default_rng(0)
    images = [rng.random((70, 60), dtype=np.float32) for _ in range(6)]
    pack.classifier("clf").predict_logits(images)
    pack.detector("det").predict(images)
    return root, recorders, images


def test_recorders_see_the_prepared_batches(calibrated, tiny_onnx_pack):
    _, recorders, _ = calibrated
    clf, det = recorders["clf"], recorders["det"]
    size = tiny_onnx_pack.clf_size
    assert clf.count == 6 and clf.batches[0].shape[1:] == (1, size, size)
    assert det.count == 6 and det.batches[0].shape[1:] == (3, 64, 64)


def test_int8_models_replace_the_fp32_ones_in_the_record(calibrated):
    root, recorders, images = calibrated
    entries = add_int8(root, {k: r.batches for k, r in recorders.items()})
    record = read_export_record(root / "onnx")
    for key in ("clf", "det"):
        entry = record["models"][key]
        assert entries[key] == entry
        assert (entry["file"], entry["fp32_file"], entry["precision"]) == (
            f"{key}.int8.onnx", f"{key}.onnx", "int8")
        assert entry["sha256"] == sha256_file(root / "onnx" / entry["file"])
        assert entry["calibration"]["inputs"] == 6
        assert entry["int8_check"]["correlation"] > 0.9
    assert record["models"]["det"]["calibration"]["float_nodes"] > 0
    pack = load_pack(root)                                  # engine "auto" runs int8 now
    assert pack.classifier("clf").engine.path.name == "clf.int8.onnx"
    assert pack.detector("det").engine.path.name == "det.int8.onnx"
    x = recorders["det"].batches[0]
    fp32 = OrtModel(root / "onnx" / "det.onnx", threads=1)(x)
    int8 = OrtModel(root / "onnx" / "det.int8.onnx", threads=1)(x)
    # class scores survive (a fully quantised head rounds them all to 0)
    assert int8[:, 4:].max() > 0.5 * fp32[:, 4:].max() > 0
    # quantising again starts from the fp32 file, not from the int8 one
    again = add_int8(root, {"clf": recorders["clf"].batches})
    assert again["clf"]["fp32_file"] == "clf.onnx"
    assert json.loads((root / "onnx" / "export.json").read_text())["models"]["clf"][
        "file"] == "clf.int8.onnx"


def test_refusals_name_the_fix(exported, classifier_pack, tmp_path):
    with pytest.raises(ConfigError, match="'nope' is not in the pack"):
        record_inputs(load_pack(exported[0]), ["nope"])
    with pytest.raises(ConfigError, match="no current ONNX export.*spinexr export"):
        record_inputs(load_pack(classifier_pack), ["clf"])
    with pytest.raises(ConfigError, match="no calibration inputs"):
        quantize_int8(exported[1]["clf"], tmp_path / "x.onnx", [])
    with pytest.raises(ConfigError, match="'entropy'"):
        quantize_int8(exported[1]["clf"], tmp_path / "x.onnx", [np.zeros((1, 1, 32, 32))],
                      method="entropy")
