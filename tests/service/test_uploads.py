"""Reading uploads: streamed, counted, stopped at the limit, typed by content not by name."""
from __future__ import annotations

import asyncio

import pytest

from service_helpers import add_key, bearer, phantom_dicom, png_bytes, running, upload

from spinexr.service.problems import ApiError
from spinexr.service.uploads import clean_filename, read_upload

BOUNDARY = "xyz"
CTYPE = f"multipart/form-data; boundary={BOUNDARY}"


def _body(data: bytes, name="a.dcm", field="file") -> bytes:
    return (f"--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"{field}\"; "
            f"filename=\"{name}\"\r\nContent-Type: application/octet-stream\r\n\r\n").encode() \
        + data + f"\r\n--{BOUNDARY}--\r\n".encode()


class _Stream:
    """An async byte stream that counts how much of it was read."""

    def __init__(self, body: bytes, chunk: int = 4096) -> None:
        self.chunks = [body[i:i + chunk] for i in range(0, len(body), chunk)]
        self.read = 0

    def __aiter__(self):
        return self._gen()

    async def _gen(self):
        for c in self.chunks:
            self.read += 1
            yield c


def _read(body: bytes, *, max_bytes: int, length: str | None = None, stream=None):
    stream = stream or _Stream(body)
    return asyncio.run(read_upload(CTYPE, length, stream, max_bytes=max_bytes))


def test_reads_the_file_and_sniffs_its_type():
    dcm = phantom_dicom()
    up = _read(_body(dcm, name="../../etc/x.png"), max_bytes=1 << 20)
    assert up.data == dcm and up.kind == "dicom" and up.filename == "x.png"
    import hashlib

    assert up.sha256 == hashlib.sha256(dcm).hexdigest()


def test_stops_reading_at_the_limit_without_content_length():
    body = _body(b"\x89PNG\r\n\x1a\n" + bytes(2_000_000))
    stream = _Stream(body)
    with pytest.raises(ApiError) as err:
        _read(body, max_bytes=100_000, stream=stream)
    assert err.value.status == 413 and err.value.code == "upload_too_large"
    assert "upload 'a.dcm'" in err.value.message
    assert stream.read < len(stream.chunks) // 10        # stopped early, not read to the end


def test_content_length_over_the_limit_is_refused_before_reading():
    stream = _Stream(b"")
    with pytest.raises(ApiError, match="larger than the limit") as err:
        _read(b"", max_bytes=1000, length=str(10_000_000), stream=stream)
    assert err.value.status == 413 and stream.read == 0


def test_type_is_judged_from_content_early():
    body = _body(b"MZ" + bytes(500_000), name="scan.dcm")     # an .exe named .dcm
    stream = _Stream(body)
    with pytest.raises(ApiError, match="not DICOM, PNG, JPEG or TIFF") as err:
        _read(body, max_bytes=1 << 20, stream=stream)
    assert err.value.status == 415 and stream.read == 1      # refused after the first chunk


@pytest.mark.parametrize("body, ctype, code", [
    (_body(b"", name="e.dcm"), CTYPE, "empty_upload"),
    (_body(b"data", field="other"), CTYPE, "missing_file"),
    (b"{}", "application/json", "not_multipart"),
])
def test_malformed_requests_are_4xx(body, ctype, code):
    with pytest.raises(ApiError) as err:
        asyncio.run(read_upload(ctype, None, _Stream(body), max_bytes=1000))
    assert err.value.code == code and 400 <= err.value.status < 500


def test_clean_filename_drops_paths_and_control_characters():
    assert clean_filename("C:\\x\\y\\a\x00b.dcm") == "ab.dcm"


def test_api_enforces_limit_and_type(settings, analyzer):
    s = settings.with_(max_upload_bytes=50_000)
    key = add_key(s, "alice", "submit")
    with running(s, analyzer) as c:
        r = c.post("/v1/analyses", headers=bearer(key),
                   files=upload("big.png", b"\x89PNG\r\n\x1a\n" + bytes(200_000)))
        assert r.status_code == 413 and r.json()["error"]["code"] == "upload_too_large"
        assert "50,000 bytes" in r.json()["error"]["message"]      # refused on Content-Length
        r = c.post("/v1/analyses", headers=bearer(key), files=upload("a.dcm", b"%PDF-1.7" * 40))
        assert r.status_code == 415 and "'a.dcm'" in r.json()["error"]["message"]
        r = c.post("/v1/analyses", headers={**bearer(key), "content-type": "application/json"},
                   content=b"{}")
        assert r.status_code == 415 and r.json()["error"]["code"] == "not_multipart"


def test_decompression_bomb_is_413_before_decoding(settings, analyzer):
    import numpy as np

    s = settings.with_(max_pixels=10_000)
    key = add_key(s, "alice", "submit")
    with running(s, analyzer) as c:
        r = c.post("/v1/analyses", headers=bearer(key),
                   files=upload("x.png", png_bytes(np.zeros((200, 200), np.uint8))))
        assert r.status_code == 413 and r.json()["error"]["code"] == "image_too_large"
