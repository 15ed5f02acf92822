"""Bones around the spine: pelvis and sacrum, ribs, skull base, mandible and teeth, clavicles.

Outlines are polygons in mm of a local frame attached to a vertebra (so they follow its
position, lean and mirroring), filled on the ``bone_lo`` grid and turned into plates with a
cortical rim. Only the patch around each polygon is filtered, so cost follows its size.
"""
from __future__ import annotations

import math

import numpy as np
from PIL import Image, ImageDraw
from scipy import ndimage as ndi

from spinexr.phantom.anatomy import Local, Vertebra
from spinexr.phantom.raster import F32, Layers, polyline


def draw_plate(layers: Layers, poly_px: np.ndarray, *, edge_mm: float, core: float,
               shell: float, holes: tuple[np.ndarray, ...] = (), k: float = 1.0) -> None:
    """Fill polygon ``poly_px`` (full-resolution pixels) on ``bone_lo`` as a bone plate.

    Args:
        edge_mm: softness of the outline and width of the cortical rim.
        core: bone mm inside; shell: extra bone mm along the outline.
        holes: polygons cut out (foramina).
        k: pixels per mm of the full-resolution image.
    """
    f = layers.lo_f
    sigma = max(edge_mm * k / f, 0.6)
    pad = int(4 * sigma) + 2
    pts = np.asarray(poly_px, dtype=np.float64) / f
    x0, y0 = np.floor(pts.min(axis=0)).astype(int) - pad
    x1, y1 = np.ceil(pts.max(axis=0)).astype(int) + pad
    h, w = layers.bone_lo.shape
    i0, i1, j0, j1 = max(y0, 0), min(y1, h), max(x0, 0), min(x1, w)
    if i0 >= i1 or j0 >= j1:
        return
    img = Image.new("L", (x1 - x0, y1 - y0), 0)
    draw = ImageDraw.Draw(img)
    draw.polygon([(float(x - x0), float(y - y0)) for x, y in pts], fill=255)
    for hole in holes:
        hp = np.asarray(hole, dtype=np.float64) / f
        draw.polygon([(float(x - x0), float(y - y0)) for x, y in hp], fill=0)
    mask = np.asarray(img, dtype=F32) / F32(255)
    inner = ndi.gaussian_filter(mask, sigma * 0.6)
    wide = ndi.gaussian_filter(mask, sigma * 2.5)
    val = F32(core) * inner + F32(shell * 3.0) * np.clip(inner - wide, 0, None)
    layers.bone_lo[i0:i1, j0:j1] += val[i0 - y0:i1 - y0, j0 - x0:j1 - x0]


def chaikin(poly: np.ndarray, rounds: int = 3) -> np.ndarray:
    """Round a closed polygon's corners by Chaikin corner cutting."""
    p = np.asarray(poly, dtype=np.float64)
    for _ in range(rounds):
        q = np.roll(p, -1, axis=0)
        p = np.stack([0.75 * p + 0.25 * q, 0.25 * p + 0.75 * q], axis=1).reshape(-1, 2)
    return p


def _plate(layers: Layers, frame: Local, uv: list | np.ndarray, core: float, shell: float,
           edge_mm: float = 1.2, holes: tuple = (), smooth: bool = True) -> None:
    uv = chaikin(uv) if smooth else np.asarray(uv, dtype=np.float64)
    draw_plate(layers, frame.pts(uv), edge_mm=edge_mm, core=core, shell=shell,
               holes=tuple(frame.pts(h) for h in holes), k=frame.k)


def _band(layers: Layers, frame: Local, uv: np.ndarray, half_width, core: float,
          shell: float, edge_mm: float = 1.0) -> None:
    _plate(layers, frame, polyline(uv, half_width), core, shell, edge_mm)


def _circle(cu: float, cv: float, r: float, n: int = 20) -> np.ndarray:
    a = np.linspace(0, 2 * math.pi, n, endpoint=False)
    return np.stack([cu + r * np.cos(a), cv + r * np.sin(a)], axis=1)


