"""Rasterize the spine itself: vertebral bodies, posterior elements, C1/C2 and sacral body.

Sizes are in mm of the vertebra's own frame (``u`` across, ``v`` down the spine), scaled by
each body's depth ``D``, height ``H`` and beam thickness ``T`` so that every level and patient
size stays in proportion. Densities are in mm of cortical-bone equivalent along the beam.
"""
from __future__ import annotations

import math

import numpy as np

from spinexr.phantom.anatomy import Vertebra
from spinexr.phantom.raster import F32, Layers, Shape, draw_shape, fill, local, patch, rim, sdf_box
from spinexr.phantom.skeleton import draw_plate

#: Trabecular bone fraction of a body's beam path (its projected density per mm of path).
TRAB = 0.16
#: Spinous process length (mm) per level, lateral cervical view.
CERVICAL_SPINOUS_MM = {"C2": 20, "C3": 14, "C4": 14, "C5": 16, "C6": 21, "C7": 28, "T1": 30,
                       "T2": 30}
#: Transverse process length (mm) per level, AP lumbar view.
LUMBAR_TP_MM = {"T11": 9, "T12": 7, "L1": 14, "L2": 19, "L3": 25, "L4": 21, "L5": 17}


def part(vb: Vertebra, u: float, v: float, hu: float, hv: float, *, core: float,
         shell: float = 0.0, angle: float = 0.0, radius: float | None = 1.0,
         shell_mm: float = 1.0, taper: float = 0.0, shear: float = 0.0) -> Shape:
    """A shape placed in ``vb``'s local frame; lengths in mm, ``angle`` in degrees (positive
    turns +u towards +v), ``radius=None`` for an ellipse."""
    k = vb.px_per_mm
    a = math.radians(angle)
    ca, sa = math.cos(a), math.sin(a)
    eu = (ca * vb.eu[0] + sa * vb.ev[0], ca * vb.eu[1] + sa * vb.ev[1])
    ev = (-sa * vb.eu[0] + ca * vb.ev[0], -sa * vb.eu[1] + ca * vb.ev[1])
    r = -1.0 if radius is None else radius * k
    return Shape(vb.point(u * k, v * k), eu, ev, hu * k, hv * k, r, core, shell, shell_mm * k,
                 taper, shear)


def dims(vb: Vertebra) -> tuple[float, float, float]:
    """(D, H, T): depth along u, mean height, beam thickness, all in mm."""
    k = vb.px_per_mm
    return vb.depth / k, vb.height / k, vb.thick_mm


def draw_body(layers: Layers, vb: Vertebra, density: float = 1.0, sclerosis: float = 0.0,
              rng: np.random.Generator | None = None) -> None:
    """A vertebral body: wedge-able rounded box with concave endplates and waist, elliptic
    trabecular profile, cortical shell, and brighter endplates (``sclerosis`` adds more)."""
    x0, y0, x1, y1 = vb.bbox()
    pad = 0.1 * vb.depth
    p = patch(layers.shape, x0 - pad, y0 - pad, x1 + pad, y1 + pad)
    if p is None:
        return
    sl, xs, ys = p
    u, v = local(xs, ys, vb.center, vb.eu, vb.ev)
    hu = F32(vb.depth / 2)
    un = np.clip(u / hu, -1, 1)
    hv = F32(0.25) * (F32(vb.h_neg + vb.h_pos) + F32(vb.h_pos - vb.h_neg) * un)
    hv = hv - F32(0.03 * vb.height) * (1 - un * un)          # biconcave endplates
    vn = np.clip(v / np.maximum(hv, 1), -1, 1)
    hu_w = hu - F32(0.055 * vb.depth) * (1 - vn * vn)       # waist of the walls
    d = sdf_box(u, v, hu_w, hv, 0.12 * min(vb.depth, vb.height))
    inside = fill(d)
    prof = np.sqrt(np.sqrt(np.clip(1 - un * un, 0.02, 1)))
    t = vb.thick_mm
    layers.trab[sl] += F32(TRAB * t * density) * prof * inside
    shell_px = 1.1 * vb.px_per_mm
    layers.cort[sl] += F32(0.13 * t) * rim(d, shell_px)
    end = np.abs(v) - hv + F32(shell_px * 0.6)
    plate = np.exp(-(end / F32(shell_px)) ** 2) * inside
    if vb.level == "S1":                                     # fused below: no lower endplate
        plate *= (v < 0)
    layers.cort[sl] += F32((0.12 + 0.25 * sclerosis) * t) * plate
    if sclerosis:
        band = np.exp(-np.maximum(np.abs(v) - hv + F32(4 * shell_px), 0) / F32(3 * shell_px))
        layers.trab[sl] += F32(0.1 * sclerosis * t) * band * inside


