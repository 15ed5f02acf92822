"""The ONNX Runtime engine the inference path runs on (CPU), and the choice of engine per model.

:func:`select_engine` is what :class:`~spinexr.models.pack.ModelPack` asks when it builds a
model: ``"auto"`` gives an :class:`OrtModel` on CPU when ``<pack>/onnx`` holds a current export
(the weights' sha256 recorded at export time equals the pack's), torch otherwise; ``"onnx"``
and ``"torch"`` force one. The torch module is always built too: explanations need its
gradients. Writing the exports is :mod:`spinexr.models.onnx_export`'s job; this module only
reads them, and imports no model code (classifiers and detectors import it).
"""
from __future__ import annotations

import hashlib
import json
import logging
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator, Protocol

import numpy as np

from spinexr.errors import ConfigError, SpinexrError
from spinexr.models.threads import planned_intra_op

log = logging.getLogger("spinexr.models.onnx")

EXPORT_DIR = "onnx"
EXPORT_RECORD = "export.json"
EXPORT_FORMAT = "spinexr-onnx-export"
EXPORT_FORMAT_VERSION = 1
ENGINES = ("auto", "torch", "onnx")


class OnnxEngineError(SpinexrError):
    """ONNX Runtime was asked for but the pack has no current export (or it is unreadable)."""

    code = "onnx_engine_error"


class PackModels(Protocol):
    """What engine choice reads of a :class:`~spinexr.models.pack.ModelPack`: its folder and
    each model's :class:`~spinexr.models.manifest.ModelSpec` (``weights``, ``sha256``,
    ``arch``, ``input.size``)."""

    @property
    def root(self) -> Path: ...

    def model_spec(self, key: str) -> Any: ...


@contextmanager
def flush_denormals() -> Iterator[None]:
    """Flush denormal floats to zero on this thread inside the block, then restore the mode.

    Untrained or lightly trained weights make denormals that run 2-4x slower. The mode is
    per-thread processor state that outlives the call (and breaks libraries that need IEEE
    subnormals, e.g. hypothesis), so it is switched back off when it was off before.
    """
    import torch

    was_on = _flushing()
    torch.set_flush_denormal(True)
    try:
        yield
    finally:
        if not was_on:
            torch.set_flush_denormal(False)


def _flushing() -> bool:
    """Whether this thread flushes denormals: then a denormal times one comes out zero."""
    return bool((np.array([1e-40], np.float32) * np.float32(1.0))[0] == 0.0)


def import_onnxruntime():
    """The ``onnxruntime`` module, or a :class:`~spinexr.errors.ConfigError` naming the extra."""
    try:
        import onnxruntime
    except ImportError as exc:  # pragma: no cover - depends on the installed extras
        raise ConfigError("onnxruntime is not installed: pip install 'spinexr[ml]'",
                          "engine") from exc
    return onnxruntime


class OrtModel:
    """One ONNX Runtime CPU session, created once and reused; ``__call__`` returns output 0.

    Session options: ``threads`` intra-op threads (None: the process's thread plan, see
    :mod:`spinexr.models.threads`, else ORT's default, the physical cores),
    sequential execution, all graph optimisations, no spinning between runs (a spinning pool
    halves the speed of torch in the same process) and denormals flushed to zero (untrained
    or lightly trained weights otherwise run 2-4x slower) in ORT's threads and, during a
    call only, in the calling thread.
    """

    def __init__(self, path: Path | str, *, threads: int | None = None) -> None:
        ort = import_onnxruntime()
        self.path = Path(path)
        opts = ort.SessionOptions()
        threads = threads or planned_intra_op()   # the process's thread plan, if one is set
        if threads:
            opts.intra_op_num_threads = int(threads)
        opts.inter_op_num_threads = 1
        opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
        opts.add_session_config_entry("session.inter_op.allow_spinning", "0")
        opts.add_session_config_entry("session.set_denormal_as_zero", "1")
        if not self.path.is_file():
            raise OnnxEngineError("ONNX file not found", str(self.path))
        try:
            with flush_denormals():  # ORT sets it on the first session's thread for good
                self.session = ort.InferenceSession(str(self.path), sess_options=opts,
                                                    providers=["CPUExecutionProvider"])
        except Exception as exc:  # ORT raises its own types for bad protobufs / graphs
            raise OnnxEngineError(f"ONNX Runtime cannot load it: {exc}", str(self.path)) from exc
        inp = self.session.get_inputs()[0]
        self.input_name = inp.name
        self.input_shape = tuple(d if isinstance(d, int) else None for d in inp.shape)
        self.output_name = self.session.get_outputs()[0].name

    def __call__(self, x: np.ndarray) -> np.ndarray:
        """Run a float32 batch shaped like the input (any batch size); returns output 0."""
        x = np.ascontiguousarray(x, dtype=np.float32)
        if x.ndim != len(self.input_shape) or any(
                want is not None and want != got for want, got in zip(self.input_shape, x.shape)):
            shown = tuple("N" if d is None else d for d in self.input_shape)
            raise ConfigError(f"input has shape {x.shape}; {self.path.name} takes {shown}",
                              "input")
        with flush_denormals():  # the calling thread computes too
            return self.session.run([self.output_name], {self.input_name: x})[0]


