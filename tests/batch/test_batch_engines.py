"""Both engines on the committed packs: the same rows; a corrupt file and a non-spine image are
refused rows; an interrupted run resumes without repeating finished rows, also after a Dask
worker was killed mid-run."""
from __future__ import annotations

import os
import signal

import pandas as pd
import pytest
from batch_helpers import N_PHANTOMS, comparable

from spinexr.batch import LocalEngine, ResultStore, expand, run_batch

pytest.importorskip("torch")
distributed = pytest.importorskip("distributed")


class Stop(Exception):
    """Raised from on_chunk to interrupt a run as a crash or Ctrl-C would."""


@pytest.fixture(scope="module")
def paths(archive) -> list[str]:
    return list(expand([str(archive)]).paths)


@pytest.fixture(scope="module")
def local_engine(spec):
    with LocalEngine(spec, workers=1) as engine:
        yield engine


@pytest.fixture(scope="module")
def local_results(tmp_path_factory, paths, local_engine):
    store = ResultStore(str(tmp_path_factory.mktemp("local")))
    summary = run_batch(paths, store, local_engine, chunk=4)
    return summary, store.read()


@pytest.fixture(scope="module")
def dask_engine(spec):
    from spinexr.batch.dask_engine import DaskEngine

    with DaskEngine(spec, workers=2) as engine:
        yield engine


def test_every_input_has_one_row_and_bad_inputs_are_refused_rows(local_results, paths):
    summary, rows = local_results
    assert summary.total == summary.analysed == len(paths) == N_PHANTOMS + 2
    assert sorted(rows["path"]) == sorted(paths)
    by_name = {os.path.basename(p): r for p, r in zip(rows["path"], rows.to_dict("records"))}
    corrupt, noise = by_name.pop("corrupt.dcm"), by_name.pop("noise.png")
    assert (corrupt["outcome"], corrupt["accepted"]) == ("refused", False)
    assert corrupt["error_code"] in ("corrupt_image", "not_an_image") and corrupt["error"]
    assert noise["outcome"] == "refused" and pd.isna(noise["error_code"])
    assert noise["gate_reason"].startswith("not a spine radiograph")
    assert {r["outcome"] for r in by_name.values()} <= {"accepted", "uncertain"}
    assert all(r["sop_instance_uid"] == r["image_id"] and r["probability"] is not None
               for r in by_name.values())


def test_an_interrupted_local_run_resumes_without_repeating_rows(tmp_path, paths, local_engine,
                                                                 local_results):
    store = ResultStore(str(tmp_path))
    seen: list[str] = []

    def stop_after_first(chunk, rows):
        seen.extend(chunk)
        raise Stop

    with pytest.raises(Stop):
        run_batch(paths, store, local_engine, chunk=4, on_chunk=stop_after_first)
    assert store.done_paths() == set(seen) and len(seen) == 4
    again: list[str] = []
    summary = run_batch(paths, store, local_engine, chunk=4,
                        on_chunk=lambda chunk, rows: again.extend(chunk))
    assert summary.skipped == 4 and summary.analysed == len(paths) - 4
    assert not set(again) & set(seen) and sorted(again + seen) == sorted(paths)
    assert comparable(store.read()) == comparable(local_results[1])


def test_dask_gives_the_same_rows_as_the_local_engine(tmp_path, paths, dask_engine,
                                                      local_results):
    store = ResultStore(str(tmp_path))
    summary = run_batch(paths, store, dask_engine, chunk=4)
    assert summary.analysed == len(paths)
    assert comparable(store.read()) == comparable(local_results[1])


@pytest.mark.slow
def test_dask_resumes_after_a_killed_worker_and_an_interruption(tmp_path, paths, dask_engine,
                                                                local_results):
    """Chunk 1 done: a worker process is killed (Dask reruns its tasks on the restarted one);
    chunk 2 done: the run stops. The re-run analyses only the rest."""
    store = ResultStore(str(tmp_path))
    seen: list[str] = []

    def kill_then_stop(chunk, rows):
        seen.extend(chunk)
        if len(seen) == 4:
            pids = dask_engine.client.run(os.getpid)
            os.kill(next(iter(pids.values())), signal.SIGKILL)
        else:
            raise Stop

    with pytest.raises(Stop):
        run_batch(paths, store, dask_engine, chunk=4, on_chunk=kill_then_stop)
    # two chunks done; which two is up to Dask after the kill (the short last chunk of the
    # list may finish second while the killed worker's chunk is rerun)
    assert store.done_paths() == set(seen) and len(seen) in (4 + 4, 4 + (len(paths) % 4 or 4))
    summary = run_batch(paths, store, dask_engine, chunk=4)
    assert summary.skipped == len(seen) and summary.analysed == len(paths) - len(seen)
    assert comparable(store.read()) == comparable(local_results[1])
    assert "worker_lost" not in set(store.read()["error_code"].dropna())


@pytest.mark.slow
def test_the_local_pool_is_rebuilt_when_a_worker_dies(tmp_path, paths, local_engine,
                                                     local_results):
    store = ResultStore(str(tmp_path))

    def kill_once(chunk, rows):
        if len(store.done_paths()) == 4:
            os.kill(next(iter(local_engine._pool._processes)), signal.SIGKILL)

    summary = run_batch(paths, store, local_engine, chunk=4, on_chunk=kill_once)
    assert summary.analysed == len(paths)
    assert comparable(store.read()) == comparable(local_results[1])