def draw_neighbours(layers: Layers, vertebrae: tuple[Vertebra, ...], region: str, view: str,
                    rng: np.random.Generator) -> None:
    """Every neighbouring bone of a region and view."""
    by = {vb.level: vb for vb in vertebrae}
    if region == "lumbar":
        if rng.random() < 0.3:
            aortic_calcification(layers, vertebrae, view, rng)
        if view == "ap":
            _pelvis_ap(layers, by["S1"], rng)
            _ribs_ap(layers, by, rng)
        else:
            _pelvis_lateral(layers, by["S1"], rng)
            _ribs_lateral(layers, by, rng)
    elif view == "lateral":
        _skull_lateral(layers, by["C2"], rng)
    else:
        _skull_ap(layers, by["C2"], rng)
        _shoulder_girdle_ap(layers, by, rng)


def _scale(vb: Vertebra, ref_depth: float) -> float:
    return vb.depth / vb.px_per_mm / ref_depth


def _pelvis_ap(layers: Layers, s1: Vertebra, rng: np.random.Generator) -> None:
    sc = _scale(s1, 48.0) * rng.uniform(0.93, 1.07)
    fr = s1.local()
    half = [(0, -12), (20, -14), (40, -19), (53, -14), (57, 0), (53, 30), (43, 60), (29, 85),
            (15, 104), (6, 118), (0, 121)]
    sac = np.array(half + [(-u, v) for u, v in half[::-1][1:-1]]) * sc
    holes = tuple(_circle(s * (25 - 3 * i) * sc, (6 + 24 * i) * sc, (5.0 - 0.6 * i) * sc, 12)
                  for i in range(4) for s in (-1, 1))
    _plate(layers, fr, sac, core=3.2, shell=2.5, holes=holes)
    ilium = [(60, -5), (68, -40), (85, -60), (105, -66), (122, -60), (132, -42), (130, -15),
             (124, 20), (116, 55), (110, 85), (112, 105), (88, 110), (72, 85), (64, 60),
             (62, 40)]
    brim = np.array([(61, 42), (72, 80), (66, 112), (48, 140), (25, 158)])
    for s in (-1, 1):
        flip = np.array([s, 1.0])
        _plate(layers, fr, np.array(ilium) * flip * sc, core=2.0 * rng.uniform(0.8, 1.2),
               shell=4.5)
        _band(layers, fr, brim * flip * sc, 3.0 * sc, core=4.0, shell=2.0)
        _plate(layers, fr, _circle(s * 104 * sc, 138 * sc, 23 * sc), core=9.0, shell=4.0)
        _plate(layers, fr, _circle(s * 100 * sc, 118 * sc, 27 * sc), core=4.0, shell=2.0)


def _pelvis_lateral(layers: Layers, s1: Vertebra, rng: np.random.Generator) -> None:
    sc = _scale(s1, 36.0)
    fr = s1.local()
    line = np.array([(0, 10), (-2, 35), (-1, 60), (4, 85), (11, 104), (18, 120)]) * sc
    _band(layers, fr, line, np.array([17, 15, 12, 9, 6, 3]) * sc, core=5.5, shell=3.0)
    upright = fr.turned(-math.degrees(s1.theta) + rng.normal(0, 4))
    ilium = np.array([(-30, -50), (0, -66), (35, -66), (65, -52), (80, -30), (74, -5),
                      (58, 25), (50, 60), (40, 88), (20, 96), (0, 88), (-18, 60), (-35, 25),
                      (-45, -15)]) * sc
    off = np.array([rng.uniform(2, 9), rng.uniform(-2, 6)]) * sc
    for shift in (np.zeros(2), off):
        _plate(layers, upright, ilium + shift, core=1.3, shell=3.0)
        _plate(layers, upright, _circle(*(np.array([38, 122]) * sc + shift), 23 * sc),
               core=6.0, shell=3.0)


