"""``/v1`` routes: analyses (submit, result, renditions, history), models and API keys."""
from __future__ import annotations

import asyncio
import json
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request, Response
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from spinexr.service.auth import Principal, create_key, key_id_of
from spinexr.service.inflight import Hold
from spinexr.service.deps import Admin, PrincipalDep, Reader, ServiceDep, Submitter
from spinexr.service.problems import STORAGE_RETRY_AFTER_S, ApiError, not_found
from spinexr.service.responses import AUTH, MULTIPART_FILE, AnalysisStatus, Queued, errors
from spinexr.service.tables import ROLES
from spinexr.service.uploads import OVERHEAD as UPLOAD_OVERHEAD
from spinexr.service.uploads import read_upload

router = APIRouter(prefix="/v1")
#: Renditions served under /v1/analyses/{id}/<name>.
RENDITIONS = ("result.json", "image.png", "overlay.png", "report.html", "boxes.xml", "sr.dcm",
              "gsps.dcm", "sc.dcm")
#: Patient and study identifiers of an analysis (:mod:`spinexr.report.identity`).
IDENTITY = "identity.json"
#: report.html embeds its pictures as data: URLs and its CSS inline; nothing else may load.
REPORT_CSP = ("default-src 'none'; img-src data:; style-src 'unsafe-inline'; "
              "frame-ancestors 'self'; sandbox")


#: The spine regions a submitter may name (``spinexr analyze --region``).
REGIONS = ("cervical", "thoracic", "lumbar", "whole")


async def _idle_limited(stream, seconds: float):
    """``stream``'s chunks, or 408 when no chunk comes for ``seconds`` (a stalled upload)."""
    chunks = stream.__aiter__()
    while True:
        try:
            chunk = await asyncio.wait_for(chunks.__anext__(), seconds)
        except StopAsyncIteration:
            return
        except asyncio.TimeoutError:
            raise ApiError(408, "request_timeout", f"the upload sent nothing for {seconds:g} s; "
                           "send it again", {"Connection": "close"}) from None
        yield chunk


def parse_region(raw: str | None) -> str | None:
    """``raw`` (query parameter or form field) as a region, ``None`` when not given."""
    value = (raw or "").strip().lower()
    if not value:
        return None
    if value not in REGIONS:
        raise ApiError(422, "unknown_region", f"region={raw!r}: use one of {', '.join(REGIONS)}")
    return value


def parse_explain(raw: str | None, default: tuple[str, ...]) -> tuple[str, ...]:
    """``"gradcam,ig"`` -> ``("gradcam", "ig")``; unknown methods are a 422."""
    from spinexr.explain import METHODS

    if raw is None:
        return tuple(default)
    methods = tuple(dict.fromkeys(m.strip() for m in raw.split(",") if m.strip()))
    bad = [m for m in methods if m not in METHODS]
    if bad:
        raise ApiError(422, "unknown_explain_method", f"explain={raw!r}: unknown method(s) "
                       f"{', '.join(bad)}; use any of {', '.join(METHODS)}")
    return methods


async def receive_upload(request: Request, svc, who: Principal) -> tuple[Any, Hold]:
    """The upload of ``request``, read within the caller's in-flight byte limit and checked
    cheaply (:meth:`Service.precheck`) before anything is queued, and its hold on those bytes
    (released by :meth:`Service.submit` when the analysis ends).

    Raises:
        ApiError: 429 over the in-flight limit, or what :func:`read_upload` and the precheck
            refuse.
    """
    settings = svc.settings
    hold = svc.inflight.hold(who.name if settings.auth_required
                             else f"ip:{request.client.host if request.client else '-'}")
    try:
        hold.reserve(_declared_length(request.headers.get("content-length"), settings))
        upload = await read_upload(request.headers.get("content-type"),
                                   request.headers.get("content-length"),
                                   hold.counted(_idle_limited(request.stream(),
                                                              settings.request_timeout_s)),
                                   max_bytes=settings.max_upload_bytes)
        hold.settle(len(upload.data))
        await run_in_threadpool(svc.precheck, upload, who.name)
    except BaseException:
        hold.release()
        raise
    return upload, hold


