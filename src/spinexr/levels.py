"""Vertebral levels: name detected vertebrae, and name the level of a finding.

Pure geometry on boxes in one image's pixel coordinates. Vertebrae are ordered along the spine
by the vertical position of their centres (spine radiographs are acquired head up; small
rotations and scoliosis keep this order). A finding is named after the vertebra it lies on, or
the disc between two vertebrae, following how each lesion class is reported:

* disc-level classes (disc space narrowing, foraminal stenosis, spondylolisthesis): the disc
  nearest the finding's centre, e.g. ``"L4-L5"``;
* surgical implants: the span of vertebrae the hardware covers, e.g. ``"L4-S1"``;
* vertebra-level classes (osteophytes, vertebral collapse, other lesions): the vertebra whose
  box contains (or is nearest to) the finding's centre, e.g. ``"L3"``.
"""
from __future__ import annotations

from dataclasses import replace
from typing import Sequence

import numpy as np

from spinexr.errors import ConfigError
from spinexr.labels import VERTEBRAL_LEVELS, disc_level
from spinexr.types import Box, LevelNaming

DISC_LEVEL_CLASSES = frozenset({"Disc space narrowing", "Foraminal stenosis",
                                "Spondylolisthesis"})
#: Classes named by the span of vertebrae they cover, e.g. a fusion ``"L4-S1"``.
SPAN_CLASSES = frozenset({"Surgical implant"})

#: Where counting starts for each region: (anchor level, anchored at "top" or "bottom").
#: ``whole``: whole-spine films as the real vertebra set labels them (T1-L5, no sacrum box).
REGION_ANCHORS = {"cervical": ("C2", "top"), "lumbar": ("S1", "bottom"),
                  "lumbar-no-sacrum": ("L5", "bottom"), "thoracic": ("T12", "bottom"),
                  "whole": ("L5", "bottom")}
#: A column this long is a whole-spine film whatever the header says is missing.
WHOLE_SPINE_MIN_BODIES = 12


def counted_naming(region: str) -> LevelNaming:
    """The :class:`~spinexr.types.LevelNaming` of names counted from the region's assumed
    end of the column (no anatomical landmark seen): unconfirmed, saying what was assumed."""
    anchor, end = REGION_ANCHORS[region]
    which = "top" if end == "top" else "lowest"
    return LevelNaming(confirmed=False, anchor=f"{which} body taken as {anchor}",
                       region=region)


def guess_region(n_bodies: int, stated: str | None, default: str = "lumbar") -> str:
    """The region to count levels in: the header's (``stated``) when it gave one, else
    ``whole`` for a column of at least :data:`WHOLE_SPINE_MIN_BODIES` bodies, else
    ``default``."""
    if stated in REGION_ANCHORS:
        return stated
    return "whole" if n_bodies >= WHOLE_SPINE_MIN_BODIES else default


def order_along_spine(vertebrae: Sequence[Box]) -> list[Box]:
    """Vertebrae sorted head to tail (by centre y, then x)."""
    return sorted(vertebrae, key=lambda b: (b.center[1], b.center[0]))


def assign_levels(vertebrae: Sequence[Box], region: str) -> tuple[Box, ...]:
    """Name unlabelled vertebra boxes by counting from the region's anchor.

    Args:
        vertebrae: detected vertebral bodies (any order).
        region: a key of :data:`REGION_ANCHORS` (``"cervical"``: the top box is C2;
            ``"lumbar"``: the bottom box is S1; ``"lumbar-no-sacrum"``: the bottom box is L5).

    Returns:
        the boxes head to tail with ``level`` set; boxes beyond the named levels are dropped.
    """
    if region not in REGION_ANCHORS:
        raise ConfigError(f"region {region!r}: use one of {sorted(REGION_ANCHORS)}", "region")
    anchor, end = REGION_ANCHORS[region]
    ordered = order_along_spine(vertebrae)
    a = VERTEBRAL_LEVELS.index(anchor)
    first = a if end == "top" else a - len(ordered) + 1
    return tuple(replace(b, level=VERTEBRAL_LEVELS[first + i]) for i, b in enumerate(ordered)
                 if 0 <= first + i < len(VERTEBRAL_LEVELS))


def _distance_to_box(x: float, y: float, b: Box) -> float:
    dx = max(b.x1 - x, 0.0, x - b.x2)
    dy = max(b.y1 - y, 0.0, y - b.y2)
    return float(np.hypot(dx, dy))


def nearest_vertebra(box: Box, vertebrae: Sequence[Box]) -> Box | None:
    """The named vertebra containing the box centre, else the nearest one (``None`` if none)."""
    named = [v for v in vertebrae if v.level]
    if not named:
        return None
    x, y = box.center
    return min(named, key=lambda v: (_distance_to_box(x, y, v), abs(v.center[1] - y)))


def nearest_disc(box: Box, vertebrae: Sequence[Box]) -> str | None:
    """The disc (pair of consecutive named vertebrae) whose gap centre is nearest the box centre."""
    named = order_along_spine([v for v in vertebrae if v.level])
    pairs = [(u, v) for u, v in zip(named, named[1:])
             if VERTEBRAL_LEVELS.index(v.level) == VERTEBRAL_LEVELS.index(u.level) + 1]
    if not pairs:
        return None
    x, y = box.center

    def gap_distance(pair: tuple[Box, Box]) -> float:
        u, v = pair
        gx, gy = (u.center[0] + v.center[0]) / 2, (u.y2 + v.y1) / 2
        return float(np.hypot(x - gx, y - gy))

    u, v = min(pairs, key=gap_distance)
    return disc_level(u.level, v.level)


def vertebral_span(box: Box, vertebrae: Sequence[Box], min_overlap: float = 0.3) -> str | None:
    """``"first-last"`` of the named vertebrae the box covers over ``min_overlap`` of their
    height (a single vertebra gives its own level), or ``None`` if it covers none."""
    covered = [v for v in order_along_spine([v for v in vertebrae if v.level])
               if min(box.y2, v.y2) - max(box.y1, v.y1) >= min_overlap * v.height
               and min(box.x2, v.x2) > max(box.x1, v.x1)]
    if not covered:
        return None
    first, last = covered[0].level, covered[-1].level
    return first if first == last else f"{first}-{last}"


def level_of(finding: Box, vertebrae: Sequence[Box]) -> str | None:
    """The vertebral level of a finding by its class convention (see the module docstring)."""
    if finding.label in SPAN_CLASSES:
        span = vertebral_span(finding, vertebrae)
        if span is not None:
            return span
    if finding.label in DISC_LEVEL_CLASSES:
        disc = nearest_disc(finding, vertebrae)
        if disc is not None:
            return disc
    nearest = nearest_vertebra(finding, vertebrae)
    return nearest.level if nearest is not None else None