# ---------------------------------------------------------------------------- engine choice
def read_export_record(directory: Path) -> dict[str, Any] | None:
    """The parsed ``export.json`` in ``directory``, or None when there is none or it is unusable."""
    path = Path(directory) / EXPORT_RECORD
    try:
        record = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return None
    if not isinstance(record, dict) or (record.get("format"), record.get("format_version")) != (
            EXPORT_FORMAT, EXPORT_FORMAT_VERSION):
        return None
    return record


def _file_sha256(path: Path) -> str:
    """The sha256 hex digest of a file's bytes."""
    with open(path, "rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


def weights_sha256(pack: PackModels, key: str) -> str:
    """The sha256 of model ``key``'s weights: the one its spec lists, else the file's."""
    spec = pack.model_spec(key)  # load_pack verified the file against a listed sha256
    return spec.sha256 or _file_sha256(pack.root / spec.weights)


def export_status(pack: PackModels, key: str) -> tuple[str | None, Path]:
    """Whether ``<pack>/onnx/<key>.onnx`` is a current export: (None, path) or (problem, path)."""
    directory = pack.root / EXPORT_DIR
    record = read_export_record(directory)
    entry = (record or {}).get("models", {}).get(key)
    if entry is None:
        return f"no ONNX export for model {key!r} in {directory}", directory / f"{key}.onnx"
    path = directory / Path(str(entry.get("file", f"{key}.onnx"))).name  # never outside onnx/
    spec = pack.model_spec(key)
    if entry.get("weights_sha256") != weights_sha256(pack, key):
        return (f"the ONNX export of model {key!r} is stale: its weights changed after the "
                "export"), path
    if (entry.get("arch"), entry.get("input_size")) != (spec.arch, spec.input.size):
        return f"the ONNX export of model {key!r} is stale: arch or input size changed", path
    if not path.is_file() or _file_sha256(path) != entry.get("sha256"):
        return f"{path.name} is missing or does not match the sha256 in {EXPORT_RECORD}", path
    return None, path


def select_engine(pack: PackModels, key: str, engine: str = "auto", device: str = "cpu", *,
                  threads: int | None = None) -> OrtModel | None:
    """The :class:`OrtModel` that model ``key`` should run on, or None for torch.

    ``"auto"``: ONNX Runtime on a CPU device when the pack has a current export, else torch
    (with a logged note); torch on CUDA. ``"torch"``: torch. ``"onnx"``: ONNX Runtime, or
    :class:`OnnxEngineError` telling the user to run ``spinexr export``.
    """
    if engine not in ENGINES:
        raise ConfigError(f"engine {engine!r} is not one of {ENGINES}", "engine")
    on_cpu = str(device).split(":")[0] == "cpu"
    if engine == "torch" or (engine == "auto" and not on_cpu):
        return None
    if not on_cpu:
        raise ConfigError(f"engine='onnx' runs ONNX Runtime on the CPU, not on {device!r}; use "
                          "device='cpu' or engine='torch'", "engine")
    problem, path = export_status(pack, key)
    if problem is None:
        try:
            return OrtModel(path, threads=threads)
        except ConfigError as exc:  # onnxruntime not installed
            problem = exc.reason
    if engine == "onnx":
        raise OnnxEngineError(f"{problem}; run `spinexr export --pack {pack.root} --format onnx`",
                              str(pack.root))
    (log.info if "no ONNX export" in problem else log.warning)(
        "model %r runs on torch: %s (`spinexr export --pack %s --format onnx` makes it run on "
        "ONNX Runtime)", key, problem, pack.root)
    return None
