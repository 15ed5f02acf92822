"""The one error shape of the API: ``{"error": {"code": ..., "message": ...}}``.

Handlers raise :class:`ApiError`; the app turns it, FastAPI's validation errors and any
unexpected exception into that JSON (the last as a 500 whose message names only the request
id, never the exception text).
"""
from __future__ import annotations

from spinexr.errors import ImageTooLargeError, NotAnImageError, SpinexrError, StorageError


class ApiError(Exception):
    """An HTTP error with a stable snake_case ``code`` and a message for people."""

    def __init__(self, status: int, code: str, message: str,
                 headers: dict[str, str] | None = None, **extra) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message
        self.headers = headers or {}
        self.extra = extra

    def body(self) -> dict:
        return {"error": {"code": self.code, "message": self.message, **self.extra}}


def status_of_read_error(exc: SpinexrError) -> int:
    """The HTTP status of a reader error: 413 too large, 415 not an image, 422 otherwise."""
    if isinstance(exc, ImageTooLargeError):
        return 413
    if isinstance(exc, NotAnImageError):
        return 415
    return 422


def not_found(what: str) -> ApiError:
    return ApiError(404, "not_found", f"{what} not found")


#: Seconds a client is asked to wait before retrying after a storage fault.
STORAGE_RETRY_AFTER_S = 30


def storage_unavailable(exc: StorageError) -> ApiError:
    """503 for a database that fails; the message gives the reason, not the server's paths."""
    return ApiError(503, "storage_unavailable", f"the service cannot use its database right "
                    f"now ({exc.reason}); retry later",
                    {"Retry-After": str(STORAGE_RETRY_AFTER_S)})
