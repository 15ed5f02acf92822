"""DICOMweb on the service (PS3.18): STOW-RS in, QIDO-RS and WADO-RS of the results out.

- ``POST /dicomweb/studies[/{study}]`` (STOW-RS, role ``submit``): a ``multipart/related;
  type="application/dicom"`` body with one or many instances; each goes through the same
  header check and analysis queue as ``POST /v1/analyses`` (asynchronously). The answer is the
  PS3.18 store response in DICOM JSON: ``ReferencedSOPSequence`` (one item per instance queued,
  its ``RetrieveURL`` the analysis) and ``FailedSOPSequence`` (``FailureReason``); 200 when all
  were taken, 202 when some, 409 when none.
- ``GET /dicomweb/studies/{study}/instances`` and ``.../series`` (QIDO-RS, role ``read``;
  ``submit`` keys see their own): the result instances (SR, GSPS, Secondary Capture) of the
  study's analyses, as DICOM JSON.
- ``GET /dicomweb/studies/{study}``, ``.../series/{series}``,
  ``.../series/{series}/instances/{instance}`` (WADO-RS): those instances as
  ``multipart/related; type="application/dicom"``; ``.../metadata`` as DICOM JSON.

The same API keys and roles as ``/v1``. Only results are served: the uploaded images stay
where they came from (the PACS or the modality).
"""
from __future__ import annotations

import hashlib
import io
import json
import uuid
from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, Request, Response
from starlette.concurrency import run_in_threadpool

from spinexr.service.deps import ServiceDep, Reader, Submitter
from spinexr.service.problems import ApiError
from spinexr.service.responses import AUTH, errors
from spinexr.service.uploads import Upload

router = APIRouter(prefix="/dicomweb")
DICOM_JSON = "application/dicom+json"
RESULT_NAMES = ("sr.dcm", "gsps.dcm", "sc.dcm")
_JSON = {"content": {DICOM_JSON: {}}}
_MULTIPART = {"content": {"multipart/related": {}}}
_STOW = {"responses": {200: {**_JSON, "description": "Every instance was queued"},
                       202: {**_JSON, "description": "Some instances failed"},
                       409: {**_JSON, "description": "No instance was queued"},
                       **errors(*AUTH, 400, 403, 413, 415, 422)}}
# The body (multipart/related; type="application/dicom") is read from the stream, not declared
# as an OpenAPI requestBody: OpenAPI tools have no serializer for multipart/related.
_QIDO = {"responses": {200: {**_JSON, "description": "Matches (DICOM JSON)"},
                       204: {"description": "No match"}, **errors(*AUTH, 403, 422)}}
_WADO = {"responses": {200: {**_MULTIPART, "description": "The instances"},
                       **errors(*AUTH, 403, 404, 422)}}
_METADATA = {"responses": {200: {**_JSON, "description": "The instance's attributes"},
                           **errors(*AUTH, 403, 404, 422)}}
# PS3.18 / PS3.4 failure reasons used in FailedSOPSequence.
PROCESSING_FAILURE, OUT_OF_RESOURCES, NOT_MATCHING, CANNOT_UNDERSTAND = \
    0x0110, 0xA700, 0xA900, 0xC000


# --------------------------------------------------------------------------- STOW-RS
@dataclass(frozen=True)
class _Part:
    content_type: str
    data: bytes