def posterior_parts(vb: Vertebra, region: str, view: str) -> list[Shape]:
    """The posterior elements of one vertebra for a view (lists of shapes)."""
    if vb.level == "S1":
        return []
    if view == "lateral":
        return []
    return _ap_cervical(vb) if region == "cervical" else _ap_lumbar(vb)


def lateral_arch(vb: Vertebra, region: str) -> np.ndarray:
    """Outline (n, 2) in local mm of the posterior arch seen from the side: pedicle,
    superior and inferior articular processes, lamina and spinous process in one piece."""
    D, H, _ = dims(vb)
    b = -D / 2
    if region == "lumbar":
        thoracic = vb.level.startswith("T")
        drop = 0.35 * H if thoracic else 0.0
        pts = [(b + 1, -0.44 * H), (b - 0.3 * D, -0.42 * H), (b - 0.32 * D, -0.72 * H),
               (b - 0.38 * D, -0.8 * H), (b - 0.46 * D, -0.74 * H), (b - 0.5 * D, -0.45 * H),
               (b - 0.64 * D, -0.33 * H + drop * 0.3), (b - 1.05 * D, -0.28 * H + drop),
               (b - 1.22 * D, -0.2 * H + drop * 1.4), (b - 1.26 * D, 0.08 * H + drop * 1.4),
               (b - 1.1 * D, 0.26 * H + drop), (b - 0.74 * D, 0.3 * H + drop * 0.5),
               (b - 0.64 * D, 0.72 * H), (b - 0.56 * D, 0.84 * H), (b - 0.46 * D, 0.76 * H),
               (b - 0.42 * D, 0.42 * H), (b - 0.34 * D, 0.12 * H), (b - 0.16 * D, -0.02 * H),
               (b + 1, 0.0)]
        return np.array(pts)
    ls = CERVICAL_SPINOUS_MM.get(vb.level, 16)
    a = math.radians(28)
    tip_u, tip_v = b - 1.1 * D - ls * math.cos(a), 0.3 * H + ls * math.sin(a)
    pts = [(b + 1, -0.38 * H), (b - 0.28 * D, -0.45 * H), (b - 0.5 * D, -0.62 * H),
           (b - 0.9 * D, -0.3 * H), (b - 1.1 * D, 0.05 * H),
           (tip_u + 0.8, tip_v - 0.14 * H), (tip_u - 0.6, tip_v), (tip_u + 0.6, tip_v + 0.12 * H),
           (b - 1.05 * D, 0.5 * H), (b - 0.9 * D, 0.72 * H), (b - 0.5 * D, 0.48 * H),
           (b - 0.28 * D, 0.2 * H), (b + 1, 0.05 * H)]
    return np.array(pts)


def _ap_lumbar(vb: Vertebra) -> list[Shape]:
    W, H, T = dims(vb)
    tp = LUMBAR_TP_MM.get(vb.level, 12)
    parts = []
    for s in (-1, 1):
        parts += [
            part(vb, s * 0.33 * W, -0.18 * H, 0.085 * W, 0.2 * H, core=0.05 * T, shell=0.14 * T,
                 radius=None, shell_mm=1.6),                                 # pedicle ring
            part(vb, s * (0.47 * W + tp / 2), -0.05 * H, tp / 2 + 0.05 * W, 0.1 * H,
                 core=0.06 * T, shell=0.05 * T, angle=-s * 6, radius=0.08 * H,
                 taper=0.3 if s > 0 else 0.0),                               # transverse proc.
            part(vb, s * 0.26 * W, 0.55 * H, 0.06 * W, 0.17 * H, core=0.07 * T, shell=0.06 * T,
                 radius=None),                                               # inf. articular
        ]
    parts += [
        part(vb, 0.0, 0.3 * H, 0.3 * W, 0.22 * H, core=0.04 * T, radius=0.1 * H),  # laminae
        part(vb, 0.0, 0.42 * H, 0.3 * H, 0.07 * W, core=0.08 * T, shell=0.08 * T, angle=90,
             radius=None, taper=0.4),                                        # spinous process
    ]
    return parts


