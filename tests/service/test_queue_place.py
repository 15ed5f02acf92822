"""Async answers say where an analysis stands: ``queue_position`` (0 running, k-th in line)
and ``estimated_wait_s`` from the mean of recent analysis durations."""
from __future__ import annotations

import threading

import pytest

from service_helpers import add_key, bearer, phantom_dicom, running, upload


class _Gated:
    """The analyzer, each call held until the test lets one through."""

    def __init__(self, inner) -> None:
        self.inner, self.go = inner, threading.Semaphore(0)
        self.entered = threading.Event()

    def __getattr__(self, name):
        return getattr(self.inner, name)

    def analyze_batch(self, images, **kwargs):
        self.entered.set()
        assert self.go.acquire(timeout=30)
        return self.inner.analyze_batch(images, **kwargs)


def test_jobqueue_position_and_wait_from_recent_durations():
    from spinexr.service.jobs import Job, JobQueue

    gate = threading.Event()
    queue = JobQueue(lambda job: gate.wait(10), workers=1, size=8)
    queue._seconds.extend([2.0, 4.0])                    # mean 3 s
    queue.start()
    for name in ("a", "b", "c"):
        queue.submit(Job(name, "k", b"x"))
    deadline = threading.Event()
    while queue.active != 1 and not deadline.wait(0.01):
        pass
    assert queue.position("a")[0] == 0 and queue.position("a")[1] <= 3.0
    assert queue.position("b") == (1, 6.0)               # 3 x ((0 + 1 running) / 1 + 1)
    assert queue.position("c") == (2, 9.0)
    assert queue.position("zzz") is None
    gate.set()
    assert queue.wait_idle(10)
    assert queue.position("c") is None
    queue.shutdown(1)


def test_async_submit_and_status_carry_the_queue_place(settings, analyzer):
    key = add_key(settings, "alice", "submit")
    gated = _Gated(analyzer)
    with running(settings.with_(workers=1), gated) as c:
        first = c.post("/v1/analyses?async=true", headers=bearer(key),
                       files=upload("a.dcm", phantom_dicom()))
        assert gated.entered.wait(30)
        second = c.post("/v1/analyses?async=true", headers=bearer(key),
                        files=upload("b.dcm", phantom_dicom(seed=4))).json()
        assert first.json()["queue_position"] in (0, 1)
        assert second["queue_position"] == 1 and second["estimated_wait_s"] is None  # no history
        status = c.get(second["location"], headers=bearer(key)).json()
        assert status["status"] == "queued" and status["queue_position"] == 1
        running_now = c.get(first.json()["location"], headers=bearer(key)).json()
        assert running_now["status"] == "running" and running_now["queue_position"] == 0
        gated.go.release()                                # the first finishes: now a mean
        for _ in range(300):
            place = c.get(second["location"], headers=bearer(key)).json()
            if place.get("queue_position") == 0:
                break
            threading.Event().wait(0.05)
        assert place["queue_position"] == 0 and place["estimated_wait_s"] >= 0
        gated.go.release()
        c.app.state.service.queue.wait_idle(60)
        done = c.get(second["location"], headers=bearer(key)).json()
        assert done["status"] in ("done", "refused") and "queue_position" not in done


@pytest.mark.parametrize("field", ["queue_position", "estimated_wait_s"])
def test_the_openapi_document_describes_the_queue_fields(settings, analyzer, field):
    from spinexr.service import create_app

    doc = create_app(settings, analyzer).openapi()
    for model in ("Queued", "AnalysisStatus"):
        assert field in doc["components"]["schemas"][model]["properties"]
    status = doc["paths"]["/v1/analyses/{analysis_id}"]["get"]["responses"]["200"]
    assert status["content"]["application/json"]["schema"]["$ref"].endswith("AnalysisStatus")