class _Related:
    """python-multipart callbacks collecting every part with its Content-Type."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes, self.total = max_bytes, 0
        self.parts: list[_Part] = []
        self._chunks: list[bytes] = []
        self._ctype, self._name, self._value = b"", b"", b""

    def callbacks(self) -> dict:
        return {"on_part_begin": self._begin, "on_part_data": self._data,
                "on_part_end": self._end, "on_header_field": self._hname,
                "on_header_value": self._hvalue, "on_header_end": self._hend}

    def _begin(self) -> None:
        self._chunks, self._ctype = [], b""

    def _hname(self, data: bytes, start: int, end: int) -> None:
        self._name += data[start:end]

    def _hvalue(self, data: bytes, start: int, end: int) -> None:
        self._value += data[start:end]

    def _hend(self) -> None:
        if self._name.strip().lower() == b"content-type":
            self._ctype = self._value.strip()
        self._name, self._value = b"", b""

    def _data(self, data: bytes, start: int, end: int) -> None:
        self.total += end - start
        if self.total > self.max_bytes:
            raise ApiError(413, "upload_too_large", f"the STOW-RS body is larger than the "
                           f"limit of {self.max_bytes:,} bytes (SPINEXR_MAX_UPLOAD_BYTES)")
        self._chunks.append(data[start:end])

    def _end(self) -> None:
        self.parts.append(_Part(self._ctype.decode("latin-1").split(";")[0].strip().lower(),
                                b"".join(self._chunks)))


def _related_boundary(content_type: str | None) -> bytes:
    from python_multipart.multipart import parse_options_header

    kind, options = parse_options_header(content_type or "")
    part_type = options.get(b"type", b"application/dicom").decode("latin-1").lower()
    if kind != b"multipart/related" or part_type != "application/dicom" or \
            not options.get(b"boundary"):
        raise ApiError(415, "unsupported_media_type", "STOW-RS takes multipart/related; "
                       "type=\"application/dicom\"; boundary=... (got "
                       f"{(content_type or 'no Content-Type')[:80]!r})")
    return options[b"boundary"]


async def _read_parts(request: Request, max_bytes: int) -> list[_Part]:
    from python_multipart.exceptions import MultipartParseError
    from python_multipart.multipart import MultipartParser

    parts = _Related(max_bytes)
    try:
        parser = MultipartParser(_related_boundary(request.headers.get("content-type")),
                                 parts.callbacks())
        async for chunk in request.stream():
            parser.write(chunk)
        parser.finalize()
    except MultipartParseError as exc:
        raise ApiError(400, "bad_multipart", f"the multipart body cannot be parsed ({exc})") \
            from None
    if not parts.parts:
        raise ApiError(400, "bad_multipart", "the STOW-RS body holds no instance")
    return parts.parts


def _header(data: bytes):
    from pydicom import dcmread

    return dcmread(io.BytesIO(data), stop_before_pixels=True)


@router.post("/studies", response_class=Response, **_STOW)
async def stow(request: Request, svc: ServiceDep, who: Submitter) -> Response:
    """STOW-RS: analyse every instance of the multipart/related body."""
    return await _stow(request, svc, who, None)


@router.post("/studies/{study}", response_class=Response, **_STOW)
async def stow_study(study: str, request: Request, svc: ServiceDep, who: Submitter) -> Response:
    """STOW-RS into one study: instances of another study fail with reason A900H."""
    return await _stow(request, svc, who, study)


async def _stow(request: Request, svc, who, study: str | None) -> Response:
    _query(request, ())
    parts = await _read_parts(request, svc.settings.max_upload_bytes)
    stored, failed = [], []
    for i, part in enumerate(parts):
        item, reason = await _store_one(svc, who, part, i, study)
        (failed if reason else stored).append((item, reason))
    body: dict[str, Any] = {}
    if study:
        body["00081190"] = _ur(f"{request.base_url}dicomweb/studies/{study}")
    if stored:
        body["00081199"] = {"vr": "SQ", "Value": [item for item, _ in stored]}
    if failed:
        body["00081198"] = {"vr": "SQ", "Value": [
            {**item, "00081197": {"vr": "US", "Value": [reason]}} for item, reason in failed]}
    status = 200 if not failed else 202 if stored else 409
    return Response(json.dumps(body), status_code=status, media_type=DICOM_JSON)


async def _store_one(svc, who, part: _Part, index: int, study: str | None):
    item: dict[str, Any] = {}
    if part.content_type not in ("", "application/dicom"):
        return item, CANNOT_UNDERSTAND
    try:
        head = await run_in_threadpool(_header, part.data)
        item = {"00081150": _ui(str(head.SOPClassUID)), "00081155": _ui(str(head.SOPInstanceUID))}
        if study and str(head.StudyInstanceUID) != study:
            return item, NOT_MATCHING
    except Exception:  # noqa: BLE001 - not DICOM, or no SOP identity
        return item, CANNOT_UNDERSTAND
    upload = Upload(part.data, f"instance {index + 1}", "dicom",
                    hashlib.sha256(part.data).hexdigest())
    try:
        await run_in_threadpool(svc.precheck, upload, who.name)
        analysis_id, _ = await svc.submit(upload, who.name, tuple(svc.settings.explain_default),
                                          wait=False)
    except ApiError as exc:
        return item, OUT_OF_RESOURCES if exc.status in (429, 503) else CANNOT_UNDERSTAND
    item["00081190"] = _ur(f"/v1/analyses/{analysis_id}")
    return item, None


# --------------------------------------------------------------------------- QIDO / WADO
@dataclass(frozen=True)
class _Instance:
    analysis_id: str
    name: str
    study: str
    series: str
    sop: str
    sop_class: str
    modality: str
    number: int | None


def _results(svc, who, study: str) -> list[_Instance]:
    """The result instances of ``study`` the caller may read, from the stored renditions."""
    rows = svc.store.analyses_of_study(study, owner=None if who.can("read_all") else who.name)
    out = []
    for row in rows:
        for name in RESULT_NAMES:
            found = svc.store.rendition(row["id"], name)
            if found is None:
                continue
            ds = _header(found[1])
            out.append(_Instance(row["id"], name, str(ds.StudyInstanceUID),
                                 str(ds.SeriesInstanceUID), str(ds.SOPInstanceUID),
                                 str(ds.SOPClassUID), str(ds.get("Modality", "")),
                                 int(ds.InstanceNumber) if ds.get("InstanceNumber") else None))
    return out


def _qido_instance(i: _Instance, base: str) -> dict:
    doc = {"0020000D": _ui(i.study), "0020000E": _ui(i.series), "00080018": _ui(i.sop),
           "00080016": _ui(i.sop_class), "00080060": {"vr": "CS", "Value": [i.modality]},
           "00081190": _ur(f"{base}dicomweb/studies/{i.study}/series/{i.series}/instances/"
                           f"{i.sop}")}
    if i.number is not None:
        doc["00200013"] = {"vr": "IS", "Value": [i.number]}
    return doc


#: QIDO-RS query keys understood: paging, and matching on these attributes (keyword or tag).
_MATCH = {"SeriesInstanceUID": "series", "0020000E": "series", "SOPInstanceUID": "sop",
          "00080018": "sop", "SOPClassUID": "sop_class", "00080016": "sop_class",
          "Modality": "modality", "00080060": "modality"}
_PAGING = ("limit", "offset", "includefield", "fuzzymatching")


def _query(request: Request, allowed: tuple[str, ...]) -> dict[str, str]:
    """The request's query parameters, or 400 naming one this route does not understand."""
    params = dict(request.query_params)
    bad = [k for k in params if k not in allowed]
    if bad:
        raise ApiError(400, "unsupported_query", f"query parameter {bad[0][:40]!r} is not "
                       f"supported here; use {', '.join(allowed) or 'none'}")
    return params


