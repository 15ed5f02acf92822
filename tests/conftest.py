"""Shared fixtures. Real data lives in ../shared/data beside the repository; never copied in."""
from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

# Tests never touch the network: an accidental hub download fails at once instead of retrying.
for _key, _value in {"HF_HUB_OFFLINE": "1", "YOLO_OFFLINE": "1", "YOLO_AUTOINSTALL": "0",
                     "NO_ALBUMENTATIONS_UPDATE": "1"}.items():
    os.environ.setdefault(_key, _value)

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("SPINEXR_SHARED", REPO.parent / "shared")).resolve()
DICOM_DIR = SHARED / "data" / "dicom"
VERTEBRAE_DIR = SHARED / "data" / "vertebrae"
RADIOGRAPHS_DIR = SHARED / "data" / "radiographs"


def _need(path: Path) -> Path:
    if not path.exists():
        pytest.skip(f"real test data not found at {path}: clone the repository with ../shared beside it")
    return path


@pytest.fixture(scope="session")
def dicom_dir() -> Path:
    """../shared/data/dicom: the 30 real DICOM files."""
    return _need(DICOM_DIR)


@pytest.fixture(scope="session")
def dicom_manifest(dicom_dir: Path) -> dict[str, dict]:
    """manifest.json of ../shared/data/dicom keyed by file name."""
    return {e["file"]: e for e in json.loads((dicom_dir / "manifest.json").read_text())}


@pytest.fixture(scope="session")
def vertebrae_dir() -> Path:
    """../shared/data/vertebrae: the real CC BY 4.0 vertebra set (YOLO layout)."""
    return _need(VERTEBRAE_DIR)


@pytest.fixture(scope="session")
def radiographs_dir() -> Path:
    """../shared/data/radiographs: real spine and non-spine images with manifest.json."""
    return _need(RADIOGRAPHS_DIR)


@pytest.fixture(autouse=True, scope="module")
def _torch_one_thread():
    """Modules that use torch run on one thread: the tiny test models train faster without
    intra-op synchronisation, and much faster when another process keeps the other core busy."""
    import sys

    torch = sys.modules.get("torch")
    if torch is None:
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
