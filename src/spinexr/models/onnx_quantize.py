"""int8 ONNX models: static quantisation calibrated on the inputs a model really receives.

CPUs with AVX-512 VNNI (or AVX-VNNI, AMX) run ONNX Runtime's int8 convolutions 1.3-3.9x faster
than fp32 at batch 1 (docs/scaling.md). :func:`add_int8` replaces chosen models of a pack's
ONNX export by QDQ models (int8 weights per output channel, uint8 activations with ranges from
calibration inputs) and records them in ``onnx/export.json``: ``file`` names the int8 model,
``precision`` says ``int8``, ``fp32_file`` keeps the float export beside it, ``calibration``
and ``int8_check`` say how it was made and how far it is from fp32 on those inputs. From then
on engine ``"auto"`` runs the int8 model, as it runs any current export.

Calibration inputs are what the model is called with while the analyzer processes real images
(:class:`InputRecorder` around each model's engine: the triage members see their vertebra
windows, the detectors their letterboxed canvases), not synthetic tensors. Which models keep
their accuracy is measured, not assumed: quantise, then ``spinexr evaluate`` both packs; on the
committed packs the triage members and the gate's vertebra detector stayed within
|delta AUROC| <= 0.005 and |delta mAP| <= 0.01, the lesion detector did not.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from spinexr.errors import ConfigError
from spinexr.models.onnx_runtime import EXPORT_DIR, EXPORT_RECORD, OrtModel, read_export_record
from spinexr.models.pack import sha256_file

#: Calibration methods of the activation ranges (onnxruntime ``CalibrationMethod`` names).
METHODS = {"minmax": "MinMax", "percentile": "Percentile"}


class InputRecorder:
    """Wraps a model's engine (an ``OrtModel``): records a copy of every batch, then calls it."""

    def __init__(self, engine) -> None:
        self.engine = engine
        self.batches: list[np.ndarray] = []

    def __call__(self, x: np.ndarray) -> np.ndarray:
        self.batches.append(np.array(x, dtype=np.float32))
        return self.engine(x)

    @property
    def count(self) -> int:
        return sum(len(b) for b in self.batches)


def record_inputs(pack, keys: Sequence[str]) -> dict[str, InputRecorder]:
    """Put an :class:`InputRecorder` around the ONNX engine of each model ``key`` of ``pack``
    (the cached CPU models the pack hands out, so an analyzer built from this pack afterwards
    calls through them). Raises :class:`ConfigError` for an unknown key or a model that does
    not run on ONNX Runtime (no current export)."""
    out = {}
    for key in keys:
        if key not in pack.manifest.models:
            raise ConfigError(f"model {key!r} is not in the pack (has "
                              f"{sorted(pack.manifest.models)})", "--int8")
        kind = pack.model_spec(key).kind
        model = pack.classifier(key) if kind == "classifier" else pack.detector(key)
        if not isinstance(model.engine, OrtModel):
            raise ConfigError(f"model {key!r} has no current ONNX export to quantise; run "
                              "spinexr export first", str(pack.root))
        model.engine = out[key] = InputRecorder(model.engine)
    return out


def detect_tail(path: Path | str) -> list[str]:
    """Names of the nodes of a YOLO ``Detect`` head's decoding, to keep in float.

    The head's last convolutions (raw box and class logits: no activation follows them) and
    every node after them (DFL softmax, box decoding, class sigmoid, the final concat). One
    uint8 scale for an output holding pixel coordinates (0-640) and probabilities (0-1) rounds
    every probability to 0: quantised whole, a detector finds nothing. ``[]`` for graphs
    without ultralytics' ``model.<i>.`` weights (classifiers).
    """
    import onnx

    graph = onnx.load(str(path)).graph
    modules = [int(part[1]) for part in (i.name.split(".") for i in graph.initializer)
               if len(part) > 2 and part[0] == "model" and part[1].isdigit()]
    if not modules:
        return []
    head = f"model.{max(modules)}."
    consumers: dict[str, list] = {}
    for node in graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)
    raw = [n for n in graph.node if n.op_type == "Conv" and len(n.input) > 1
           and n.input[1].startswith(head)
           and not any(c.op_type == "Sigmoid" for c in consumers.get(n.output[0], []))]
    tail, todo = {n.name for n in raw}, [o for n in raw for o in n.output]
    while todo:
        for node in consumers.get(todo.pop(), []):
            if node.name not in tail:
                tail.add(node.name)
                todo += list(node.output)
    return sorted(tail)


