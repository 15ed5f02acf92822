"""Helpers of the service tests: keys, a running app, uploads (fixtures are in conftest)."""
from __future__ import annotations

import io
from contextlib import contextmanager
from pathlib import Path

CLF = "test_efficientnet"   # timm's 99k-parameter test model
REPO_VERTEBRAE = Path(__file__).resolve().parents[2] / "models" / "vertebrae"


def add_key(settings, name: str, role: str) -> str:
    """Create a key in the settings' database (migrating it first)."""
    from spinexr.service.auth import create_key
    from spinexr.service.store import Store

    store = Store.open(settings.db_url)
    try:
        return create_key(store, name, role)
    finally:
        store.close()


@contextmanager
def running(settings, analyzer, **kwargs):
    """A TestClient with the app's lifespan running."""
    from fastapi.testclient import TestClient

    from spinexr.service import create_app

    app = create_app(settings, analyzer, **kwargs)
    with TestClient(app, raise_server_exceptions=False) as client:
        yield client


def bearer(key: str) -> dict:
    return {"Authorization": f"Bearer {key}"}


def phantom_dicom(seed: int = 3, size=(256, 200)) -> bytes:
    """A small synthetic spine radiograph as DICOM bytes."""
    from spinexr.phantom import XrayConfig, generate_xray, xray_to_dicom

    buf = io.BytesIO()
    xray_to_dicom(generate_xray(seed, XrayConfig(size=size))).save_as(
        buf, enforce_file_format=True)
    return buf.getvalue()


def png_bytes(array) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(array).save(buf, format="PNG")
    return buf.getvalue()


def upload(name: str, data: bytes) -> dict:
    return {"file": (name, data, "application/octet-stream")}
