"""The running service: store, analyzer, job queue, key checks and rate limits, started and
stopped by the app's lifespan."""
from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import time
import uuid
from typing import Any

from spinexr.analyze import Analyzer
from spinexr.models.pack import resolve_packs
from spinexr.models.threads import apply_thread_plan, plan_threads
from spinexr.errors import SpinexrError, StorageError
from spinexr.service.auth import KeyVerifier, LoginThrottle, RateLimiter, retry_after
from spinexr.service.inflight import Hold, InflightBytes
from spinexr.service.jobs import Job, JobQueue, QueueFull, ShuttingDown
from spinexr.service.observe import Metrics
from spinexr.service.pipeline import Outcome, Runner
from spinexr.service.problems import ApiError, status_of_read_error
from spinexr.service.settings import Settings
from spinexr.service.store import Store

log = logging.getLogger("spinexr.service")


def load_analyzer(settings: Settings):
    """The analyzer of ``settings.pack_dir`` (default: the CLI's default packs, see
    :func:`~spinexr.models.pack.resolve_packs`).

    First applies one thread plan for the process (:mod:`spinexr.models.threads`): the
    ``settings.workers`` analysis threads share the CPUs free at start, so torch and the
    ONNX Runtime sessions created here get ``free / workers`` intra-op threads each instead
    of every core each (workers x cores threads on the cores: the collapse under load the
    plan exists for). Uploads are decoded in the analysis threads: no decode processes."""
    pack, vert = resolve_packs(settings.pack_dir, settings.vertebrae_dir)  # fails first, alone
    plan = apply_thread_plan(plan_threads(settings.workers, decode_workers=0))
    log.info("thread plan", extra={"fields": {
        "intra_op_threads": plan.intra_op, "workers": settings.workers, "cpus": plan.cpus,
        "free_cpus": plan.free}})
    return Analyzer(pack, vertebrae_pack=vert)


