"""Service settings: one frozen dataclass, read from ``SPINEXR_*`` environment variables.

Nothing is read at import time; :func:`Settings.from_env` reads the environment when called
(``spinexr serve`` calls it once, tests pass their own mapping or build ``Settings`` directly).
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Mapping

from spinexr.errors import ConfigError

MIB = 1 << 20


@dataclass(frozen=True)
class Settings:
    """Everything ``create_app`` needs besides the analyzer.

    Attributes:
        data_dir: where the SQLite database lives (created if missing).
        database_url: SQLAlchemy URL; default ``sqlite:///<data_dir>/spinexr.db``. PostgreSQL:
            ``postgresql+psycopg://user:password@host/db``.
        pack_dir / vertebrae_dir: model packs; ``None`` uses the CLI's defaults.
        max_upload_bytes: largest accepted file (the body is counted as it arrives).
        max_pixels: rows x columns x frames limit passed to the reader (decompression bombs).
        workers: analysis threads; queue_size: jobs waiting beyond those running.
        rate_limit_per_minute: requests per API key per minute (0 disables the limit).
        login_failures_per_minute: failed logins allowed per key id and per client address
            a minute, in bursts up to that many, before 429 (0 disables the throttle).
        max_inflight_bytes: upload bytes one key (one client address in dev mode) may have
            in the service at once, read or waiting for a worker; more is 429 (0: no limit).
        cors_origins: origins allowed to call the API from a browser (none by default).
        auth_required: ``False`` only in the dev mode ``SPINEXR_AUTH=off`` (every caller is
            an admin called ``dev``); never expose that to a network.
        retention_days: analyses older than this are purged (0 keeps them forever).
        store_inputs: keep uploaded files after analysis (they are kept only while queued
            otherwise, so that queued work survives a restart).
        explain_default: explanation methods run when a request names none.
        request_timeout_s: a connection that has not sent its request headers, or an upload
            that sends nothing, for this long is closed (408): stalled clients must not hold
            the server's connections.
        show_identifiers: show patient and study identifiers (name, ID, birth date, study
            date and description, accession, view, body part) to authenticated readers in the
            UI, the history and report.html; ``False`` for research deployments (they are then
            neither stored with new analyses nor served). result.json never holds them.
    """

    data_dir: Path = Path("spinexr-data")
    database_url: str = ""
    pack_dir: Path | None = None
    vertebrae_dir: Path | None = None
    max_upload_bytes: int = 64 * MIB
    max_pixels: int = 50_000_000
    workers: int = 1
    queue_size: int = 16
    rate_limit_per_minute: int = 120
    login_failures_per_minute: int = 10
    max_inflight_bytes: int = 256 * MIB
    cors_origins: tuple[str, ...] = ()
    auth_required: bool = True
    retention_days: int = 30
    store_inputs: bool = False
    explain_default: tuple[str, ...] = field(default_factory=tuple)
    request_timeout_s: float = 30.0
    show_identifiers: bool = True

    def __post_init__(self) -> None:
        for name in ("max_upload_bytes", "max_pixels", "workers", "queue_size"):
            if int(getattr(self, name)) < 1:
                raise ConfigError(f"{name} must be at least 1, got {getattr(self, name)!r}", name)
        for name in ("rate_limit_per_minute", "retention_days", "login_failures_per_minute",
                     "max_inflight_bytes"):
            if int(getattr(self, name)) < 0:
                raise ConfigError(f"{name} must be 0 or more, got {getattr(self, name)!r}", name)
        if 0 < self.max_inflight_bytes < self.max_upload_bytes:
            raise ConfigError(f"max_inflight_bytes ({self.max_inflight_bytes:,}) must be 0 or at "
                              f"least max_upload_bytes ({self.max_upload_bytes:,}), or no "
                              "upload of the largest size could ever be taken",
                              "SPINEXR_MAX_INFLIGHT_BYTES")
        if not 0 < float(self.request_timeout_s) <= 3600:
            raise ConfigError(f"request_timeout_s must be in (0, 3600] seconds, got "
                              f"{self.request_timeout_s!r}", "SPINEXR_REQUEST_TIMEOUT")
        if any(o == "*" for o in self.cors_origins):
            raise ConfigError("CORS origin '*' is not allowed for a service holding patient "
                              "data; list the exact origins", "SPINEXR_CORS_ORIGINS")

    @property
    def db_url(self) -> str:
        """The database URL, defaulting to SQLite inside ``data_dir``."""
        return self.database_url or f"sqlite:///{Path(self.data_dir).resolve() / 'spinexr.db'}"

    def with_(self, **changes) -> "Settings":
        """A copy with some fields changed."""
        return replace(self, **changes)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides) -> "Settings":
        """Settings from ``SPINEXR_*`` variables (see :data:`ENV_VARS`), then ``overrides``.

        Raises:
            ConfigError: a value that does not parse, naming the variable.
        """
        env = os.environ if environ is None else environ
        values: dict = {}
        for name, (var, parse) in ENV_VARS.items():
            raw = env.get(var)
            if raw is None or raw.strip() == "":
                continue
            try:
                values[name] = parse(raw.strip())
            except ValueError as exc:
                raise ConfigError(f"cannot parse {raw!r}: {exc}", var) from exc
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)


def _bool(raw: str) -> bool:
    low = raw.lower()
    if low in ("1", "true", "yes", "on"):
        return True
    if low in ("0", "false", "no", "off"):
        return False
    raise ValueError("use true/false, on/off, yes/no or 1/0")


def _list(raw: str) -> tuple[str, ...]:
    return tuple(p.strip() for p in raw.split(",") if p.strip())


def _auth(raw: str) -> bool:
    low = raw.lower()
    if low in ("on", "required", "true", "1"):
        return True
    if low in ("off", "false", "0"):
        return False
    raise ValueError("use 'on' or 'off' (dev mode)")


#: Settings field -> (environment variable, parser). docs/service.md lists them.
ENV_VARS = {
    "data_dir": ("SPINEXR_DATA_DIR", Path),
    "database_url": ("SPINEXR_DATABASE_URL", str),
    "pack_dir": ("SPINEXR_PACK", Path),
    "vertebrae_dir": ("SPINEXR_VERTEBRAE", Path),
    "max_upload_bytes": ("SPINEXR_MAX_UPLOAD_BYTES", int),
    "max_pixels": ("SPINEXR_MAX_PIXELS", int),
    "workers": ("SPINEXR_WORKERS", int),
    "queue_size": ("SPINEXR_QUEUE_SIZE", int),
    "rate_limit_per_minute": ("SPINEXR_RATE_LIMIT", int),
    "login_failures_per_minute": ("SPINEXR_LOGIN_FAILURES", int),
    "max_inflight_bytes": ("SPINEXR_MAX_INFLIGHT_BYTES", int),
    "cors_origins": ("SPINEXR_CORS_ORIGINS", _list),
    "auth_required": ("SPINEXR_AUTH", _auth),
    "retention_days": ("SPINEXR_RETENTION_DAYS", int),
    "store_inputs": ("SPINEXR_STORE_INPUTS", _bool),
    "explain_default": ("SPINEXR_EXPLAIN", _list),
    "request_timeout_s": ("SPINEXR_REQUEST_TIMEOUT", float),
    "show_identifiers": ("SPINEXR_SHOW_IDENTIFIERS", _bool),
}