class _Reader:
    """``quantize_static``'s calibration reader: one input at a time."""

    def __init__(self, name: str, batches: Sequence[np.ndarray]) -> None:
        self.name = name
        self.items = iter([b[i:i + 1] for b in batches for i in range(len(b))])

    def get_next(self) -> dict[str, np.ndarray] | None:
        x = next(self.items, None)
        return None if x is None else {self.name: x}


def quantize_int8(src: Path | str, dst: Path | str, batches: Sequence[np.ndarray], *,
                  method: str = "minmax") -> None:
    """Write a QDQ int8 model of the fp32 ONNX ``src`` to ``dst``, calibrated on ``batches``
    (float32 (N, C, S, S) inputs as the model receives them)."""
    from onnxruntime.quantization import (CalibrationMethod, QuantFormat, QuantType,
                                          quantize_static)
    from onnxruntime.quantization.shape_inference import quant_pre_process

    if method not in METHODS:
        raise ConfigError(f"calibration method {method!r}; use one of {sorted(METHODS)}",
                          "method")
    if not batches:
        raise ConfigError("no calibration inputs were recorded: the calibration images never "
                          "reached this model (refused by the gate?)", str(src))
    src, dst = Path(src), Path(dst)
    pre = dst.with_name(dst.stem + ".pre.onnx")
    try:
        quant_pre_process(str(src), str(pre), skip_symbolic_shape=True)
        name = OrtModel(src, threads=1).input_name
        quantize_static(str(pre), str(dst), _Reader(name, batches),
                        quant_format=QuantFormat.QDQ, per_channel=True,
                        activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                        nodes_to_exclude=detect_tail(pre),
                        calibrate_method=getattr(CalibrationMethod, METHODS[method]))
    finally:
        pre.unlink(missing_ok=True)


def int8_check(fp32: Path, int8: Path, batches: Sequence[np.ndarray],
               limit: int = 16) -> dict[str, Any]:
    """How far the int8 model is from fp32 on up to ``limit`` of the calibration inputs."""
    x = np.concatenate(batches)[:limit]
    a, b = OrtModel(fp32, threads=1)(x), OrtModel(int8, threads=1)(x)
    scale = max(1.0, float(np.abs(a).max()))
    return {"inputs": int(len(x)), "max_abs_diff": float(np.abs(a - b).max()),
            "max_rel_diff": float(np.abs(a - b).max() / scale),
            "correlation": float(np.corrcoef(a.ravel(), b.ravel())[0, 1])}


def add_int8(pack_root: Path | str, recorded: Mapping[str, Sequence[np.ndarray]], *,
             method: str = "minmax") -> dict[str, dict[str, Any]]:
    """Quantise the recorded models of the pack at ``pack_root`` (its ``onnx/`` export) and
    point ``onnx/export.json`` at the int8 files; returns each model's updated entry."""
    folder = Path(pack_root) / EXPORT_DIR
    record = read_export_record(folder)
    if record is None:
        raise ConfigError(f"no ONNX export record in {folder}; run spinexr export first",
                          str(folder))
    done = {}
    for key, batches in recorded.items():
        entry = record["models"][key]
        fp32 = folder / str(entry.get("fp32_file", entry["file"]))
        dst = folder / f"{key}.int8.onnx"
        quantize_int8(fp32, dst, batches, method=method)
        entry.update(file=dst.name, fp32_file=fp32.name, sha256=sha256_file(dst),
                     bytes=dst.stat().st_size, precision="int8",
                     calibration={"inputs": int(sum(len(b) for b in batches)),
                                  "method": method, "format": "QDQ",
                                  "weights": "int8, per output channel",
                                  "activations": "uint8, per tensor",
                                  "float_nodes": len(detect_tail(fp32))},
                     int8_check=int8_check(fp32, dst, batches))
        done[key] = entry
        tmp = folder / (EXPORT_RECORD + ".tmp")
        tmp.write_text(json.dumps(record, indent=2, sort_keys=True) + "\n")
        os.replace(tmp, folder / EXPORT_RECORD)
    return done




def latency_ms(fp32: Path, int8: Path, x: np.ndarray, runs: int = 5) -> tuple[float, float]:
    """Median batch latency (ms) of the fp32 and the int8 model on ``x``, one thread each."""
    from spinexr.models.onnx_export import median_ms   # torch: imported when timed

    a, b = OrtModel(fp32, threads=1), OrtModel(int8, threads=1)
    return median_ms(lambda: a(x), runs), median_ms(lambda: b(x), runs)


__all__ = ["InputRecorder", "METHODS", "add_int8", "detect_tail", "int8_check", "latency_ms",
           "quantize_int8", "record_inputs"]
