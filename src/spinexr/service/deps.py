"""Typed FastAPI dependencies: the service, the caller (Bearer key) and role checks."""
from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPBearer

from spinexr.service.auth import DEV_PRINCIPAL, Principal, key_id_of, retry_after
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
        ApiError: 401 without a valid key, 429 over the key's rate limit or after too many
            failed logins for the key id or from the client address.
    """
    address = request.client.host if request.client else "-"
    if not svc.settings.auth_required:
        who = DEV_PRINCIPAL
        bucket = f"ip:{address}"
    else:
        header = request.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise ApiError(401, "unauthorized", "an API key is required: send "
                           "'Authorization: Bearer <key>' (create one with "
                           "'spinexr keys create NAME --role submit')",
                           {"WWW-Authenticate": "Bearer"})
        who = _login(svc, token, address)
        bucket = f"key:{who.name}"
    wait = svc.limiter.take(bucket)
    if wait:
        svc.metrics.rejected.labels(reason="rate_limited").inc()
        raise ApiError(429, "rate_limited", f"more than {svc.settings.rate_limit_per_minute} "
                       "requests a minute for this key; slow down",
                       {"Retry-After": retry_after(wait)})
    return who


def _login(svc: Service, token: str, address: str) -> Principal:
    """The key's principal; failed logins are throttled per key id and per client address
    (a key this process verified before is let through without scrypt or throttle)."""
    found = svc.verifier.remembered(token)
    if found is not None:
        return found
    key_id = key_id_of(token.strip())
    wait = svc.logins.wait(key_id, address)
    if wait:
        svc.metrics.rejected.labels(reason="failed_logins").inc()
        raise ApiError(429, "too_many_failed_logins", "too many failed logins for this key or "
                       "from this address; wait before trying again",
                       {"Retry-After": retry_after(wait)})
    found = svc.verifier.principal(token)
    if found is None:
        svc.logins.failed(key_id, address)
        raise ApiError(401, "invalid_key", "the API key is unknown, malformed or revoked",
                       {"WWW-Authenticate": 'Bearer error="invalid_token"'})
    return found


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
