"""Surgical hardware: pedicle screws and rods (lumbar), anterior plates (cervical), cages.

Metal goes into the ``metal`` layer in attenuation units (about 0.45 per mm of titanium), so it
is the densest thing in the image; the box is the union of the drawn parts.
"""
from __future__ import annotations

import numpy as np

from spinexr.phantom.anatomy import REGION_LEVELS, Vertebra
from spinexr.phantom.raster import BBox, Layers, Shape, draw_shape, shape_box, union
from spinexr.phantom.render import dims, part

def _segment(p0, p1, half_width_px: float, overhang_px: float, core: float) -> Shape:
    p0, p1 = np.asarray(p0, float), np.asarray(p1, float)
    d = p1 - p0
    n = float(np.hypot(*d)) or 1.0
    eu = (float(d[0] / n), float(d[1] / n))
    ev = (-eu[1], eu[0])
    c = (p0 + p1) / 2
    return Shape((float(c[0]), float(c[1])), eu, ev, n / 2 + overhang_px, half_width_px,
                 half_width_px, core)


def _screw(vb: Vertebra, entry, tip, half_mm: float, core: float, shift=(0.0, 0.0)) -> Shape:
    k = vb.px_per_mm
    p0 = np.array(vb.point((entry[0] + shift[0]) * k, (entry[1] + shift[1]) * k))
    p1 = np.array(vb.point((tip[0] + shift[0]) * k, (tip[1] + shift[1]) * k))
    s = _segment(p0, p1, half_mm * k, 0.0, core)
    return Shape(s.center, s.eu, s.ev, s.hu, s.hv, 0.8 * s.hv, core, taper=0.35)


def _disc_centre(a: Vertebra, b: Vertebra) -> np.ndarray:
    return (np.array(a.point(0, a.height / 2)) + np.array(b.point(0, -b.height / 2))) / 2


def _cage(a: Vertebra, b: Vertebra, les, width_mm: float) -> list[Shape]:
    k = a.px_per_mm
    c = _disc_centre(a, b)
    top_of_lower, bottom_of_upper = np.array(b.point(0, -b.height / 2)), np.array(
        a.point(0, a.height / 2))
    gap = float(np.hypot(*(top_of_lower - bottom_of_upper)))
    hv = max(gap / 2 - 0.3 * k, 1.0)
    if les.params[1] < 0.5:                                   # titanium cage: bright frame
        return [Shape((float(c[0]), float(c[1])), a.eu, a.ev, width_mm / 2 * k, hv, 0.6 * k,
                      0.3, 1.4, 1.0 * k)]
    out = []                                                  # PEEK: only its markers show
    for t in (-0.42, 0.0, 0.42):
        p = c + t * width_mm * k * np.array(a.eu)
        out.append(Shape((float(p[0]), float(p[1])), a.eu, a.ev, 0.6 * k, 0.6 * k, -1.0, 2.2))
    return out


def _lumbar(vbs: list[Vertebra], les, view: str) -> list[Shape]:
    parts: list[Shape] = []
    heads: dict[int, list] = {-1: [], 1: []}
    for vb in vbs:
        D, H, _ = dims(vb)
        if view == "lateral":
            entry, tip = (-D / 2 - 0.42 * D, -0.12 * H), (0.3 * D, -0.04 * H)
            for off in (0.0, 1.0 + 2.0 * les.params[2]):
                parts.append(_screw(vb, entry, tip, 3.25, 2.3, (off, off * 0.4)))
            head = part(vb, entry[0] - 4.0, entry[1], 6.0, 6.0, core=2.6, radius=2.0)
            parts.append(head)
            heads[1].append(head.center)
        else:
            for s in (-1, 1):
                parts.append(_screw(vb, (s * 0.46 * D, -0.15 * H), (s * 0.1 * D, -0.06 * H),
                                    3.25, 2.2))
                head = part(vb, s * 0.49 * D, -0.15 * H, 6.0, 6.0, core=2.4, radius=None)
                parts.append(head)
                heads[s].append(head.center)
    k = vbs[0].px_per_mm
    for side in heads.values():
        for p0, p1 in zip(side, side[1:]):
            parts.append(_segment(p0, p1, 2.75 * k, 4.0 * k, 2.2))
    return parts


def _cervical(vbs: list[Vertebra], les, view: str) -> list[Shape]:
    top, bottom = vbs[0], vbs[-1]
    k = top.px_per_mm
    parts: list[Shape] = []
    if view == "lateral":
        p0 = top.point(top.depth / 2 + 2.0 * k, -top.h_pos / 2 - 1.5 * k)
        p1 = bottom.point(bottom.depth / 2 + 2.0 * k, bottom.h_pos / 2 + 1.5 * k)
        parts.append(_segment(p0, p1, 1.3 * k, 0.0, 3.0))
        for i, vb in enumerate(vbs):
            D, H, _ = dims(vb)
            tilt = 0.15 * H * (1 if i == len(vbs) - 1 else -1 if i == 0 else 0)
            for off in (0.0, 0.8 + les.params[2]):
                parts.append(_screw(vb, (D / 2 + 2.0, 0.0), (-0.25 * D, tilt), 2.0, 1.9,
                                    (0.0, off)))
    else:
        p0, p1 = top.point(0, -top.height / 2 - 1.5 * k), bottom.point(0, bottom.height / 2
                                                                       + 1.5 * k)
        parts.append(_segment(p0, p1, 8.0 * k, 0.0, 0.9))
        for vb in vbs:
            for s in (-1, 1):
                parts.append(part(vb, s * 5.5, 0.0, 2.4, 2.4, core=2.2, radius=None))
    return parts


def draw(layers: Layers, by: dict[str, Vertebra], les, region: str, view: str) -> BBox:
    """Draw the hardware of an implant lesion spanning ``les.level`` (e.g. ``"L4-S1"``)."""
    names = REGION_LEVELS[region]
    first, last = (names.index(lv) for lv in les.levels)
    vbs = [by[lv] for lv in names[first:last + 1]]
    parts = _lumbar(vbs, les, view) if region == "lumbar" else _cervical(vbs, les, view)
    if les.params[0] < 0.55 or region == "cervical":
        width = 0.7 if view == "lateral" else 0.45
        for a, b in zip(vbs, vbs[1:]):
            parts += _cage(a, b, les, width * a.depth / a.px_per_mm)
    for shape in parts:
        draw_shape(layers.metal, shape)
    return union(*(shape_box(s) for s in parts))
