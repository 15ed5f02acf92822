"""ONNX export of a model pack, checked against torch, and a latency comparison.

:func:`export_pack` writes one self-contained fp32 ``.onnx`` per model of a pack, with a
dynamic batch axis and the model's fixed input size, into ``<pack>/onnx/``. Each export is
checked on a fixed seeded batch against torch (classifier logits; detector raw predictions
and the boxes after non-maximum suppression) and the numbers go to ``<pack>/onnx/export.json``
together with the sha256 of every ``.onnx`` and of the weights it came from::

    models/<name>/
      pack.json, <model>.safetensors ...
      onnx/
        export.json          format, versions, per model: file, sha256, weights_sha256, check
        <model>.onnx         input (batch, C, S, S) float32 -> first output (batch, ...)

The inference side (reading the record, choosing the engine, running a session) is
:mod:`spinexr.models.onnx_runtime`.
"""
from __future__ import annotations

import copy
import json
import logging
import os
import statistics
import time
import warnings
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator, Mapping

import numpy as np
import torch

from spinexr import __version__
from spinexr.errors import SpinexrError
from spinexr.models.classifier import normalize
from spinexr.models.detector import NMS_NO_TIME_LIMIT
from spinexr.models.onnx_runtime import (EXPORT_DIR, EXPORT_FORMAT, EXPORT_FORMAT_VERSION,
                                         EXPORT_RECORD, OrtModel, flush_denormals,
                                         import_onnxruntime, weights_sha256)
from spinexr.models.pack import ModelPack, load_pack, sha256_file
from spinexr.models.yolo import import_ultralytics

CHECK_BATCH = 3    # not the traced example batch (2): the check proves the batch axis is dynamic
CHECK_RTOL = 1e-3  # max |torch - ORT| <= CHECK_RTOL * max(1, max |torch|)
NMS_CONF, NMS_IOU, BOX_PX = 0.001, 0.6, 1.0  # the after-NMS check: ultralytics' val conf, 1 px


class OnnxExportError(SpinexrError):
    """An export failed, or ONNX Runtime disagrees with torch on the check batch."""

    code = "onnx_export_error"


def export_pack(pack_dir: Path | str, *, out_dir: Path | str | None = None,
                opset: int | None = None) -> dict[str, Path]:
    """Export every model of a pack to ONNX, check each against torch, write ``export.json``.

    Args:
        pack_dir: the pack directory (verified by :func:`~spinexr.models.pack.load_pack`).
        out_dir: where the ``.onnx`` files and ``export.json`` go; default ``<pack>/onnx``,
            the only place
            :func:`~spinexr.models.onnx_runtime.select_engine` looks.
        opset: ONNX opset; default the exporter's.

    Returns:
        model key -> path of its ``.onnx``.

    Raises:
        OnnxExportError: an export failed, or ORT disagrees with torch; names the model and
            the numbers. Models exported before it stay recorded; its own file is removed.
    """
    onnxruntime = import_onnxruntime()

    pack = load_pack(pack_dir)
    out = Path(out_dir) if out_dir is not None else pack.root / EXPORT_DIR
    out.mkdir(parents=True, exist_ok=True)
    record: dict[str, Any] = {
        "format": EXPORT_FORMAT, "format_version": EXPORT_FORMAT_VERSION,
        "pack": {"name": pack.name, "version": pack.version},
        "spinexr_version": __version__, "onnxruntime_version": onnxruntime.__version__,
        "torch_version": torch.__version__, "models": {}}
    paths = {}
    for key in pack.manifest.models:
        record["models"][key] = export_model(pack, key, out / f"{key}.onnx", opset=opset)
        paths[key] = out / f"{key}.onnx"
        _write_json(out / EXPORT_RECORD, record)  # after each model: a later failure keeps these
    _write_json(out / EXPORT_RECORD, record)
    return paths


