"""Fixtures of the fault-and-abuse suite: the service tests' tiny pack, analyzer and settings
(loaded from tests/service/conftest.py, not copied) and fault injectors for the store."""
from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

pytest.importorskip("fastapi")

_SERVICE_TESTS = Path(__file__).resolve().parents[1] / "service"
if str(_SERVICE_TESTS) not in sys.path:
    sys.path.insert(0, str(_SERVICE_TESTS))


def _service_conftest():
    spec = importlib.util.spec_from_file_location("_service_conftest",
                                                  _SERVICE_TESTS / "conftest.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


_fixtures = _service_conftest()
tiny_pack = _fixtures.tiny_pack
analyzer = _fixtures.analyzer
settings = _fixtures.settings
