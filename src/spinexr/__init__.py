"""spinexr: AI on spine radiographs.

Research software, not a medical device. Nothing happens at import time: readers, models and
settings are created by the functions that need them.
"""
from __future__ import annotations

__version__ = "0.1.0"

from spinexr.errors import SpinexrError  # noqa: E402
from spinexr.types import Box, Radiograph, ReadInfo, Sample, SourceRef  # noqa: E402

__all__ = ["Box", "Radiograph", "ReadInfo", "Sample", "SourceRef", "SpinexrError", "__version__"]