def export_model(pack: ModelPack, key: str, path: Path, *, opset: int | None = None
                 ) -> dict[str, Any]:
    """Export one model of ``pack`` to ``path`` and check it; returns its export.json entry."""
    spec = pack.model_spec(key)
    kind = spec.kind
    if kind not in ("classifier", "detector"):
        raise OnnxExportError(f"model {key!r} is a {kind!r}; ONNX export handles classifiers "
                              "and detectors", str(pack.root))
    wrapper = (pack.classifier(key, engine="torch") if kind == "classifier"
               else pack.detector(key, engine="torch"))
    module = _exportable(wrapper.model, detector=kind == "detector")
    channels = 3 if kind == "detector" else spec.input.channels
    size = spec.input.size
    names = ("images", "output0") if kind == "detector" else ("input", "logits")
    partial = path.with_name(f"{path.stem}.partial.onnx")
    path.unlink(missing_ok=True)  # never leave an old file beside a new record
    try:
        _torch_export(module, _example(2, channels, size, 1), partial, names, opset, key)
        written = _opset_of(partial)
        if opset is not None and written != int(opset):
            raise OnnxExportError(f"model {key!r}: asked for opset {opset}, the exporter wrote "
                                  f"opset {written} (it converts below 18 only for some "
                                  "graphs); leave --opset out or give 18 or more", str(path))
        ort_model = OrtModel(partial, threads=torch.get_num_threads())
        check = (_check_classifier(wrapper, ort_model, channels, size) if kind == "classifier"
                 else _check_detector(wrapper, ort_model, size))
        if not check["passed"]:
            raise OnnxExportError(f"model {key!r}: ONNX Runtime disagrees with torch: "
                                  f"{check['failure']}", str(path))
        del ort_model
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)
    return {"kind": kind, "arch": spec.arch, "file": path.name,
            "sha256": sha256_file(path), "bytes": path.stat().st_size,
            "weights": spec.weights, "weights_sha256": weights_sha256(pack, key),
            "input_size": size, "input": {"name": names[0], "dtype": "float32",
                                          "shape": ["batch", channels, size, size]},
            "output": {"name": names[1]}, "opset": written, "check": check}


def _exportable(model, *, detector: bool):
    """A CPU fp32 eval copy; a detector's head returns the decoded (N, 4 + nc, A) tensor alone,
    as ultralytics' own exporter sets it up (``export``, ``format="onnx"``, ``dynamic``)."""
    module = copy.deepcopy(model).cpu().float().eval()
    for p in module.parameters():
        p.requires_grad_(False)
    if detector:
        head = module.model[-1]
        head.export, head.format, head.dynamic, head.shape = True, "onnx", True, None
    return module.to(memory_format=torch.contiguous_format)


def _torch_export(module, example, path: Path, names: tuple[str, str], opset: int | None,
                  key: str) -> None:
    batch = torch.export.Dim("batch", min=1, max=4096)
    extra = {"opset_version": int(opset)} if opset else {}
    try:
        with _quiet_exporter():
            torch.onnx.export(module, (example,), str(path), dynamo=True, external_data=False,
                              verbose=False, input_names=[names[0]], output_names=[names[1]],
                              dynamic_shapes=({0: batch},), **extra)
    except Exception as exc:  # the exporter raises many types; name the model and the cause
        raise OnnxExportError(f"model {key!r}: torch.onnx.export failed: "
                              f"{type(exc).__name__}: {(str(exc).splitlines() or [''])[0][:300]}",
                              str(path)) from exc


@contextmanager
def _quiet_exporter() -> Iterator[None]:
    """Silence the exporter's chatter (ultralytics' cached anchors, opset conversion): what
    matters is checked afterwards (the opset, and the numbers against torch)."""
    loggers = [logging.getLogger(name) for name in ("torch.onnx", "onnxscript")]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.CRITICAL)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        for logger, level in zip(loggers, levels):
            logger.setLevel(level)