def _declared_length(raw: str | None, settings) -> int:
    """The Content-Length to reserve up front (0 when absent, or too large to be read)."""
    if not raw or not raw.isascii() or not raw.isdigit() or len(raw) > 19:
        return 0
    n = int(raw)
    return n if n <= settings.max_upload_bytes + UPLOAD_OVERHEAD else 0


#: Media types of the renditions (see :data:`spinexr.service.pipeline.MEDIA_TYPES`).
_RENDITION_TYPES = ("application/json", "image/png", "text/html", "application/xml",
                    "application/dicom")
_SUBMIT_RESPONSES = {
    202: {"model": Queued, "description": "Queued (``?async=true``); poll the Location",
          "headers": {"Location": {"description": "The analysis to poll",
                                   "schema": {"type": "string"}}}},
    **errors(*AUTH, 400, 403, 413, 415, 422, 500, 503)}


@router.post("/analyses", status_code=200, responses=_SUBMIT_RESPONSES,
             openapi_extra=MULTIPART_FILE)
async def submit_analysis(request: Request, response: Response, svc: ServiceDep, who: Submitter,
                          run_async: Annotated[bool, Query(alias="async")] = False,
                          explain: str | None = None, region: str | None = None) -> dict:
    """Analyse one uploaded file (multipart field ``file``). Waits for the result unless
    ``?async=true`` (202 with the id and a Location to poll). ``region`` (query parameter or
    form field: cervical, thoracic, lumbar, whole) names the spine region of an input whose
    header names none, e.g. a PNG."""
    methods = parse_explain(explain, svc.settings.explain_default)
    parse_region(region)
    upload, hold = await receive_upload(request, svc, who)
    try:
        chosen = parse_region(region or upload.fields.get("region"))
    except ApiError:
        hold.release()
        raise
    analysis_id, outcome = await svc.submit(upload, who.name, methods, wait=not run_async,
                                            hold=hold, region=chosen)
    location = f"/v1/analyses/{analysis_id}"
    response.headers["Location"] = location
    if outcome is None:
        response.status_code = 202
        return {"id": analysis_id, "status": "queued", "location": location,
                **queue_fields(svc, analysis_id)}
    if outcome.error is not None:
        raise outcome_error(outcome, analysis_id, {"Location": location})
    return await run_in_threadpool(_view_of, svc, analysis_id)


def outcome_error(outcome, analysis_id: str, headers: dict[str, str] | None = None) -> ApiError:
    """The ApiError of a failed or refused outcome (503s say when to retry)."""
    code, message, status = outcome.error
    headers = dict(headers or {})
    if status == 503:
        headers["Retry-After"] = str(STORAGE_RETRY_AFTER_S)
    return ApiError(status, code, message, headers, analysis_id=analysis_id)


def queue_fields(svc, analysis_id: str) -> dict:
    """``queue_position`` and ``estimated_wait_s`` of a queued or running analysis (see
    :meth:`~spinexr.service.jobs.JobQueue.position`); nulls when the queue does not hold it."""
    place = svc.queue.position(analysis_id) if svc.queue is not None else None
    position, wait = place if place is not None else (None, None)
    return {"queue_position": position, "estimated_wait_s": wait}


def _view_of(svc, analysis_id: str) -> dict:
    return analysis_view(svc.store.get(analysis_id), svc.store.rendition_names(analysis_id))


def _visible(svc, who: Principal, analysis_id: str) -> dict:
    row = svc.store.get(analysis_id)
    if row is None or not (who.can("read_all") or row["owner"] == who.name):
        raise not_found(f"analysis {analysis_id!r}")
    return row


def analysis_view(row: dict, names: list[str]) -> dict:
    """The API form of a stored analysis: result.json's keys plus id, status, error, links."""
    doc = dict(row["result"] or {})
    doc.update(id=row["id"], status=row["status"], created=_iso(row["created"]))
    if row["error_code"]:
        doc["error"] = {"code": row["error_code"], "message": row["error_message"]}
    doc["links"] = {n: f"/v1/analyses/{row['id']}/{n}" for n in names}
    return doc


@router.get("/analyses/{analysis_id}", response_model=None,
            responses={200: {"model": AnalysisStatus, "description": "The analysis"},
                       **errors(*AUTH, 403, 404, 422)})
