"""Tiny models train faster on one thread: intra-op parallelism costs more than it gains on
24-64 px inputs, and much more when another process keeps the other core busy."""
from __future__ import annotations

import pytest
import torch


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
