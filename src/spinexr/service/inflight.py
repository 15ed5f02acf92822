"""Upload bytes in flight per caller: read, queued or being analysed, up to a limit.

A :class:`Hold` reserves the bytes of one upload for one caller (an API key; a client address
in dev mode): the Content-Length before the body is read, then every byte beyond it as it
arrives, settled to the file's size once parsed and released when its analysis ends (or the
request fails). A reservation over the limit is refused with 429 and Retry-After before the
body is read further, so eight 60 MB uploads from one key cannot all sit in memory at once.
"""
from __future__ import annotations

import threading
from typing import AsyncIterator, Callable

from spinexr.service.auth import retry_after
from spinexr.service.problems import ApiError


class InflightBytes:
    """Bytes held per caller; ``limit`` 0 disables the limit. ``wait_s()`` estimates when
    some will be freed (for Retry-After)."""

    def __init__(self, limit: int, wait_s: Callable[[], float] = lambda: 1.0) -> None:
        self.limit, self.wait_s = limit, wait_s
        self._held: dict[str, int] = {}
        self._lock = threading.Lock()

    def hold(self, who: str) -> "Hold":
        return Hold(self, who)

    def held(self, who: str) -> int:
        with self._lock:
            return self._held.get(who, 0)

    def _change(self, who: str, delta: int) -> bool:
        with self._lock:
            now = self._held.get(who, 0)
            if delta > 0 and self.limit and now + delta > self.limit:
                return False
            if now + delta > 0:
                self._held[who] = now + delta
            else:
                self._held.pop(who, None)
            return True


class Hold:
    """The bytes of one upload, reserved for its caller until :meth:`release`."""

    def __init__(self, pool: InflightBytes, who: str) -> None:
        self.pool, self.who, self.bytes = pool, who, 0

    def reserve(self, total: int) -> None:
        """Hold ``total`` bytes in all (more than now: the difference is added).

        Raises:
            ApiError: 429 ``too_many_bytes_in_flight`` when the caller would pass the limit.
        """
        extra = total - self.bytes
        if extra <= 0:
            return
        if not self.pool._change(self.who, extra):
            raise ApiError(429, "too_many_bytes_in_flight", (
                f"this key has {self.pool.held(self.who):,} bytes of uploads in the service "
                f"already (being read, queued or analysed; the limit is {self.pool.limit:,}, "
                "SPINEXR_MAX_INFLIGHT_BYTES); retry when some have finished"),
                {"Retry-After": retry_after(self.pool.wait_s())})
        self.bytes = total

    def settle(self, total: int) -> None:
        """Hold exactly ``total`` bytes from now on (the parsed file, without the envelope)."""
        if total < self.bytes:
            self.pool._change(self.who, total - self.bytes)
            self.bytes = total
        else:
            self.reserve(total)

    def release(self) -> None:
        """Give every byte back (idempotent)."""
        self.settle(0)

    async def counted(self, stream: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
        """``stream``, reserving each chunk beyond what is held before passing it on."""
        seen = 0
        async for chunk in stream:
            seen += len(chunk)
            self.reserve(seen)
            yield chunk