def get_analysis(analysis_id: str, svc: ServiceDep, who: Reader) -> dict:
    """The analysis (``status`` queued/running/done/failed/refused); while it is queued or
    running, its ``queue_position`` and ``estimated_wait_s``."""
    row = _visible(svc, who, analysis_id)
    svc.store.audit(who.name, "read", "ok", analysis_id=analysis_id,
                    sha256=row["input_sha256"], pack_version=row["pack_version"])
    view = analysis_view(row, svc.store.rendition_names(analysis_id))
    if row["status"] in ("queued", "running"):
        view.update(queue_fields(svc, analysis_id))
    return view


def _rendition(svc, who: Principal, analysis_id: str, name: str) -> Response:
    row = _visible(svc, who, analysis_id)
    found = svc.store.rendition(analysis_id, name)
    if found is None:
        have = svc.store.rendition_names(analysis_id)
        raise ApiError(404, "rendition_not_found",
                       f"analysis {analysis_id!r} has no {name} (status {row['status']}; "
                       f"it has {', '.join(have) or 'none yet'})")
    svc.store.audit(who.name, f"get:{name}"[:32], "ok", analysis_id=analysis_id,
                    sha256=row["input_sha256"], pack_version=row["pack_version"])
    media, data = found
    headers = {}
    if name.endswith(".dcm") or name.endswith(".xml"):
        headers["Content-Disposition"] = f'attachment; filename="{analysis_id}-{name}"'
    if name.endswith(".html"):
        headers["Content-Security-Policy"] = REPORT_CSP
    return Response(data, media_type=media, headers=headers)


@router.get("/analyses/{analysis_id}/heatmap/{method}.png", response_class=Response,
            responses={200: {"content": {"image/png": {}}, "description": "The heatmap"},
                       **errors(*AUTH, 403, 404, 422)})
def get_heatmap(analysis_id: str, method: str, svc: ServiceDep, who: Reader) -> Response:
    """The overlay blended with the ``method`` explanation (request it with ``?explain=``)."""
    return _rendition(svc, who, analysis_id, f"heatmap/{method}.png")


@router.get("/analyses/{analysis_id}/heat/{method}.png", response_class=Response,
            responses={200: {"content": {"image/png": {}},
                             "description": "The explanation's values as 8-bit grey"},
                       **errors(*AUTH, 403, 404, 422)})
def get_heat(analysis_id: str, method: str, svc: ServiceDep, who: Reader) -> Response:
    """The ``method`` explanation's values (0 none, 255 strongest), the size of image.png, for
    the browser UI to colour and blend at the opacity the reader chooses."""
    return _rendition(svc, who, analysis_id, f"heat/{method}.png")


@router.get("/analyses/{analysis_id}/identity.json", response_model=None,
            responses=errors(*AUTH, 403, 404, 422))
def get_identity(analysis_id: str, svc: ServiceDep, who: Reader) -> Response:
    """Patient and study of a DICOM upload (name, ID, birth date, study date and description,
    accession, view, body part), for the reader to check the patient. 404
    ``identifiers_hidden`` when the service runs with ``SPINEXR_SHOW_IDENTIFIERS=off``."""
    if not svc.settings.show_identifiers:
        raise ApiError(404, "identifiers_hidden", "this service does not show patient "
                       "identifiers (SPINEXR_SHOW_IDENTIFIERS=off)")
    return _rendition(svc, who, analysis_id, IDENTITY)


@router.get("/analyses/{analysis_id}/{name}", response_class=Response,
            responses={200: {"content": {m: {} for m in _RENDITION_TYPES},
                             "description": "The rendition"},
                       **errors(*AUTH, 403, 404, 422)})
def get_rendition(analysis_id: str, name: str, svc: ServiceDep, who: Reader) -> Response:
    """One of :data:`RENDITIONS`; DICOM objects exist for DICOM uploads only."""
    if name not in RENDITIONS:
        raise ApiError(404, "rendition_not_found",
                       f"no rendition {name!r}; use one of {', '.join(RENDITIONS)}")
    return _rendition(svc, who, analysis_id, name)


