"""Fixtures of the batch tests: a small manifest (phantom radiographs, a corrupt file, a
non-spine image) and engines on the committed packs, built once per module."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from batch_helpers import N_PHANTOMS

from spinexr.batch import BatchSpec

MODELS = Path(__file__).resolve().parents[2] / "models"


@pytest.fixture(scope="session")
def archive(tmp_path_factory) -> Path:
    """12 small phantom DICOMs, a corrupt DICOM and a noise PNG (no spine) in one folder."""
    from PIL import Image

    from spinexr.phantom import XrayConfig, generate_xray, xray_to_dicom

    root = tmp_path_factory.mktemp("archive")
    for seed in range(N_PHANTOMS):
        xray_to_dicom(generate_xray(seed, XrayConfig(size=(448, 352)))).save_as(
            root / f"xr{seed:02d}.dcm", enforce_file_format=True)
    (root / "corrupt.dcm").write_bytes(b"\0" * 128 + b"DICM" + b"\x02\x00" * 40)
    rng = np.random.default_rng(0)
    ramp = np.linspace(0.0, 1.0, 256)[:, None] * np.ones((1, 256))
    Image.fromarray((255 * (0.5 * ramp + 0.5 * rng.random((256, 256)))).astype(np.uint8)).save(
        root / "noise.png")
    return root


@pytest.fixture(scope="session")
def spec() -> BatchSpec:
    """Both engines with one fixed thread plan: a plan sized from the CPUs free at the moment
    gave the two engines different intra-op thread counts on a loaded machine, and ONNX
    Runtime's sums then differed in the last bits (a full run saw rows differ)."""
    from spinexr.models.threads import ThreadPlan

    return BatchSpec(pack=str(MODELS / "demo"), vertebrae=str(MODELS / "vertebrae"),
                     threads=ThreadPlan(intra_op=1, decode_workers=0, cpus=1, free=1.0))
