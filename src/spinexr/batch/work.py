"""The work both engines give their workers: build the one process step once, read a chunk of
files, analyse it into rows (and renditions when asked). No engine code here.

A worker builds its :class:`~spinexr.process.Processor` from a :class:`BatchSpec` (plain,
picklable settings: pack folders, analyzer config, options) once, then runs
:func:`read_chunk` and :func:`analyze_chunk` on chunk after chunk. Both never raise for one
bad input: an unreadable file is a refused row, an exception in the analysis an error row.
"""
from __future__ import annotations

import hashlib
import logging
import traceback
from dataclasses import dataclass, field, replace
from typing import Any, Sequence

from spinexr.analyze import Analyzer, AnalyzerConfig
from spinexr.batch.manifest import is_url
from spinexr.batch.rows import ANALYSIS_FAILED, analysis_row, error_row
from spinexr.batch.store import write_renditions
from spinexr.io.prefetch import ReadResult, read_one
from spinexr.models.pack import load_pack
from spinexr.models.threads import ThreadPlan, apply_thread_plan
from spinexr.process import Processed, ProcessOptions, Processor, Source

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class BatchSpec:
    """Everything a worker needs to analyse like every other worker (picklable).

    Attributes:
        pack: the main pack's folder (as the workers see it).
        vertebrae: the vertebra pack's folder, or ``None`` (the main pack has the detector).
        config: the analyzer settings; ``config.device`` ``"auto"`` takes a GPU where the
            worker has one.
        options: per-call settings of the process step (``render`` is set by ``renditions``).
        renditions: where per-image renditions go (folder or fsspec URL); ``None``: none.
        full_resolution: decode JPEG 2000 at full size.
        threads: the worker's thread plan (``None``: planned from the CPUs it may use).
    """

    pack: str
    vertebrae: str | None = None
    config: AnalyzerConfig = field(default_factory=AnalyzerConfig)
    options: ProcessOptions = ProcessOptions(render=False)
    renditions: str | None = None
    full_resolution: bool = False
    threads: ThreadPlan | None = None


def build_processor(spec: BatchSpec) -> Processor:
    """The worker's process step: the thread plan applied, then the packs loaded (once)."""
    apply_thread_plan(spec.threads)
    config = spec.config
    if config.device == "auto":
        config = replace(config, device=_best_device())
    analyzer = Analyzer(load_pack(spec.pack), config=config,
                        vertebrae_pack=load_pack(spec.vertebrae) if spec.vertebrae else None)
    return Processor(analyzer, full_resolution=spec.full_resolution)


def _best_device() -> str:
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def read_chunk(read_kwargs: dict[str, Any], paths: Sequence[str]) -> list[ReadResult]:
    """Read ``paths`` with the process step's decode policy (``Processor.read_kwargs()``);
    remote paths (``s3://...``) are fetched through fsspec first."""
    return [_read(read_kwargs, p) for p in paths]


def _read(read_kwargs: dict[str, Any], path: str) -> ReadResult:
    if not is_url(path):
        return read_one(path, read_kwargs)
    import fsspec

    try:
        with fsspec.open(path, "rb") as fh:
            data = fh.read()
    except OSError as exc:
        return ReadResult(path, None, f"cannot fetch it ({exc})", error_code="file_access")
    return read_one(data, {**read_kwargs, "name": path}, label=path)


def analyze_chunk(processor: Processor, paths: Sequence[str], reads: Sequence[ReadResult],
                  spec: BatchSpec) -> list[dict[str, Any]]:
    """Analyse a chunk read by :func:`read_chunk` as one batch; one row per path, in order.

    When the batch raises, each image is retried alone so that one bad input costs only its
    own row (``error_code`` ``analysis_failed``)."""
    options = replace(spec.options, render=spec.renditions is not None)
    sources = [Source(path=r.path) for r in reads]
    try:
        done = processor.process_reads(sources, reads, options)
    except Exception:  # one image broke the batch: find it, keep the others
        log.warning("a chunk failed as a batch; retrying its images one by one",
                    exc_info=True)
        return [_alone(processor, p, s, r, spec, options)
                for p, s, r in zip(paths, sources, reads)]
    return [_row(p, d, spec) for p, d in zip(paths, done)]


def _alone(processor: Processor, path: str, source: Source, read: ReadResult,
           spec: BatchSpec, options: ProcessOptions) -> dict[str, Any]:
    try:
        return _row(path, processor.process_reads([source], [read], options)[0], spec)
    except Exception as exc:
        detail = traceback.format_exception_only(exc)[-1].strip()
        return error_row(path, ANALYSIS_FAILED, f"the analysis failed: {detail}")


def _row(path: str, done: Processed, spec: BatchSpec) -> dict[str, Any]:
    if spec.renditions is not None and done.files:
        write_renditions(spec.renditions, rendition_name(done.analysis.image_id, path),
                         done.files)
    return analysis_row(path, done.analysis, read_error=done.read_error)


def rendition_name(image_id: str, path: str) -> str:
    """The folder of an input's renditions: its image id and a hash of its path, so that two
    inputs with one id never collide and a resumed run writes the same folder again."""
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in image_id).strip(".")
    return f"{safe or 'input'}-{hashlib.sha1(path.encode()).hexdigest()[:8]}"


__all__ = ["BatchSpec", "analyze_chunk", "build_processor", "read_chunk", "rendition_name"]
