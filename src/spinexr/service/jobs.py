"""A bounded pool of analysis threads.

Uploads waiting in memory are bounded by ``size``: a full queue refuses new work with
:class:`QueueFull` (the API answers 429 with Retry-After) instead of growing. Work recovered from
the store after a restart is queued by id only (its bytes stay in the database until a worker
loads them), so it does not count against the bound. :meth:`JobQueue.shutdown` lets running
jobs finish and hands back those still waiting, for the caller to leave queued in the store.
"""
from __future__ import annotations

import collections
import concurrent.futures
import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Callable

log = logging.getLogger("spinexr.service")


@dataclass
class Job:
    """One analysis to run. ``data`` is ``None`` when the upload is to be loaded from the store.

    ``future`` is set for a caller waiting on the result (a synchronous request).
    """

    id: str
    owner: str
    data: bytes | None = None
    filename: str = ""
    explain: tuple[str, ...] = ()
    sha256: str = ""
    future: concurrent.futures.Future | None = field(default=None, repr=False)
    region: str | None = None


class QueueFull(Exception):
    """The queue holds ``size`` uploads already; ``retry_after`` estimates when to retry."""

    def __init__(self, retry_after: float) -> None:
        super().__init__(f"queue full; retry in {retry_after:.0f} s")
        self.retry_after = retry_after


class ShuttingDown(Exception):
    """The service is stopping and takes no new work."""


class JobQueue:
    """``workers`` threads running ``run(job)`` on jobs in arrival order."""

    def __init__(self, run: Callable[[Job], object], *, workers: int, size: int) -> None:
        self.run, self.workers, self.size = run, workers, size
        self._items: collections.deque[Job] = collections.deque()
        self._cond = threading.Condition()
        self._threads: list[threading.Thread] = []
        self._stopping = False
        self._active = 0
        self._running: dict[str, float] = {}           # id -> monotonic start
        self._seconds = collections.deque(maxlen=20)   # recent job durations

    def start(self) -> None:
        for i in range(self.workers):
            t = threading.Thread(target=self._loop, name=f"spinexr-worker-{i}", daemon=True)
            t.start()
            self._threads.append(t)

    @property
    def depth(self) -> int:
        """Jobs waiting (not counting those running)."""
        return len(self._items)

    @property
    def active(self) -> int:
        return self._active

    def submit(self, job: Job) -> None:
        """Queue an upload held in memory.

        Raises:
            QueueFull: ``size`` uploads are waiting already.
            ShuttingDown: :meth:`shutdown` was called.
        """
        with self._cond:
            if self._stopping:
                raise ShuttingDown()
            in_memory = sum(1 for j in self._items if j.data is not None)
            if in_memory >= self.size:
                raise QueueFull(self._estimate())
            self._items.append(job)
            self._cond.notify()

    def requeue(self, job: Job) -> None:
        """Queue a job whose upload is in the store (no bound: only the id is held)."""
        with self._cond:
            if self._stopping:
                raise ShuttingDown()
            self._items.append(job)
            self._cond.notify()

    def _estimate(self) -> float:
        per_job = (sum(self._seconds) / len(self._seconds)) if self._seconds else 1.0
        return max(1.0, per_job * (len(self._items) + self._active) / max(1, self.workers))

    def estimate_wait(self) -> float:
        """Seconds until the jobs queued and running now are done (at least 1)."""
        with self._cond:
            return self._estimate()

    def mean_seconds(self) -> float | None:
        """Mean duration of the last (up to 20) jobs; ``None`` before the first has finished."""
        with self._cond:
            return sum(self._seconds) / len(self._seconds) if self._seconds else None

    def position(self, job_id: str) -> tuple[int, float | None] | None:
        """``(queue_position, estimated_wait_s)`` of a job this queue holds, else ``None``.

        ``queue_position`` is 0 while the job runs and k >= 1 for the k-th in line;
        ``estimated_wait_s`` the seconds until its result, from the mean of recent job
        durations (``None`` until one has finished): for the k-th in line,
        ``mean x ((k - 1 + running) / workers + 1)``; while running, the mean less the time
        it has run (at least 0).
        """
        with self._cond:
            mean = sum(self._seconds) / len(self._seconds) if self._seconds else None
            if job_id in self._running:
                elapsed = time.monotonic() - self._running[job_id]
                return 0, None if mean is None else round(max(0.0, mean - elapsed), 1)
            for k, job in enumerate(self._items, start=1):
                if job.id == job_id:
                    ahead = (k - 1 + self._active) / max(1, self.workers)
                    return k, None if mean is None else round(mean * (ahead + 1), 1)
        return None

    def _loop(self) -> None:
        while True:
            with self._cond:
                while not self._items and not self._stopping:
                    self._cond.wait()
                if self._stopping:
                    return
                job = self._items.popleft()
                self._active += 1
                self._running[job.id] = time.monotonic()
            t0 = time.perf_counter()
            try:
                self.run(job)
            except BaseException:  # run() reports its own errors; a worker must never die
                log.exception("worker: job failed outside the runner", extra={"job": job.id})
            finally:
                with self._cond:
                    self._active -= 1
                    self._running.pop(job.id, None)
                    self._seconds.append(time.perf_counter() - t0)
                    self._cond.notify_all()

    def shutdown(self, timeout: float | None = None) -> list[Job]:
        """Stop taking jobs, wait for running ones to finish, return those never started."""
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        deadline = None if timeout is None else time.monotonic() + timeout
        for t in self._threads:
            t.join(None if deadline is None else max(0.0, deadline - time.monotonic()))
        with self._cond:
            left = list(self._items)
            self._items.clear()
        return left

    def wait_idle(self, timeout: float = 30.0) -> bool:
        """Block until no job waits or runs (tests); ``False`` on timeout."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while self._items or self._active:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._cond.wait(remaining)
        return True
