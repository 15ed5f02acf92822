"""Rasterizing primitives: signed distances and "stamps" that add projected thickness.

Layers hold projected material thickness along the beam: ``trab`` and ``cort`` in mm of
cortical-bone equivalent (trabecular bone gets a texture later), ``metal`` in attenuation units,
``soft`` (water mm) and ``bone_lo`` (large flat bones) on coarser grids that are upsampled once.
Stamps work on the patch of pixels an object covers, so cost follows object area.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image

F32 = np.float32
BBox = tuple[float, float, float, float]


@dataclass
class Layers:
    """Mutable accumulation buffers of one rendering (private to a single generate call)."""

    trab: np.ndarray
    cort: np.ndarray
    metal: np.ndarray
    soft: np.ndarray      # (ceil(H/soft_f), ceil(W/soft_f)), water mm
    bone_lo: np.ndarray   # (ceil(H/lo_f), ceil(W/lo_f)), bone mm
    soft_f: int
    lo_f: int

    @classmethod
    def empty(cls, shape: tuple[int, int], px_per_mm: float) -> "Layers":
        h, w = shape
        lo_f = max(1, int(round(0.28 * px_per_mm)))
        soft_f = max(1, int(round(0.6 * px_per_mm)))
        return cls(np.zeros(shape, F32), np.zeros(shape, F32), np.zeros(shape, F32),
                   np.zeros((-(-h // soft_f), -(-w // soft_f)), F32),
                   np.zeros((-(-h // lo_f), -(-w // lo_f)), F32), soft_f, lo_f)

    @property
    def shape(self) -> tuple[int, int]:
        return self.trab.shape  # type: ignore[return-value]


def upsample(lo: np.ndarray, f: int, shape: tuple[int, int]) -> np.ndarray:
    """Bilinear upsampling of a coarse grid by integer factor ``f``, cropped to ``shape``."""
    if f == 1:
        return lo[: shape[0], : shape[1]].astype(F32, copy=False)
    h, w = lo.shape
    img = Image.fromarray(np.ascontiguousarray(lo, dtype=F32), mode="F")
    big = np.asarray(img.resize((w * f, h * f), Image.BILINEAR), dtype=F32)
    return big[: shape[0], : shape[1]]


def patch(shape: tuple[int, int], x0: float, y0: float, x1: float, y1: float):
    """Slices and pixel-centre coordinates (row vector X, column vector Y) of a bbox.

    Returns ``None`` when the bbox misses the image.
    """
    h, w = shape
    i0, i1 = max(0, int(np.floor(y0))), min(h, int(np.ceil(y1)) + 1)
    j0, j1 = max(0, int(np.floor(x0))), min(w, int(np.ceil(x1)) + 1)
    if i0 >= i1 or j0 >= j1:
        return None
    xs = np.arange(j0, j1, dtype=F32)[None, :] + F32(0.5)
    ys = np.arange(i0, i1, dtype=F32)[:, None] + F32(0.5)
    return (slice(i0, i1), slice(j0, j1)), xs, ys


def local(xs: np.ndarray, ys: np.ndarray, center, eu, ev) -> tuple[np.ndarray, np.ndarray]:
    """Local (u, v) coordinates of pixel centres for a frame with origin ``center``."""
    dx, dy = xs - F32(center[0]), ys - F32(center[1])
    return dx * F32(eu[0]) + dy * F32(eu[1]), dx * F32(ev[0]) + dy * F32(ev[1])


def sdf_box(u: np.ndarray, v: np.ndarray, hu, hv, r: float) -> np.ndarray:
    """Signed distance (px, negative inside) to a rounded box of half sizes ``hu`` x ``hv``.

    ``hu``/``hv`` may be arrays (a box that tapers); exact for constant half sizes.
    """
    r = F32(min(r, 0.999 * float(np.min(hu)), 0.999 * float(np.min(hv))))
    qx = np.abs(u) - hu + r
    qy = np.abs(v) - hv + r
    out = np.hypot(np.maximum(qx, 0), np.maximum(qy, 0))
    return out + np.minimum(np.maximum(qx, qy), 0) - r


def sdf_ellipse(u: np.ndarray, v: np.ndarray, a, b) -> np.ndarray:
    """Approximate signed distance (px) to an ellipse with semi-axes ``a`` (u), ``b`` (v);
    ``b`` may be an array (a tapering ellipse)."""
    a, b = F32(a), np.asarray(b, dtype=F32)
    k = np.sqrt((u / a) ** 2 + (v / b) ** 2)
    return (k - 1) * np.minimum(a, b)


def fill(d: np.ndarray, soft: float = 0.7) -> np.ndarray:
    """Antialiased inside-ness in [0, 1] from a signed distance (``soft`` px edge)."""
    return np.clip(F32(0.5) - d / F32(2 * soft), 0, 1)


def rim(d: np.ndarray, width: float) -> np.ndarray:
    """A shell just inside the outline: peaks at depth ``width/2`` with that thickness."""
    z = (d + F32(width * 0.5)) / F32(max(width, 0.5))
    return np.exp(-z * z) * fill(d)


def stamp(layer: np.ndarray, sl, values: np.ndarray) -> None:
    layer[sl] += values


@dataclass(frozen=True)
class Shape:
    """A rounded box or ellipse in a local frame, with its projected material.

    Attributes:
        center: image position (px); eu, ev: local axes (unit vectors in the image).
        hu, hv: half sizes (px); radius: corner radius (px), ``-1`` for an ellipse.
        core: bone mm at the centre of the projected body (elliptic profile across u).
        shell: bone mm added along the outline (cortex seen tangentially).
        shell_px: cortex thickness in px.
    """

    center: tuple[float, float]
    eu: tuple[float, float]
    ev: tuple[float, float]
    hu: float
    hv: float
    radius: float
    core: float
    shell: float = 0.0
    shell_px: float = 1.0
    taper: float = 0.0    # hv shrinks linearly to hv * (1 - taper) at u = +hu
    shear: float = 0.0    # v is measured as v + shear * u (parallelograms)

    def extent(self) -> tuple[float, float, float, float]:
        hv = self.hv + abs(self.shear) * self.hu
        r = abs(self.hu * self.eu[0]) + abs(hv * self.ev[0]) + 2
        s = abs(self.hu * self.eu[1]) + abs(hv * self.ev[1]) + 2
        return self.center[0] - r, self.center[1] - s, self.center[0] + r, self.center[1] + s

    def bbox(self) -> tuple[float, float, float, float]:
        """Axis-aligned box (px) around the outline, without the antialiasing margin."""
        x0, y0, x1, y1 = self.extent()
        return x0 + 2, y0 + 2, x1 - 2, y1 - 2


def shape_sdf(shape: Shape, xs: np.ndarray, ys: np.ndarray):
    """(d, u, v) for the pixel grid: signed distance to the outline and local coordinates."""
    u, v = local(xs, ys, shape.center, shape.eu, shape.ev)
    if shape.shear:
        v = v + F32(shape.shear) * u
    hv = F32(shape.hv)
    if shape.taper:
        t = np.clip((u + F32(shape.hu)) / F32(2 * shape.hu), 0, 1)
        hv = hv * (1 - F32(shape.taper) * t) + F32(0.3)
    if shape.radius < 0:
        return sdf_ellipse(u, v, shape.hu, hv), u, v
    return sdf_box(u, v, F32(shape.hu), hv, shape.radius), u, v


def draw_shape(target: np.ndarray, shape: Shape, cortex: np.ndarray | None = None) -> None:
    """Add ``shape`` to ``target`` (core) and ``cortex`` (shell; ``target`` when ``None``)."""
    p = patch(target.shape, *shape.extent())
    if p is None:
        return
    sl, xs, ys = p
    d, u, _ = shape_sdf(shape, xs, ys)
    if shape.core:
        prof = np.sqrt(np.clip(1 - (u / F32(shape.hu)) ** 2, 0.05, 1))
        stamp(target, sl, F32(shape.core) * prof * fill(d))
    if shape.shell:
        stamp(target if cortex is None else cortex, sl,
              F32(shape.shell) * rim(d, shape.shell_px))


def polyline(points: np.ndarray, half_width: np.ndarray | float) -> np.ndarray:
    """A closed outline (2n, 2) around a polyline with (per-point) half widths."""
    p = np.asarray(points, dtype=np.float64)
    t = np.gradient(p, axis=0)
    t /= np.maximum(np.linalg.norm(t, axis=1, keepdims=True), 1e-9)
    n = np.stack([-t[:, 1], t[:, 0]], axis=1)
    hw = np.broadcast_to(np.asarray(half_width, dtype=np.float64), (len(p),))[:, None]
    return np.concatenate([p + n * hw, (p - n * hw)[::-1]])


def union(*boxes: BBox) -> BBox:
    return (min(b[0] for b in boxes), min(b[1] for b in boxes), max(b[2] for b in boxes),
            max(b[3] for b in boxes))


def pad(box: BBox, px: float) -> BBox:
    return box[0] - px, box[1] - px, box[2] + px, box[3] + px


def points_box(points) -> BBox:
    p = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    return float(p[:, 0].min()), float(p[:, 1].min()), float(p[:, 0].max()), float(p[:, 1].max())


def shape_box(shape: Shape) -> BBox:
    """Tight box of a shape's pixels with >= 50 % fill (measured on its patch)."""
    p = patch((10 ** 6, 10 ** 6), *shape.extent())
    sl, xs, ys = p
    d, _, _ = shape_sdf(shape, xs, ys)
    ii, jj = np.nonzero(fill(d) >= 0.5)
    if ii.size == 0:
        return shape.bbox()
    return (float(sl[1].start + jj.min()), float(sl[0].start + ii.min()),
            float(sl[1].start + jj.max() + 1), float(sl[0].start + ii.max() + 1))
