"""Soft tissue on a coarse grid: body envelope, shoulders, airway, lungs, bowel gas.

Values are water-equivalent path lengths in mm (air pockets subtract). The envelope follows
the spine's curve, so positioning, lordosis and scoliosis carry over to the silhouette.
"""
from __future__ import annotations

import math

import numpy as np

from spinexr.phantom.anatomy import Frame
from spinexr.phantom.raster import F32, Layers, Shape, draw_shape


def _grid_mm(layers: Layers, frame: Frame) -> tuple[np.ndarray, np.ndarray]:
    h, w = layers.soft.shape
    f = layers.soft_f
    xs = (np.arange(w, dtype=np.float32)[None, :] + 0.5) * f
    ys = (np.arange(h, dtype=np.float32)[:, None] + 0.5) * f
    x, y = frame.to_mm(xs, ys)
    return x.astype(F32), y.astype(F32)


def _smooth(x: np.ndarray) -> np.ndarray:
    t = np.clip(x, 0, 1)
    return t * t * (3 - 2 * t)


def _ellipse_path(x: np.ndarray, a: np.ndarray | float, depth: np.ndarray | float) -> np.ndarray:
    """Chord length through a rounded (superelliptic, p = 4) cross-section at offset ``x``
    from its centre: bodies are flatter than ellipses, so the path stays long near the skin."""
    r2 = np.clip((x / a) ** 2, 0, 1)
    return F32(1) * depth * np.sqrt(np.sqrt(1 - r2 * r2))


def _blob(layers: Layers, frame: Frame, x: float, y: float, a: float, b: float,
          angle: float, path: float) -> None:
    """Add ``path`` mm (negative for gas) in an ellipse given in patient mm."""
    f = layers.soft_f
    cx, cy = frame.to_px(x, y)
    eu, ev = frame.axes(math.radians(angle))
    k = frame.px_per_mm / f
    draw_shape(layers.soft, Shape((float(cx) / f, float(cy) / f), eu, ev, a * k, b * k, -1.0,
                                  path))


def draw_soft(layers: Layers, frame: Frame, levels: tuple[str, ...], centres: np.ndarray,
              depths: tuple[float, ...], region: str, view: str,
              rng: np.random.Generator) -> None:
    """Fill ``layers.soft`` for one region and view (centres in patient mm, depths in mm)."""
    x, y = _grid_mm(layers, frame)
    order = np.argsort(centres[:, 1])
    spine_x = np.interp(y, centres[order, 1], centres[order, 0]).astype(F32)
    at = {lv: centres[i] for i, lv in enumerate(levels)}
    depth = float(np.mean(depths))
    if region == "lumbar":
        fn = _lumbar_lateral if view == "lateral" else _lumbar_ap
    else:
        fn = _cervical_lateral if view == "lateral" else _cervical_ap
    layers.soft += fn(x, y, spine_x, at, depth, rng)
    if region == "lumbar":
        layers.soft += _organs(x, y, at, view, rng) * (layers.soft > 0)
        _bowel_gas(layers, frame, at, view, rng)


def _lumbar_lateral(x, y, spine_x, at, depth, rng) -> np.ndarray:
    back = spine_x - F32(depth / 2 + rng.uniform(70, 105))
    belly = F32(rng.uniform(215, 300)) + F32(rng.uniform(0, 40)) * _smooth(
        (y - at["L1"][1]) / 120)
    a = belly / 2
    width = F32(rng.uniform(290, 370))
    t = _ellipse_path(x - back - a, a, width)
    # Lung bases behind the diaphragm above T12-L1, hips and buttocks below the crest.
    dia = F32(at["T12"][1] + rng.uniform(-25, 15)) + F32(0.25) * (x - spine_x)
    t -= F32(rng.uniform(45, 85)) * _smooth((dia - y) / 50) * (t > 0)
    t += F32(rng.uniform(20, 60)) * _smooth((y - at["L5"][1]) / 60) * (t > 0)
    return t


