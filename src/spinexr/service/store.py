"""The service database: analyses, their renditions and inputs, API keys and the audit log.

SQLite (rollback journal, no memory mapping, foreign keys on, a busy timeout) by default,
PostgreSQL through its URL. The schema is created and upgraded by the Alembic migrations in
``migrations/`` (:func:`migrate`), run when the app starts. Every method opens its own short
transaction, so one :class:`Store` is shared by the event loop and the worker threads.

A database that fails (read-only, corrupt, disk full, unreachable) raises
:class:`~spinexr.errors.StorageError` from every method, never a driver exception: the service
answers 503 and ``spinexr serve`` refuses to start. SQLite runs without WAL on purpose: WAL
keeps its index in ``spinexr.db-shm`` memory-mapped by every connection, and a shortened or
replaced file under that mapping kills the whole process with SIGBUS instead of raising an
error. The rollback journal and ``mmap_size=0`` map nothing, so every file fault is an error.
"""
from __future__ import annotations

import functools
import logging
import time
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Iterable, Mapping

import sqlalchemy as sa

from spinexr.errors import ConfigError, StorageError
from spinexr.service.tables import (analyses, api_keys, audit, heartbeat, inputs, metadata,
                                    renditions)

log = logging.getLogger("spinexr.service")
MIGRATIONS = Path(__file__).resolve().parent / "migrations"
PENDING = ("queued", "running")


def utcnow() -> datetime:
    """Naive UTC (stored the same way by SQLite and PostgreSQL)."""
    return datetime.now(timezone.utc).replace(tzinfo=None)


#: Driver errors that mean the database itself fails (not a bug in a query): read-only,
#: corrupt, locked past the busy timeout, disk full, unreachable.
_FAULTS = (sa.exc.OperationalError, sa.exc.DatabaseError, sa.exc.InterfaceError)
_BUGS = (sa.exc.IntegrityError, sa.exc.ProgrammingError, sa.exc.DataError,
         sa.exc.NotSupportedError)


def create_engine(url: str) -> sa.Engine:
    """An engine for ``url``; SQLite gets a rollback journal, no memory mapping, foreign keys
    and a 10 s busy timeout (see the module docstring for why not WAL)."""
    try:
        parsed = sa.make_url(url)
    except sa.exc.ArgumentError as exc:
        raise ConfigError(f"not a database URL: {exc}", "SPINEXR_DATABASE_URL") from exc
    if parsed.get_backend_name() != "sqlite":
        return sa.create_engine(url, pool_pre_ping=True)
    database = parsed.database or ""
    if database and database != ":memory:" and not database.startswith("file:"):
        try:
            Path(database).parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StorageError(f"cannot create the database folder ({exc.strerror or exc})",
                               str(Path(database).parent)) from None
    engine = sa.create_engine(url, connect_args={"check_same_thread": False, "timeout": 10})

    @sa.event.listens_for(engine, "connect")
    def _pragmas(dbapi_conn, _record) -> None:
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA busy_timeout=10000")
        cur.execute("PRAGMA mmap_size=0")
        try:   # converts a WAL database of an older version; a read-only one stays as it is
            cur.execute("PRAGMA journal_mode=DELETE")
        except Exception:  # noqa: BLE001 - the store's own checks report a read-only database
            pass
        cur.execute("PRAGMA foreign_keys=ON")
        cur.close()

    return engine


def migrate(engine: sa.Engine, revision: str = "head") -> None:
    """Upgrade the database to ``revision`` with the package's Alembic migrations."""
    from alembic import command
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, revision)


@dataclass(frozen=True)
class KeyRow:
    id: str
    name: str
    role: str
    salt: bytes
    hash: bytes
    created: datetime
    revoked: datetime | None


@dataclass(frozen=True)
class Recovery:
    """What :meth:`Store.recover` did: ids to run again, ids marked failed."""

    requeued: tuple[str, ...]
    failed: tuple[str, ...]


