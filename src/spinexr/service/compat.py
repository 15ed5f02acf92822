"""The seed web app's routes, same shapes: ``POST /upload`` and ``GET /health``.

``/upload`` takes the same multipart field ``file`` and answers ``status``, ``diagnosis``,
``confidence``, ``ensemble_prediction``, ``detections`` (``class``, ``confidence``, ``bbox``
``[x1, y1, x2, y2]``), ``metadata`` and ``annotated_image`` (a PNG data URL). Differences, on
purpose: it needs an API key like ``/v1`` (unless auth is off); ``metadata`` holds no patient
data (the seed echoed PatientID); an image refused by the gate answers ``status: "refused"``
with ``diagnosis: null``; errors also carry the ``error`` object of the rest of the API.
"""
from __future__ import annotations

import base64
from datetime import datetime, timezone

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from spinexr.service.deps import ServiceDep, Submitter
from spinexr.service.problems import ApiError
from spinexr.service.responses import AUTH, MULTIPART_FILE, SeedErrorResponse, errors
from spinexr.service.routes import outcome_error, receive_upload

router = APIRouter()


def seed_error(exc: ApiError) -> JSONResponse:
    """The seed's error shape plus the API's ``error`` object."""
    return JSONResponse({"status": "error", "message": exc.message, **exc.body()},
                        status_code=exc.status, headers=exc.headers)


@router.post("/upload", openapi_extra=MULTIPART_FILE,
             responses=errors(*AUTH, 400, 403, 413, 415, 422, 500, 503,
                              model=SeedErrorResponse))
async def upload(request: Request, svc: ServiceDep, who: Submitter):
    """Seed-compatible synchronous analysis of one upload."""
    try:
        upload, hold = await receive_upload(request, svc, who)
        analysis_id, outcome = await svc.submit(upload, who.name,
                                                svc.settings.explain_default, wait=True,
                                                hold=hold)
    except ApiError as exc:
        return seed_error(exc)
    if outcome.error is not None:
        return seed_error(outcome_error(outcome, analysis_id))
    overlay = svc.store.rendition(analysis_id, "overlay.png")
    return seed_result(outcome.doc, analysis_id, upload.kind, overlay[1] if overlay else None)


def seed_result(doc: dict, analysis_id: str, kind: str, overlay: bytes | None) -> dict:
    """The seed's response built from a result.json document."""
    triage = doc.get("triage")
    accepted = bool(doc["gate"]["accepted"])
    if triage is None:
        diagnosis, confidence = None, None
    else:
        p = triage["probability"]
        diagnosis = "Abnormal" if triage["abnormal"] else "Normal"
        confidence = None if p is None else (p if triage["abnormal"] else 1.0 - p)
    return {
        "status": "success" if accepted else "refused",
        "message": doc["gate"]["reason"],
        "id": analysis_id,
        "diagnosis": diagnosis,
        "confidence": confidence,
        "ensemble_prediction": dict(triage["per_model"]) if triage else {},
        "detections": [{"class": f["label"], "confidence": f["score"], "bbox": f["box"],
                        "level": f["level"]} for f in doc.get("findings", [])],
        "metadata": {"format": kind, "image_size": doc.get("image_size"),
                     "spacing_mm": doc.get("spacing_mm")},
        "annotated_image": ("data:image/png;base64," + base64.b64encode(overlay).decode("ascii")
                            if overlay else None),
        "pack": doc.get("pack"),
        "disclaimer": doc.get("disclaimer"),
    }


@router.get("/health")
def health(svc: ServiceDep) -> dict:
    """Seed-compatible liveness: ``status``, ``models_loaded``, ``device``, ``timestamp``."""
    loaded = svc.analyzer is not None
    device = getattr(getattr(svc.analyzer, "config", None), "device", "cpu")
    return {"status": "healthy" if loaded else "starting", "models_loaded": loaded,
            "device": device,
            "timestamp": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")}