def _lumbar_ap(x, y, spine_x, at, depth, rng) -> np.ndarray:
    cx = F32(np.mean([c[0] for c in at.values()]) + rng.normal(0, 8))
    half = F32(rng.uniform(135, 175))
    waist = F32(1) - F32(0.08) * np.exp(-((y - at["L3"][1]) / 80) ** 2)
    hips = F32(1) + F32(rng.uniform(0.05, 0.15)) * _smooth((y - at["L5"][1]) / 80)
    a = half * waist * hips
    t = _ellipse_path(x - cx, a, F32(rng.uniform(190, 260)))
    # Lungs lateral to the spine above the diaphragm domes.
    r = np.abs(x - spine_x)
    dome = F32(at["T12"][1] + rng.uniform(-20, 20)) + F32(35) * ((r - 0.5 * a) / (0.5 * a)) ** 2
    lung = _smooth((dome - y) / 45) * _smooth((r - 20) / 60)
    t -= F32(rng.uniform(45, 85)) * lung * (t > 0)
    # Psoas margins: a slightly denser wedge beside the spine from T12 down.
    grow = np.clip((y - at["T12"][1]) / max(at["L5"][1] - at["T12"][1], 1.0), 0, 1.3)
    edge = F32(depth / 2 + 5) + F32(38) * grow
    psoas = _smooth((edge - r) / 6) * _smooth((y - at["T12"][1]) / 30)
    t += F32(rng.uniform(4, 8)) * psoas * (t > 0)
    return t


def _cervical_lateral(x, y, spine_x, at, depth, rng) -> np.ndarray:
    head = _smooth((at["C2"][1] - 5 - y) / 35)
    back = spine_x - F32(depth / 2 + rng.uniform(60, 80)) - F32(40) * head
    neck = F32(rng.uniform(120, 150))
    a = neck / 2 + F32(70) * head
    width = F32(rng.uniform(95, 125)) + F32(40) * head
    t = _ellipse_path(x - back - a, a, width)
    # Shoulders cross the lower neck: a thick band with a sloping upper edge.
    sh = F32(at["C7"][1] + rng.uniform(-20, 15)) + F32(0.3) * (x - spine_x)
    across = np.sqrt(np.clip(1 - ((x - spine_x + F32(10)) / F32(rng.uniform(100, 130))) ** 2,
                             0, 1))
    t += F32(rng.uniform(110, 190)) * _smooth((y - sh) / 35) * across
    # Airway: pharynx and trachea in front of the prevertebral soft tissue.
    prevert = F32(4) + F32(11) * _smooth((y - at["C4"][1]) / max(at["C6"][1] - at["C4"][1], 1))
    wall = spine_x + F32(depth / 2) + prevert
    w_air = F32(rng.uniform(13, 19))
    air = _smooth((x - wall) / 2) * _smooth((wall + w_air - x) / 2)
    t -= F32(rng.uniform(14, 22)) * air
    return t


def _cervical_ap(x, y, spine_x, at, depth, rng) -> np.ndarray:
    cx = F32(np.mean([c[0] for c in at.values()]) + rng.normal(0, 4))
    half = F32(rng.uniform(50, 66))
    r = np.abs(x - cx)
    t = _ellipse_path(r, half, F32(rng.uniform(110, 135))) * _smooth((y - at["C2"][1] + 60) / 30)
    hy, hw, hh = F32(at["C2"][1] - rng.uniform(40, 60)), F32(rng.uniform(70, 82)), F32(100)
    head = np.clip(1 - (r / hw) ** 2 - ((y - hy) / hh) ** 2, 0, 1)
    t = np.maximum(t, F32(rng.uniform(150, 180)) * np.sqrt(head))
    # Shoulders: trapezius slopes down laterally from the lower neck; upper chest below.
    sh = F32(at["C6"][1] + rng.uniform(-10, 20)) + F32(0.45) * np.maximum(r - half, 0)
    chest = _ellipse_path(r, F32(rng.uniform(150, 190)), F32(rng.uniform(150, 200)))
    t = np.maximum(t, chest * _smooth((y - sh) / 25))
    # Trachea (midline air column) and lung apices below the clavicles.
    tx = spine_x + F32(rng.normal(0, 3))
    air = _smooth((F32(rng.uniform(8, 10)) - np.abs(x - tx)) / 2) * _smooth(
        (y - at["C5"][1]) / 15)
    t -= F32(rng.uniform(14, 20)) * air
    apex = _smooth((y - at["T1"][1] - 5) / 30) * _smooth((r - 25) / 15)
    t -= F32(rng.uniform(40, 70)) * apex * (t > 60)
    return t