def _example(n: int, channels: int, size: int, seed: int):
    """A seeded (n, channels, S, S) batch of grey images in [0, 1] (channels replicated)."""
    gen = torch.Generator().manual_seed(seed)
    return torch.rand((n, 1, size, size), generator=gen).expand(-1, channels, -1, -1).contiguous()


def _check_classifier(clf, ort_model: OrtModel, channels: int, size: int) -> dict[str, Any]:
    batch = normalize(_example(CHECK_BATCH, channels, size, 0), clf.pre)
    ref = clf.logits_from_batch(batch).astype(np.float64)
    got = ort_model(batch.numpy()).reshape(len(ref), -1).astype(np.float64)
    diff = float(np.max(np.abs(ref - got)))
    scale = max(1.0, float(np.max(np.abs(ref))))
    tol = CHECK_RTOL * scale
    passed = diff <= tol
    return {"batch": CHECK_BATCH, "seed": 0, "max_abs_diff": diff, "logit_scale": scale,
            "tolerance": tol, "passed": passed,
            "failure": "" if passed else f"max |logit difference| {diff:.3g} > {tol:.3g} "
                                         f"(logit scale {scale:.3g})"}


def _check_detector(det, ort_model: OrtModel, size: int) -> dict[str, Any]:
    """Raw decoded predictions close; after NMS the same boxes within :data:`BOX_PX` px.

    On a seeded noise batch a trained detector scores large flat areas alike, so NMS meets
    ties that a 1e-7 score difference breaks either way. When the kept boxes differ, NMS is
    rerun on ORT's boxes with torch's scores: if that agrees, the difference came from score
    ties within the checked score tolerance only, and the check passes (``ties_broken``).
    """
    x = _example(CHECK_BATCH, 3, size, 0)
    with torch.inference_mode():
        ref = det.model(x.to(det.device))[0].float().cpu()
    got = torch.from_numpy(ort_model(x.numpy()))
    box_diff = float((ref[:, :4] - got[:, :4]).abs().max())
    score_diff = float((ref[:, 4:] - got[:, 4:]).abs().max())
    box_tol, score_tol = CHECK_RTOL * size, CHECK_RTOL
    want = _nms(ref)
    direct = final = [_box_distance(a, b) for a, b in zip(want, _nms(got))]
    ties = False
    if not _agree(direct) and score_diff <= score_tol:
        torch_scores = torch.cat([got[:, :4], ref[:, 4:]], dim=1)
        rerun = [_box_distance(a, b) for a, b in zip(want, _nms(torch_scores))]
        ties = _agree(rerun)
        final = rerun if ties else direct
    failures = []
    if box_diff > box_tol or score_diff > score_tol:
        failures.append(f"raw boxes differ by {box_diff:.3g} px (tolerance {box_tol:.3g}), "
                        f"scores by {score_diff:.3g} (tolerance {score_tol:.3g})")
    if not _agree(final):
        failures.append(f"after NMS (conf {NMS_CONF}) torch and ORT keep "
                        f"{[len(a) for a in want]} and {[n for _, n, _ in final]} boxes per image, "
                        f"worst match {_worst(final)} px (need the same boxes within {BOX_PX} px)")
    return {"batch": CHECK_BATCH, "seed": 0, "max_abs_diff": max(box_diff, score_diff),
            "box_max_abs_diff_px": box_diff, "box_tolerance_px": box_tol,
            "score_max_abs_diff": score_diff, "score_tolerance": score_tol,
            "nms": {"conf": NMS_CONF, "iou": NMS_IOU, "boxes_per_image": [len(a) for a in want],
                    "onnxruntime_boxes_per_image": [n for _, n, _ in direct],
                    "max_box_diff_px": _worst(final), "ties_broken": ties},
            "passed": not failures, "failure": "; ".join(failures)}


