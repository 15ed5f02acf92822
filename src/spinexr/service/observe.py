"""Metrics (a Prometheus registry per app), security headers and JSON access logs.

:class:`ServiceMiddleware` wraps the whole ASGI app: it times each request, counts it by route
template (never the raw path, which holds ids) and status, adds the security headers and logs
one JSON line with the request id, route, status, size and milliseconds. Nothing that could
identify a patient is logged: no file names, no DICOM attributes, no query strings.
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


class ServiceMiddleware:
    """Pure ASGI middleware: timing, metrics, security headers, access log."""

    def __init__(self, app, metrics: Metrics) -> None:
        self.app, self.metrics = app, metrics

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        t0 = time.perf_counter()
        rid = uuid.uuid4().hex[:16]
        state = {"status": 500, "bytes": 0}
        path = scope.get("path", "")

        async def send_wrapper(message) -> None:
            if message["type"] == "http.response.start":
                state["status"] = message["status"]
                _add_headers(message, rid, uncached=not path.startswith(_UNCACHED_PREFIXES))
            elif message["type"] == "http.response.body":
                state["bytes"] += len(message.get("body", b""))
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            self._record(scope, state, time.perf_counter() - t0, rid)

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
