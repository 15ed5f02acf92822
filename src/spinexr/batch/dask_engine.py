"""The Dask engine: the same chunks on a ``dask.distributed`` cluster.

* **Cluster**: a ``LocalCluster`` on 127.0.0.1 (worker processes, dashboard off unless asked),
  or an existing one by scheduler address (dask-jobqueue, Kubernetes, ``dask scheduler`` +
  ``dask worker`` by hand). Nothing here reaches beyond the addresses given.
* **Packs once per worker**: :class:`PackPlugin` (a ``WorkerPlugin``) builds each worker's
  process step when the worker starts, in a thread so the worker's event loop keeps answering;
  a worker restarted after a crash gets it again.
* **Decode and inference as separate tasks**: per chunk a read task (resource ``decode``) and an
  analysis task (resource ``infer``) depending on it. A local worker has two threads and one
  unit of each resource, so it reads the next chunk while it analyses this one; a cluster can
  also give decode-only and GPU inference workers different resources. Workers without
  declared resources (a cluster started elsewhere) run both kinds unrestricted.
* **Bounded in flight**: at most ``window`` chunks are submitted at a time (``as_completed``,
  one new chunk per finished one), so memory stays flat on archives far larger than memory.
* **Failures**: Dask reruns the tasks of a worker that dies; a chunk whose tasks fail for good
  (e.g. ``KilledWorker`` after repeated deaths) becomes ``worker_lost`` rows.
"""
from __future__ import annotations

import asyncio
import logging
import os
import uuid
from typing import Any, Iterable, Iterator

from spinexr.batch.rows import WORKER_LOST, error_row
from spinexr.batch.run import Rows
from spinexr.batch.work import BatchSpec, analyze_chunk, build_processor, read_chunk
from spinexr.errors import ConfigError
from spinexr.models.threads import plan_threads

log = logging.getLogger(__name__)

PLUGIN = "spinexr-pack"
RESOURCES = {"decode": 1, "infer": 1}
#: The Dask setting that starts worker processes with ``MALLOC_TRIM_THRESHOLD_=65536``. Any
#: explicit trim threshold turns off glibc's dynamic mmap threshold, so every array over
#: 128 KiB is mmapped and unmapped again: our analysis (image-sized temporaries) then cost
#: 2.3-2.5x the CPU (benchmarks/dask_malloc.py, docs/scaling.md). :func:`local_cluster` starts
#: its workers without it.
TRIM_VARIABLE = "MALLOC_TRIM_THRESHOLD_"
MALLOC_TRIM = f"distributed.nanny.pre-spawn-environ.{TRIM_VARIABLE}"


def local_cluster(workers: int, *, threads_per_worker: int = 2,
                  resources: dict[str, int] | None = RESOURCES, dashboard: str | None = None):
    """A ``LocalCluster`` of worker processes on 127.0.0.1 whose workers start without
    ``MALLOC_TRIM_THRESHOLD_``: neither Dask's setting (:data:`MALLOC_TRIM`) nor a value in
    this process's environment (put there by the shell, or by an earlier cluster's nanny,
    which writes its settings into its parent's environment) reaches them."""
    distributed = import_distributed()
    import dask

    saved = os.environ.pop(TRIM_VARIABLE, None)
    try:
        with dask.config.set({MALLOC_TRIM: None}):
            return distributed.LocalCluster(
                n_workers=workers, threads_per_worker=threads_per_worker, processes=True,
                host="127.0.0.1", dashboard_address=dashboard, resources=resources,
                silence_logs=logging.ERROR)
    finally:
        if saved is not None:
            os.environ[TRIM_VARIABLE] = saved


def import_distributed():
    """``distributed``, or a ConfigError saying how to install it."""
    try:
        import distributed
    except ImportError as exc:
        raise ConfigError("the Dask engine needs dask.distributed: pip install "
                          "'spinexr[batch]'", "engine") from exc
    return distributed


def _plugin_class():
    from distributed.diagnostics.plugin import WorkerPlugin

    class PackPlugin(WorkerPlugin):
        """Builds the worker's process step from a :class:`BatchSpec`, once per worker."""

        name = PLUGIN

        def __init__(self, spec: BatchSpec) -> None:
            self.spec = spec
            self.processor = None

        async def setup(self, worker) -> None:
            spec = self.spec
            if spec.threads is None:      # plan on the worker, for its own CPUs and load
                from dataclasses import replace

                spec = replace(spec, threads=plan_threads(1, decode_workers=0))
            if os.environ.get(TRIM_VARIABLE):
                log.warning("this worker runs with %s=%s: glibc then maps and unmaps every "
                            "large array, which made the analysis 2.3-2.5x slower in our "
                            "measurements (benchmarks/dask_malloc.py); start the workers with "
                            "the Dask setting %s: null", TRIM_VARIABLE,
                            os.environ[TRIM_VARIABLE], MALLOC_TRIM)
            self.processor = await asyncio.to_thread(build_processor, spec)

    return PackPlugin


