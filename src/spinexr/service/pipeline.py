"""Run one queued analysis through the one process step (:mod:`spinexr.process`).

Glue, nothing more: upload bytes -> :meth:`~spinexr.process.Processor.process` (read with the
analyzer's decode policy, gate, analyse, render in memory) -> the store. The processor is shared
by every worker and called under a lock (torch and ONNX Runtime models are not assumed to be
re-entrant). Renditions are stored as bytes: nothing derived from an upload touches the disk.
"""
from __future__ import annotations

import json
import logging
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from spinexr.errors import ImageTooLargeError, NotAnImageError, StorageError
from spinexr.process import ProcessOptions, Processor, Source
from spinexr.report.identity import identity_of
from spinexr.service.jobs import Job

log = logging.getLogger("spinexr.service")
MEDIA_TYPES = {".json": "application/json", ".png": "image/png", ".xml": "application/xml",
               ".html": "text/html; charset=utf-8", ".dcm": "application/dicom"}


@dataclass(frozen=True)
class Outcome:
    """How a job ended: ``status`` (done/refused/failed), the result document, and for
    errors (code, message, HTTP status)."""

    status: str
    doc: dict[str, Any] | None = None
    error: tuple[str, str, int] | None = None


class Runner:
    """Callable run by the worker threads; stores every outcome before reporting it."""

    def __init__(self, analyzer, store, settings, metrics=None) -> None:
        self.analyzer, self.store, self.settings, self.metrics = analyzer, store, settings, metrics
        self.processor = Processor(analyzer, max_pixels=settings.max_pixels)
        self.lock = threading.Lock()

    def __call__(self, job: Job) -> Outcome:
        t0 = time.perf_counter()
        try:
            outcome = self._run(job)
        except StorageError as exc:      # the database, not the analysis: one line, no stack
            log.error("analysis not recorded: storage unavailable", extra={"fields": {
                "analysis": job.id, "reason": exc.reason}})
            outcome = Outcome("failed", error=(
                "storage_unavailable", f"analysis {job.id} cannot be recorded: the service "
                "cannot use its database right now; retry later", 503))
        except Exception:
            log.exception("analysis failed", extra={"fields": {"analysis": job.id}})
            outcome = Outcome("failed", error=(
                "internal_error", f"analysis {job.id} failed inside the service; the error is "
                                  "logged under this id", 500))
            self._store_failure(job, outcome)
        if self.metrics is not None:
            self.metrics.analyses.labels(outcome=outcome.status).inc()
        log.info("analysis finished", extra={"fields": {
            "analysis": job.id, "sha256": job.sha256[:12], "status": outcome.status,
            "seconds": round(time.perf_counter() - t0, 3)}})
        if job.future is not None and not job.future.done():
            job.future.set_result(outcome)
        return outcome

    def _store_failure(self, job: Job, outcome: Outcome) -> None:
        try:
            self.store.finish(job.id, outcome.status, None, {}, error=outcome.error[:2],
                              keep_input=self.settings.store_inputs)
            self.store.audit(job.owner, "analyze", outcome.status, analysis_id=job.id,
                             sha256=job.sha256, pack_version=self.analyzer.info.version)
        except Exception:
            log.exception("cannot record a failed analysis", extra={"fields": {"analysis": job.id}})

    def _run(self, job: Job) -> Outcome:
        self.store.set_status(job.id, "running")
        data, filename = job.data, job.filename
        if data is None:
            stored = self.store.input_of(job.id)
            if stored is None:
                outcome = Outcome("failed", error=("input_missing", "the upload of this analysis "
                                                   "is no longer stored; submit it again", 410))
                self._finish(job, outcome, {})
                return outcome
            data, filename = stored
        label = f"upload {filename!r}" if filename else "the upload"
        outcome, files = self._analyse(job, data, filename, label)
        self._finish(job, outcome, files)
        return outcome

    def _analyse(self, job: Job, data: bytes, filename: str, label: str):
        options = ProcessOptions(explain=tuple(job.explain),
                                 region=job.region,
                                 identifiers=self.settings.show_identifiers)
        t0 = time.perf_counter()
        with self.lock:
            done = self.processor.process([Source(data=data, name=label)], options)[0]
        a = done.analysis
        if done.read_error is not None:
            code, reason = done.read_error
            doc = json.loads(done.files["result.json"])
            return Outcome("refused", doc, (code, f"{label}: {reason}",
                                            _READ_STATUS.get(code, 422))), {
                "result.json": ("application/json", done.files["result.json"])}
        if self.metrics is not None:
            self.metrics.inference.observe(time.perf_counter() - t0)
        files = _typed(done.files)
        files.update(display_files(a, done.image, identifiers=self.settings.show_identifiers))
        doc = json.loads(files["result.json"][1])
        return Outcome("done" if a.gate.accepted else "refused", doc), files

    def _finish(self, job: Job, outcome: Outcome, files) -> None:
        self.store.finish(job.id, outcome.status, outcome.doc, files,
                          error=outcome.error[:2] if outcome.error else None,
                          keep_input=self.settings.store_inputs)
        self.store.audit(job.owner, "analyze", outcome.error[0] if outcome.error else
                         outcome.status, analysis_id=job.id, sha256=job.sha256,
                         pack_version=self.analyzer.info.version)


