"""Draw lesions into the layers and box them the way VinDr-SpineXR annotators do.

Boxes are pixel ``[x1, y1, x2, y2]`` (see :mod:`spinexr.types`): osteophytes around the spur,
disc space narrowing across the disc, collapse around the body, spondylolisthesis around the
slipped segment (both bodies), foraminal stenosis around the foramen, implants around the
hardware, other lesions around the focus.
"""
from __future__ import annotations

import math

import numpy as np

from spinexr.phantom import implants
from spinexr.phantom.anatomy import Vertebra
from spinexr.phantom.lesions import (
    COLLAPSE, DSN, FORAMINAL, IMPLANT, LISTHESIS, OSTEOPHYTES, OTHER, Lesion,
)
from spinexr.phantom.raster import (
    BBox, Layers, Shape, draw_shape, pad, points_box, shape_box, union,
)
from spinexr.phantom.render import TRAB, dims, part

def oriented(vb: Vertebra, u: float, v: float, du: float, dv: float, length: float,
             half_width: float, **kw) -> Shape:
    """A shape (mm) whose +u axis points along local direction (du, dv) of ``vb``, centred at
    local (u, v)."""
    n = math.hypot(du, dv)
    du, dv = du / n, dv / n
    k = vb.px_per_mm
    eu = (du * vb.eu[0] + dv * vb.ev[0], du * vb.eu[1] + dv * vb.ev[1])
    ev = (-dv * vb.eu[0] + du * vb.ev[0], -dv * vb.eu[1] + du * vb.ev[1])
    radius = kw.pop("radius", 0.3)
    return Shape(vb.point(u * k, v * k), eu, ev, length / 2 * k, half_width * k,
                 -1.0 if radius is None else radius * k, **kw)


def draw_lesions(layers: Layers, vertebrae: tuple[Vertebra, ...], lesions: tuple[Lesion, ...],
                 region: str, view: str) -> list[tuple[Lesion, BBox]]:
    """Draw overlay lesions and return every lesion with its (unclipped) pixel box."""
    by = {vb.level: vb for vb in vertebrae}
    out = []
    for les in lesions:
        fn = _DRAW[les.kind]
        box = fn(layers, by, les, region, view)
        if box is not None:
            out.append((les, pad(box, 0.8 * vertebrae[0].px_per_mm)))
    return out


def _osteophyte(layers, by, les: Lesion, region, view) -> BBox:
    vb = by[les.level]
    D, H, T = dims(vb)
    su = les.side
    sv = -1 if les.params[1] < 0.5 else 1
    h_side = (vb.h_pos if su > 0 else vb.h_neg) / vb.px_per_mm
    cu, cv = su * D / 2, sv * h_side / 2
    scale = 0.55 if region == "cervical" else 1.0
    length = scale * (1.6 + 2.4 * les.severity + 1.5 * les.params[2])
    ang = math.radians(20 + 35 * les.params[3] + 10 * (les.severity - 1))
    du, dv = su * math.cos(ang), sv * math.sin(ang)
    base = 0.5 * length + scale * 1.2
    shape = oriented(vb, cu + du * (length / 2 - 1.2 * scale), cv + dv * (length / 2 - 1.2 * scale),
                     du, dv, length + 2.4 * scale, base / 2, core=0.22 * T, shell=0.08 * T,
                     shell_px=1.0 * vb.px_per_mm, taper=0.85, radius=0.4 * scale)
    draw_shape(layers.trab, shape, layers.cort)
    tip = vb.point((cu + du * length) * vb.px_per_mm, (cv + dv * length) * vb.px_per_mm)
    corner = vb.point((cu - su * 1.0) * vb.px_per_mm, (cv - sv * 1.0) * vb.px_per_mm)
    return union(points_box([tip, corner]), shape_box(shape))


def _disc_box(by, les: Lesion) -> BBox:
    upper, lower = (by[lv] for lv in les.levels)
    a, b = upper.corners(), lower.corners()
    return points_box([a[2], a[3], b[0], b[1]])


def _dsn(layers, by, les: Lesion, region, view) -> BBox:
    return _disc_box(by, les)


