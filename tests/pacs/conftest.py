"""Fixtures of the DICOM node tests: a tiny untrained pack, one processor, a node factory."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

pytest.importorskip("pynetdicom")
sys.path.insert(0, str(Path(__file__).parent))

from spinexr.labels import LESION_CLASSES  # noqa: E402

CLF = "test_efficientnet"   # timm's 99k-parameter test model


@pytest.fixture(scope="session")
def tiny_pack(tmp_path_factory) -> Path:
    """An untrained 32 px triage classifier and a 64 px YOLO11n lesion detector."""
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
def processor(tiny_pack, tmp_path_factory):
    from spinexr.analyze import Analyzer
    from spinexr.process import Processor

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SPINEXR_CACHE", str(tmp_path_factory.mktemp("cache")))
        return Processor(Analyzer.from_dirs(tiny_pack))


@pytest.fixture
def make_node(processor, tmp_path):
    """``make_node(destinations=[...], **config)`` -> a started node on a free port."""
    from spinexr.pacs import NodeConfig, RetryPolicy
    from spinexr.pacs.node import Node

    nodes = []

    def make(*, recorder=None, data_dir=None, **kwargs):
        kwargs.setdefault("host", "127.0.0.1")
        kwargs.setdefault("port", 0)
        kwargs.setdefault("study_window_s", 0.0)
        kwargs.setdefault("retry", RetryPolicy(base_s=0.2, max_s=0.5, dead_after_s=60))
        config = NodeConfig(data_dir=data_dir or tmp_path / "data", **kwargs)
        node = Node(config, processor, recorder=recorder).start()
        nodes.append(node)
        return node

    yield make
    for n in nodes:
        n.stop(timeout=10)
