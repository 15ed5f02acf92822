"""Metrics (a Prometheus registry per app), security headers and JSON access logs.

:class:`ServiceMiddleware` wraps the whole ASGI app: it times each request, counts it by route
template (never the raw path, which holds ids) and status, adds the security headers and logs
one JSON line with the request id, route, status, size and milliseconds. It also answers any
exception the handlers left unhandled (500, logged with its traceback, with the security
headers) and counts a client that went away before its request was read as 499, with one log
line. Nothing that could identify a patient is logged: no file names, no DICOM attributes, no
query strings.
"""
from __future__ import annotations

import json
import logging
import time
import uuid

log = logging.getLogger("spinexr.service")

#: Default Content-Security-Policy; report.html sets a stricter one of its own.
CSP = ("default-src 'self'; img-src 'self' data: blob:; object-src 'none'; base-uri 'none'; "
       "form-action 'self'; frame-ancestors 'none'")
SECURITY_HEADERS = {
    "content-security-policy": CSP,
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "x-frame-options": "DENY",
}
_UNCACHED_PREFIXES = ("/static/",)


class Metrics:
    """The app's Prometheus collectors, in their own registry (so tests can build many apps)."""

    def __init__(self, queue_depth=lambda: 0, active=lambda: 0) -> None:
        from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter("spinexr_http_requests_total", "HTTP requests by route and status",
                                ["method", "route", "status"], registry=r)
        self.latency = Histogram("spinexr_http_request_duration_seconds",
                                 "HTTP request latency by route", ["method", "route"], registry=r,
                                 buckets=(.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60))
        self.inference = Histogram("spinexr_inference_seconds", "Analyzer time per image",
                                   registry=r, buckets=(.05, .1, .25, .5, 1, 2, 5, 10, 30, 60))
        self.analyses = Counter("spinexr_analyses_total", "Finished analyses by outcome",
                                ["outcome"], registry=r)
        self.rejected = Counter("spinexr_rejected_total", "Requests refused before analysis",
                                ["reason"], registry=r)
        depth = Gauge("spinexr_queue_depth", "Analyses waiting for a worker", registry=r)
        depth.set_function(lambda: float(queue_depth()))
        running = Gauge("spinexr_jobs_running", "Analyses running now", registry=r)
        running.set_function(lambda: float(active()))

    def text(self) -> tuple[bytes, str]:
        from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

        return generate_latest(self.registry), CONTENT_TYPE_LATEST


#: The status counted (nginx's convention) for a client that disconnected mid-request.
CLIENT_CLOSED = 499


class ServiceMiddleware:
    """Pure ASGI middleware: timing, metrics, security headers, access log, last-resort 500.

    ``answer(path, ApiError)`` builds the error response (the seed's shape on ``/upload``).
    """

    def __init__(self, app, metrics: Metrics, answer=None) -> None:
        self.app, self.metrics, self.answer = app, metrics, answer

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        t0 = time.perf_counter()
        rid = uuid.uuid4().hex[:16]
        state = {"status": 500, "bytes": 0, "started": False}
        path = scope.get("path", "")

        async def send_wrapper(message) -> None:
            if message["type"] == "http.response.start":
                state["status"], state["started"] = message["status"], True
                _add_headers(message, rid, uncached=not path.startswith(_UNCACHED_PREFIXES))
            elif message["type"] == "http.response.body":
                state["bytes"] += len(message.get("body", b""))
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        except Exception as exc:  # noqa: BLE001 - the last resort: nothing may escape unlogged
            await self._failed(exc, scope, receive, send_wrapper, state, rid)
        finally:
            self._record(scope, state, time.perf_counter() - t0, rid)

    async def _failed(self, exc, scope, receive, send, state, rid: str) -> None:
        from starlette.requests import ClientDisconnect

        fields = {"request": rid, "route": _route(scope)}
        if isinstance(exc, ClientDisconnect):
            state["status"] = CLIENT_CLOSED
            log.info("client disconnected before its request was read", extra={"fields": fields})
            return
        log.error("unhandled error", exc_info=exc, extra={"fields": fields})
        if state["started"] or self.answer is None:
            return                    # too late for an answer: the server closes the connection
        from spinexr.service.problems import ApiError

        response = self.answer(scope.get("path", ""), ApiError(
            500, "internal_error", f"internal error; it has been logged under request {rid}"))
        await response(scope, receive, send)

    def _record(self, scope, state, seconds: float, rid: str) -> None:
        route = _route(scope)
        method = scope.get("method", "")
        self.metrics.requests.labels(method, route, str(state["status"])).inc()
        self.metrics.latency.labels(method, route).observe(seconds)
        log.info("request", extra={"fields": {
            "request": rid, "method": method, "route": route, "status": state["status"],
            "bytes_out": state["bytes"], "ms": round(seconds * 1000, 1)}})


def _route(scope) -> str:
    route = scope.get("route")
    if route is not None and getattr(route, "path", None):
        return route.path
    if scope.get("path", "").startswith("/static/"):
        return "/static"
    return "<unmatched>"


def _add_headers(message, rid: str, *, uncached: bool) -> None:
    headers = list(message.get("headers", []))
    present = {k.lower() for k, _ in headers}
    extra = dict(SECURITY_HEADERS)
    extra["x-request-id"] = rid
    if uncached:
        extra["cache-control"] = "no-store"
    for name, value in extra.items():
        if name.encode() not in present:
            headers.append((name.encode(), value.encode()))
    message["headers"] = headers


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message and the record's ``fields``."""

    def format(self, record: logging.LogRecord) -> str:
        doc = {"ts": self.formatTime(record, "%Y-%m-%dT%H:%M:%S"), "level": record.levelname,
               "logger": record.name, "msg": record.getMessage()}
        doc.update(getattr(record, "fields", None) or {})
        if record.exc_info:
            doc["exc"] = self.formatException(record.exc_info)
        return json.dumps(doc, default=str)


def configure_logging(level: str = "INFO") -> None:
    """Send ``spinexr.service`` logs to stderr as JSON lines (called by ``spinexr serve``)."""
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("spinexr.service")
    logger.handlers[:] = [handler]
    logger.setLevel(level)
    logger.propagate = False
