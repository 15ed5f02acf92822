"""Stalled clients do not hold the server's connections: a connection whose request headers
never complete, or an upload that stops sending, is answered 408 and closed after the request
timeout (a probe held 70 stalled connections past 30 s)."""
from __future__ import annotations

import socket
import threading
import time
from contextlib import contextmanager

import pytest

uvicorn = pytest.importorskip("uvicorn")

from spinexr.service import create_app  # noqa: E402
from spinexr.service.server import guarded_protocol  # noqa: E402

TIMEOUT = 1.0


@contextmanager
def _serving(app, protocol):
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning",
                                           lifespan="on", http=protocol))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.05)
    try:
        yield server.servers[0].sockets[0].getsockname()[1]
    finally:
        server.should_exit = True
        thread.join(timeout=30)


def _held_for(port: int, send: bytes, limit: float = 10.0) -> tuple[float, bytes]:
    """Seconds until the server closed a connection that sent ``send`` and then nothing, and
    what it answered."""
    sock = socket.create_connection(("127.0.0.1", port))
    sock.settimeout(limit)
    t0, answer = time.monotonic(), b""
    try:
        if send:
            sock.sendall(send)
        while True:
            chunk = sock.recv(4096)
            if not chunk:
                break
            answer += chunk
    except TimeoutError:
        pass
    finally:
        sock.close()
    return time.monotonic() - t0, answer


async def _hello(scope, receive, send):
    if scope["type"] != "http":
        return
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"hi"})


@pytest.mark.parametrize("sent", [b"", b"GET / HTTP/1.1\r\nHost: x\r\n"],
                         ids=["nothing", "partial headers"])
def test_incomplete_request_headers_are_closed_with_408(sent):
    with _serving(_hello, guarded_protocol(TIMEOUT)) as port:
        held, answer = _held_for(port, sent)
        ok_held, ok = _held_for(port, b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert held < TIMEOUT + 3 and answer.startswith(b"HTTP/1.1 408")
    assert ok.startswith(b"HTTP/1.1 200") and b"\r\nhi\r\n" in ok


def test_without_the_guard_uvicorn_holds_them():
    """The fault as found: plain uvicorn keeps a connection without request headers open."""
    from uvicorn.protocols.http.h11_impl import H11Protocol

    with _serving(_hello, H11Protocol) as port:
        held, answer = _held_for(port, b"GET / HTTP/1.1\r\n", limit=TIMEOUT + 3)
    assert held >= TIMEOUT + 3 and answer == b""


def test_a_stalled_upload_is_answered_408(settings, analyzer):
    app = create_app(settings.with_(auth_required=False, request_timeout_s=TIMEOUT), analyzer)
    head = (b"POST /v1/analyses HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n"
            b"Content-Type: multipart/form-data; boundary=b\r\n\r\n--b\r\n"
            b"Content-Disposition: form-data; name=\"file\"; filename=\"a.dcm\"\r\n\r\nDICM")
    with _serving(app, guarded_protocol(30)) as port:
        held, answer = _held_for(port, head)
    assert held < TIMEOUT + 5
    assert answer.startswith(b"HTTP/1.1 408") and b"request_timeout" in answer
