"""The node's on-disk queue: received images and results waiting for delivery survive a crash.

One SQLite database (``<data dir>/pacs/queue.db``, rollback journal, synchronous commits) holds
the state; the bytes live beside it as files, written atomically before the row that names them
is committed. So a C-STORE answered with success is on disk, and after a restart:

- images ``received`` (or ``analysing`` when the node stopped) are analysed;
- results ``pending`` are sent, to every destination that has not confirmed them;
- a second C-STORE of a SOP Instance already in the queue is acknowledged and changes nothing
  (the instance is the primary key), so a resend creates no second analysis and no second
  results.

States of an image: ``received`` -> ``analysing`` -> ``done`` (or ``failed``); ``skipped`` when
the incoming filter declined it. Of a delivery (one result object to one destination):
``pending`` -> ``sent``, or ``dead`` once it has failed for longer than the retry policy allows.
Each method takes the queue's lock and commits before it returns; one :class:`DiskQueue` is
shared by the listener's association threads, the analysis worker and the senders.
"""
from __future__ import annotations

import hashlib
import os
import sqlite3
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

_SCHEMA = """
CREATE TABLE IF NOT EXISTS instances (
    sop_uid TEXT PRIMARY KEY, study_uid TEXT NOT NULL, sop_class TEXT NOT NULL,
    calling_aet TEXT NOT NULL, sha256 TEXT NOT NULL, size INTEGER NOT NULL, file TEXT,
    state TEXT NOT NULL, outcome TEXT, abnormal INTEGER, analysis_id TEXT, error TEXT,
    received REAL NOT NULL, updated REAL NOT NULL);
CREATE INDEX IF NOT EXISTS instances_state ON instances (state, study_uid);
CREATE TABLE IF NOT EXISTS deliveries (
    object_uid TEXT NOT NULL, destination TEXT NOT NULL, source_uid TEXT NOT NULL,
    kind TEXT NOT NULL, sop_class TEXT NOT NULL, file TEXT NOT NULL, state TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0, created REAL NOT NULL, next_try REAL NOT NULL,
    sent REAL, last_error TEXT, PRIMARY KEY (object_uid, destination));
CREATE INDEX IF NOT EXISTS deliveries_due ON deliveries (state, destination, next_try);
CREATE TABLE IF NOT EXISTS events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, ts REAL NOT NULL, action TEXT NOT NULL,
    outcome TEXT NOT NULL, subject TEXT);
"""