def _rib(layers: Layers, fr: Local, s: int, u0: float, v0: float, length: float,
         drop: float, width: float, core: float = 2.2) -> None:
    t = np.linspace(0, 1, 24)
    uv = np.stack([s * (u0 + length * t), v0 + drop * t ** 1.6], axis=1)
    _band(layers, fr, uv, width * (1 - 0.3 * t), core=core, shell=3.0)


def _ribs_ap(layers: Layers, by: dict, rng: np.random.Generator) -> None:
    for level, length, drop in (("T11", 115, 75), ("T12", 70, 40)):
        vb = by[level]
        w = vb.depth / vb.px_per_mm
        for s in (-1, 1):
            _rib(layers, vb.local(), s, 0.5 * w + 4, -0.1 * vb.height / vb.px_per_mm,
                 length * rng.uniform(0.8, 1.2), drop * rng.uniform(0.8, 1.2), 5.0)


def _ribs_lateral(layers: Layers, by: dict, rng: np.random.Generator) -> None:
    for level in ("T11", "T12"):
        vb = by[level]
        d = vb.depth / vb.px_per_mm
        for _ in range(2):
            t = np.linspace(0, 1, 20)
            uv = np.stack([-0.8 * d + 120 * t, -0.3 * d + rng.uniform(50, 80) * t ** 2], axis=1)
            _band(layers, vb.local(), uv, 3.5 * (1 - 0.3 * t), core=0.6, shell=1.2)


def _skull_lateral(layers: Layers, c2: Vertebra, rng: np.random.Generator) -> None:
    sc = _scale(c2, 16.0)
    fr = c2.local().turned(-math.degrees(c2.theta) + rng.normal(0, 6))
    occ = np.array([(-14, -44), (-34, -50), (-54, -62), (-70, -82), (-80, -108), (-82, -140),
                    (-78, -175)]) * sc
    _band(layers, fr, occ, 5.0 * sc, core=9.0, shell=6.0)
    clivus = np.array([(3, -44), (14, -66), (24, -92), (30, -120)]) * sc
    _band(layers, fr, clivus, 6.0 * sc, core=9.0, shell=5.0)
    base = np.array([(-62, -72), (-22, -56), (8, -56), (30, -70), (40, -230), (-110, -230),
                     (-96, -150), (-86, -105)]) * sc
    _plate(layers, fr, base, core=5.0, shell=2.0)
    _plate(layers, fr, _circle(-14 * sc, -48 * sc, 9 * sc), core=3.0, shell=3.0)
    palate = np.array([(18, -36), (50, -38), (88, -42)]) * sc
    _band(layers, fr, palate, 3.5 * sc, core=5.0, shell=4.0)
    ramus = np.array([(22, -50), (23, -25), (26, 2), (33, 13), (52, 20), (80, 22),
                      (104, 14)]) * sc
    widths = np.array([4.5, 5, 5, 6, 7, 7, 7]) * sc
    _band(layers, fr, ramus, widths, core=5.0, shell=6.0)
    for row, v in ((0, 7), (1, -30)):                # lower and upper molars / premolars
        for i in range(5):
            u = 48 + 9.0 * i + row * 2
            tooth = np.array([(u - 4, v - 5), (u + 4, v - 5), (u + 4, v + 5), (u - 4, v + 5)])
            _plate(layers, fr, tooth * sc, core=11.0, shell=3.0)
    _plate(layers, fr, _circle(c2.depth / c2.px_per_mm / 2 + 36 * sc, 48 * sc, 3 * sc, 10)
           * np.array([1, 1]), core=3.0, shell=2.0)  # hyoid


