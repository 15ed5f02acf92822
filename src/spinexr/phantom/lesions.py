"""Which lesions an image gets (the plan), image-level grades, and the geometric edits.

A :class:`Lesion` holds its class, level, severity and a few uniform random numbers drawn at
planning time, so drawing it later needs no random state. Lesions that change the spine's
shape (disc space narrowing, vertebral collapse, spondylolisthesis) edit the
:class:`~spinexr.phantom.anatomy.SpineShape` before it is placed; the others are overlays
(:mod:`spinexr.phantom.overlays`).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Mapping

import numpy as np

from spinexr.labels import LESION_CLASSES, disc_level
from spinexr.phantom.anatomy import LESION_LEVELS, SpineShape, edit_level
from spinexr.phantom.config import XrayConfig

OSTEOPHYTES, DSN, IMPLANT, FORAMINAL, LISTHESIS, COLLAPSE, OTHER = LESION_CLASSES
#: Classes that make up the degeneration grade.
DEGENERATIVE = (OSTEOPHYTES, DSN)
#: Remaining disc height (fraction of normal) per severity 1..3: (low, high).
DSN_FACTOR = {1: (0.50, 0.62), 2: (0.35, 0.47), 3: (0.18, 0.30)}
#: Body height kept (anterior, posterior) per collapse severity, lateral view.
COLLAPSE_FACTOR = {1: ((0.60, 0.70), (0.78, 0.86)), 2: ((0.45, 0.58), (0.68, 0.78)),
                   3: ((0.30, 0.44), (0.55, 0.68))}
#: Slip as a fraction of the lower body's depth per severity (3 = dislocation in the neck).
SLIP_FRACTION = {1: (0.10, 0.20), 2: (0.24, 0.36), 3: (0.40, 0.60)}
SEVERITY_P = (0.45, 0.35, 0.20)


@dataclass(frozen=True)
class Lesion:
    """One planned lesion.

    Attributes:
        kind: a ``LESION_CLASSES`` name.
        level: a vertebra (``"L4"``) or a span/disc (``"L4-L5"``, implants ``"L3-L5"``).
        severity: 1 mild, 2 moderate, 3 severe.
        side: +1 or -1 (anterior/posterior in a lateral view, right/left in an AP view).
        params: uniform numbers in [0, 1) that fix the remaining shape choices.
        injury: drawn as a cervical injury (fracture or dislocation).
    """

    kind: str
    level: str
    severity: int
    side: int
    params: tuple[float, ...]
    injury: bool = False

    @property
    def levels(self) -> tuple[str, ...]:
        return tuple(self.level.split("-"))


@dataclass(frozen=True)
class Plan:
    lesions: tuple[Lesion, ...]
    degeneration: int
    cervical: int


def allowed(region: str, view: str) -> tuple[str, ...]:
    """Lesion classes that can be drawn in a region and view."""
    return tuple(k for k in LESION_CLASSES if not (k == FORAMINAL and view == "ap"))


def _spans(region: str, kind: str) -> list[str]:
    lv = LESION_LEVELS[region]
    after = lv + (("S1",) if region == "lumbar" else ())
    discs = [disc_level(a, b) for a, b in zip(after, after[1:])]
    if kind in (DSN, FORAMINAL, LISTHESIS):
        return discs
    if kind == IMPLANT:                      # 2- or 3-level constructs below the top level
        body = after[1:]
        return [f"{body[i]}-{body[i + n]}" for n in (1, 2) for i in range(len(body) - n)]
    if kind == COLLAPSE and region == "cervical":
        return list(lv[1:])
    return list(lv)


def _new(rng: np.random.Generator, kind: str, region: str, view: str, severity: int | None = None,
         injury: bool = False, level: str | None = None) -> Lesion:
    spans = _spans(region, kind)
    lv = level or spans[int(rng.integers(len(spans)))]
    sev = severity or int(rng.choice([1, 2, 3], p=SEVERITY_P))
    if kind == LISTHESIS and region == "cervical" and not injury:
        sev = min(sev, 2)
    p_front = 0.8 if view == "lateral" else 0.5
    side = 1 if rng.random() < p_front else -1
    return Lesion(kind, lv, sev, side, tuple(float(x) for x in rng.random(4)), injury)


def plan_lesions(rng: np.random.Generator, cfg: XrayConfig, region: str, view: str) -> Plan:
    """Sample the lesions of one image, then apply forced grades; derive the labels."""
    kinds = allowed(region, view)
    abnormal = rng.random() < cfg.abnormal_rate
    n = 1 + min(int(rng.poisson(cfg.lesions_per_image - 1.0)), 3)
    weights = np.array([cfg.lesion_frequency.get(k, 0.0) for k in kinds], dtype=np.float64)
    lesions: list[Lesion] = []
    if cfg.force_lesions is not None:
        lesions = [_new(rng, k, region, view) for k in cfg.force_lesions if k in kinds]
    elif abnormal and weights.sum() > 0:
        for _ in range(n):
            kind = kinds[int(rng.choice(len(kinds), p=weights / weights.sum()))]
            lesions.append(_new(rng, kind, region, view))
    if region == "cervical":
        lesions = _cervical(rng, cfg, lesions, view, abnormal)
    if cfg.degeneration is not None:
        lesions = _degeneration(rng, cfg.degeneration, lesions, region, view)
    lesions = _dedupe(lesions)
    return Plan(tuple(lesions), degeneration_grade(lesions), cervical_class(lesions))


def _cervical(rng: np.random.Generator, cfg: XrayConfig, lesions: list[Lesion], view: str,
              abnormal: bool) -> list[Lesion]:
    u_injury, u_kind = rng.random(), rng.random()
    target = cfg.cervical
    if target is None:
        if not (abnormal and cfg.force_lesions is None and u_injury < cfg.cervical_injury_rate):
            return lesions
        target = 1 if u_kind < 0.5 else 2
    keep = [les for les in lesions if les.kind != COLLAPSE and not les.injury]
    if target == 1:
        keep.append(_new(rng, COLLAPSE, "cervical", view, int(rng.integers(2, 4)), True))
    elif target == 2:
        keep.append(_new(rng, LISTHESIS, "cervical", view, 3, True))
    return keep


def _degeneration(rng: np.random.Generator, grade: int, lesions: list[Lesion], region: str,
                  view: str) -> list[Lesion]:
    keep = [les for les in lesions if les.kind not in DEGENERATIVE]
    if grade == 0:
        return keep
    count = int(rng.integers(1, 3)) if grade < 4 else int(rng.integers(3, 5))
    top = min(grade, 3)
    added: list[Lesion] = []
    while len(added) < count:
        sev = top if not added else int(rng.integers(1, top + 1))
        kind = OSTEOPHYTES if rng.random() < 0.65 else DSN
        les = _new(rng, kind, region, view, sev)
        if not any(o.kind == les.kind and o.level == les.level for o in added):
            added.append(les)
    return keep + added


def _dedupe(lesions: list[Lesion]) -> list[Lesion]:
    """Drop repeats of a class at a level and lesions that cannot share a vertebra."""
    out: list[Lesion] = []
    for les in lesions:
        if any(o.kind == les.kind and set(o.levels) & set(les.levels) for o in out):
            continue
        if les.kind in (COLLAPSE, IMPLANT) and any(
                o.kind in (COLLAPSE, IMPLANT) and set(o.levels) & set(les.levels) for o in out):
            continue
        out.append(les)
    return out


def degeneration_grade(lesions) -> int:
    """0 without osteophytes or disc narrowing; else the worst severity, +1 for 3 or more."""
    deg = [les.severity for les in lesions if les.kind in DEGENERATIVE]
    if not deg:
        return 0
    return min(4, max(deg) + (len(deg) >= 3))


def cervical_class(lesions) -> int:
    """Index into ``CERVICAL_CLASSES``: 2 dislocation (slip >= 40 %), 1 fracture (collapse)."""
    if any(les.kind == LISTHESIS and les.severity == 3 for les in lesions):
        return 2
    if any(les.kind == COLLAPSE for les in lesions):
        return 1
    return 0


def _lerp(rng_pair: tuple[float, float], t: float) -> float:
    return rng_pair[0] + (rng_pair[1] - rng_pair[0]) * t


def apply_geometry(shape: SpineShape, lesions: tuple[Lesion, ...], view: str
                   ) -> tuple[SpineShape, Mapping[str, float]]:
    """Edit the spine for shape-changing lesions; also returns endplate sclerosis per level."""
    sclerosis: dict[str, float] = {}
    for les in lesions:
        if les.kind == DSN:
            shape = _narrow(shape, les)
            if les.severity >= 2:
                for lv in les.levels:
                    sclerosis[lv] = max(sclerosis.get(lv, 0.0), 0.5 * (les.severity - 1))
        elif les.kind == COLLAPSE:
            shape = _collapse(shape, les, view)
            sclerosis[les.level] = max(sclerosis.get(les.level, 0.0), 0.6)
        elif les.kind == LISTHESIS:
            shape = _slip(shape, les, view)
    return shape, sclerosis


def _narrow(shape: SpineShape, les: Lesion) -> SpineShape:
    upper, lower = les.levels
    i = shape.levels.index(upper)
    fac = _lerp(DSN_FACTOR[les.severity], les.params[0])
    discs = list(shape.discs)
    discs[i] *= fac
    th = list(shape.thetas)
    mid = 0.5 * (th[i] + th[i + 1])
    th[i], th[i + 1] = mid + (th[i] - mid) * fac, mid + (th[i + 1] - mid) * fac
    return replace(shape, discs=tuple(discs), thetas=tuple(th))


def _collapse(shape: SpineShape, les: Lesion, view: str) -> SpineShape:
    i = shape.levels.index(les.level)
    front, back = COLLAPSE_FACTOR[les.severity]
    fa, fp = _lerp(front, les.params[0]), _lerp(back, les.params[1])
    h_neg, h_pos = shape.heights[i]
    if view == "ap":                          # crush with a lateral tilt towards ``side``
        fa, fp = (fa + fp) / 2 - 0.05, (fa + fp) / 2 + 0.05
        if les.side < 0:
            fa, fp = fp, fa
    return edit_level(shape, les.level, heights=(h_neg * fp, h_pos * fa))


def _slip(shape: SpineShape, les: Lesion, view: str) -> SpineShape:
    upper, lower = les.levels
    j = shape.levels.index(lower)
    frac = _lerp(SLIP_FRACTION[les.severity], les.params[0])
    depth = shape.depths[j]
    if view == "lateral":
        shift = frac * depth * (1 if les.injury or les.side > 0 or les.severity > 1 else -0.6)
    else:
        shift = frac * depth * 0.5 * les.side
    shape = edit_level(shape, upper, shifts=shift)
    if les.injury and view == "lateral":      # flexion at the dislocated level
        i = shape.levels.index(upper)
        shape = edit_level(shape, upper, thetas=shape.thetas[i] + math.radians(
            8 + 8 * les.params[1]))
    return shape