def uid_key(uid: str) -> str:
    """A short, stable, non-reversible name for a UID (logs, file names, audit subjects)."""
    return hashlib.sha256(uid.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class Instance:
    """A received image in the queue."""

    sop_uid: str
    study_uid: str
    sop_class: str
    calling_aet: str
    sha256: str
    size: int
    path: Path | None
    state: str
    received: float


@dataclass(frozen=True)
class Delivery:
    """One result object for one destination."""

    object_uid: str
    destination: str
    source_uid: str
    kind: str
    sop_class: str
    path: Path
    attempts: int
    created: float


@dataclass(frozen=True)
class Result:
    """An analysed image's outcome and the result objects to deliver (kind -> (SOP Instance
    UID, SOP Class UID, bytes))."""

    sop_uid: str
    outcome: str
    abnormal: bool | None
    analysis_id: str | None
    objects: dict[str, tuple[str, str, bytes]]
    error: str | None = None


class DiskQueue:
    """The queue in ``folder`` (created if needed)."""

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)
        self.incoming = self.folder / "incoming"
        self.outgoing = self.folder / "outgoing"
        for d in (self.incoming, self.outgoing):
            d.mkdir(parents=True, exist_ok=True)
        self._lock = threading.RLock()
        self._db = sqlite3.connect(self.folder / "queue.db", check_same_thread=False,
                                   timeout=30, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=DELETE")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(_SCHEMA)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    # ------------------------------------------------------------------ receiving
    def known(self, sop_uid: str) -> bool:
        with self._lock:
            return self._db.execute("SELECT 1 FROM instances WHERE sop_uid = ?",
                                    (sop_uid,)).fetchone() is not None

    def admit(self, *, sop_uid: str, study_uid: str, sop_class: str, calling_aet: str,
              data: bytes | None, skipped: str | None = None) -> bool:
        """Queue a received image (its file written and synced first); ``False`` if the SOP
        Instance is known already (nothing changes). ``skipped``: the filter's reason; the
        image is recorded as skipped and its bytes are not kept."""
        now = time.time()
        sha = hashlib.sha256(data or b"").hexdigest()
        with self._lock:
            if self.known(sop_uid):
                return False
            name = None
            if skipped is None:
                name = f"{uid_key(sop_uid)}-{uuid.uuid4().hex[:8]}.dcm"
                _write_atomic(self.incoming / name, data or b"")
            self._db.execute(
                "INSERT INTO instances (sop_uid, study_uid, sop_class, calling_aet, sha256, "
                "size, file, state, error, received, updated) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                (sop_uid, study_uid, sop_class, calling_aet, sha, len(data or b""), name,
                 "skipped" if skipped else "received", skipped, now, now))
            return True

    # ------------------------------------------------------------------ analysing
    def recover(self) -> int:
        """After a restart: images left ``analysing`` go back to ``received``; returns how many.
        Stray files (written by a C-STORE whose row was never committed) are removed."""
        with self._lock:
            n = self._db.execute("UPDATE instances SET state = 'received' "
                                 "WHERE state = 'analysing'").rowcount
            named = {r[0] for r in self._db.execute(
                "SELECT file FROM instances WHERE file IS NOT NULL")}
            for f in self.incoming.iterdir():
                if f.name not in named:
                    f.unlink(missing_ok=True)
            return n

    def claim_ready(self, window_s: float, limit: int,
                    now: float | None = None) -> list[Instance]:
        """Claim (mark ``analysing``) the received images of the quiet studies, those whose
        last image arrived ``window_s`` seconds ago or more: oldest study first, whole studies
        while they fit in ``limit`` images (a study larger than ``limit`` alone is cut)."""
        now = time.time() if now is None else now
        with self._lock:
            studies = self._db.execute(
                "SELECT study_uid, COUNT(*) FROM instances WHERE state = 'received' "
                "GROUP BY study_uid HAVING MAX(received) <= ? ORDER BY MIN(received)",
                (now - window_s,)).fetchall()
            chosen, n = [], 0
            for uid, count in studies:
                if chosen and n + count > limit:
                    break
                chosen.append(uid)
                n += count
            rows = []
            for uid in chosen:
                rows += self._db.execute(
                    "SELECT sop_uid, study_uid, sop_class, calling_aet, sha256, size, file, "
                    "state, received FROM instances WHERE state = 'received' AND study_uid = ? "
                    "ORDER BY received LIMIT ?", (uid, limit - len(rows))).fetchall()
            self._db.executemany("UPDATE instances SET state = 'analysing', updated = ? "
                                 "WHERE sop_uid = ?", [(now, r[0]) for r in rows])
        return [Instance(*r[:6], self.incoming / r[6] if r[6] else None, "analysing", r[8])
                for r in rows]

    def next_ready_in(self, window_s: float, now: float | None = None) -> float | None:
        """Seconds until a study becomes ready (0: now; ``None``: nothing received)."""
        now = time.time() if now is None else now
        with self._lock:
            row = self._db.execute("SELECT MIN(last) FROM (SELECT MAX(received) AS last FROM "
                                   "instances WHERE state = 'received' GROUP BY study_uid)"
                                   ).fetchone()
        return None if row[0] is None else max(0.0, row[0] + window_s - now)

    def complete(self, results: Sequence[Result], destinations: Iterable[str],
                 *, keep_inputs: bool = False) -> None:
        """Record analysed images and queue their result objects for every destination, in one
        transaction; the objects' files are written first. Objects already queued for a
        destination (same SOP Instance UID) are not queued again."""
        dests = list(destinations)
        now = time.time()
        rows = []
        for r in results:
            for kind, (uid, sop_class, data) in r.objects.items():
                name = f"{uid_key(uid)}.dcm"
                _write_atomic(self.outgoing / name, data)
                rows += [(uid, d, r.sop_uid, kind, sop_class, name, now, now) for d in dests]
        with self._lock:
            files = {}
            self._db.execute("BEGIN IMMEDIATE")
            try:
                for r in results:
                    files[r.sop_uid] = self._db.execute(
                        "SELECT file FROM instances WHERE sop_uid = ?", (r.sop_uid,)).fetchone()
                    self._db.execute(
                        "UPDATE instances SET state = ?, outcome = ?, abnormal = ?, "
                        "analysis_id = ?, error = ?, updated = ?, file = ? WHERE sop_uid = ?",
                        ("failed" if r.error else "done", r.outcome,
                         None if r.abnormal is None else int(r.abnormal), r.analysis_id,
                         r.error, now, files[r.sop_uid][0] if keep_inputs and files[r.sop_uid]
                         else None, r.sop_uid))
                self._db.executemany(
                    "INSERT OR IGNORE INTO deliveries (object_uid, destination, source_uid, "
                    "kind, sop_class, file, state, created, next_try) "
                    "VALUES (?,?,?,?,?,?,'pending',?,?)", rows)
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
        if not keep_inputs:
            for f in files.values():
                if f and f[0]:
                    (self.incoming / f[0]).unlink(missing_ok=True)

    def study_summary(self, study_uid: str) -> dict[str, int]:
        """Counts of the study's images by outcome, and how many were abnormal."""
        with self._lock:
            rows = self._db.execute(
                "SELECT COALESCE(outcome, state), COUNT(*), SUM(COALESCE(abnormal, 0)) FROM "
                "instances WHERE study_uid = ? GROUP BY 1", (study_uid,)).fetchall()
        out = {k: n for k, n, _ in rows}
        out["abnormal"] = sum(int(a or 0) for _, _, a in rows)
        return out

    # ------------------------------------------------------------------ delivering
    def due(self, destination: str, limit: int = 32,
            now: float | None = None) -> list[Delivery]:
        now = time.time() if now is None else now
        with self._lock:
            rows = self._db.execute(
                "SELECT object_uid, destination, source_uid, kind, sop_class, file, attempts, "
                "created FROM deliveries WHERE state = 'pending' AND destination = ? AND "
                "next_try <= ? ORDER BY created, object_uid LIMIT ?",
                (destination, now, limit)).fetchall()
        return [Delivery(r[0], r[1], r[2], r[3], r[4], self.outgoing / r[5], r[6], r[7])
                for r in rows]

    def next_due_in(self, destination: str, now: float | None = None) -> float | None:
        now = time.time() if now is None else now
        with self._lock:
            row = self._db.execute("SELECT MIN(next_try) FROM deliveries WHERE state = "
                                   "'pending' AND destination = ?", (destination,)).fetchone()
        return None if row[0] is None else max(0.0, row[0] - now)

    def mark_sent(self, d: Delivery) -> None:
        with self._lock:
            self._db.execute("UPDATE deliveries SET state = 'sent', sent = ?, attempts = "
                             "attempts + 1, last_error = NULL WHERE object_uid = ? AND "
                             "destination = ?", (time.time(), d.object_uid, d.destination))
            self._drop_file_if_done(d)

    def mark_failed(self, d: Delivery, error: str, delay_s: float, dead_after_s: float) -> str:
        """Record a failed try; returns the new state (``pending`` with the next try in
        ``delay_s``, or ``dead`` once the delivery is ``dead_after_s`` old)."""
        now = time.time()
        state = "dead" if now - d.created >= dead_after_s else "pending"
        with self._lock:
            self._db.execute("UPDATE deliveries SET state = ?, attempts = attempts + 1, "
                             "next_try = ?, last_error = ? WHERE object_uid = ? AND "
                             "destination = ?", (state, now + delay_s, error[:500],
                                                 d.object_uid, d.destination))
        return state

    def _drop_file_if_done(self, d: Delivery) -> None:
        left = self._db.execute("SELECT 1 FROM deliveries WHERE object_uid = ? AND state != "
                                "'sent'", (d.object_uid,)).fetchone()
        if left is None:
            d.path.unlink(missing_ok=True)

    # ------------------------------------------------------------------ reporting
    def event(self, action: str, outcome: str, subject: str | None = None) -> None:
        """Append to the node's own audit trail (no patient data: hashed UIDs, AE titles)."""
        with self._lock:
            self._db.execute("INSERT INTO events (ts, action, outcome, subject) VALUES "
                             "(?,?,?,?)", (time.time(), action, outcome, subject))

    def events(self, action: str | None = None) -> list[tuple[str, str, str | None]]:
        with self._lock:
            q = "SELECT action, outcome, subject FROM events"
            args: tuple = ()
            if action:
                q, args = q + " WHERE action = ?", (action,)
            return [tuple(r) for r in self._db.execute(q + " ORDER BY seq", args)]

    def counts(self) -> dict[str, int]:
        """Images and deliveries by state (``instances.<state>``, ``deliveries.<state>``)."""
        with self._lock:
            out = {f"instances.{s}": n for s, n in self._db.execute(
                "SELECT state, COUNT(*) FROM instances GROUP BY state")}
            out.update({f"deliveries.{s}": n for s, n in self._db.execute(
                "SELECT state, COUNT(*) FROM deliveries GROUP BY state")})
        return out

    def deliveries(self, state: str | None = None) -> list[tuple[str, str, str, str, int]]:
        """(object UID, destination, source UID, state, attempts) rows."""
        with self._lock:
            q = "SELECT object_uid, destination, source_uid, state, attempts FROM deliveries"
            args: tuple = ()
            if state:
                q, args = q + " WHERE state = ?", (state,)
            return [tuple(r) for r in self._db.execute(q + " ORDER BY created, object_uid",
                                                       args)]

    def instance(self, sop_uid: str) -> dict | None:
        with self._lock:
            cur = self._db.execute("SELECT * FROM instances WHERE sop_uid = ?", (sop_uid,))
            row = cur.fetchone()
            return None if row is None else dict(zip([c[0] for c in cur.description], row))


def _write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


__all__ = ["Delivery", "DiskQueue", "Instance", "Result", "uid_key"]
