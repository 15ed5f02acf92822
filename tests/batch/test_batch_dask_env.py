"""The Dask engine's local workers start without Dask's MALLOC_TRIM_THRESHOLD_: with it, glibc
maps and unmaps every image-sized array and the analysis cost 2.5x the CPU."""
from __future__ import annotations

import os

import pytest

distributed = pytest.importorskip("distributed")


def test_dask_would_set_the_threshold_by_default():
    import dask

    from spinexr.batch.dask_engine import MALLOC_TRIM

    assert dask.config.get(MALLOC_TRIM) is not None   # what the engine has to undo


@pytest.mark.slow
@pytest.mark.parametrize("inherited", [None, "65536"])
def test_local_workers_start_without_a_malloc_trim_threshold(spec, monkeypatch, inherited):
    """Neither from Dask's setting nor from this process's environment (a shell, or an
    earlier cluster's nanny, which writes the variable into its parent's environment)."""
    from spinexr.batch.dask_engine import DaskEngine

    if inherited is None:
        monkeypatch.delenv("MALLOC_TRIM_THRESHOLD_", raising=False)
    else:
        monkeypatch.setenv("MALLOC_TRIM_THRESHOLD_", inherited)
    with DaskEngine(spec, workers=1) as engine:
        seen = engine.client.run(lambda: os.environ.get("MALLOC_TRIM_THRESHOLD_"))
        omp = engine.client.run(lambda: os.environ.get("OMP_NUM_THREADS"))
    assert list(seen.values()) == [None]
    assert list(omp.values()) == ["1"]     # Dask's other worker settings stay as they were
    assert os.environ.get("MALLOC_TRIM_THRESHOLD_") == inherited   # ours restored
