"""Helpers of the batch tests."""
from __future__ import annotations

import json

N_PHANTOMS = 12


def comparable(frame) -> list[dict]:
    """Rows with floats rounded (engines with other thread counts may differ in the last bits)
    and the JSON columns parsed, for comparing two runs."""
    def fix(value):
        if isinstance(value, float):
            return None if value != value else round(value, 5)
        if isinstance(value, list):
            return [fix(v) for v in value]
        if isinstance(value, dict):
            return {k: fix(v) for k, v in value.items()}
        return value

    rows = frame.to_dict("records")
    for row in rows:
        row["findings"], row["grades"] = json.loads(row["findings"]), json.loads(row["grades"])
    return [fix(r) for r in rows]