def _nms(preds) -> list[np.ndarray]:
    """ultralytics' NMS on decoded (N, 4 + nc, A) predictions: (n, 6) per image."""
    import_ultralytics()
    from ultralytics.utils.nms import non_max_suppression

    kept = non_max_suppression(preds, conf_thres=NMS_CONF, iou_thres=NMS_IOU,
                               nc=preds.shape[1] - 4, max_time_img=NMS_NO_TIME_LIMIT)
    return [k.numpy() for k in kept]


def _box_distance(ref: np.ndarray, got: np.ndarray) -> tuple[int, int, float | None]:
    """(len(ref), len(got), px): px is the worst distance from a box of either set to the
    nearest same-class box of the other (max over x1, y1, x2, y2); None if there is none."""
    if len(ref) == 0 or len(got) == 0:
        return len(ref), len(got), 0.0 if len(ref) == len(got) else None
    dist = np.abs(ref[:, None, :4] - got[None, :, :4]).max(axis=2)
    dist[ref[:, None, 5] != got[None, :, 5]] = np.inf
    worst = max(dist.min(axis=1).max(), dist.min(axis=0).max())
    return len(ref), len(got), float(worst) if np.isfinite(worst) else None


def _agree(matches: list[tuple[int, int, float | None]]) -> bool:
    return all(a == b and px is not None and px <= BOX_PX for a, b, px in matches)


def _worst(matches: list[tuple[int, int, float | None]]) -> float | None:
    values = [px for _, _, px in matches]
    return None if None in values else max(values, default=0.0)


def _opset_of(path: Path) -> int | None:
    import onnx

    model = onnx.load(str(path), load_external_data=False)
    return next((int(o.version) for o in model.opset_import if o.domain in ("", "ai.onnx")), None)


def _write_json(path: Path, data: Mapping[str, Any]) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
    os.replace(tmp, path)


# --------------------------------------------------------------------------------- latency
def measure_latency(pack: ModelPack, key: str, onnx_path: Path, *, runs: int = 5,
                    threads: int | None = None) -> dict[str, float]:
    """Median batch-1 latency in ms of torch and of ONNX Runtime on the same seeded input.

    Both flush denormals to zero and use ``threads`` intra-op threads (default: torch's
    current count; torch's is restored afterwards). Returns ``{"torch_ms", "onnxruntime_ms",
    "runs", "threads"}``; two warm-up runs each are not counted.
    """
    before = torch.get_num_threads()
    threads = int(threads or before)
    torch.set_num_threads(threads)
    try:
        return {**_latency(pack, key, onnx_path, runs, threads), "threads": threads}
    finally:
        torch.set_num_threads(before)


def _latency(pack: ModelPack, key: str, onnx_path: Path, runs: int, threads: int
             ) -> dict[str, float]:
    spec = pack.model_spec(key)
    size = spec.input.size
    ort_model = OrtModel(onnx_path, threads=threads)
    if spec.kind == "classifier":
        clf = pack.classifier(key, engine="torch")
        x = normalize(_example(1, spec.input.channels, size, 0), clf.pre)
        torch_call = lambda: clf.logits_from_batch(x)  # noqa: E731 - the inference path itself
    else:
        det = pack.detector(key, engine="torch")
        x = _example(1, 3, size, 0)

        def torch_call():
            with torch.inference_mode():
                return det.model(x.to(det.device))
    array = x.numpy()
    with flush_denormals():
        torch_ms = median_ms(torch_call, runs)
    return {"torch_ms": torch_ms, "onnxruntime_ms": median_ms(lambda: ort_model(array), runs),
            "runs": runs}


def median_ms(call, runs: int, warmup: int = 2) -> float:
    """Median milliseconds of ``call()`` over ``runs`` runs, after ``warmup`` uncounted ones."""
    for _ in range(warmup):  # allocations, ORT's first-run planning, waking thread pools
        call()
    times = []
    for _ in range(max(1, runs)):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return 1000.0 * statistics.median(times)
