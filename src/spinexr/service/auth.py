"""API keys, roles and per-key rate limits.

A key reads ``sxr_<id>_<secret>``: ``id`` finds the row, the secret is checked against its salted
scrypt hash (the key itself is never stored). Roles: ``submit`` may upload and read its own
analyses, ``read`` may read every analysis, ``admin`` may do everything. A verified secret is
remembered in memory (as a SHA-256) so that scrypt runs once per key and process, while the
revoked flag is read from the database on every request, so revocation takes effect at once.

Unknown and revoked key ids cost the same scrypt as a wrong secret for a real one, so the time
of an answer does not tell which ids exist. Failed logins are throttled per key id and per
client address (:class:`LoginThrottle`).
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


def key_id_of(key: str) -> str | None:
    """The id part of a key (what audit rows name; never the secret)."""
    parts = split_key(key)
    return parts[0] if parts else None


#: Salt and hash that no secret matches: what unknown and revoked ids are checked against.
_DECOY = (bytes(16), bytes(32))


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

    def remembered(self, token: str) -> Principal | None:
        """The caller of ``token`` if this process verified it before and it is not revoked;
        no scrypt, so it may run before the failed-login throttle."""
        parts = split_key(token.strip())
        if parts is None:
            return None
        row = self.store.key(parts[0])
        if row is None or row.revoked is not None:
            return None
        with self._lock:
            known = _memo(*parts, row.hash) in self._verified
        return Principal(row.name, row.role) if known else None

    def principal(self, token: str) -> Principal | None:
        """The caller of ``token``, or ``None`` for an unknown, malformed or revoked key.

        A well-formed key runs scrypt whether or not its id exists (constant time)."""
        parts = split_key(token.strip())
        if parts is None:
            return None
        key_id, secret = parts
        row = self.store.key(key_id)
        active = row is not None and row.revoked is None
        memo = _memo(key_id, secret, row.hash) if active else b""
        with self._lock:
            if active and memo in self._verified:
                return Principal(row.name, row.role)
        salt, digest = (row.salt, row.hash) if row is not None else _DECOY
        if not hmac.compare_digest(hash_secret(secret, salt), digest) or not active:
            return None
        with self._lock:
            self._verified.add(memo)
        return Principal(row.name, row.role)


def _memo(key_id: str, secret: str, digest: bytes) -> bytes:
    return hashlib.sha256(f"{key_id}:{secret}".encode()).digest() + digest


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

    #: Buckets kept before full ones (callers idle for a minute) are forgotten.
    MAX_BUCKETS = 10_000

    def take(self, who: str) -> float:
        """Spend one token of ``who``; returns 0 when allowed, else seconds until a token."""
        return self._spend(who, 1.0)

    def peek(self, who: str) -> float:
        """Seconds until ``who`` has a token (0 if it has one now); spends nothing."""
        return self._spend(who, 0.0)

    def _spend(self, who: str, cost: float) -> float:
        if self.capacity <= 0:
            return 0.0
        now = self.clock()
        with self._lock:
            tokens, last = self._buckets.get(who, (self.capacity, now))
            tokens = min(self.capacity, tokens + (now - last) * self.rate)
            if tokens >= 1.0:
                self._buckets[who] = (tokens - cost, now)
                self._prune(now)
                return 0.0
            self._buckets[who] = (tokens, now)
            return (1.0 - tokens) / self.rate

    def _prune(self, now: float) -> None:
        if len(self._buckets) <= self.MAX_BUCKETS:
            return
        self._buckets = {k: (t, last) for k, (t, last) in self._buckets.items()
                         if t + (now - last) * self.rate < self.capacity}


class LoginThrottle:
    """Failed logins: ``per_minute`` per key id and per client address (bursts up to that
    many), after which :meth:`wait` is non-zero until the bucket refills. 0 disables it."""

    def __init__(self, per_minute: int, clock=time.monotonic) -> None:
        self.by_id = RateLimiter(per_minute, clock)
        self.by_address = RateLimiter(per_minute, clock)

    def wait(self, key_id: str | None, address: str) -> float:
        """Seconds until a login from ``address`` for ``key_id`` may be tried again (0: now)."""
        by_id = self.by_id.peek(key_id) if key_id else 0.0
        return max(by_id, self.by_address.peek(address))

    def failed(self, key_id: str | None, address: str) -> None:
        if key_id:
            self.by_id.take(key_id)
        self.by_address.take(address)


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
