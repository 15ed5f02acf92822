"""A tiny pack (a 99k-parameter timm classifier and a YOLO11n detector) exported to ONNX once,
shared by the ONNX runtime and export tests."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch

from spinexr.models.classifier import Preprocess, create_classifier
from spinexr.models.onnx_export import export_pack
from spinexr.models.pack import save_pack, save_weights
from spinexr.models.yolo import build_detection_model


class TinyPack:
    """Writers of a tiny pack's specs and manifest (``clf`` in a one-member ensemble)."""

    arch = "test_efficientnet"  # timm's own 99k-parameter test model
    clf_size, det_size = 32, 64

    @classmethod
    def classifier_spec(cls, root: Path, seed: int = 0) -> dict:
        torch.manual_seed(seed)
        model = create_classifier(cls.arch, 2, head="binary")
        sha = save_weights(model.state_dict(), root / "clf.safetensors")
        return {"kind": "classifier", "arch": cls.arch, "head": "binary",
                "labels": ["normal", "abnormal"], "input": Preprocess(cls.clf_size).to_dict(),
                "weights": "clf.safetensors", "dtype": "float16", "sha256": sha}

    @classmethod
    def detector_spec(cls, root: Path) -> dict:
        torch.manual_seed(0)
        model = build_detection_model("yolo11n", ["Vertebra"])
        sha = save_weights(model.state_dict(), root / "det.safetensors")
        return {"kind": "detector", "arch": "yolo11n", "labels": ["Vertebra"],
                "input": {"size": cls.det_size, "channels": 3}, "weights": "det.safetensors",
                "dtype": "float16", "sha256": sha}

    @staticmethod
    def save(root: Path, models: dict) -> Path:
        save_pack(root, {"name": "tiny", "version": "0.1.0", "synthetic": True, "models": models,
                         "ensemble": {"members": ["clf"], "weights": {"clf": 1.0},
                                      "operating_points": {"youden": 0.5}}})
        return root


@pytest.fixture(scope="session")
def tiny_onnx_pack() -> type[TinyPack]:
    return TinyPack


@pytest.fixture(scope="session")
def exported(tmp_path_factory):
    """The tiny pack with both models, exported once for the session: (root, paths)."""
    root = tmp_path_factory.mktemp("pack")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SPINEXR_CACHE", str(tmp_path_factory.mktemp("cache")))
        TinyPack.save(root, {"clf": TinyPack.classifier_spec(root),
                             "det": TinyPack.detector_spec(root)})
        paths = export_pack(root)
        yield root, paths


@pytest.fixture
def classifier_pack(tmp_path):
    """The tiny pack with the classifier only, not exported."""
    root = tmp_path / "pack"
    return TinyPack.save(root, {"clf": TinyPack.classifier_spec(root)})
