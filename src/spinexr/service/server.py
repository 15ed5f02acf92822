"""Serving details uvicorn leaves open: connections that never finish their request headers.

uvicorn closes idle keep-alive connections, but a new connection that sends part of a request
line (or nothing) is held for ever: 70 such clients held 70 connections past 30 s in a probe.
:func:`guarded_protocol` gives uvicorn an HTTP/1.1 protocol that closes a connection with
``408 Request Timeout`` when its request headers are not complete ``timeout`` seconds after it
opened (a partial second request on a kept-alive connection meets uvicorn's keep-alive timer,
which only a complete request stops). Upload bodies that stall are timed out by the upload
reader (:func:`spinexr.service.routes.receive_upload`).
"""
from __future__ import annotations

import asyncio
import logging

from uvicorn.protocols.http.h11_impl import H11Protocol

log = logging.getLogger("spinexr.service")
_408 = (b"HTTP/1.1 408 Request Timeout\r\ncontent-type: application/json\r\n"
        b"connection: close\r\ncontent-length: 87\r\n\r\n"
        b'{"error": {"code": "request_timeout", "message": "the request headers did not arrive"}}')


class _GuardedH11(H11Protocol):
    header_timeout: float = 30.0

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._guard = self.loop.call_later(self.header_timeout, self._stalled)

    def handle_events(self) -> None:
        super().handle_events()
        if self.cycle is not None and self._guard is not None:   # the request has begun
            self._guard.cancel()
            self._guard = None

    def connection_lost(self, exc: Exception | None) -> None:
        if self._guard is not None:
            self._guard.cancel()
            self._guard = None
        super().connection_lost(exc)

    def _stalled(self) -> None:
        self._guard = None
        if self.transport.is_closing() or (self.cycle is not None
                                           and not self.cycle.response_complete):
            return
        log.info("connection closed: request headers incomplete", extra={"fields": {
            "seconds": self.header_timeout}})
        self.transport.write(_408)
        self.transport.close()


def guarded_protocol(timeout: float) -> type[H11Protocol]:
    """uvicorn's HTTP/1.1 protocol closing connections whose request headers take longer than
    ``timeout`` seconds (pass it as ``uvicorn.run(..., http=guarded_protocol(30))``)."""
    return type("GuardedH11Protocol", (_GuardedH11,), {"header_timeout": float(timeout)})