def _ap_cervical(vb: Vertebra) -> list[Shape]:
    W, H, T = dims(vb)
    parts = []
    thoracic = vb.level.startswith("T")
    for s in (-1, 1):
        parts += [
            part(vb, s * 0.46 * W, -0.5 * H, 0.06 * W, 0.14 * H, core=0.1 * T, shell=0.05 * T,
                 radius=None),                                               # uncinate process
            part(vb, s * 0.78 * W, 0.1 * H, 0.2 * W, 0.6 * H, core=0.1 * T, shell=0.05 * T,
                 radius=None),                                               # lateral mass
            part(vb, s * 0.42 * W, -0.1 * H, 0.08 * W, 0.18 * H, core=0.04 * T, shell=0.1 * T,
                 radius=None, shell_mm=0.8),                                 # pedicle ring
        ]
        if thoracic or vb.level == "C7":
            tp = 0.55 * W if thoracic else 0.4 * W
            parts.append(part(vb, s * (0.85 * W + tp / 2), -0.1 * H, tp / 2, 0.13 * H,
                              core=0.08 * T, shell=0.05 * T, angle=-s * 12, radius=0.1 * H))
    parts.append(part(vb, 0.0, 0.3 * H, 0.28 * H, 0.07 * W, core=0.08 * T, shell=0.07 * T,
                      angle=90, radius=None, taper=0.3))                     # spinous
    return parts


def c1_c2_parts(c2: Vertebra, view: str) -> list[Shape]:
    """The dens of C2 and the atlas (C1) above it."""
    D, H, T = dims(c2)
    top = -H / 2
    dens_h = 0.95 * H
    parts = [part(c2, 0.05 * D if view == "lateral" else 0.0, top - dens_h / 2, 0.27 * D
                  if view == "lateral" else 0.22 * D, dens_h / 2 + 1.0, core=0.22 * T,
                  shell=0.1 * T, radius=0.25 * D)]
    v1 = top - 0.75 * dens_h
    if view == "lateral":
        parts += [
            part(c2, D / 2 + 3.5, v1, 3.2, 5.0, core=0.12 * T, shell=0.1 * T, radius=None),
            part(c2, -D / 2 - 16.0, v1 - 1.0, 14.0, 3.6, core=0.08 * T, shell=0.08 * T,
                 angle=8, radius=3.0),
            part(c2, -D / 2 - 9.0, 0.1 * H, 10.0, 0.55 * H, core=0.12 * T, shell=0.06 * T,
                 radius=3.0, shear=0.4),
        ]
    else:
        for s in (-1, 1):
            parts.append(part(c2, s * 0.95 * D, v1 + 2, 0.42 * D, 0.45 * dens_h,
                              core=0.16 * T, shell=0.07 * T, radius=None))
    return parts


def draw_parts(layers: Layers, parts: list[Shape]) -> None:
    for shape in parts:
        draw_shape(layers.trab, shape, layers.cort)


def draw_spine(layers: Layers, vertebrae: tuple[Vertebra, ...], region: str, view: str,
               rng: np.random.Generator, sclerosis: dict[str, float] | None = None,
               density: dict[str, float] | None = None) -> None:
    """All bodies and posterior elements. ``sclerosis``/``density`` adjust single levels."""
    sclerosis = sclerosis or {}
    density = density or {}
    for vb in vertebrae:
        d = density.get(vb.level, 0.75 if vb.level == "S1" else 1.0) * float(
            rng.uniform(0.9, 1.1))
        draw_body(layers, vb, d, sclerosis.get(vb.level, 0.0))
        if rng.random() < 0.3:                 # faint density variation, never a lesion
            D, H, T = dims(vb)
            r = float(rng.uniform(0.08, 0.16)) * min(D, H)
            sign = 1 if rng.random() < 0.5 else -1
            draw_shape(layers.trab, part(vb, float(rng.uniform(-0.25, 0.25)) * D,
                                         float(rng.uniform(-0.2, 0.2)) * H, r, r,
                                         core=sign * 0.2 * TRAB * T, radius=None))
        draw_parts(layers, posterior_parts(vb, region, view))
        if view == "lateral" and vb.level != "S1":
            T = vb.thick_mm
            draw_plate(layers, vb.local().pts(lateral_arch(vb, region)), edge_mm=0.9,
                       core=0.15 * T, shell=0.07 * T, k=vb.px_per_mm)
        if vb.level == "C2":
            draw_parts(layers, c1_c2_parts(vb, view))