def _plugin():
    from distributed import get_worker

    plugin = get_worker().plugins[PLUGIN]
    if plugin.processor is None:
        raise RuntimeError("the spinexr pack plugin has not finished loading on this worker")
    return plugin


def dask_read(paths: list[str]):
    """Task: read a chunk on a worker (resource ``decode``)."""
    return read_chunk(_plugin().processor.read_kwargs(), paths)


def dask_analyze(paths: list[str], reads) -> Rows:
    """Task: analyse a read chunk on a worker (resource ``infer``); one row per path."""
    plugin = _plugin()
    return analyze_chunk(plugin.processor, paths, reads, plugin.spec)


class DaskEngine:
    """Chunks on a Dask cluster. Use as a context manager.

    Args:
        spec: what every worker loads and how it analyses; its pack folders must be readable
            by the workers (a shared file system on a cluster).
        workers: worker processes of the local cluster (ignored with ``scheduler``).
        scheduler: the address of an existing cluster's scheduler (``tcp://host:8786``).
        window: chunks in flight (default: 2 per worker thread that does inference).
        dashboard: the local cluster's dashboard address (``None``: off).
    """

    def __init__(self, spec: BatchSpec, workers: int = 2, *, scheduler: str | None = None,
                 window: int | None = None, dashboard: str | None = None) -> None:
        if workers < 1:
            raise ConfigError(f"workers is {workers}; give 1 or more", "workers")
        self.spec, self.workers, self.scheduler = spec, int(workers), scheduler
        self.window, self.dashboard = window, dashboard
        self.client = self.cluster = None

    def __enter__(self) -> DaskEngine:
        distributed = import_distributed()
        if self.scheduler:
            self.client = distributed.Client(self.scheduler)
        else:
            from dataclasses import replace

            if self.spec.threads is None:   # local workers share this machine's free CPUs
                self.spec = replace(self.spec, threads=plan_threads(self.workers,
                                                                    decode_workers=0))
            self.cluster = local_cluster(self.workers, dashboard=self.dashboard)
            self.client = distributed.Client(self.cluster)
        self.client.register_plugin(_plugin_class()(self.spec), name=PLUGIN)
        return self

    def __exit__(self, *exc) -> None:
        if self.client is not None:
            self.client.close()
        if self.cluster is not None:
            self.cluster.close()
        self.client = self.cluster = None

    def _resources(self) -> tuple[dict[str, Any], dict[str, Any], int]:
        """(read task kwargs, analysis task kwargs, inference slots) for this cluster."""
        info = self.client.scheduler_info(n_workers=-1)["workers"].values()
        declared = all({"decode", "infer"} <= set(w.get("resources", {})) for w in info)
        if declared and info:
            slots = sum(int(w["resources"]["infer"]) for w in info)
            return {"resources": {"decode": 1}}, {"resources": {"infer": 1}}, slots
        return {}, {}, sum(int(w.get("nthreads", 1)) for w in info)

    def map_chunks(self, chunks: Iterable[list[str]]) -> Iterator[tuple[list[str], Rows]]:
        from distributed import as_completed

        if self.client is None:
            raise RuntimeError("use DaskEngine as a context manager (with DaskEngine(...))")
        read_kw, infer_kw, slots = self._resources()
        window = max(1, self.window or 2 * max(1, slots))
        chunks = iter(chunks)
        pending: dict[str, list[str]] = {}
        flow = as_completed()

        def submit() -> bool:
            chunk = next(chunks, None)
            if chunk is None:
                return False
            token = uuid.uuid4().hex[:12]
            read = self.client.submit(dask_read, chunk, key=f"spinexr-read-{token}", **read_kw)
            done = self.client.submit(dask_analyze, chunk, read, key=f"spinexr-analyze-{token}",
                                      **infer_kw)
            pending[done.key] = chunk
            flow.add(done)
            return True

        while len(pending) < window and submit():
            pass
        for future in flow:
            chunk = pending.pop(future.key)
            try:
                rows = future.result()
            except Exception as exc:  # KilledWorker, a lost connection, ...
                log.warning("chunk of %d failed on the cluster: %s", len(chunk), exc)
                rows = [error_row(p, WORKER_LOST, f"the cluster could not analyse it ({exc})")
                        for p in chunk]
            future.release()
            yield chunk, rows
            submit()


__all__ = ["DaskEngine", "MALLOC_TRIM", "PLUGIN", "TRIM_VARIABLE", "dask_analyze", "dask_read",
           "import_distributed", "local_cluster"]
