"""The local engine: a pool of worker processes on this machine, each holding the packs once.

Each worker reads and analyses whole chunks; with several workers one decodes while another
runs the models, so the CPUs stay busy without a separate read-ahead pool. Workers start from a
fork server (the caller's torch / ONNX Runtime threads are not forked) and size their threads
to their share of the free CPUs (:mod:`spinexr.models.threads`).

A worker that dies (out of memory, a decoder crash) breaks the pool: the pool is rebuilt and
the chunks that were in flight run again; a chunk that was in flight at :data:`MAX_TRIES`
breaks gets ``worker_lost`` rows, so one poisonous file cannot stop an archive.
"""
from __future__ import annotations

import logging
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import replace
from typing import Iterable, Iterator

from spinexr.batch.rows import WORKER_LOST, error_row
from spinexr.batch.run import Rows
from spinexr.batch.work import BatchSpec, analyze_chunk, build_processor, read_chunk
from spinexr.errors import ConfigError
from spinexr.io.prefetch import WORKER_PRELOAD
from spinexr.models.threads import plan_threads
from spinexr.process import Processor

log = logging.getLogger(__name__)

MAX_TRIES = 2
_WORKER: list[tuple[Processor, BatchSpec]] = []    # set in each pool process by _init


def _init(spec: BatchSpec) -> None:
    _WORKER[:] = [(build_processor(spec), spec)]


def _run_chunk(paths: list[str]) -> Rows:
    processor, spec = _WORKER[0]
    reads = read_chunk(processor.read_kwargs(), paths)
    return analyze_chunk(processor, paths, reads, spec)


class LocalEngine:
    """``workers`` processes on this machine; at most ``window`` chunks in flight (default
    twice the workers: one running and one queued each). Use as a context manager."""

    def __init__(self, spec: BatchSpec, workers: int = 2, *, window: int | None = None) -> None:
        if workers < 1:
            raise ConfigError(f"workers is {workers}; give 1 or more", "workers")
        self.workers = int(workers)
        self.window = max(1, window or 2 * self.workers)
        self.spec = spec if spec.threads is not None else replace(
            spec, threads=plan_threads(self.workers, decode_workers=0))
        self._pool: ProcessPoolExecutor | None = None

    def __enter__(self) -> LocalEngine:
        self._pool = self._new_pool()
        return self

    def __exit__(self, *exc) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=exc[0] is None, cancel_futures=True)
            self._pool = None

    def _new_pool(self) -> ProcessPoolExecutor:
        import multiprocessing

        context = multiprocessing.get_context("forkserver")
        context.set_forkserver_preload(WORKER_PRELOAD + ["spinexr.batch.work"])
        return ProcessPoolExecutor(max_workers=self.workers, mp_context=context,
                                   initializer=_init, initargs=(self.spec,))

    def map_chunks(self, chunks: Iterable[list[str]]) -> Iterator[tuple[list[str], Rows]]:
        if self._pool is None:
            raise RuntimeError("use LocalEngine as a context manager (with LocalEngine(...))")
        queue = [(c, 0) for c in chunks]
        queue.reverse()                                   # pop() takes the first chunk
        pending: dict[Future, tuple[list[str], int]] = {}
        while queue or pending:
            while queue and len(pending) < self.window:
                chunk, tries = queue.pop()
                pending[self._pool.submit(_run_chunk, chunk)] = (chunk, tries)
            done, _ = wait(pending, return_when=FIRST_COMPLETED)
            broken = False
            for future in done:
                chunk, tries = pending.pop(future)
                try:
                    rows = future.result()
                except BrokenProcessPool:
                    broken = True
                    queue.append((chunk, tries + 1))
                    continue
                yield chunk, rows
            if broken:
                yield from self._recover(pending, queue)

    def _recover(self, pending: dict, queue: list) -> Iterator[tuple[list[str], Rows]]:
        """A worker died: every chunk in flight failed with it. Rebuild the pool and queue
        them again; those that have failed :data:`MAX_TRIES` times become error rows."""
        log.warning("a worker process died; restarting the pool and retrying %d chunk(s)",
                    len(pending) + 1)
        for chunk, tries in pending.values():
            queue.append((chunk, tries + 1))
        pending.clear()
        self._pool.shutdown(wait=False, cancel_futures=True)
        self._pool = self._new_pool()
        for chunk, tries in list(queue):
            if tries >= MAX_TRIES:
                queue.remove((chunk, tries))
                yield chunk, [error_row(p, WORKER_LOST, "the worker process died on every try "
                                        "of this chunk (out of memory or a decoder crash?)")
                              for p in chunk]


__all__ = ["LocalEngine", "MAX_TRIES"]
