"""Abusive clients: one that disconnects mid-upload, one guessing secrets, one holding many
large uploads at once, and uploads that are cheap to send but expensive to decode."""
from __future__ import annotations

import logging
import statistics
import time

import pytest

from faults import Blocking
from service_helpers import add_key, bearer, phantom_dicom, running, upload


def _scope(path: str, headers: dict[str, str]) -> dict:
    return {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST",
            "scheme": "http", "path": path, "raw_path": path.encode(), "query_string": b"",
            "root_path": "", "client": ("127.0.0.1", 50000), "server": ("testserver", 80),
            "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()]}


async def _post_then_disconnect(app, path: str, headers: dict[str, str], first: bytes) -> list:
    """Send the start of a body, then the client goes away (``http.disconnect``)."""
    import anyio

    messages = [{"type": "http.request", "body": first, "more_body": True},
                {"type": "http.disconnect"}]
    sent: list = []

    async def receive():
        if messages:
            return messages.pop(0)
        await anyio.sleep_forever()

    async def send(message):
        sent.append(message)

    await app(_scope(path, headers), receive, send)
    return sent


@pytest.mark.parametrize("path", ["/v1/analyses", "/upload"])
def test_a_client_that_disconnects_mid_upload_is_one_log_line_and_a_499(path, settings,
                                                                         analyzer, caplog):
    key = add_key(settings, "alice", "submit")
    body = phantom_dicom()
    headers = {**bearer(key), "content-type": "multipart/form-data; boundary=abc",
               "content-length": str(len(body) + 200)}
    first = (b"--abc\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.dcm\"\r\n"
             b"\r\n" + body[:1000])
    with running(settings, analyzer) as c:
        with caplog.at_level(logging.INFO, logger="spinexr.service"):
            sent = c.portal.call(_post_then_disconnect, c.app, path, headers, first)
        metrics = c.get("/metrics").text
        assert c.app.state.service.inflight.held("alice") == 0
    assert not [m for m in sent if m["type"] == "http.response.start" and m["status"] >= 500]
    assert f'route="{path}",status="499"' in metrics
    assert 'status="500"' not in metrics
    records = [r for r in caplog.records if r.name == "spinexr.service"]
    assert not [r for r in records if r.exc_info or r.levelno >= logging.ERROR], [
        r.getMessage() for r in records]
    assert sum("disconnected" in r.getMessage() for r in records) == 1


def _wrong(key: str, n: int) -> str:
    prefix, key_id, _ = key.split("_", 2)
    return f"{prefix}_{key_id}_wrong{n:04d}secret"


def test_failed_logins_are_throttled_per_key_id_with_retry_after(settings, analyzer):
    key = add_key(settings, "alice", "submit")
    s = settings.with_(login_failures_per_minute=5)
    with running(s, analyzer) as c:
        codes = [c.get("/v1/analyses", headers=bearer(_wrong(key, i))).status_code
                 for i in range(12)]
        assert codes[:5] == [401] * 5 and set(codes[5:]) == {429}
        r = c.get("/v1/analyses", headers=bearer(_wrong(key, 99)))
        assert r.json()["error"]["code"] == "too_many_failed_logins"
        assert int(r.headers["retry-after"]) >= 1


def test_failed_logins_are_throttled_per_client_address(settings, analyzer):
    s = settings.with_(login_failures_per_minute=5)
    with running(s, analyzer) as c:
        codes = [c.get("/v1/analyses", headers=bearer(f"sxr_{i:012x}_guess")).status_code
                 for i in range(8)]                   # a new key id every time
        assert codes[:5] == [401] * 5 and set(codes[5:]) == {429}


def test_a_key_verified_before_passes_while_its_id_is_throttled(settings, analyzer):
    key = add_key(settings, "alice", "submit")
    s = settings.with_(login_failures_per_minute=3)
    with running(s, analyzer) as c:
        assert c.get("/v1/analyses", headers=bearer(key)).status_code == 200
        for i in range(5):
            c.get("/v1/analyses", headers=bearer(_wrong(key, i)))
        assert c.get("/v1/analyses", headers=bearer(_wrong(key, 9))).status_code == 429
        assert c.get("/v1/analyses", headers=bearer(key)).status_code == 200


def test_unknown_key_ids_cost_the_same_as_real_ones(settings):
    """Response time must not tell a real key id (scrypt ran) from an unknown one."""
    from spinexr.service.auth import KeyVerifier
    from spinexr.service.store import Store

    key = add_key(settings, "alice", "submit")
    store = Store.open(settings.db_url)
    verifier = KeyVerifier(store)

    def seconds(token: str) -> float:
        t0 = time.perf_counter()
        assert verifier.principal(token) is None
        return time.perf_counter() - t0

    real = statistics.median(seconds(_wrong(key, i)) for i in range(5))
    unknown = statistics.median(seconds(f"sxr_{i:012x}_wrongsecret") for i in range(5))
    store.revoke_key("alice")
    revoked = statistics.median(seconds(key) for _ in range(5))
    store.close()
    assert 0.5 < unknown / real < 2.0, (real, unknown)
    assert 0.5 < revoked / real < 2.0, (real, revoked)


def test_bytes_in_flight_per_key_are_limited_with_retry_after(settings, analyzer):
    import threading

    key = add_key(settings, "alice", "submit")
    other = add_key(settings, "bob", "submit")
    dcm = phantom_dicom()
    s = settings.with_(max_upload_bytes=len(dcm) + 1000, max_inflight_bytes=2 * len(dcm) + 1000)
    slow = Blocking(analyzer)
    with running(s, slow) as c:
        first = c.post("/v1/analyses?async=true", headers=bearer(key), files=upload("a.dcm", dcm))
        assert first.status_code == 202 and slow.entered.wait(30)
        second = c.post("/v1/analyses?async=true", headers=bearer(key),
                        files=upload("b.dcm", dcm))
        third = c.post("/v1/analyses?async=true", headers=bearer(key), files=upload("c.dcm", dcm))
        assert (second.status_code, third.status_code) == (202, 429), third.text
        assert third.json()["error"]["code"] == "too_many_bytes_in_flight"
        assert int(third.headers["retry-after"]) >= 1
        assert c.post("/v1/analyses?async=true", headers=bearer(other),
                      files=upload("d.dcm", dcm)).status_code == 202       # per key
        svc = c.app.state.service
        assert svc.inflight.held("alice") == 2 * len(dcm)
        threading.Timer(0.2, slow.gate.set).start()
        assert svc.queue.wait_idle(60)
        assert svc.inflight.held("alice") == 0 and svc.inflight.held("bob") == 0
        assert c.post("/v1/analyses?async=true", headers=bearer(key),
                      files=upload("e.dcm", dcm)).status_code == 202


def _dicm_zeros(n: int) -> bytes:
    return b"\0" * 128 + b"DICM" + b"\0" * n


def _truncated() -> bytes:
    return phantom_dicom()[:-5000]


def _header_lies() -> bytes:
    import io

    import pydicom

    ds = pydicom.dcmread(io.BytesIO(phantom_dicom()))
    ds.Rows = ds.Rows * 4
    buf = io.BytesIO()
    ds.save_as(buf, enforce_file_format=True)
    return buf.getvalue()


def _png_without_size() -> bytes:
    return b"\x89PNG\r\n\x1a\n" + b"\0" * 2000


PRECHECK_CASES = [("zeros.dcm", lambda: _dicm_zeros(20 << 20), 422, "zero bytes"),
                  ("cut.dcm", _truncated, 422, "truncated"),
                  ("lies.dcm", _header_lies, 422, "pixel data incomplete"),
                  ("nosize.png", _png_without_size, 422, "no image size")]


@pytest.mark.parametrize("name, make, status, words", PRECHECK_CASES,
                         ids=[c[0] for c in PRECHECK_CASES])
def test_uploads_not_worth_decoding_are_refused_before_any_worker_sees_them(
        name, make, status, words, settings, analyzer):
    key = add_key(settings, "alice", "submit")
    data = make()
    with running(settings, analyzer) as c:
        t0 = time.perf_counter()
        r = c.post("/v1/analyses", headers=bearer(key), files=upload(name, data))
        seconds = time.perf_counter() - t0
        assert r.status_code == status, r.text
        err = r.json()["error"]
        assert err["code"] == "corrupt_image" and words in err["message"]
        assert name in err["message"] and "analysis_id" not in err
        assert c.get("/v1/analyses", headers=bearer(key)).json()["items"] == []
        assert 'reason="precheck"' in c.get("/metrics").text
    assert seconds < 5.0
