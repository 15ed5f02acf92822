"""Pure box geometry shared by every layer (no models, no I/O): the column of vertebral
bodies a spine radiograph shows."""
from __future__ import annotations

from typing import Sequence

import numpy as np

from spinexr.types import Box


def vertebra_chain(boxes: Sequence[Box]) -> list[Box]:
    """The longest run of boxes stacked head to tail like a spine: consecutive centres no
    further apart horizontally than 1.5 median widths, and vertically than 2.5 median heights."""
    if not boxes:
        return []
    ordered = sorted(boxes, key=lambda b: b.center[1])
    w = float(np.median([b.width for b in ordered]))
    h = float(np.median([b.height for b in ordered]))
    best: list[Box] = []
    run = [ordered[0]]
    for prev, cur in zip(ordered, ordered[1:]):
        dx, dy = abs(cur.center[0] - prev.center[0]), cur.center[1] - prev.center[1]
        if dx <= 1.5 * w and 0 < dy <= 2.5 * h:
            run.append(cur)
        else:
            best, run = max(best, run, key=len), [cur]
    return max(best, run, key=len)