#: HTTP status of a refused read, by the reader's error code (others: 422).
_READ_STATUS = {ImageTooLargeError.code: 413, NotAnImageError.code: 415}


def _typed(files) -> dict[str, tuple[str, bytes]]:
    return {name: (MEDIA_TYPES.get(Path(name).suffix, "application/octet-stream"), data)
            for name, data in files.items()}


def display_files(a, image, *, identifiers: bool = True) -> dict[str, tuple[str, bytes]]:
    """What the browser UI shows besides the renditions: ``image.png`` (the plain display
    image, for the browser to draw boxes over), ``heatmap/<method>.png`` per explanation (the
    heatmap blended over the image, without boxes), ``heat/<method>.png`` (the explanation's
    values as 8-bit grey, 0 = none to 255 = strongest, the size of image.png and smoothly
    resized, for the browser to colour and blend at the opacity chosen) and, when
    ``identifiers`` and the input is DICOM, ``identity.json`` (patient and study, see
    :mod:`spinexr.report.identity`; served to authenticated readers only)."""
    from spinexr.report import png_bytes
    from spinexr.report.overlay import DEFAULT_MAX_SIDE, blend_heatmap, radiograph_rgb

    base = radiograph_rgb(image.pixels, DEFAULT_MAX_SIDE)
    files = {"image.png": ("image/png", png_bytes(base[..., 0]))}
    for h in a.heatmaps:
        files[f"heatmap/{h.method}.png"] = ("image/png", png_bytes(blend_heatmap(base, h.array,
                                                                                 0.5)))
        files[f"heat/{h.method}.png"] = ("image/png", png_bytes(_heat_values(h.array,
                                                                             base.shape[:2])))
    identity = identity_of(image.header) if identifiers else None
    if identity:
        files["identity.json"] = ("application/json", json.dumps(identity.as_dict()).encode())
    return files


def _heat_values(heat, shape) -> "np.ndarray":
    """An explanation map (float, any size, [0, 1]) as uint8 ``shape`` (bilinear)."""
    import numpy as np
    from PIL import Image

    heat = np.clip(np.nan_to_num(np.asarray(heat, np.float32), nan=0.0), 0.0, 1.0)
    if heat.shape != tuple(shape):
        heat = np.asarray(Image.fromarray(heat, mode="F").resize((shape[1], shape[0]),
                                                                Image.Resampling.BILINEAR))
    return np.rint(np.clip(heat, 0.0, 1.0) * 255).astype(np.uint8)
