"""The DICOM node: listener -> on-disk queue -> the one process step -> senders.

Threads: pynetdicom's (one per incoming association) write received images to the queue and
answer; one analysis worker claims the images of quiet studies and calls
:meth:`spinexr.process.Processor.process` on them together; one sender per destination
delivers the result objects, with backoff. Every step is appended to the audit trail (the
queue's ``events`` table and, with a :class:`Recorder`, the web service's audit log) with hashed
UIDs and AE titles only: no patient names or IDs reach a log.
"""
from __future__ import annotations

import io
import logging
import threading
import time
import uuid
from dataclasses import dataclass
from typing import Protocol

from pydicom import dcmread

from spinexr.pacs.config import Destination, NodeConfig
from spinexr.pacs.filters import decide, header_meta
from spinexr.pacs.forward import Outgoing, send
from spinexr.pacs.listener import OUT_OF_RESOURCES, SUCCESS, Received, build_ae, handlers
from spinexr.pacs.metrics import NodeMetrics
from spinexr.pacs.queue import Delivery, DiskQueue, Instance, Result, uid_key
from spinexr.pacs.study import image_abnormal, study_verdict
from spinexr.process import Processed, ProcessOptions, Processor, Source

log = logging.getLogger("spinexr.pacs")
RESULT_KINDS = {"sr.dcm": "sr", "gsps.dcm": "gsps", "sc.dcm": "sc"}
_ID_NAMESPACE = uuid.UUID("6f1d7c52-5a7e-4d8e-9a47-3c2b9d1e0a13")


def analysis_id(sop_uid: str) -> str:
    """The store id of the analysis of a SOP Instance: stable, so a resend maps to it."""
    return uuid.uuid5(_ID_NAMESPACE, sop_uid).hex


@dataclass(frozen=True)
class Recorded:
    """An analysis done by the node, for the web service's store."""

    analysis_id: str
    owner: str
    sha256: str
    size: int
    processed: Processed
    explain: tuple[str, ...]


class Recorder(Protocol):
    """Where the node records its analyses and audit entries besides its own queue (the web
    service's store: see ``spinexr.service.external``). Methods may raise; the node logs."""

    def record(self, entry: Recorded) -> None: ...

    def audit(self, actor: str, action: str, outcome: str, *, analysis_id: str | None = None,
              sha256: str | None = None, subject: str | None = None) -> None: ...

    def delivery_failed(self, analysis_id: str, destination: str, reason: str) -> None: ...


