"""The Dask workers' thread plan: a worker reads the next chunk while it analyses this one, so
its models get its share of the free CPUs less the read thread's."""
from __future__ import annotations

import math

import pytest

from spinexr.batch.dask_engine import worker_plan
from spinexr.models.threads import plan_threads


@pytest.mark.parametrize(("workers", "cpus", "load", "intra"), [
    (1, 2, 0.0, 1),      # 2 free: 1 for the models, 1 for the concurrent read
    (1, 8, 0.0, 7),
    (2, 8, 0.0, 3),      # 4 each, less the reader
    (2, 2, 0.0, 1),      # never below one thread
    (1, 4, 1.0, 2),      # 3 free
])
def test_models_get_the_share_less_the_reader(workers, cpus, load, intra):
    plan = worker_plan(workers, cpus=cpus, load=load)
    assert plan.intra_op == intra
    assert plan.decode_workers == 0          # reads run on the worker's own task thread
    assert plan.free == pytest.approx(cpus - load)


def test_without_a_reader_thread_the_plan_is_the_local_engines():
    for cpus, load in ((2, 0.0), (8, 0.5), (16, 3.0)):
        assert worker_plan(1, readers=0, cpus=cpus, load=load) == plan_threads(
            1, decode_workers=0, cpus=cpus, load=load)


@pytest.mark.slow
def test_a_local_cluster_plans_its_workers_with_the_reader(spec):
    pytest.importorskip("distributed")
    from dataclasses import replace

    from spinexr.batch.dask_engine import DaskEngine

    engine = DaskEngine(replace(spec, threads=None), workers=2)
    with engine:
        plan = engine.spec.threads
    assert plan.intra_op == max(1, math.floor(plan.free / 2 - 1 + 0.25))
