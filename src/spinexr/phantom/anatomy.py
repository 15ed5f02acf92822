"""Spine geometry: levels, body sizes in mm, the sagittal/coronal curve, the mm -> pixel frame.

Pure: parameters and a ``np.random.Generator`` in, frozen geometry out. Image coordinates are
pixels with x to the right and y down; a pixel ``(i, j)`` covers ``[j, j+1) x [i, i+1)``.
Local vertebra coordinates are ``u`` across the body (anterior in a lateral view, towards the
image right in an AP view before any flip) and ``v`` along the spine, towards the feet.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np

from spinexr.labels import CERVICAL_LEVELS, LUMBAR_LEVELS

#: Levels drawn (and boxed) per region, top to bottom.
REGION_LEVELS: dict[str, tuple[str, ...]] = {
    "cervical": CERVICAL_LEVELS + ("T1", "T2"),
    "lumbar": ("T11", "T12") + LUMBAR_LEVELS + ("S1",),
}
#: Levels that may carry a lesion (always well inside the field of view).
LESION_LEVELS: dict[str, tuple[str, ...]] = {
    "cervical": CERVICAL_LEVELS,
    "lumbar": ("T12",) + LUMBAR_LEVELS,
}

#: Adult mean (height, AP depth, coronal width) of each vertebral body in mm.
BODY_MM: dict[str, tuple[float, float, float]] = {
    "C2": (16.0, 16.0, 20.0), "C3": (14.0, 16.0, 20.0), "C4": (14.0, 16.0, 21.0),
    "C5": (13.5, 16.5, 22.0), "C6": (14.0, 17.0, 24.0), "C7": (15.0, 17.0, 26.0),
    "T1": (17.0, 18.0, 28.0), "T2": (18.0, 20.0, 30.0),
    "T11": (23.0, 29.0, 38.0), "T12": (25.0, 31.0, 41.0), "L1": (26.0, 33.0, 43.0),
    "L2": (27.0, 34.0, 45.0), "L3": (28.0, 35.0, 48.0), "L4": (28.0, 35.0, 50.0),
    "L5": (27.0, 34.0, 52.0), "S1": (26.0, 36.0, 48.0),
}
#: Adult mean disc height (mm) below each level.
DISC_MM: dict[str, float] = {
    "C2": 4.5, "C3": 5.0, "C4": 5.5, "C5": 5.5, "C6": 5.0, "C7": 4.5, "T1": 4.0,
    "T11": 6.5, "T12": 8.0, "L1": 9.0, "L2": 10.0, "L3": 11.0, "L4": 11.5, "L5": 10.0,
}
#: Field of view height (mm) range per region.
FOV_MM: dict[str, tuple[float, float]] = {"cervical": (215.0, 290.0), "lumbar": (335.0, 430.0)}


@dataclass(frozen=True)
class Frame:
    """Maps patient millimetres (x across, y down, before flip and tilt) to image pixels.

    Attributes:
        px_per_mm: image scale (1 / pixel spacing).
        origin: pixel position of the patient origin.
        tilt: in-plane rotation of the patient in radians (positioning error).
        facing: +1 or -1; -1 mirrors the patient's x axis (lateral: face to the left).
    """

    px_per_mm: float
    origin: tuple[float, float]
    tilt: float
    facing: int

    def to_px(self, x_mm: np.ndarray | float, y_mm: np.ndarray | float) -> tuple:
        """Pixel (x, y) of patient points given in mm (scalars or arrays)."""
        c, s = math.cos(self.tilt), math.sin(self.tilt)
        x = np.asarray(x_mm, dtype=np.float64) * self.facing * self.px_per_mm
        y = np.asarray(y_mm, dtype=np.float64) * self.px_per_mm
        return self.origin[0] + c * x - s * y, self.origin[1] + s * x + c * y

    def to_mm(self, x_px: np.ndarray, y_px: np.ndarray) -> tuple:
        """Patient (x, y) in mm of image pixel positions (inverse of :meth:`to_px`)."""
        c, s = math.cos(self.tilt), math.sin(self.tilt)
        dx, dy = x_px - self.origin[0], y_px - self.origin[1]
        k = 1.0 / self.px_per_mm
        return (c * dx + s * dy) * k * self.facing, (-s * dx + c * dy) * k

    def local_at(self, x_mm: float, y_mm: float, theta: float = 0.0) -> "Local":
        """A local frame at patient point (x, y) mm, leaning ``theta`` rad like a vertebra."""
        cx, cy = self.to_px(x_mm, y_mm)
        eu, ev = self.axes(theta)
        return Local((float(cx), float(cy)), eu, ev, self.px_per_mm)

    def axes(self, theta: float) -> tuple[tuple[float, float], tuple[float, float]]:
        """Image unit vectors (eu, ev) of a local frame whose v axis leans ``theta`` rad
        towards +x (patient) from straight down."""
        ex = self.to_px(math.cos(theta), -math.sin(theta))
        ey = self.to_px(math.sin(theta), math.cos(theta))
        o = self.origin
        k = self.px_per_mm
        return ((ex[0] - o[0]) / k, (ex[1] - o[1]) / k), ((ey[0] - o[0]) / k, (ey[1] - o[1]) / k)


@dataclass(frozen=True)
class Local:
    """A local frame in the image: origin (px), unit axes ``eu``/``ev`` and px per mm."""

    center: tuple[float, float]
    eu: tuple[float, float]
    ev: tuple[float, float]
    k: float

    def px(self, u_mm, v_mm) -> tuple:
        """Image (x, y) of local points given in mm (scalars or arrays)."""
        u = np.asarray(u_mm, dtype=np.float64) * self.k
        v = np.asarray(v_mm, dtype=np.float64) * self.k
        return (self.center[0] + u * self.eu[0] + v * self.ev[0],
                self.center[1] + u * self.eu[1] + v * self.ev[1])

    def pts(self, uv_mm) -> np.ndarray:
        """(n, 2) image points of an (n, 2) array of local mm points."""
        uv = np.asarray(uv_mm, dtype=np.float64)
        x, y = self.px(uv[:, 0], uv[:, 1])
        return np.stack([x, y], axis=1)

    def moved(self, u_mm: float, v_mm: float) -> "Local":
        x, y = self.px(u_mm, v_mm)
        return Local((float(x), float(y)), self.eu, self.ev, self.k)

    def turned(self, degrees: float) -> "Local":
        """The frame rotated by ``degrees`` (positive turns +u towards +v)."""
        a = math.radians(degrees)
        ca, sa = math.cos(a), math.sin(a)
        eu = (ca * self.eu[0] + sa * self.ev[0], ca * self.eu[1] + sa * self.ev[1])
        ev = (-sa * self.eu[0] + ca * self.ev[0], -sa * self.eu[1] + ca * self.ev[1])
        return Local(self.center, eu, ev, self.k)


@dataclass(frozen=True)
class Vertebra:
    """One vertebral body as drawn, in image pixels.

    Attributes:
        level: e.g. ``"L3"``.
        center: (x, y) pixel position of the body centre.
        eu, ev: image unit vectors of the local u (across) and v (down the spine) axes.
        depth: body extent along u in pixels.
        h_neg, h_pos: body height (px) at ``u = -depth/2`` and ``u = +depth/2`` (a wedge when
            they differ; in a lateral view +u is anterior).
        thick_mm: body extent along the beam in mm (sets its projected density).
        px_per_mm: scale, for sizing attached structures.
        theta: lean of the body axis in patient coordinates (radians).
    """

    level: str
    center: tuple[float, float]
    eu: tuple[float, float]
    ev: tuple[float, float]
    depth: float
    h_neg: float
    h_pos: float
    thick_mm: float
    px_per_mm: float
    theta: float

    @property
    def height(self) -> float:
        return 0.5 * (self.h_neg + self.h_pos)

    def local(self) -> Local:
        return Local(self.center, self.eu, self.ev, self.px_per_mm)

    def point(self, u: float, v: float) -> tuple[float, float]:
        """Image position of local point (u, v) in pixels."""
        return (self.center[0] + u * self.eu[0] + v * self.ev[0],
                self.center[1] + u * self.eu[1] + v * self.ev[1])

    def corners(self) -> np.ndarray:
        """(4, 2) image corners: upper-neg, upper-pos, lower-pos, lower-neg."""
        d = self.depth / 2
        pts = [(-d, -self.h_neg / 2), (d, -self.h_pos / 2), (d, self.h_pos / 2),
               (-d, self.h_neg / 2)]
        return np.array([self.point(u, v) for u, v in pts])

    def bbox(self) -> tuple[float, float, float, float]:
        c = self.corners()
        return (float(c[:, 0].min()), float(c[:, 1].min()), float(c[:, 0].max()),
                float(c[:, 1].max()))


@dataclass(frozen=True)
class SpineShape:
    """Per-level sizes (mm) and angles before placement; lesions edit it."""

    levels: tuple[str, ...]
    heights: tuple[tuple[float, float], ...]   # (h_neg, h_pos) per level, mm
    depths: tuple[float, ...]                  # along u, mm
    thicks: tuple[float, ...]                  # along the beam, mm
    discs: tuple[float, ...]                   # mm, below each level (len = levels - 1)
    thetas: tuple[float, ...]                  # radians per level
    shifts: tuple[float, ...]                  # extra u translation (mm) per level


def sample_shape(rng: np.random.Generator, region: str, view: str) -> SpineShape:
    """Random individual spine: size, per-level variation, curvature (lordosis or scoliosis)."""
    levels = REGION_LEVELS[region]
    scale = rng.uniform(0.88, 1.12)
    heights, depths, thicks = [], [], []
    for level in levels:
        h, d, w = (x * scale for x in BODY_MM[level])
        h *= float(np.clip(rng.normal(1.0, 0.03), 0.93, 1.07))
        wedge = rng.normal(0.0, 0.02) * h
        depth, thick = (d, w) if view == "lateral" else (w, d)
        heights.append((h - wedge, h + wedge))
        depths.append(depth)
        thicks.append(thick)
    discs = tuple(DISC_MM[lv] * scale * float(np.clip(rng.normal(1.0, 0.07), 0.86, 1.14))
                  for lv in levels[:-1])
    thetas = _thetas(rng, region, view, len(levels))
    if region == "lumbar" and view == "lateral":
        # L5 is wedge shaped (taller anteriorly), the sacrum follows the sacral slope.
        i = levels.index("L5")
        h_neg, h_pos = heights[i]
        heights[i] = (h_neg * 0.9, h_pos * 1.08)
    return SpineShape(levels, tuple(heights), tuple(depths), tuple(thicks), discs, thetas,
                      tuple(0.0 for _ in levels))


def _thetas(rng: np.random.Generator, region: str, view: str, n: int) -> tuple[float, ...]:
    t = np.linspace(0.0, 1.0, n)
    if view == "ap":
        theta = np.zeros(n)
        for k in (1, 2):
            theta += rng.normal(0.0, 0.07 / k) * np.sin(math.pi * k * t + rng.uniform(0, 6.3))
        theta += rng.normal(0.0, 0.02)
    elif region == "lumbar":
        top, bottom = math.radians(rng.uniform(4, 16)), -math.radians(rng.uniform(32, 50))
        theta = top + (bottom - top) * t ** rng.uniform(1.6, 2.4)
    else:
        lordosis = math.radians(rng.uniform(10, 40)) * (rng.random() < 0.85)
        lean = math.radians(rng.uniform(-16, -4))
        theta = lean + lordosis * (0.5 - t) + math.radians(-8) * np.clip(t - 0.75, 0, 1) * 4
    theta = theta + rng.normal(0.0, math.radians(1.2), n)
    return tuple(float(x) for x in theta)


def centreline(shape: SpineShape) -> np.ndarray:
    """(n, 2) body centres in patient mm (x across, y down), first body centred at 0.

    Bodies are chained: each body's lower endplate centre, then the disc along the mean
    axis of the two bodies, then the next body's upper endplate centre.
    """
    centres = [np.zeros(2)]
    for i in range(1, len(shape.levels)):
        a0, a1 = shape.thetas[i - 1], shape.thetas[i]
        h0 = sum(shape.heights[i - 1]) / 2
        h1 = sum(shape.heights[i]) / 2
        mid = 0.5 * (a0 + a1)
        step = (h0 / 2 * _dir(a0) + shape.discs[i - 1] * _dir(mid) + h1 / 2 * _dir(a1))
        centres.append(centres[-1] + step)
    out = np.array(centres)
    # Spondylolisthesis: the slipped level and everything above move along their u axis.
    for i, shift in enumerate(shape.shifts):
        if shift:
            out[: i + 1] += shift * _perp(shape.thetas[i])
    return out


def _dir(theta: float) -> np.ndarray:
    return np.array([math.sin(theta), math.cos(theta)])


def _perp(theta: float) -> np.ndarray:
    return np.array([math.cos(theta), -math.sin(theta)])


def place(shape: SpineShape, frame: Frame, centres_mm: np.ndarray) -> tuple[Vertebra, ...]:
    """Vertebrae in image pixels from a shape, its centreline and the frame."""
    out = []
    k = frame.px_per_mm
    for i, level in enumerate(shape.levels):
        cx, cy = frame.to_px(centres_mm[i, 0], centres_mm[i, 1])
        eu, ev = frame.axes(shape.thetas[i])
        h_neg, h_pos = shape.heights[i]
        out.append(Vertebra(level, (float(cx), float(cy)), eu, ev, shape.depths[i] * k,
                            h_neg * k, h_pos * k, shape.thicks[i], k, shape.thetas[i]))
    return tuple(out)


def edit_level(shape: SpineShape, level: str, **changes) -> SpineShape:
    """A copy of ``shape`` with per-level tuples changed at ``level`` (heights, shifts, ...)."""
    i = shape.levels.index(level)
    fields = {}
    for name, value in changes.items():
        seq = list(getattr(shape, name))
        seq[i] = value
        fields[name] = tuple(seq)
    return replace(shape, **fields)