def _matching(found: list[_Instance], params: dict[str, str]) -> list[_Instance]:
    for key, value in params.items():
        if key in _MATCH:
            found = [i for i in found if getattr(i, _MATCH[key]) == value]
    try:
        offset, limit = int(params.get("offset", 0)), int(params.get("limit", 1000))
    except ValueError:
        raise ApiError(400, "unsupported_query", "limit and offset must be integers") from None
    return found[max(0, offset):max(0, offset) + max(0, limit)]


def _qido(request, svc, who, study: str, series: str | None) -> Response:
    params = _query(request, (*_MATCH, *_PAGING))
    found = _matching([i for i in _results(svc, who, study) if series in (None, i.series)],
                      params)
    svc.store.audit(who.name, "qido", "ok", subject=_subject(study))
    if not found:
        return Response(status_code=204)
    base = str(request.base_url)
    return Response(json.dumps([_qido_instance(i, base) for i in found]), media_type=DICOM_JSON)


@router.get("/studies/{study}/instances", response_class=Response, **_QIDO)
def qido_study_instances(study: str, request: Request, svc: ServiceDep,
                         who: Reader) -> Response:
    """QIDO-RS: the result instances of the study."""
    return _qido(request, svc, who, study, None)


@router.get("/studies/{study}/series/{series}/instances", response_class=Response, **_QIDO)
def qido_series_instances(study: str, series: str, request: Request, svc: ServiceDep,
                          who: Reader) -> Response:
    """QIDO-RS: the result instances of one result series of the study."""
    return _qido(request, svc, who, study, series)


