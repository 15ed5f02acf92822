"""The clinical web service: ``create_app(settings)``, run by ``spinexr serve``.

Needs the ``serve`` extra (FastAPI, uvicorn, SQLAlchemy, Alembic, prometheus-client). Importing
this package imports none of them; :func:`create_app` does.
"""
from __future__ import annotations

from spinexr.service.settings import Settings

__all__ = ["Settings", "create_app"]


def create_app(settings: Settings | None = None, analyzer=None, **kwargs):
    """See :func:`spinexr.service.app.create_app`."""
    from spinexr.service.app import create_app as _create

    return _create(settings, analyzer, **kwargs)
