"""Fixtures of the service tests: a tiny real pack, one analyzer, settings."""
from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("fastapi")

from service_helpers import CLF  # noqa: E402
from spinexr.labels import LESION_CLASSES  # noqa: E402


@pytest.fixture(scope="session")
def tiny_pack(tmp_path_factory) -> Path:
    """A pack with an untrained tiny triage classifier (32 px) and an untrained YOLO11n
    lesion detector (64 px); no vertebra detector, so the gate checks the image only."""
    import torch

    from spinexr.models.classifier import Preprocess, create_classifier
    from spinexr.models.pack import save_pack, save_weights
    from spinexr.models.yolo import build_detection_model

    root = tmp_path_factory.mktemp("pack")
    torch.manual_seed(0)
    clf = create_classifier(CLF, 2, head="binary")
    det = build_detection_model("yolo11n", list(LESION_CLASSES))
    save_pack(root, {
        "name": "tiny", "version": "0.0.1", "synthetic": True,
        "card": {"intended_use": "tests only"},
        "ensemble": {"members": ["clf"], "weights": {"clf": 1.0},
                     "operating_points": {"youden": 0.5}},
        "models": {
            "clf": {"kind": "classifier", "arch": CLF, "head": "binary",
                    "labels": ["normal", "abnormal"], "input": Preprocess(32).to_dict(),
                    "weights": "clf.safetensors", "dtype": "float16",
                    "sha256": save_weights(clf.state_dict(), root / "clf.safetensors")},
            "lesions": {"kind": "detector", "arch": "yolo11n", "labels": list(LESION_CLASSES),
                        "input": {"size": 64}, "weights": "lesions.safetensors",
                        "dtype": "float16", "thresholds": {"conf": 0.5},
                        "sha256": save_weights(det.state_dict(),
                                               root / "lesions.safetensors")}}})
    return root


@pytest.fixture(scope="session")
def analyzer(tiny_pack, tmp_path_factory):
    """One analyzer for the session (models load once)."""
    from spinexr.analyze import Analyzer

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SPINEXR_CACHE", str(tmp_path_factory.mktemp("cache")))
        a = Analyzer.from_dirs(tiny_pack)
        a.analyze_batch([])          # nothing to do, but exercises the empty path once
    return a


@pytest.fixture
def settings(tmp_path):
    from spinexr.service import Settings

    return Settings(data_dir=tmp_path / "data", rate_limit_per_minute=0)