class Node:
    """A running DICOM node (:meth:`start`, :meth:`stop`)."""

    def __init__(self, config: NodeConfig, processor: Processor, *,
                 recorder: Recorder | None = None, metrics: NodeMetrics | None = None) -> None:
        self.config, self.processor, self.recorder = config, processor, recorder
        self.metrics = metrics or NodeMetrics()
        self.queue: DiskQueue | None = None
        self._server = None
        self._stop = threading.Event()
        self._work = threading.Event()
        self._wake = {d.name: threading.Event() for d in config.destinations}
        self._threads: list[threading.Thread] = []

    # ------------------------------------------------------------------ life cycle
    def start(self) -> "Node":
        self.queue = DiskQueue(self.config.queue_dir)
        again = self.queue.recover()
        if again:
            self._audit("pacs", "pacs_resume", f"requeued {again}")
        self._gauge()
        ae = build_ae(self.config)
        self._server = ae.start_server(
            (self.config.host, self.config.port), block=False,
            evt_handlers=handlers(self.config, self.receive, self._rejected))
        self._spawn("spinexr-pacs-analysis", self._analysis_loop)
        for d in self.config.destinations:
            self._spawn(f"spinexr-pacs-send-{d.ae_title}", self._send_loop, d)
        log.info("DICOM node listening", extra={"fields": {
            "ae_title": self.config.ae_title, "port": self.port,
            "destinations": [d.name for d in self.config.destinations]}})
        return self

    @property
    def port(self) -> int:
        """The bound port (the configured one, or the one the OS chose for port 0)."""
        return int(self._server.server_address[1]) if self._server else self.config.port

    def stop(self, timeout: float = 30.0) -> None:
        """Stop listening, let the analysis in progress finish, stop the senders. What is
        queued stays on disk for the next start."""
        self._stop.set()
        self._work.set()
        for e in self._wake.values():
            e.set()
        if self._server is not None:
            self._server.shutdown()
            self._server = None
        for t in self._threads:
            t.join(timeout)
        self._threads.clear()
        if self.queue is not None:
            self.queue.close()
            self.queue = None

    def __enter__(self) -> "Node":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def _spawn(self, name: str, target, *args) -> None:
        t = threading.Thread(target=target, args=args, name=name, daemon=True)
        t.start()
        self._threads.append(t)

    # ------------------------------------------------------------------ receiving
    def receive(self, r: Received) -> int:
        """C-STORE: filter, queue (or acknowledge a duplicate), answer."""
        ds = r.dataset
        sop_uid, study_uid = str(ds.get("SOPInstanceUID", "")), str(ds.get("StudyInstanceUID",
                                                                            ""))
        actor = f"pacs:{r.calling_aet}"[:64]
        if not sop_uid or not study_uid:
            self.metrics.received.labels(outcome="invalid").inc()
            self._audit(actor, "pacs_receive", "missing_uid")
            return 0xC000
        decision = decide(header_meta(ds), self.config.filter)
        try:
            new = self.queue.admit(sop_uid=sop_uid, study_uid=study_uid,
                                   sop_class=str(ds.SOPClassUID), calling_aet=r.calling_aet,
                                   data=r.data if decision.analyse else None,
                                   skipped=None if decision.analyse else decision.reason)
        except Exception:  # noqa: BLE001 - disk full, database locked: the sender retries
            log.exception("cannot queue a received image")
            self.metrics.received.labels(outcome="error").inc()
            return OUT_OF_RESOURCES
        if not new:
            self.metrics.received.labels(outcome="duplicate").inc()
            self._audit(actor, "pacs_receive", "duplicate", subject=uid_key(sop_uid))
        elif not decision.analyse:
            self.metrics.received.labels(outcome="skipped").inc()
            self.metrics.skipped.labels(rule=decision.rule).inc()
            self._audit(actor, "pacs_filter", f"skipped:{decision.rule}",
                        subject=uid_key(sop_uid))
            log.info("image skipped by the filter", extra={"fields": {
                "instance": uid_key(sop_uid), "rule": decision.rule,
                "reason": decision.reason if decision.rule != "description" else "description"}})
        else:
            self.metrics.received.labels(outcome="queued").inc()
            self._audit(actor, "pacs_receive", "queued", subject=uid_key(sop_uid))
            self._work.set()
        self._gauge()
        return SUCCESS

    def _rejected(self, aet: str, reason: str) -> None:
        self.metrics.received.labels(outcome="association_rejected").inc()
        self._audit(f"pacs:{aet}"[:64], "pacs_associate", reason)

    # ------------------------------------------------------------------ analysing
    def _analysis_loop(self) -> None:
        while not self._stop.is_set():
            try:
                batch = self.queue.claim_ready(self.config.study_window_s, self.config.batch)
                if batch:
                    self._analyse(batch)
                    continue
                wait = self.queue.next_ready_in(self.config.study_window_s)
            except Exception:  # noqa: BLE001 - the worker must survive; the queue keeps it
                log.exception("analysis worker error")
                wait = 1.0
            self._work.wait(1.0 if wait is None else min(1.0, max(0.01, wait)))
            self._work.clear()

    def _analyse(self, batch: list[Instance]) -> None:
        readable = [i for i in batch if i.path is not None and i.path.exists()]
        options = ProcessOptions(explain=self.config.explain or None,
                                 uid_root=self.config.uid_root)
        sources = [Source(data=i.path.read_bytes(), name=f"instance {uid_key(i.sop_uid)}")
                   for i in readable]
        done = self.processor.process(sources, options) if sources else []
        results = [self._result(i, p) for i, p in zip(readable, done)]
        results += [Result(i.sop_uid, "failed", None, None, {}, "the queued file is missing")
                    for i in batch if i not in readable]
        self.queue.complete(results, [d.name for d in self.config.destinations],
                            keep_inputs=self.config.keep_inputs)
        for e in self._wake.values():
            e.set()
        for study in dict.fromkeys(i.study_uid for i in batch):
            v = study_verdict(self.queue.study_summary(study))
            self.metrics.studies.labels(verdict=v.verdict).inc()
            self._audit("pacs", "pacs_study", f"{v.verdict}:{v.abnormal}/{v.images}",
                        subject=uid_key(study))
        self._gauge()

    def _result(self, inst: Instance, done: Processed) -> Result:
        outcome = done.outcome
        self.metrics.analysed.labels(outcome=outcome).inc()
        if outcome == "refused":
            self.metrics.refused.inc()
        objects = {}
        for name, kind in RESULT_KINDS.items():
            if name in done.files:
                head = dcmread(io.BytesIO(done.files[name]), stop_before_pixels=True)
                objects[kind] = (str(head.SOPInstanceUID), str(head.SOPClassUID),
                                 done.files[name])
        aid = analysis_id(inst.sop_uid)
        actor = f"pacs:{inst.calling_aet}"[:64]
        if self.recorder is not None:
            try:
                self.recorder.record(Recorded(aid, actor, inst.sha256, inst.size, done,
                                              self.config.explain))
            except Exception:  # noqa: BLE001 - results still go to the PACS
                log.exception("cannot record an analysis in the store",
                              extra={"fields": {"analysis": aid}})
                aid = None
        self._audit(actor, "analyze", outcome, analysis_id=aid, sha256=inst.sha256,
                    subject=uid_key(inst.sop_uid))
        return Result(inst.sop_uid, outcome, image_abnormal(done.analysis), aid, objects)

    # ------------------------------------------------------------------ sending
    def _send_loop(self, dest: Destination) -> None:
        wake = self._wake[dest.name]
        while not self._stop.is_set():
            try:
                due = self.queue.due(dest.name)
                if due:
                    self._deliver(dest, due)
                    continue
                wait = self.queue.next_due_in(dest.name)
            except Exception:  # noqa: BLE001 - the sender must survive
                log.exception("sender error", extra={"fields": {"destination": dest.name}})
                wait = 1.0
            wake.wait(1.0 if wait is None else min(1.0, max(0.01, wait)))
            wake.clear()

    def _deliver(self, dest: Destination, due: list[Delivery]) -> None:
        results = send(dest, [Outgoing(d.object_uid, d.sop_class, d.path) for d in due],
                       calling_aet=self.config.ae_title,
                       timeout_s=self.config.network_timeout_s)
        retry = self.config.retry
        for d in due:
            r = results[d.object_uid]
            if r.ok:
                self.queue.mark_sent(d)
                self.metrics.sent.labels(destination=dest.name).inc()
                self.metrics.latency.labels(destination=dest.name).observe(r.seconds)
                self._audit("pacs", "pacs_send", "sent", subject=uid_key(d.object_uid))
                continue
            state = self.queue.mark_failed(d, r.error, retry.delay(d.attempts + 1),
                                           retry.dead_after_s)
            if state == "dead":
                self.metrics.dead.labels(destination=dest.name).inc()
                self._audit("pacs", "pacs_send", "dead_letter", subject=uid_key(d.object_uid))
                log.error("delivery dead-lettered", extra={"fields": {
                    "destination": dest.name, "object": uid_key(d.object_uid),
                    "attempts": d.attempts + 1, "error": r.error}})
                self._dead_letter(d, dest, r.error)
            else:
                self.metrics.retried.labels(destination=dest.name).inc()
                self._audit("pacs", "pacs_send", "retry", subject=uid_key(d.object_uid),
                            store=False)
        self._gauge()

    def _dead_letter(self, d: Delivery, dest: Destination, error: str) -> None:
        if self.recorder is None:
            return
        try:
            self.recorder.delivery_failed(analysis_id(d.source_uid), dest.name, error)
        except Exception:  # noqa: BLE001
            log.exception("cannot record a dead letter in the store")

    # ------------------------------------------------------------------ reporting
    def _audit(self, actor: str, action: str, outcome: str, *, analysis_id: str | None = None,
               sha256: str | None = None, subject: str | None = None,
               store: bool = True) -> None:
        try:
            if self.queue is not None:
                self.queue.event(action, outcome, subject)
        except Exception:  # noqa: BLE001 - auditing must not break the node
            log.exception("cannot append to the node's audit trail")
        if self.recorder is not None and store:
            try:
                self.recorder.audit(actor, action, outcome[:64], analysis_id=analysis_id,
                                    sha256=sha256, subject=subject)
            except Exception:  # noqa: BLE001
                log.exception("cannot append to the service's audit log")

    def _gauge(self) -> None:
        try:
            c = self.queue.counts()
        except Exception:  # noqa: BLE001
            return
        for state in ("received", "analysing"):
            self.metrics.depth.labels(queue=state).set(c.get(f"instances.{state}", 0))
        self.metrics.depth.labels(queue="pending").set(c.get("deliveries.pending", 0))
        self.metrics.depth.labels(queue="dead").set(c.get("deliveries.dead", 0))

    def idle(self) -> bool:
        """Nothing waits for analysis and nothing for delivery."""
        c = self.queue.counts()
        return not any(c.get(k) for k in ("instances.received", "instances.analysing",
                                          "deliveries.pending"))


__all__ = ["Node", "Recorded", "Recorder", "analysis_id"]
