"""Typed FastAPI dependencies: the service, the caller (Bearer key) and role checks."""
from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPBearer

from spinexr.service.auth import DEV_PRINCIPAL, Principal, retry_after
from spinexr.service.core import Service
from spinexr.service.problems import ApiError

_WHAT = {"submit": "submit analyses", "read_own": "read analyses",
         "read_all": "read other keys' analyses", "admin": "manage keys"}


def get_service(request: Request) -> Service:
    return request.app.state.service


ServiceDep = Annotated[Service, Depends(get_service)]
#: Documents the Bearer scheme in the OpenAPI document; :func:`get_principal` reads the header.
_BEARER = HTTPBearer(auto_error=False, scheme_name="ApiKey",
                     description="An API key: 'Authorization: Bearer sxr_<id>_<secret>'")


def get_principal(request: Request, svc: ServiceDep,
                  _documented: Annotated[object, Depends(_BEARER)] = None) -> Principal:
    """The caller: from ``Authorization: Bearer <key>``, or the dev admin when auth is off.

    Raises:
        ApiError: 401 without a valid key, 429 over the key's rate limit.
    """
    if not svc.settings.auth_required:
        who = DEV_PRINCIPAL
        bucket = f"ip:{request.client.host if request.client else '-'}"
    else:
        header = request.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise ApiError(401, "unauthorized", "an API key is required: send "
                           "'Authorization: Bearer <key>' (create one with "
                           "'spinexr keys create NAME --role submit')",
                           {"WWW-Authenticate": "Bearer"})
        found = svc.verifier.principal(token)
        if found is None:
            raise ApiError(401, "invalid_key", "the API key is unknown, malformed or revoked",
                           {"WWW-Authenticate": 'Bearer error="invalid_token"'})
        who, bucket = found, f"key:{found.name}"
    wait = svc.limiter.take(bucket)
    if wait:
        svc.metrics.rejected.labels(reason="rate_limited").inc()
        raise ApiError(429, "rate_limited", f"more than {svc.settings.rate_limit_per_minute} "
                       "requests a minute for this key; slow down",
                       {"Retry-After": retry_after(wait)})
    return who


PrincipalDep = Annotated[Principal, Depends(get_principal)]


def require(permission: str):
    """A dependency that lets through callers whose role grants ``permission`` (else 403)."""

    def check(who: PrincipalDep) -> Principal:
        if not who.can(permission):
            raise ApiError(403, "forbidden", f"key {who.name!r} has role {who.role!r}, which "
                           f"may not {_WHAT.get(permission, permission)}")
        return who

    return check


Submitter = Annotated[Principal, Depends(require("submit"))]
Reader = Annotated[Principal, Depends(require("read_own"))]
Admin = Annotated[Principal, Depends(require("admin"))]
