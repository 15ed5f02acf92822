"""Run one queued analysis: upload bytes -> ``read_radiograph`` -> ``Analyzer`` -> renditions.

This is glue around the one inference path (``spinexr.io``, ``spinexr.analyze``,
``spinexr.report``), nothing more. The analyzer is shared by every worker and called under a
lock (torch and ONNX Runtime models are not assumed to be re-entrant); reading and rendering run
outside it. Renditions are made in memory (``render_outputs``) and stored as bytes: nothing
derived from an upload touches the disk.
"""
from __future__ import annotations

import copy
import json
import logging
import threading
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from spinexr.errors import SpinexrError
from spinexr.service.jobs import Job
from spinexr.service.problems import status_of_read_error

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
        self.lock = threading.Lock()
        self._variants: dict[tuple[str, ...], Any] = {}

    def __call__(self, job: Job) -> Outcome:
        t0 = time.perf_counter()
        try:
            outcome = self._run(job)
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
        from spinexr.analyze import refused_analysis
        from spinexr.io import read_radiograph
        from spinexr.report import analysis_to_dict
        from spinexr.report.json_out import json_bytes

        try:
            image = read_radiograph(data, max_pixels=self.settings.max_pixels, name=label)
        except SpinexrError as exc:
            a = refused_analysis(filename or "upload", exc.reason, self.analyzer.info)
            doc = analysis_to_dict(a)
            error = (exc.code, f"{label}: {exc.reason}", status_of_read_error(exc))
            return Outcome("refused", doc, error), {
                "result.json": ("application/json", json_bytes(doc))}
        t0 = time.perf_counter()
        with self.lock:
            a = self._analyzer(job.explain).analyze_batch([image])[0]
        if self.metrics is not None:
            self.metrics.inference.observe(time.perf_counter() - t0)
        files = render(a, image, getattr(getattr(self.analyzer, "pack", None), "manifest", {}))
        doc = json.loads(files["result.json"][1])
        return Outcome("done" if a.gate.accepted else "refused", doc), files

    def _finish(self, job: Job, outcome: Outcome, files) -> None:
        self.store.finish(job.id, outcome.status, outcome.doc, files,
                          error=outcome.error[:2] if outcome.error else None,
                          keep_input=self.settings.store_inputs)
        self.store.audit(job.owner, "analyze", outcome.error[0] if outcome.error else
                         outcome.status, analysis_id=job.id, sha256=job.sha256,
                         pack_version=self.analyzer.info.version)

    def _analyzer(self, methods: tuple[str, ...]):
        """The shared analyzer, or a shallow copy sharing its models with other explanations."""
        if tuple(methods) == tuple(self.analyzer.config.explain):
            return self.analyzer
        if methods not in self._variants:
            clone = copy.copy(self.analyzer)
            clone.config = replace(self.analyzer.config, explain=tuple(methods))
            self._variants[methods] = clone
        return self._variants[methods]


def render(a, image, manifest) -> dict[str, tuple[str, bytes]]:
    """Every rendition of ``a`` as name -> (media type, bytes), made in memory: the files of
    ``spinexr analyze`` (``render_outputs``), ``image.png`` (the plain display image, for the
    browser to draw boxes over) and ``heatmap/<method>.png`` per explanation (the heatmap over
    the image, without boxes)."""
    from spinexr.report import png_bytes, render_outputs
    from spinexr.report.overlay import DEFAULT_MAX_SIDE, blend_heatmap, radiograph_rgb

    card = dict(manifest or {}).get("card", {})
    files = {name: (MEDIA_TYPES.get(Path(name).suffix, "application/octet-stream"), data)
             for name, data in render_outputs(a, image, card=card).items()}
    base = radiograph_rgb(image.pixels, DEFAULT_MAX_SIDE)
    files["image.png"] = ("image/png", png_bytes(base[..., 0]))
    for h in a.heatmaps:
        files[f"heatmap/{h.method}.png"] = ("image/png", png_bytes(blend_heatmap(base, h.array,
                                                                                 0.5)))
    return files
