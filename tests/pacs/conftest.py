"""Fixtures of the DICOM node tests: a tiny untrained pack, one processor, a node factory."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

pytest.importorskip("pynetdicom")
sys.path.insert(0, str(Path(__file__).parent))



def _service_fixtures():
    """The service tests' fixtures (their tiny pack), loaded from tests/service/conftest.py
    rather than copied."""
    import importlib.util

    folder = Path(__file__).resolve().parents[1] / "service"
    if str(folder) not in sys.path:
        sys.path.insert(0, str(folder))       # its conftest imports service_helpers
    path = folder / "conftest.py"
    spec = importlib.util.spec_from_file_location("_service_conftest_for_pacs", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


tiny_pack = _service_fixtures().tiny_pack


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