@router.get("/studies/{study}/series", response_class=Response, **_QIDO)
def qido_series(study: str, request: Request, svc: ServiceDep, who: Reader) -> Response:
    """QIDO-RS: the result series of the study (one per kind and source series)."""
    params = _query(request, ("Modality", "00080060", *_PAGING))
    series: dict[str, list[_Instance]] = {}
    for i in _matching(_results(svc, who, study), params):
        series.setdefault(i.series, []).append(i)
    svc.store.audit(who.name, "qido", "ok", subject=_subject(study))
    docs = [{"0020000D": _ui(study), "0020000E": _ui(uid),
             "00080060": {"vr": "CS", "Value": [items[0].modality]},
             "00201209": {"vr": "IS", "Value": [len(items)]}} for uid, items in series.items()]
    if not docs:
        return Response(status_code=204)
    return Response(json.dumps(docs), media_type=DICOM_JSON)


def _wado(request, svc, who, study: str, series: str | None = None,
          instance: str | None = None) -> Response:
    _query(request, ())
    found = [i for i in _results(svc, who, study)
             if series in (None, i.series) and instance in (None, i.sop)]
    if not found:
        raise ApiError(404, "not_found", "no result instance of spinexr matches "
                       f"study {study!r}" + (f", series {series!r}" if series else "") +
                       (f", instance {instance!r}" if instance else ""))
    boundary = uuid.uuid4().hex
    chunks = []
    for i in found:
        data = svc.store.rendition(i.analysis_id, i.name)[1]
        chunks += [f"--{boundary}\r\nContent-Type: application/dicom\r\n\r\n".encode(), data,
                   b"\r\n"]
        svc.store.audit(who.name, f"wado:{i.name}"[:32], "ok", analysis_id=i.analysis_id)
    chunks.append(f"--{boundary}--\r\n".encode())
    return Response(b"".join(chunks), media_type=f'multipart/related; type="application/dicom"; '
                                                 f'boundary={boundary}')


@router.get("/studies/{study}", response_class=Response, **_WADO)
def wado_study(study: str, request: Request, svc: ServiceDep, who: Reader) -> Response:
    """WADO-RS: every result instance of the study (multipart/related)."""
    return _wado(request, svc, who, study)


@router.get("/studies/{study}/series/{series}", response_class=Response, **_WADO)
def wado_series(study: str, series: str, request: Request, svc: ServiceDep,
                who: Reader) -> Response:
    """WADO-RS: the instances of one result series (multipart/related)."""
    return _wado(request, svc, who, study, series)


@router.get("/studies/{study}/series/{series}/instances/{instance}", response_class=Response,
            **_WADO)
def wado_instance(study: str, series: str, instance: str, request: Request, svc: ServiceDep,
                  who: Reader) -> Response:
    """WADO-RS: one result instance (multipart/related with one part)."""
    return _wado(request, svc, who, study, series, instance)


@router.get("/studies/{study}/series/{series}/instances/{instance}/metadata",
            response_class=Response, **_METADATA)
def wado_metadata(study: str, series: str, instance: str, request: Request, svc: ServiceDep,
                  who: Reader) -> Response:
    """WADO-RS metadata: the result instance as DICOM JSON (bulk data left out)."""
    _query(request, ())
    for i in _results(svc, who, study):
        if i.series == series and i.sop == instance:
            ds = _header(svc.store.rendition(i.analysis_id, i.name)[1])
            return Response(json.dumps([ds.to_json_dict(bulk_data_threshold=1024,
                                                        bulk_data_element_handler=lambda e: "")]),
                            media_type=DICOM_JSON)
    raise ApiError(404, "not_found", f"no result instance {instance!r} in study {study!r}")


def _ui(value: str) -> dict:
    return {"vr": "UI", "Value": [value]}


def _ur(value: str) -> dict:
    return {"vr": "UR", "Value": [value]}


def _subject(study: str) -> str:
    return "study:" + hashlib.sha256(study.encode()).hexdigest()[:16]


__all__ = ["router"]