@router.get("/analyses", responses=errors(*AUTH, 403, 422))
def list_analyses(svc: ServiceDep, who: Reader,
                  limit: Annotated[int, Query(ge=1, le=100)] = 20,
                  cursor: str | None = None) -> dict:
    """Newest first; pass ``next_cursor`` back as ``cursor`` for the next page. ``submit`` keys
    see their own analyses only."""
    rows, nxt = svc.store.history(limit=limit, cursor=_cursor(cursor),
                                  owner=None if who.can("read_all") else who.name)
    svc.store.audit(who.name, "list", "ok")
    items = [{"id": r["id"], "created": _iso(r["created"]), "status": r["status"],
              "pack": {"name": r["pack_name"], "version": r["pack_version"]},
              "input_sha256": r["input_sha256"], "error_code": r["error_code"],
              "location": f"/v1/analyses/{r['id']}", **_verdict(r["result"])} for r in rows]
    if svc.settings.show_identifiers:
        for item in items:
            item["identity"] = _identity(svc, item["id"])
    return {"items": items, "next_cursor": str(nxt) if nxt is not None else None}


def _identity(svc, analysis_id: str) -> dict | None:
    """The stored patient and study identifiers of an analysis (``None``: not DICOM)."""
    found = svc.store.rendition(analysis_id, IDENTITY)
    return json.loads(found[1]) if found is not None else None


#: Cursors are sequence numbers: SQLite and PostgreSQL integers stop at 2**63 - 1.
_MAX_CURSOR = 2 ** 63 - 1


def _cursor(raw: str | None) -> int | None:
    """The sequence number a ``next_cursor`` holds; 422 for anything this service never gives."""
    if raw is None or raw == "":
        return None
    if not (raw.isascii() and raw.isdigit() and len(raw) <= 19 and int(raw) <= _MAX_CURSOR):
        raise ApiError(422, "bad_cursor", f"cursor {raw[:40]!r} is not one this service gave "
                       "out; pass back the next_cursor of the previous page")
    return int(raw)


def _verdict(result: dict | None) -> dict:
    """The history list's one-line summary of a stored result (nulls when there is none)."""
    result = result or {}
    triage = result.get("triage") or {}
    return {"image_id": result.get("image_id"), "abnormal": triage.get("abnormal"),
            "probability": triage.get("probability"),
            "n_findings": len(result["findings"]) if "findings" in result else None}


@router.get("/models", responses=errors(*AUTH))
def get_models(svc: ServiceDep, who: PrincipalDep) -> dict:
    """The model pack in use: name, version, synthetic flag and model card; its clinical
    summary (intended use, training data, operating points with thresholds, measured
    performance); whether this service shows patient identifiers."""
    from spinexr.explain import METHODS

    from spinexr.report.card import clinical_card

    manifest = getattr(getattr(svc.analyzer, "pack", None), "manifest", None)
    return {"pack": svc.model_info(), "explain_methods": list(METHODS),
            "clinical": clinical_card(manifest),
            "show_identifiers": svc.settings.show_identifiers}


class KeyRequest(BaseModel):
    """A key to create: ``name`` of 1-64 letters, digits, '-', '_' or '.' (checked by
    :func:`create_key`) and one of :data:`~spinexr.service.tables.ROLES`."""

    name: str = Field(min_length=1, max_length=64)
    role: Literal[ROLES]  # type: ignore[valid-type]  # the tuple's values, one source of truth


@router.post("/keys", status_code=201, responses=errors(*AUTH, 400, 403, 422))
def post_key(body: KeyRequest, svc: ServiceDep, who: Admin) -> dict:
    """A new API key (admin only); the key is shown in this answer and never again."""
    key = create_key(svc.store, body.name, body.role)
    svc.store.audit(who.name, "key_create", "ok", subject=key_id_of(key))
    return {"name": body.name, "role": body.role, "key": key}


@router.get("/keys", responses=errors(*AUTH, 403))
def get_keys(svc: ServiceDep, who: Admin) -> dict:
    return {"items": [{"name": k.name, "role": k.role, "created": _iso(k.created),
                       "revoked": _iso(k.revoked)} for k in svc.store.keys()]}


@router.delete("/keys/{name}", responses=errors(*AUTH, 403, 404, 422))
def delete_key(name: str, svc: ServiceDep, who: Admin) -> dict:
    key_id = svc.store.revoke_key(name)
    if key_id is None:
        raise not_found(f"active key {name!r}")
    svc.store.audit(who.name, "key_revoke", "ok", subject=key_id)
    return {"name": name, "revoked": True}


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat(timespec="seconds") + "Z"
