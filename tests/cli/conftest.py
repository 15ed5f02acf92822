"""Fixtures of the CLI tests."""
from __future__ import annotations

import pytest

from spinexr.labels import LESION_CLASSES


@pytest.fixture()
def tiny_pack(tmp_path, monkeypatch):
    """A pack with an untrained YOLO11n lesion detector (no vertebra detector anywhere)."""
    monkeypatch.setenv("SPINEXR_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("SPINEXR_MODELS", str(tmp_path / "no-models"))
    import torch

    from spinexr.models.pack import save_pack, save_weights
    from spinexr.models.yolo import build_detection_model

    torch.manual_seed(0)
    model = build_detection_model("yolo11n", list(LESION_CLASSES))
    root = tmp_path / "pack"
    sha = save_weights(model.state_dict(), root / "lesions.safetensors")
    save_pack(root, {"name": "tiny", "version": "0.0.1", "synthetic": True,
                     "card": {"intended_use": "tests only"},
                     "models": {"lesions": {"kind": "detector", "arch": "yolo11n",
                                            "weights": "lesions.safetensors", "sha256": sha,
                                            "dtype": "float16", "labels": list(LESION_CLASSES),
                                            "input": {"size": 64},
                                            "thresholds": {"conf": 0.5}}}})
    return root
