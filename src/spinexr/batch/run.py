"""The driver both engines share: skip what is done, cut the rest into chunks, let the engine
analyse them (a bounded number in flight), write one results part per completed chunk, and
compact the parts into results.parquet at the end."""
from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Iterator, Protocol, Sequence

from spinexr.batch.store import ResultStore

Rows = list[dict[str, Any]]


class Engine(Protocol):
    """Analyses chunks of paths; yields ``(chunk, rows)`` as chunks complete, any order, with
    at most its window of chunks in flight; one row per path, never raising for one input."""

    def map_chunks(self, chunks: Iterable[list[str]]) -> Iterator[tuple[list[str], Rows]]: ...


@dataclass(frozen=True)
class RunSummary:
    """What a run did: ``total`` inputs, ``skipped`` (already in the results), ``analysed``
    now, the outcomes of those (``accepted`` / ``uncertain`` / ``refused`` / ``error``), the
    wall time of the analysis and where the results are."""

    total: int
    skipped: int
    analysed: int
    outcomes: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    results: str = ""

    @property
    def images_per_second(self) -> float:
        return self.analysed / self.seconds if self.seconds > 0 else 0.0


def chunked(paths: Sequence[str], size: int) -> list[list[str]]:
    """``paths`` in consecutive chunks of ``size`` (the last one shorter)."""
    size = max(1, int(size))
    return [list(paths[i:i + size]) for i in range(0, len(paths), size)]


def run_batch(paths: Sequence[str], store: ResultStore, engine: Engine, *, chunk: int = 4,
              progress: Callable[[int], None] | None = None,
              on_chunk: Callable[[list[str], Rows], None] | None = None) -> RunSummary:
    """Analyse the ``paths`` that ``store`` has no row for yet with ``engine``.

    Args:
        paths: the manifest (each once).
        store: where rows go; its rows say what is done already.
        engine: a local or Dask engine (entered).
        chunk: images per chunk (one model batch, one results part).
        progress: called with the number of inputs just finished (skipped ones first).
        on_chunk: called after each chunk's part is written (e.g. to stop a test run early).
    """
    store.compact()                      # parts an interrupted run left become results
    done = store.done_paths()
    todo = [p for p in paths if p not in done]
    if progress is not None and len(todo) < len(paths):
        progress(len(paths) - len(todo))
    outcomes: Counter[str] = Counter()
    t0 = time.perf_counter()
    for part, rows in engine.map_chunks(chunked(todo, chunk)):
        store.write_part(rows)
        outcomes.update(r["outcome"] for r in rows)
        if progress is not None:
            progress(len(rows))
        if on_chunk is not None:
            on_chunk(part, rows)
    seconds = time.perf_counter() - t0
    store.compact()
    return RunSummary(total=len(paths), skipped=len(paths) - len(todo),
                      analysed=sum(outcomes.values()), outcomes=dict(outcomes),
                      seconds=seconds, results=f"{store.url.rstrip('/')}/results.parquet")


__all__ = ["Engine", "RunSummary", "chunked", "run_batch"]