def _skull_ap(layers: Layers, c2: Vertebra, rng: np.random.Generator) -> None:
    sc = _scale(c2, 20.0)
    fr = c2.local().turned(-math.degrees(c2.theta) + rng.normal(0, 3))
    phi = np.linspace(-math.pi / 2, math.pi / 2, 25)
    drop = rng.uniform(-6, 10)
    arch = np.stack([44 * np.sin(phi), drop - 12 + 26 * np.cos(phi) ** 1.5], axis=1)
    _band(layers, fr, arch * sc, 5.0 * sc, core=4.0, shell=5.0)
    for s in (-1, 1):
        ramus = np.array([(s * 44, drop - 12), (s * 47, drop - 35), (s * 49, drop - 60)])
        _band(layers, fr, ramus * sc, 5.0 * sc, core=3.5, shell=4.0)
        _plate(layers, fr, _circle(s * 58 * sc, -50 * sc, 10 * sc), core=4.0, shell=3.0)
    for v, n in ((-31, 8), (-17, 8)):                 # upper and lower teeth, a few missing
        for i in range(n):
            if rng.random() < 0.12:
                continue
            u = (i - n / 2 + 0.5) * 8.6 + rng.normal(0, 0.6)
            w, h = rng.uniform(2.8, 3.8), rng.uniform(4.0, 5.5)
            tooth = np.array([(u - w, v - h), (u + w, v - h), (u + w * 0.8, v + h),
                              (u - w * 0.8, v + h)]) + [0, drop]
            _plate(layers, fr, tooth * sc, core=rng.uniform(6, 10), shell=3.0)
    u = np.linspace(-85, 85, 21)
    ridge = np.stack([u, -56 - 16 * (1 - (u / 85) ** 2)], axis=1)
    _band(layers, fr, ridge * sc, 7.0 * sc, core=5.0, shell=3.0)     # skull base ridges
    a = np.linspace(0, 2 * math.pi, 40, endpoint=False)
    vault = np.stack([82 * np.cos(a), -135 + 80 * np.sin(a)], axis=1)
    _plate(layers, fr, vault * sc, core=3.0, shell=5.0, smooth=False)


def aortic_calcification(layers: Layers, vertebrae: tuple[Vertebra, ...], view: str,
                         rng: np.random.Generator) -> None:
    """Calcified plaques along the abdominal aorta (common with age; never a label)."""
    by = {vb.level: vb for vb in vertebrae}
    for level in ("L1", "L2", "L3", "L4"):
        vb = by[level]
        d = vb.depth / vb.px_per_mm
        for _ in range(int(rng.integers(0, 4))):
            u = d / 2 + rng.uniform(8, 22) if view == "lateral" else -rng.uniform(2, 0.45 * d)
            v = rng.uniform(-0.6, 0.6) * vb.height / vb.px_per_mm
            w, h = rng.uniform(0.8, 1.8), rng.uniform(2.0, 6.0)
            blob = np.array([(u - w, v - h), (u + w, v - h), (u + w, v + h), (u - w, v + h)])
            _plate(layers, vb.local(), blob, core=rng.uniform(3, 7), shell=1.0, edge_mm=0.5)


def _shoulder_girdle_ap(layers: Layers, by: dict, rng: np.random.Generator) -> None:
    t1 = by["T1"]
    fr = t1.local().turned(-math.degrees(t1.theta))
    sc = _scale(t1, 28.0)
    drop = rng.uniform(-10, 15)
    for s in (-1, 1):
        clav = np.array([(s * 18, 24 + drop), (s * 45, 16 + drop), (s * 80, 8 + drop),
                         (s * 115, 2 + drop), (s * 140, 8 + drop)]) * sc
        _band(layers, fr, clav, 5.0 * sc, core=4.5, shell=4.5)
        for level, r in (("T1", 38.0), ("T2", 55.0)):
            vb = by[level]
            w = vb.depth / vb.px_per_mm
            a = np.linspace(-0.6 * math.pi, 0.55 * math.pi, 28)
            cu = s * (1.35 * w + r * 0.9)
            arc = np.stack([cu - s * r * np.cos(a) * 0.9, r * 0.25 + r * 0.7 * np.sin(a)], 1)
            _band(layers, vb.local(), arc * sc, 3.0 * sc, core=1.2, shell=2.0)
