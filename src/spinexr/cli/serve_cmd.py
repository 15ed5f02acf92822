"""``spinexr serve [--host 127.0.0.1] [--port 8000] [--data-dir DIR] [--pack DIR]``.

Runs the clinical web service (see docs/service.md) with uvicorn. Settings come from
``SPINEXR_*`` environment variables; the options here override them. The model packs are
loaded and the database opened, upgraded and written once before the server starts, so a
missing pack or a read-only or corrupt database is one error line, not a traceback.
"""
from __future__ import annotations

import argparse
from pathlib import Path

from spinexr.errors import ConfigError
from spinexr.service import Settings, create_app
from spinexr.service.observe import configure_logging


def add_parser(sub) -> None:
    p = sub.add_parser("serve", help="run the web service (REST API and browser UI)",
                       description="Serve the analysis API and UI. Needs the 'serve' extra. "
                                   "API keys: 'spinexr keys create NAME --role submit'.")
    p.add_argument("--host", default="127.0.0.1",
                   help="address to listen on (default 127.0.0.1; 0.0.0.0 in containers)")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--data-dir", type=Path, default=None,
                   help="database folder (default $SPINEXR_DATA_DIR or ./spinexr-data)")
    p.add_argument("--pack", type=Path, default=None, help="model pack (default models/demo)")
    p.add_argument("--vertebrae", type=Path, default=None, help="vertebra detector pack")
    p.add_argument("--workers", type=int, default=None, help="analysis threads")
    p.add_argument("--log-level", default="INFO",
                   choices=("DEBUG", "INFO", "WARNING", "ERROR"))
    p.set_defaults(run=run)


def require_serve_extra() -> None:
    """Raise a one-line ConfigError when the ``serve`` extra is not installed."""
    import importlib.util

    missing = [m for m in ("fastapi", "uvicorn", "sqlalchemy", "alembic", "prometheus_client",
                           "python_multipart") if importlib.util.find_spec(m) is None]
    if missing:
        raise ConfigError(f"the web service needs the 'serve' extra ({', '.join(missing)} "
                          "missing): pip install 'spinexr[serve]'")


def run(args: argparse.Namespace) -> int:
    require_serve_extra()
    import uvicorn

    from spinexr.service.core import load_analyzer
    from spinexr.service.server import guarded_protocol
    from spinexr.service.store import check_database

    settings = Settings.from_env(data_dir=args.data_dir, pack_dir=args.pack,
                                 vertebrae_dir=args.vertebrae, workers=args.workers)
    configure_logging(args.log_level)
    if not settings.auth_required and args.host not in ("127.0.0.1", "localhost", "::1"):
        raise ConfigError(f"SPINEXR_AUTH=off (dev mode) listens on loopback only; got --host "
                          f"{args.host}", "--host")
    check_database(settings.db_url)
    analyzer = load_analyzer(settings)
    uvicorn.run(create_app(settings, analyzer), host=args.host, port=args.port,
                log_level=args.log_level.lower(), access_log=False,
                timeout_graceful_shutdown=60, server_header=False,
                http=guarded_protocol(settings.request_timeout_s))
    return 0