class Service:
    """Everything the route handlers use; one per app."""

    def __init__(self, settings: Settings, analyzer=None) -> None:
        self.settings = settings
        self.analyzer = analyzer
        self.store: Store | None = None
        self.queue: JobQueue | None = None
        self.runner: Runner | None = None
        self.verifier: KeyVerifier | None = None
        self.limiter = RateLimiter(settings.rate_limit_per_minute)
        self.logins = LoginThrottle(settings.login_failures_per_minute)
        self.inflight = InflightBytes(settings.max_inflight_bytes, self._wait_estimate)
        self._holds: dict[str, Hold] = {}
        self.metrics = Metrics(queue_depth=lambda: self.queue.depth if self.queue else 0,
                               active=lambda: self.queue.active if self.queue else 0)
        self.stopping = False

    # ------------------------------------------------------------ life cycle
    def start(self) -> None:
        """Open and migrate the store, load the models, recover interrupted work, start workers."""
        s = self.settings
        self.store = Store.open(s.db_url)
        self.store.check_writable()
        self.verifier = KeyVerifier(self.store)
        if self.analyzer is None:
            self.analyzer = load_analyzer(s)
        self.runner = Runner(self.analyzer, self.store, s, self.metrics)
        self.queue = JobQueue(self._run, workers=s.workers, size=s.queue_size)
        purged = self.store.purge(s.retention_days)
        recovery = self.store.recover()
        self.queue.start()
        for analysis_id in recovery.requeued:
            row = self._audit_interrupted(analysis_id, "requeued")
            self.queue.requeue(Job(analysis_id, row.get("owner", ""),
                                   explain=_split(row.get("explain", "")),
                                   sha256=row.get("input_sha256", ""),
                                   region=row.get("region") or None))
        for analysis_id in recovery.failed:
            self._audit_interrupted(analysis_id, "interrupted")
        log.info("service started", extra={"fields": {
            "pack": self.analyzer.info.name, "pack_version": self.analyzer.info.version,
            "workers": s.workers, "queue_size": s.queue_size, "purged": purged,
            "requeued": len(recovery.requeued), "failed_after_restart": len(recovery.failed)}})

    def stop(self, timeout: float | None = 60.0) -> None:
        """Finish running jobs; those still queued stay ``queued`` in the store if their upload
        is stored (they run after the next start), else they are marked failed."""
        self.stopping = True
        if self.queue is not None:
            for job in self.queue.shutdown(timeout):
                try:
                    self._leave_queued(job)
                except StorageError as exc:
                    log.error("cannot record an analysis left at shutdown", extra={"fields": {
                        "analysis": job.id, "reason": exc.reason}})
                if job.future is not None and not job.future.done():
                    job.future.set_exception(ShuttingDown())
        if self.store is not None:
            self.store.close()
        log.info("service stopped")

    def _leave_queued(self, job: Job) -> None:
        """A job never started: queued again if its upload is stored, else failed (audited)."""
        if self.store.input_of(job.id) is not None:
            self.store.set_status(job.id, "queued")
            return
        self.store.set_status(job.id, "failed", error=(
            "shutdown", "the service stopped before this analysis started; submit the file "
                        "again"))
        self.store.audit(job.owner, "analyze", "shutdown", analysis_id=job.id,
                         sha256=job.sha256, pack_version=self.analyzer.info.version)

    def _audit_interrupted(self, analysis_id: str, outcome: str) -> dict[str, Any]:
        """Audit an analysis a crash interrupted (``requeued`` or ``interrupted``); its row."""
        row = self.store.get(analysis_id) or {}
        self.store.audit(row.get("owner", ""), "analyze", outcome, analysis_id=analysis_id,
                         sha256=row.get("input_sha256"), pack_version=row.get("pack_version"))
        return row

    def _run(self, job: Job) -> Outcome:
        """Run ``job`` (in a worker thread). An outcome spoiled by a storage fault is told to a
        waiting caller as 503 ``storage_unavailable``, not as an internal error."""
        started = time.monotonic()
        future, job.future = job.future, None
        try:
            outcome = self.runner(job)
        finally:
            hold = self._holds.pop(job.id, None)
            if hold is not None:
                hold.release()
        if outcome.error and outcome.error[2] >= 500 and self.store.last_fault >= started:
            outcome = Outcome("failed", error=(
                "storage_unavailable", f"analysis {job.id} ran but the service cannot use its "
                "database right now; retry later", 503))
        if future is not None and not future.done():
            future.set_result(outcome)
        return outcome

    def _wait_estimate(self) -> float:
        """Seconds until the queue has room again (Retry-After of in-flight byte refusals)."""
        return self.queue.estimate_wait() if self.queue is not None else 1.0

    def store_writable(self) -> bool:
        """Whether the store takes a write now (the readiness probe); logs why not."""
        if self.store is None:
            return False
        try:
            self.store.check_writable()
        except StorageError as exc:
            log.warning("the store takes no writes", extra={"fields": {"reason": exc.reason}})
            return False
        return True

    @property
    def ready(self) -> bool:
        """Started, models loaded, not stopping (the store is checked by :meth:`store_writable`)."""
        return (not self.stopping and self.analyzer is not None and self.store is not None
                and self.queue is not None)

    # ------------------------------------------------------------ work
    async def submit(self, upload, owner: str, explain: tuple[str, ...], *, wait: bool,
                     hold: Hold | None = None, region: str | None = None
                     ) -> tuple[str, Outcome | None]:
        """Queue an upload; with ``wait`` return its outcome, else ``None`` at once. ``hold``
        (the upload's in-flight bytes) is released when the analysis ends or is refused;
        ``region`` names the spine region of an input whose header names none.

        Raises:
            ApiError: 429 when the queue is full, 503 when shutting down.
        """
        analysis_id = uuid.uuid4().hex
        future: concurrent.futures.Future | None = concurrent.futures.Future() if wait else None
        try:
            await self._enqueue(analysis_id, upload, owner, explain, wait, future, hold,
                                region)
        except BaseException:
            if hold is not None:
                self._holds.pop(analysis_id, None)
                hold.release()
            raise
        if future is None:
            return analysis_id, None
        try:
            return analysis_id, await asyncio.wrap_future(future)
        except ShuttingDown:
            raise _unavailable() from None

    async def _enqueue(self, analysis_id: str, upload, owner: str, explain: tuple[str, ...],
                       wait: bool, future, hold: Hold | None, region: str | None = None
                       ) -> None:
        from starlette.concurrency import run_in_threadpool

        if self.stopping:
            raise _unavailable()
        keep = (not wait) or self.settings.store_inputs
        info = self.analyzer.info
        await run_in_threadpool(
            self.store.create_analysis, id=analysis_id, owner=owner, sha256=upload.sha256,
            size=len(upload.data), pack_name=info.name, pack_version=info.version,
            explain=",".join(explain), data=upload.data if keep else None,
            filename=upload.filename, region=region or "")
        job = Job(analysis_id, owner, upload.data, upload.filename, explain, upload.sha256, future,
                  region=region)
        if hold is not None:
            self._holds[analysis_id] = hold     # before the worker can finish and release it
        try:
            self.queue.submit(job)
        except (QueueFull, ShuttingDown) as exc:
            await run_in_threadpool(self._discard, analysis_id, owner, upload.sha256, exc)
            if isinstance(exc, ShuttingDown):
                raise _unavailable() from None
            self.metrics.rejected.labels(reason="queue_full").inc()
            raise ApiError(429, "queue_full", f"{upload.label} was not queued: "
                           f"{self.settings.queue_size} analyses are waiting already; retry "
                           "later", {"Retry-After": retry_after(exc.retry_after)}) from None

    def precheck(self, upload, owner: str) -> None:
        """Refuse an upload not worth a worker's time (:func:`spinexr.io.precheck.precheck`):
        4xx with the reader's code, audited, before anything is queued."""
        from spinexr.io.precheck import precheck

        try:
            precheck(upload.data, upload.label, max_pixels=self.settings.max_pixels)
        except SpinexrError as exc:
            self.metrics.rejected.labels(reason="precheck").inc()
            self.store.audit(owner, "analyze", exc.code, sha256=upload.sha256,
                             pack_version=self.analyzer.info.version)
            raise ApiError(status_of_read_error(exc), exc.code, str(exc)) from None

    def _discard(self, analysis_id: str, owner: str, sha256: str, exc: Exception) -> None:
        """Forget an analysis whose id was never given out (the queue refused it)."""
        self.store.discard(analysis_id)
        self.store.audit(owner, "analyze", "queue_full" if isinstance(exc, QueueFull)
                         else "shutting_down", sha256=sha256,
                         pack_version=self.analyzer.info.version)

    def model_info(self) -> dict[str, Any]:
        info = self.analyzer.info
        pack = getattr(self.analyzer, "pack", None)
        manifest = getattr(pack, "manifest", None)
        return {"name": info.name, "version": info.version, "synthetic": info.synthetic,
                "card": dict(manifest.card) if manifest else {},
                "models": sorted(manifest.models) if manifest else []}


def _unavailable() -> ApiError:
    return ApiError(503, "shutting_down", "the service is shutting down; retry shortly",
                    {"Retry-After": "5"})


def _split(text: str) -> tuple[str, ...]:
    return tuple(p for p in (text or "").split(",") if p)