def _guarded(method):
    """Turn the driver's storage faults raised by ``method`` into :class:`StorageError`."""

    @functools.wraps(method)
    def wrapper(self: "Store", *args, **kwargs):
        try:
            return method(self, *args, **kwargs)
        except _BUGS:
            raise
        except _FAULTS as exc:
            raise self._fault(exc) from None

    return wrapper


class Store:
    """All database access of the service.

    Attributes:
        last_fault: ``time.monotonic()`` of the last storage fault, 0.0 if none yet.
    """

    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine
        self.last_fault = 0.0
        url = engine.url
        self.label = (url.database or "database") if url.get_backend_name() == "sqlite" \
            else f"the {url.get_backend_name()} database"

    @classmethod
    def open(cls, url: str, *, upgrade: bool = True) -> "Store":
        """Open (and unless ``upgrade`` is false, migrate) the database of ``url``.

        Raises:
            StorageError: the database cannot be opened, read or upgraded.
        """
        store = cls(create_engine(url))
        if upgrade:
            store._migrate()
        return store

    @_guarded
    def _migrate(self) -> None:
        migrate(self.engine)

    def close(self) -> None:
        self.engine.dispose()

    def _fault(self, exc: Exception) -> StorageError:
        self.last_fault = time.monotonic()
        reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
        return StorageError(f"the database failed ({reason}); check that its files are "
                            "writable and intact and that the disk has room", self.label)

    def ping(self) -> bool:
        """Whether the database answers a read."""
        try:
            with self.engine.connect() as conn:
                conn.execute(sa.select(sa.literal(1)))
            return True
        except sa.exc.SQLAlchemyError:
            return False

    @_guarded
    def check_writable(self) -> None:
        """Commit a write (the heartbeat row), as the readiness probe and start-up do.

        Raises:
            StorageError: the database cannot be written (read-only, corrupt, disk full).
        """
        with self.engine.begin() as conn:
            done = conn.execute(heartbeat.update().where(heartbeat.c.id == 1)
                                .values(ts=utcnow())).rowcount
            if not done:
                conn.execute(heartbeat.insert().values(id=1, ts=utcnow()))

    # ------------------------------------------------------------ analyses
    @_guarded
    def create_analysis(self, *, id: str, owner: str, sha256: str, size: int, pack_name: str,
                        pack_version: str, explain: str = "", data: bytes | None = None,
                        filename: str = "", region: str = "") -> None:
        """A new ``queued`` analysis; ``data`` (the upload) is stored when given; ``region``
        the spine region the submitter named for an input without a body part."""
        now = utcnow()
        with self.engine.begin() as conn:
            conn.execute(analyses.insert().values(
                id=id, created=now, updated=now, status="queued", owner=owner,
                input_sha256=sha256, input_size=size, explain=explain, region=region,
                pack_name=pack_name,
                pack_version=pack_version))
            if data is not None:
                conn.execute(inputs.insert().values(analysis_id=id, data=data,
                                                    filename=filename[:255]))

    @_guarded
    def set_status(self, id: str, status: str, *, error: tuple[str, str] | None = None) -> None:
        values: dict[str, Any] = {"status": status, "updated": utcnow()}
        if error is not None:
            values.update(error_code=error[0], error_message=error[1])
        with self.engine.begin() as conn:
            conn.execute(analyses.update().where(analyses.c.id == id).values(**values))

    @_guarded
    def finish(self, id: str, status: str, result: Mapping[str, Any] | None,
               files: Mapping[str, tuple[str, bytes]], *, error: tuple[str, str] | None = None,
               keep_input: bool = False) -> None:
        """Record the outcome, its renditions (name -> (media type, bytes)) in one transaction
        and, unless ``keep_input``, delete the stored upload."""
        with self.engine.begin() as conn:
            conn.execute(analyses.update().where(analyses.c.id == id).values(
                status=status, updated=utcnow(), result=dict(result) if result else None,
                error_code=error[0] if error else None, error_message=error[1] if error else None))
            conn.execute(renditions.delete().where(renditions.c.analysis_id == id))
            if files:
                conn.execute(renditions.insert(), [
                    {"analysis_id": id, "name": n, "media_type": m, "data": d}
                    for n, (m, d) in files.items()])
            if not keep_input:
                conn.execute(inputs.delete().where(inputs.c.analysis_id == id))

    @_guarded
    def discard(self, id: str) -> None:
        """Delete an analysis that never ran and whose id was never given out."""
        with self.engine.begin() as conn:
            conn.execute(inputs.delete().where(inputs.c.analysis_id == id))
            conn.execute(analyses.delete().where(analyses.c.id == id,
                                                 analyses.c.status == "queued"))

    @_guarded
    def get(self, id: str) -> dict[str, Any] | None:
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(analyses).where(analyses.c.id == id)).mappings().first()
        return dict(row) if row else None

    @_guarded
    def rendition_names(self, id: str) -> list[str]:
        with self.engine.connect() as conn:
            return list(conn.execute(sa.select(renditions.c.name).where(
                renditions.c.analysis_id == id).order_by(renditions.c.name)).scalars())

    @_guarded
    def rendition(self, id: str, name: str) -> tuple[str, bytes] | None:
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(renditions.c.media_type, renditions.c.data).where(
                renditions.c.analysis_id == id, renditions.c.name == name)).first()
        return (row[0], bytes(row[1])) if row else None

    @_guarded
    def input_of(self, id: str) -> tuple[bytes, str] | None:
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(inputs.c.data, inputs.c.filename).where(
                inputs.c.analysis_id == id)).first()
        return (bytes(row[0]), row[1]) if row else None

    @_guarded
    def analyses_of_study(self, study_uid: str, *, owner: str | None = None,
                          limit: int = 1000) -> list[dict[str, Any]]:
        """Finished analyses whose source is in the study ``study_uid`` (``source.
        study_instance_uid`` of the stored result), oldest first (DICOMweb's QIDO/WADO)."""
        study = analyses.c.result["source"]["study_instance_uid"].as_string()
        query = (sa.select(analyses.c.id, analyses.c.owner, analyses.c.status)
                 .where(study == study_uid, analyses.c.status.notin_(PENDING))
                 .order_by(analyses.c.seq).limit(limit))
        if owner is not None:
            query = query.where(analyses.c.owner == owner)
        with self.engine.connect() as conn:
            return [dict(r) for r in conn.execute(query).mappings()]

    @_guarded
    def history(self, *, limit: int, cursor: int | None = None,
                owner: str | None = None) -> tuple[list[dict[str, Any]], int | None]:
        """Newest first; returns the rows and the cursor of the next page (``None``: last)."""
        cols = [analyses.c.seq, analyses.c.id, analyses.c.created, analyses.c.status,
                analyses.c.owner, analyses.c.input_sha256, analyses.c.pack_name,
                analyses.c.pack_version, analyses.c.error_code, analyses.c.result]
        query = sa.select(*cols).order_by(analyses.c.seq.desc()).limit(limit + 1)
        if cursor is not None:
            query = query.where(analyses.c.seq < cursor)
        if owner is not None:
            query = query.where(analyses.c.owner == owner)
        with self.engine.connect() as conn:
            rows = [dict(r) for r in conn.execute(query).mappings()]
        more = len(rows) > limit
        rows = rows[:limit]
        return rows, (rows[-1]["seq"] if more and rows else None)

    @_guarded
    def recover(self) -> Recovery:
        """After a crash: analyses left queued/running whose upload is stored go back to
        ``queued``; the others are marked ``failed`` with the reason. None is dropped."""
        with self.engine.begin() as conn:
            rows = conn.execute(
                sa.select(analyses.c.id, inputs.c.analysis_id.isnot(None).label("has_input"))
                .select_from(analyses.outerjoin(inputs, inputs.c.analysis_id == analyses.c.id))
                .where(analyses.c.status.in_(PENDING)).order_by(analyses.c.seq)).all()
            again = [r.id for r in rows if r.has_input]
            lost = [r.id for r in rows if not r.has_input]
            now = utcnow()
            if again:
                conn.execute(analyses.update().where(analyses.c.id.in_(again))
                             .values(status="queued", updated=now))
            if lost:
                conn.execute(analyses.update().where(analyses.c.id.in_(lost)).values(
                    status="failed", updated=now, error_code="interrupted",
                    error_message="the service stopped before this analysis finished and the "
                                  "upload was not kept; submit the file again"))
        return Recovery(tuple(again), tuple(lost))

    @_guarded
    def purge(self, days: int, *, now: datetime | None = None) -> int:
        """Delete finished analyses (with renditions and inputs) older than ``days`` days;
        returns how many. ``days == 0`` keeps everything. The audit log is kept."""
        if days <= 0:
            return 0
        cutoff = (now or utcnow()) - timedelta(days=days)
        old = sa.select(analyses.c.id).where(analyses.c.created < cutoff,
                                             analyses.c.status.notin_(PENDING))
        with self.engine.begin() as conn:   # explicit child deletes: PostgreSQL and SQLite alike
            conn.execute(renditions.delete().where(renditions.c.analysis_id.in_(old)))
            conn.execute(inputs.delete().where(inputs.c.analysis_id.in_(old)))
            return conn.execute(analyses.delete().where(analyses.c.id.in_(old))).rowcount or 0

    # ------------------------------------------------------------ keys
    @_guarded
    def add_key(self, *, id: str, name: str, role: str, salt: bytes, hash: bytes) -> None:
        with self.engine.begin() as conn:
            taken = conn.execute(sa.select(api_keys.c.id).where(api_keys.c.name == name)).first()
            if taken:
                raise ConfigError(f"a key called {name!r} exists already; pick another name "
                                  "or revoke it", "NAME")
            conn.execute(api_keys.insert().values(id=id, name=name, role=role, salt=salt,
                                                  hash=hash, created=utcnow()))

    @_guarded
    def key(self, id: str) -> KeyRow | None:
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(api_keys).where(api_keys.c.id == id)).mappings().first()
        return KeyRow(**row) if row else None

    @_guarded
    def keys(self) -> list[KeyRow]:
        with self.engine.connect() as conn:
            return [KeyRow(**r) for r in conn.execute(
                sa.select(api_keys).order_by(api_keys.c.created)).mappings()]

    @_guarded
    def revoke_key(self, name: str) -> str | None:
        """Revoke the key called ``name``; its id, or ``None`` if there is no such active key."""
        active = (api_keys.c.name == name) & api_keys.c.revoked.is_(None)
        with self.engine.begin() as conn:
            key_id = conn.execute(sa.select(api_keys.c.id).where(active)).scalar()
            if key_id is not None:
                conn.execute(api_keys.update().where(active).values(revoked=utcnow()))
        return key_id

    # ------------------------------------------------------------ audit
    @_guarded
    def audit(self, key_name: str, action: str, outcome: str, *, analysis_id: str | None = None,
              sha256: str | None = None, pack_version: str | None = None,
              subject: str | None = None) -> None:
        """Append an audit row: who (``key_name``) did what to which analysis or ``subject``
        (e.g. the id of the API key created or revoked; never a secret)."""
        with self.engine.begin() as conn:
            conn.execute(audit.insert().values(
                ts=utcnow(), key_name=key_name, action=action, outcome=outcome,
                analysis_id=analysis_id, input_sha256=sha256, pack_version=pack_version,
                subject=subject))

    @_guarded
    def audit_rows(self, limit: int = 100) -> list[dict[str, Any]]:
        with self.engine.connect() as conn:
            return [dict(r) for r in conn.execute(
                sa.select(audit).order_by(audit.c.seq.desc()).limit(limit)).mappings()]


def check_database(url: str) -> None:
    """Open, upgrade and write the database of ``url`` once (``spinexr serve`` before it starts).

    Raises:
        StorageError: it cannot be opened, upgraded or written.
    """
    store = Store.open(url)
    try:
        store.check_writable()
    finally:
        store.close()


def table_names(engine: sa.Engine) -> Iterable[str]:
    return sorted(sa.inspect(engine).get_table_names())


__all__ = ["KeyRow", "Recovery", "Store", "check_database", "create_engine", "metadata",
           "migrate", "utcnow"]
