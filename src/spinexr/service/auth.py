"""API keys, roles and per-key rate limits.

A key reads ``sxr_<id>_<secret>``: ``id`` finds the row, the secret is checked against its salted
scrypt hash (the key itself is never stored). Roles: ``submit`` may upload and read its own
analyses, ``read`` may read every analysis, ``admin`` may do everything. A verified secret is
remembered in memory (as a SHA-256) so that scrypt runs once per key and process, while the
revoked flag is read from the database on every request, so revocation takes effect at once.
"""
from __future__ import annotations

import hashlib
import hmac
import math
import secrets
import threading
import time
from dataclasses import dataclass

from spinexr.errors import ConfigError
from spinexr.service.tables import ROLES

PREFIX = "sxr"
#: scrypt cost: about 30 ms and 16 MiB per check; keys are random, so this is ample.
SCRYPT = {"n": 2 ** 14, "r": 8, "p": 1, "dklen": 32}
#: What each role may do.
PERMISSIONS = {"submit": {"submit", "read_own"},
               "read": {"read_own", "read_all"},
               "admin": {"submit", "read_own", "read_all", "admin"}}


@dataclass(frozen=True)
class Principal:
    """Who is calling: the key's name and role."""

    name: str
    role: str

    def can(self, permission: str) -> bool:
        return permission in PERMISSIONS.get(self.role, set())


DEV_PRINCIPAL = Principal("dev", "admin")


def hash_secret(secret: str, salt: bytes) -> bytes:
    return hashlib.scrypt(secret.encode("utf-8"), salt=salt, maxmem=64 << 20, **SCRYPT)


def new_key(role: str) -> tuple[str, str, bytes, bytes]:
    """A new key: (full key to show once, id, salt, hash)."""
    if role not in ROLES:
        raise ConfigError(f"role {role!r}: use one of {', '.join(ROLES)}", "--role")
    key_id = secrets.token_hex(6)
    secret = secrets.token_urlsafe(32)
    salt = secrets.token_bytes(16)
    return f"{PREFIX}_{key_id}_{secret}", key_id, salt, hash_secret(secret, salt)


def split_key(token: str) -> tuple[str, str] | None:
    """(id, secret) of a well-formed key, else ``None``."""
    parts = token.split("_", 2)
    if len(parts) != 3 or parts[0] != PREFIX or not parts[1] or not parts[2]:
        return None
    return parts[1], parts[2]


class KeyVerifier:
    """Checks bearer tokens against the store."""

    def __init__(self, store) -> None:
        self.store = store
        self._verified: set[bytes] = set()
        self._lock = threading.Lock()

    def principal(self, token: str) -> Principal | None:
        """The caller of ``token``, or ``None`` for an unknown, malformed or revoked key."""
        parts = split_key(token.strip())
        if parts is None:
            return None
        key_id, secret = parts
        row = self.store.key(key_id)
        if row is None or row.revoked is not None:
            return None
        memo = hashlib.sha256(f"{key_id}:{secret}".encode()).digest() + row.hash
        with self._lock:
            known = memo in self._verified
        if not known:
            if not hmac.compare_digest(hash_secret(secret, row.salt), row.hash):
                return None
            with self._lock:
                self._verified.add(memo)
        return Principal(row.name, row.role)


class RateLimiter:
    """Token bucket per caller: ``per_minute`` requests a minute, bursts up to that many.

    ``per_minute == 0`` disables the limit.
    """

    def __init__(self, per_minute: int, clock=time.monotonic) -> None:
        self.capacity = float(per_minute)
        self.rate = per_minute / 60.0
        self.clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def take(self, who: str) -> float:
        """Spend one token of ``who``; returns 0 when allowed, else seconds until a token."""
        if self.capacity <= 0:
            return 0.0
        now = self.clock()
        with self._lock:
            tokens, last = self._buckets.get(who, (self.capacity, now))
            tokens = min(self.capacity, tokens + (now - last) * self.rate)
            if tokens >= 1.0:
                self._buckets[who] = (tokens - 1.0, now)
                return 0.0
            self._buckets[who] = (tokens, now)
            return (1.0 - tokens) / self.rate


def retry_after(seconds: float) -> str:
    """A Retry-After header value: whole seconds, at least 1."""
    return str(max(1, math.ceil(seconds)))


def create_key(store, name: str, role: str) -> str:
    """Create and store a key called ``name``; returns the key, which is not stored anywhere.

    Raises:
        ConfigError: bad name or role, or the name is taken.
    """
    if not name or len(name) > 64 or not all(c.isalnum() or c in "-_." for c in name):
        raise ConfigError(f"key name {name!r}: use 1-64 letters, digits, '-', '_' or '.'", "NAME")
    key, key_id, salt, digest = new_key(role)
    store.add_key(id=key_id, name=name, role=role, salt=salt, hash=digest)
    return key
