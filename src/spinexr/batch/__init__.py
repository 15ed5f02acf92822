"""Archive-scale runs: one ``results.parquet`` row per input, resumable, on a local process pool
or a dask.distributed cluster. Both engines run the one process step
(:class:`spinexr.process.Processor`) through the same chunk work (:mod:`spinexr.batch.work`).

    from spinexr.batch import BatchSpec, LocalEngine, ResultStore, expand, run_batch

    spec = BatchSpec(pack="models/demo", vertebrae="models/vertebrae")
    with LocalEngine(spec, workers=2) as engine:
        summary = run_batch(expand(["archive/"]).paths, ResultStore("out"), engine)

``DaskEngine`` (in :mod:`spinexr.batch.dask_engine`; needs the ``batch`` extra) takes the
same spec.
"""
from spinexr.batch.local import LocalEngine
from spinexr.batch.manifest import Manifest, expand
from spinexr.batch.rows import COLUMN_NAMES, COLUMNS, analysis_row, error_row
from spinexr.batch.run import RunSummary, run_batch
from spinexr.batch.store import ResultStore
from spinexr.batch.work import BatchSpec

__all__ = ["BatchSpec", "COLUMNS", "COLUMN_NAMES", "LocalEngine", "Manifest", "ResultStore",
           "RunSummary", "analysis_row", "error_row", "expand", "run_batch"]
