"""What the OpenAPI document says each route may answer besides its success.

Every error of the API is ``{"error": {"code": ..., "message": ...}}`` (:mod:`.problems`); the
seed's ``/upload`` adds ``status: "error"`` and ``message`` around it. :func:`errors` declares
those bodies for the statuses a route can give, so clients (and schema-based tests) can rely on
the document. :data:`MULTIPART_FILE` documents the upload body that :func:`read_upload` parses by
hand (FastAPI cannot see it, since the route reads the raw stream).
"""
from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

_DESCRIPTIONS = {
    400: "A body that cannot be parsed (JSON or multipart), or no file or an empty one",
    401: "No API key, or an unknown, malformed or revoked one",
    403: "The key's role may not do this",
    404: "Not found (or not visible to this key)",
    410: "The upload of this analysis is no longer stored",
    413: "The upload or the image is larger than the limits",
    415: "Not multipart/form-data, or the file is not DICOM, PNG, JPEG or TIFF",
    422: "Invalid parameters or body, or an image that cannot be read",
    429: "Over the key's rate limit, too many failed logins, too many upload bytes in flight "
         "for the key, or the queue is full (see Retry-After)",
    500: "The analysis failed inside the service (logged under the request)",
    503: "The service is shutting down, or its database cannot be used (see Retry-After)",
}
#: Statuses every route behind an API key can give (the key is looked up in the database).
AUTH = (401, 429, 503)


class ErrorDetail(BaseModel):
    """The error object: a stable snake_case ``code`` and a message for people."""

    model_config = ConfigDict(extra="allow")

    code: str
    message: str
    analysis_id: str | None = None


class ErrorResponse(BaseModel):
    """The one error shape of the API."""

    error: ErrorDetail


class SeedErrorResponse(BaseModel):
    """Errors of the seed-compatible ``/upload``: the seed's shape plus the ``error`` object."""

    status: Literal["error"]
    message: str
    error: ErrorDetail


class QueuePlace(BaseModel):
    """Where a queued or running analysis stands."""

    queue_position: int | None = Field(
        None, description="0 while it runs, k >= 1 for the k-th analysis in line; null when "
                          "the queue no longer holds it")
    estimated_wait_s: float | None = Field(
        None, description="seconds until the result is expected, from the mean duration of "
                          "the last 20 analyses; null until one has finished")


class Queued(QueuePlace):
    """``POST /v1/analyses?async=true``: the id, where to poll it and its place in line."""

    id: str
    status: Literal["queued"]
    location: str


class AnalysisStatus(QueuePlace):
    """``GET /v1/analyses/{id}``: result.json's keys (once done) plus these; the queue fields
    are present while the analysis is queued or running."""

    model_config = ConfigDict(extra="allow")

    id: str
    status: Literal["queued", "running", "done", "failed", "refused"]
    created: str
    links: dict[str, str]
    error: ErrorDetail | None = None


class Readiness(BaseModel):
    """``/ready``: 200 when ``ready``, else 503 with the same body."""

    ready: bool
    models_loaded: bool
    store: bool
    queue_depth: int | None


def errors(*statuses: int, model: type[BaseModel] = ErrorResponse) -> dict[int, dict]:
    """``responses=`` for a route that can answer ``statuses`` with the error body ``model``."""
    return {s: {"model": model, "description": _DESCRIPTIONS.get(s, "Error")}
            for s in sorted(set(statuses))}


#: ``openapi_extra`` of the upload routes: one file in multipart field ``file``.
MULTIPART_FILE = {"requestBody": {"required": True, "content": {"multipart/form-data": {
    "schema": {"type": "object", "required": ["file"],
               "properties": {"file": {"type": "string", "format": "binary",
                                       "description": "DICOM, PNG, JPEG or TIFF"}}}}}}}