def _gas_cluster(layers: Layers, frame: Frame, x: float, y: float, size: float,
                 rng: np.random.Generator) -> None:
    """An irregular gas pocket: overlapping blobs along a short random walk (a bowel loop)."""
    angle = rng.uniform(0, 2 * math.pi)
    path = -rng.uniform(10, 30)
    for _ in range(int(rng.integers(3, 9))):
        r = size * rng.uniform(0.35, 0.8)
        _blob(layers, frame, x, y, r, r * rng.uniform(0.5, 1.0), math.degrees(angle), path / 3)
        angle += rng.normal(0, 0.7)
        x += math.cos(angle) * r * 0.9
        y += math.sin(angle) * r * 0.9


def _bump(x, y, cx, cy, a, b, angle, amp) -> np.ndarray:
    """A smooth (Gaussian-edged) elliptic density change: organs have no sharp outline."""
    ca, sa = F32(math.cos(angle)), F32(math.sin(angle))
    dx, dy = x - F32(cx), y - F32(cy)
    u, v = (dx * ca + dy * sa) / F32(a), (-dx * sa + dy * ca) / F32(b)
    return F32(amp) * np.exp(-(u * u + v * v) ** 2)


def _organs(x, y, at, view: str, rng: np.random.Generator) -> np.ndarray:
    """Kidneys, liver and muscle bellies: broad, faint, soft-edged density changes."""
    x0, y0 = at["L2"]
    out = np.zeros_like(x)
    if view == "ap":
        for s in (-1, 1):
            out += _bump(x, y, x0 + s * rng.uniform(55, 70), y0 + rng.uniform(-30, 10),
                         rng.uniform(28, 36), rng.uniform(50, 62), s * rng.uniform(-0.35, -0.1),
                         rng.uniform(6, 12))
        out += _bump(x, y, x0 - rng.uniform(80, 110), at["T12"][1] - 20, 90, 70,
                     rng.uniform(-0.3, 0.3), rng.uniform(8, 18))          # liver
    for _ in range(int(rng.integers(2, 6))):
        out += _bump(x, y, x0 + rng.normal(0, 60), y0 + rng.normal(0, 70), rng.uniform(25, 70),
                     rng.uniform(25, 70), rng.uniform(-1.5, 1.5), rng.uniform(-10, 10))
    return out


def _bowel_gas(layers: Layers, frame: Frame, at, view: str, rng: np.random.Generator) -> None:
    """Gas pockets and mottled stool: dark shapes of many sizes, some over the spine."""
    x0, y0 = at["L3"]
    spread = 110.0 if view == "ap" else 90.0
    anterior = 0.0 if view == "ap" else 60.0
    for _ in range(int(rng.integers(2, 10))):
        x = x0 + anterior + rng.normal(0, spread * 0.6)
        y = y0 + rng.uniform(-90, 110)
        _gas_cluster(layers, frame, x, y, rng.uniform(6, 22), rng)
    for _ in range(int(rng.integers(0, 4))):          # stool: clusters of small bubbles
        cx = x0 + anterior + rng.normal(0, spread * 0.6)
        cy = y0 + rng.uniform(-60, 120)
        for _ in range(int(rng.integers(10, 30))):
            r = rng.uniform(1.0, 3.5)
            _blob(layers, frame, cx + rng.normal(0, 12), cy + rng.normal(0, 10), r, r, 0.0,
                  -rng.uniform(2, 6))
