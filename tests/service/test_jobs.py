"""The worker pool: bounded queue, order, a failing job does not kill a worker, shutdown."""
from __future__ import annotations

import threading

import pytest

from spinexr.service.jobs import Job, JobQueue, QueueFull, ShuttingDown


def test_full_queue_refuses_uploads_but_not_recovered_ids():
    gate = threading.Event()
    q = JobQueue(lambda job: gate.wait(5), workers=1, size=2)
    q.start()
    q.submit(Job("running", "k", b"x"))
    assert _eventually(lambda: q.active == 1)
    q.submit(Job("a", "k", b"x"))
    q.submit(Job("b", "k", b"x"))
    with pytest.raises(QueueFull) as err:
        q.submit(Job("c", "k", b"x"))
    assert err.value.retry_after >= 1
    q.requeue(Job("stored", "k"))                 # only an id: does not count
    assert q.depth == 3
    gate.set()
    assert q.wait_idle(10) and q.depth == 0


def test_jobs_run_in_order_and_errors_do_not_kill_workers():
    done = []

    def run(job):
        if job.id == "bad":
            raise RuntimeError("boom")
        done.append(job.id)

    q = JobQueue(run, workers=1, size=10)
    q.start()
    for i in ("a", "bad", "b"):
        q.submit(Job(i, "k", b"x"))
    assert q.wait_idle(10) and done == ["a", "b"]
    q.shutdown(5)


def test_shutdown_finishes_running_and_returns_queued():
    started, gate, done = threading.Event(), threading.Event(), []

    def run(job):
        started.set()
        gate.wait(5)
        done.append(job.id)

    q = JobQueue(run, workers=1, size=5)
    q.start()
    q.submit(Job("first", "k", b"x"))
    started.wait(5)
    q.submit(Job("second", "k", b"x"))
    threading.Timer(0.2, gate.set).start()
    left = q.shutdown(10)
    assert done == ["first"] and [j.id for j in left] == ["second"]
    with pytest.raises(ShuttingDown):
        q.submit(Job("late", "k", b"x"))


def _eventually(check, timeout=5.0):
    import time

    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if check():
            return True
        time.sleep(0.01)
    return False
