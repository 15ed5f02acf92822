"""HTTP edge cases on both upload routes and the history cursor: always a 4xx in the route's
error shape, never a 500; an unexpected 500 still carries the security headers and says only
its request id."""
from __future__ import annotations

import pytest

from service_helpers import add_key, bearer, phantom_dicom, running

UPLOAD_ROUTES = ["/v1/analyses", "/upload"]


def _multipart(boundary: str, data: bytes, name: str = "file") -> bytes:
    return (f"--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"; "
            f"filename=\"p.dcm\"\r\nContent-Type: application/dicom\r\n\r\n").encode() + \
        data + f"\r\n--{boundary}--\r\n".encode()


# (case, Content-Type, body builder, expected status, expected code)
MULTIPART_CASES = [
    ("boundary 257 chars", "multipart/form-data; boundary=" + "b" * 257,
     lambda d: _multipart("b" * 257, d), 400, "bad_multipart"),
    ("boundary 1000 chars", "multipart/form-data; boundary=" + "x" * 1000,
     lambda d: _multipart("x" * 1000, d), 400, "bad_multipart"),
    ("boundary 70 chars is fine", "multipart/form-data; boundary=" + "c" * 70,
     lambda d: _multipart("c" * 70, d), 200, None),
    ("boundary not in body", "multipart/form-data; boundary=abc",
     lambda d: _multipart("xyz", d), 400, None),
    ("no boundary", "multipart/form-data", lambda d: _multipart("abc", d), 415, "not_multipart"),
    ("empty boundary", "multipart/form-data; boundary=", lambda d: b"", 415, "not_multipart"),
    ("other field only", "multipart/form-data; boundary=abc",
     lambda d: _multipart("abc", d, name="other"), 400, "missing_file"),
    ("garbage after headers", "multipart/form-data; boundary=abc",
     lambda d: b"--abc\r\n\x00\x01\x02garbage", 400, None),
    ("json instead", "application/json", lambda d: b"{}", 415, "not_multipart"),
]


@pytest.fixture
def client(settings, analyzer):
    key = add_key(settings, "alice", "admin")
    with running(settings, analyzer) as c:
        yield c, key


@pytest.mark.parametrize("route", UPLOAD_ROUTES)
@pytest.mark.parametrize("case, ctype, body, status, code", MULTIPART_CASES,
                         ids=[c[0] for c in MULTIPART_CASES])
def test_multipart_edges_are_4xx_in_the_route_shape(client, route, case, ctype, body, status,
                                                    code):
    c, key = client
    r = c.post(route, headers={**bearer(key), "Content-Type": ctype},
               content=body(phantom_dicom()))
    if status == 200:
        assert r.status_code == 200, r.text
        return
    assert 400 <= r.status_code < 500, (case, r.status_code, r.text)
    doc = r.json()
    if code is not None:
        assert (r.status_code, doc["error"]["code"]) == (status, code), doc
    if route == "/upload":
        assert doc["status"] == "error" and doc["message"] == doc["error"]["message"]


@pytest.mark.parametrize("cursor", ["9223372036854775808", "9" * 40, "-1", "1e3", "٣", " 1",
                                    "0x10", "1" * 19 + "0"])
def test_history_cursors_the_service_never_gave_are_422(client, cursor):
    c, key = client
    r = c.get("/v1/analyses", params={"cursor": cursor}, headers=bearer(key))
    assert r.status_code == 422, (cursor, r.status_code, r.text)
    assert r.json()["error"]["code"] == "bad_cursor"


def test_largest_cursor_is_accepted(client):
    c, key = client
    r = c.get("/v1/analyses", params={"cursor": str(2 ** 63 - 1)}, headers=bearer(key))
    assert r.status_code == 200 and r.json()["items"] == []


def _boom(settings, analyzer, caplog, path="/v1/models"):
    """A request whose handler raises an exception nobody expected."""
    import logging

    from spinexr.service.core import Service

    key = add_key(settings, "alice", "admin")
    with running(settings, analyzer) as c:
        original = Service.model_info
        Service.model_info = lambda self: 1 / 0
        try:
            with caplog.at_level(logging.INFO, logger="spinexr.service"):
                r = c.get(path, headers=bearer(key))
        finally:
            Service.model_info = original
        return r, c.get("/metrics").text


def test_an_unexpected_500_has_the_security_headers_and_names_the_request(settings, analyzer,
                                                                          caplog):
    r, metrics = _boom(settings, analyzer, caplog)
    assert r.status_code == 500
    assert r.headers["x-content-type-options"] == "nosniff"
    assert r.headers["x-frame-options"] == "DENY"
    assert "frame-ancestors 'none'" in r.headers["content-security-policy"]
    assert r.headers["cache-control"] == "no-store"
    err = r.json()["error"]
    assert err["code"] == "internal_error" and r.headers["x-request-id"] in err["message"]
    assert "ZeroDivision" not in r.text
    assert 'route="/v1/models",status="500"' in metrics
    errors = [rec for rec in caplog.records if rec.getMessage() == "unhandled error"]
    assert len(errors) == 1 and errors[0].exc_info is not None
