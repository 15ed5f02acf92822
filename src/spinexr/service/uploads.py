"""Read one uploaded file from a ``multipart/form-data`` body, in memory, counting as it comes.

The body is never spooled to disk (Starlette's own form parser would write large files to a
temporary file). Reading stops at the limit: a body that grows past it is answered 413 without
being read to the end. The file type is sniffed from its first bytes (the reader's rules: DICOM
with 'DICM' at byte 128 or a bare data set, PNG, JPEG, TIFF), never from the name.
"""
from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from typing import AsyncIterator, Mapping

from spinexr.io.reader import sniff
from spinexr.service.problems import ApiError

#: Room for the multipart boundaries and part headers on top of the file itself.
OVERHEAD = 64 * 1024
SNIFF_BYTES = 132
FIELD = "file"


@dataclass(frozen=True)
class Upload:
    """An uploaded file: its bytes, client-side name (for messages only), sniffed kind, hash."""

    data: bytes
    filename: str
    kind: str
    sha256: str
    fields: Mapping[str, str] = field(default_factory=dict)   # small text fields (region)

    @property
    def label(self) -> str:
        """How messages name the upload."""
        return f"upload {self.filename!r}" if self.filename else "the upload"


def clean_filename(raw: str) -> str:
    """The base name without control characters, at most 255 characters."""
    base = re.split(r"[\\/]", raw)[-1]
    return re.sub(r"[\x00-\x1f\x7f]", "", base)[:255]


#: Text fields of an upload form besides the file, and the longest value each may have.
TEXT_FIELDS = {"region": 16}


class _Parts:
    """python-multipart callbacks that keep the first part named ``file`` and the small text
    fields of :data:`TEXT_FIELDS`."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self.header_name = b""
        self.header_value = b""
        self.disposition = b""
        self.in_file = False
        self.done = False
        self.found = False
        self.filename = ""
        self.chunks: list[bytes] = []
        self.size = 0
        self.field: str | None = None
        self.fields: dict[str, bytes] = {}

    def callbacks(self) -> dict:
        return {"on_part_begin": self._begin, "on_part_data": self._data,
                "on_part_end": self._end, "on_header_field": self._hname,
                "on_header_value": self._hvalue, "on_header_end": self._hend,
                "on_headers_finished": self._headers_done}

    def _begin(self) -> None:
        self.disposition = b""

    def _hname(self, data: bytes, start: int, end: int) -> None:
        self.header_name += data[start:end]

    def _hvalue(self, data: bytes, start: int, end: int) -> None:
        self.header_value += data[start:end]

    def _hend(self) -> None:
        if self.header_name.lower() == b"content-disposition":
            self.disposition = self.header_value
        self.header_name, self.header_value = b"", b""

    def _headers_done(self) -> None:
        from python_multipart.multipart import parse_options_header

        _, options = parse_options_header(self.disposition)
        name = options.get(b"name", b"").decode("latin-1")
        self.in_file = (not self.done and name == FIELD)
        self.field = name if name in TEXT_FIELDS and not self.in_file else None
        if self.in_file:
            self.found = True
            self.filename = clean_filename(options.get(b"filename", b"").decode("utf-8", "replace"))

    def _data(self, data: bytes, start: int, end: int) -> None:
        if self.field is not None:
            value = self.fields.get(self.field, b"") + data[start:end]
            if len(value) > TEXT_FIELDS[self.field]:
                raise ApiError(422, "bad_field", f"form field {self.field!r} is longer than "
                               f"{TEXT_FIELDS[self.field]} characters")
            self.fields[self.field] = value
            return
        if not self.in_file:
            return
        self.size += end - start
        if self.size > self.max_bytes:
            raise _TooLarge()
        self.chunks.append(data[start:end])

    def _end(self) -> None:
        self.field = None
        if self.in_file:
            self.in_file, self.done = False, True

    def head(self) -> bytes:
        return b"".join(self.chunks)[:SNIFF_BYTES] if self.size else b""


class _TooLarge(Exception):
    pass


def too_large(max_bytes: int, name: str = "the upload") -> ApiError:
    return ApiError(413, "upload_too_large",
                    f"{name} is larger than the limit of {max_bytes:,} bytes "
                    "(SPINEXR_MAX_UPLOAD_BYTES)")


async def read_upload(content_type: str | None, content_length: str | None,
                      stream: AsyncIterator[bytes], *, max_bytes: int) -> Upload:
    """The file of field ``file`` in a multipart body read from ``stream``.

    Raises:
        ApiError: 415 ``not_multipart`` / ``unsupported_media_type``, 413 ``upload_too_large``
            (checked against Content-Length first, then while reading), 400 ``bad_multipart``,
            ``missing_file`` or ``empty_upload``.
    """
    boundary = _boundary(content_type)
    if content_length and content_length.isdigit() and int(content_length) > max_bytes + OVERHEAD:
        raise too_large(max_bytes)
    from python_multipart.exceptions import FormParserError
    from python_multipart.multipart import MultipartParser

    parts = _Parts(max_bytes)
    total, sniffed = 0, None
    try:
        # the parser refuses some boundaries itself (longer than 256 characters)
        parser = MultipartParser(boundary, parts.callbacks())
        async for chunk in stream:
            total += len(chunk)
            if total > max_bytes + OVERHEAD:
                raise _TooLarge()
            parser.write(chunk)
            if sniffed is None and parts.size >= SNIFF_BYTES:
                sniffed = _sniff(parts.head(), parts.filename)
        parser.finalize()
    except _TooLarge:
        raise too_large(max_bytes, _label(parts.filename)) from None
    except FormParserError as exc:
        raise ApiError(400, "bad_multipart", f"the multipart body cannot be parsed ({exc})") \
            from None
    return _finish(parts, sniffed)


def _finish(parts: _Parts, sniffed: str | None) -> Upload:
    if not parts.found:
        raise ApiError(400, "missing_file",
                       f"no file in the request: send it as multipart/form-data field {FIELD!r}")
    if parts.size == 0:
        raise ApiError(400, "empty_upload", f"{_label(parts.filename)} is empty (0 bytes)")
    data = b"".join(parts.chunks)
    kind = sniffed or _sniff(data[:SNIFF_BYTES], parts.filename)
    return Upload(data, parts.filename, kind, hashlib.sha256(data).hexdigest(),
                  {k: v.decode("utf-8", "replace").strip() for k, v in parts.fields.items()})


def _label(filename: str) -> str:
    return f"upload {filename!r}" if filename else "the upload"


def _sniff(head: bytes, filename: str) -> str:
    kind = sniff(head)
    if kind is None:
        raise ApiError(415, "unsupported_media_type",
                       f"{_label(filename)} is not DICOM, PNG, JPEG or TIFF (judged from its "
                       "first bytes, not its name)")
    return kind


def _boundary(content_type: str | None) -> bytes:
    from python_multipart.multipart import parse_options_header

    ctype, options = parse_options_header(content_type or "")
    if ctype != b"multipart/form-data" or not options.get(b"boundary"):
        raise ApiError(415, "not_multipart",
                       f"send the file as multipart/form-data in a field named {FIELD!r} "
                       f"(got Content-Type {content_type or 'none'!r})")
    return options[b"boundary"]
