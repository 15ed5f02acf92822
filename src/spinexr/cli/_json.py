"""Metrics as strict JSON, as both ``spinexr evaluate`` tasks write them."""
from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Mapping

import numpy as np


def jsonable(value: Any) -> Any:
    """Plain JSON types; NaN and infinities become ``None`` (strict JSON has no NaN)."""
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, np.ndarray)):
        return [jsonable(v) for v in value]
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, Path):
        return str(value)
    return value