def _collapse(layers, by, les: Lesion, region, view) -> BBox:
    vb = by[les.level]
    box = vb.bbox()
    if les.injury and view == "lateral":          # anterior-inferior teardrop fragment
        D, H, T = dims(vb)
        hp = vb.h_pos / vb.px_per_mm
        frag = part(vb, D / 2 + 1.0 + 1.5 * les.params[2], hp / 2 + 0.8, 2.8, 2.0,
                    core=0.2 * T, shell=0.08 * T, angle=35, radius=None)
        draw_shape(layers.trab, frag, layers.cort)
        box = union(box, shape_box(frag))
    return box


def _listhesis(layers, by, les: Lesion, region, view) -> BBox:
    upper, lower = (by[lv] for lv in les.levels)
    return union(upper.bbox(), lower.bbox())


def _foraminal(layers, by, les: Lesion, region, view) -> BBox:
    a, b = (by[lv] for lv in les.levels)
    Da, Ha, Ta = dims(a)
    Db, Hb, _ = dims(b)
    k = a.px_per_mm
    grow = (1.0 + 1.6 * les.severity + les.params[0]) * (0.55 if region == "cervical" else 1.0)
    # Posterior disc-osteophyte bar spanning the disc, bulging backwards into the foramen.
    pa, pb = np.array(a.point(-a.depth / 2, a.h_neg / 2)), np.array(b.point(-b.depth / 2,
                                                                             -b.h_neg / 2))
    mid = (pa + pb) / 2
    gap = float(np.hypot(*(pb - pa))) / k
    bar = Shape((float(mid[0] - a.eu[0] * grow * k / 2), float(mid[1] - a.eu[1] * grow * k / 2)),
                a.eu, a.ev, grow * k * 0.75, (gap / 2 + 0.12 * Ha) * k, -1.0, 0.2 * Ta,
                0.06 * Ta, k)
    draw_shape(layers.trab, bar, layers.cort)
    # Hypertrophic superior articular process of the lower vertebra, reaching up and forward.
    sap = part(b, -Db / 2 - 0.36 * Db + 0.3 * grow, -0.62 * Hb - 0.4 * grow, 0.1 * Db + 0.35 * grow,
               0.2 * Hb + 0.5 * grow, core=0.1 * Ta, shell=0.06 * Ta, angle=10, radius=None)
    draw_shape(layers.trab, sap, layers.cort)
    corners = [a.point(-a.depth / 2, 0.05 * a.height), a.point(-a.depth / 2 - 0.38 * a.depth,
                                                                0.05 * a.height),
               b.point(-b.depth / 2, -0.25 * b.height), b.point(-b.depth / 2 - 0.38 * b.depth,
                                                                 -0.25 * b.height)]
    return points_box(corners)


def _other(layers, by, les: Lesion, region, view) -> BBox:
    vb = by[les.level]
    D, H, T = dims(vb)
    scale = 0.6 if region == "cervical" else 1.0
    r = scale * (1.8 + 1.4 * les.severity + 1.2 * les.params[2])
    r = min(r, 0.3 * min(D, H))
    u = (les.params[0] - 0.5) * (D - 2.6 * r) * 0.9
    v = (les.params[1] - 0.5) * (H - 2.6 * r) * 0.9
    kind = les.params[3]
    if kind < 0.45:                                          # lytic focus, sometimes rimmed
        spot = part(vb, u, v, r, r * 0.9, core=-0.9 * TRAB * T, radius=None)
        draw_shape(layers.trab, spot)
        if les.params[2] > 0.5:
            draw_shape(layers.cort, part(vb, u, v, r + 0.5, r * 0.9 + 0.5, core=0.0,
                                         shell=0.12 * T, shell_mm=0.8, radius=None))
    elif kind < 0.85:                                        # sclerotic focus
        spot = part(vb, u, v, r, r * 0.85, core=0.4 * T, radius=None)
        draw_shape(layers.cort, spot)
    else:                                                    # subchondral sclerosis band
        sv = -1 if les.params[1] < 0.5 else 1
        h = (vb.h_pos + vb.h_neg) / 4 / vb.px_per_mm
        spot = part(vb, 0.0, sv * (h - 0.6 - r / 3), 0.42 * D, r / 3 + 0.6,
                    core=0.3 * T, radius=0.5)
        draw_shape(layers.cort, spot)
    return shape_box(spot)


def _implant(layers, by, les: Lesion, region, view) -> BBox:
    return implants.draw(layers, by, les, region, view)


_DRAW = {OSTEOPHYTES: _osteophyte, DSN: _dsn, COLLAPSE: _collapse, LISTHESIS: _listhesis,
         FORAMINAL: _foraminal, OTHER: _other, IMPLANT: _implant}
