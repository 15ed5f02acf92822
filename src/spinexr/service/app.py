"""``create_app(settings, analyzer=None)``: the FastAPI app of the clinical web service.

Built on call, never at import. The lifespan opens and migrates the store, loads the model
packs (unless an analyzer is given), re-queues work interrupted by a crash, purges analyses past
retention (at start and daily) and starts the workers; on shutdown running analyses finish and
queued ones stay queued in the store.
"""
from __future__ import annotations

import asyncio
import contextlib
import logging
from pathlib import Path

from spinexr import __version__
from spinexr.errors import SpinexrError, StorageError
from spinexr.service.observe import ServiceMiddleware
from spinexr.service.problems import ApiError, storage_unavailable
from spinexr.service.responses import Readiness
from spinexr.service.settings import Settings

log = logging.getLogger("spinexr.service")
STATIC = Path(__file__).resolve().parent / "static"
PURGE_EVERY_S = 24 * 3600


def create_app(settings: Settings | None = None, analyzer=None, *, static_dir: Path | None = None):
    """The app. ``analyzer``: an :class:`~spinexr.analyze.Analyzer` (or a stand-in with
    ``analyze_batch``, ``info`` and ``config``); default: loaded from ``settings.pack_dir``."""
    from fastapi import FastAPI

    from spinexr.service import compat, dicomweb, routes
    from spinexr.service.core import Service

    settings = settings or Settings.from_env()
    service = Service(settings, analyzer)
    app = FastAPI(title="spinexr", version=_version(), lifespan=_lifespan,
                  docs_url=None, redoc_url=None, openapi_url="/openapi.json")
    app.state.service = service
    _add_handlers(app)
    app.include_router(routes.router)
    app.include_router(compat.router)
    app.include_router(dicomweb.router)
    _add_ops_routes(app)
    _add_ui(app, static_dir or STATIC)
    if settings.cors_origins:
        from fastapi.middleware.cors import CORSMiddleware

        app.add_middleware(CORSMiddleware, allow_origins=list(settings.cors_origins),
                           allow_methods=["GET", "POST", "DELETE"],
                           allow_headers=["Authorization", "Content-Type"],
                           expose_headers=["Location", "Retry-After"], max_age=600)
    app.add_middleware(ServiceMiddleware, metrics=service.metrics, answer=_answer)
    return app


@contextlib.asynccontextmanager
async def _lifespan(app):
    from starlette.concurrency import run_in_threadpool

    service = app.state.service
    await run_in_threadpool(service.start)
    purger = asyncio.create_task(_purge_daily(service))
    try:
        yield
    finally:
        purger.cancel()
        await run_in_threadpool(service.stop)


async def _purge_daily(service) -> None:
    from starlette.concurrency import run_in_threadpool

    while True:
        await asyncio.sleep(PURGE_EVERY_S)
        try:
            n = await run_in_threadpool(service.store.purge, service.settings.retention_days)
            log.info("retention purge", extra={"fields": {"purged": n}})
        except Exception:
            log.exception("retention purge failed")


def _add_handlers(app) -> None:
    from fastapi.exceptions import RequestValidationError
    from starlette.exceptions import HTTPException

    def answer(request, exc: ApiError):
        return _answer(request.url.path, exc)

    @app.exception_handler(ApiError)
    async def _api(request, exc: ApiError):
        return answer(request, exc)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request, exc: RequestValidationError):
        parts = ["{}: {}".format(".".join(str(x) for x in e.get("loc", ())), e.get("msg"))
                 for e in exc.errors()]
        return answer(request, ApiError(422, "invalid_request", "; ".join(parts)))

    @app.exception_handler(HTTPException)
    async def _http(request, exc: HTTPException):
        code = {400: "bad_request", 404: "not_found", 405: "method_not_allowed"}.get(
            exc.status_code, "http_error")
        return answer(request, ApiError(exc.status_code, code, str(exc.detail),
                                        dict(exc.headers or {})))

    @app.exception_handler(SpinexrError)
    async def _spinexr(request, exc: SpinexrError):
        return answer(request, ApiError(422, exc.code, str(exc)))

    @app.exception_handler(StorageError)
    async def _storage(request, exc: StorageError):
        log.error("storage unavailable", extra={"fields": {"path": request.url.path,
                                                           "reason": exc.reason}})
        return answer(request, storage_unavailable(exc))
    # Any other exception is answered 500 by ServiceMiddleware, which also adds the security
    # headers (a handler for Exception would run outside every middleware).


def _answer(path: str, exc: ApiError):
    """The error response of ``exc``: the seed's shape on ``/upload``, else the API's."""
    from fastapi.responses import JSONResponse

    from spinexr.service.compat import seed_error

    if path == "/upload":
        return seed_error(exc)
    return JSONResponse(exc.body(), status_code=exc.status, headers=exc.headers)


def _add_ops_routes(app) -> None:
    from fastapi import Response
    from fastapi.responses import JSONResponse

    # No return annotations: with postponed annotations FastAPI cannot resolve a name imported
    # here and would fail to build the OpenAPI document.
    @app.get("/ready", response_model=None,
             responses={200: {"model": Readiness, "description": "Ready"},
                        503: {"model": Readiness, "description": "Not ready"}})
    def ready():
        """200 when the models are loaded and the store takes a write, else 503."""
        service = app.state.service
        store = service.store_writable()
        ok = store and service.ready
        body = {"ready": ok, "models_loaded": service.analyzer is not None, "store": store,
                "queue_depth": service.queue.depth if service.queue else None}
        return JSONResponse(body, status_code=200 if ok else 503)

    @app.get("/metrics", include_in_schema=False)
    def metrics():
        data, ctype = app.state.service.metrics.text()
        return Response(data, media_type=ctype)


def _add_ui(app, static: Path) -> None:
    from fastapi.responses import FileResponse
    from fastapi.staticfiles import StaticFiles

    if static.is_dir():
        app.mount("/static", StaticFiles(directory=static), name="static")

    @app.get("/", include_in_schema=False)
    def index():
        page = static / "index.html"
        if not page.is_file():
            raise ApiError(404, "not_found", "no web UI installed (spinexr/service/static)")
        return FileResponse(page, media_type="text/html")


def _version() -> str:
    return __version__
