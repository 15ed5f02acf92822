"""Digitally reconstructed radiographs (DRRs) of one real chest CT, with exact vertebra boxes.

Real anatomy for the vertebra detector and the input gate: ``diffdrr`` (MIT, extra ``drr``)
ships one chest CT (512 x 512 x 133 voxels, 0.7 x 0.7 x 2.5 mm, C5/C6 to L3) with a
TotalSegmentator label map. We cast rays through it from random lateral, oblique and AP
poses, and project each vertebral *body* with the same camera to get its box.

Label ids (diffdrr's ``data/structures.csv``; TotalSegmentator v1 order): vertebrae are
``25`` sacrum, ``26`` S1, ``27`` L5, ``28`` L4, ..., ``31`` L1, ``32`` T12, ..., ``43`` T1,
``44`` C7, ``45`` C6, ..., ``50`` C1, i.e. ``id = 44 - k`` for ``T(k)`` and so on;
``79`` is the spinal cord. This CT holds 29 (L3) to 46 (C5); L3, C6 and C5 are cut by the
scan range and get no box when the cut leaves less than 60 % of the body (see ``_body_points``).

Vertebral body, not the whole vertebra: the labels include the posterior elements
(pedicles, laminae, transverse and spinous processes). The spinal cord label gives, per axial
slice, the front of the spinal canal; the body is the part of the vertebra label in front of it
(anterior to the cord's anterior surface plus 3 mm of canal), keeping the largest connected
piece. Its voxel centres are projected with the render camera; the box is their 2D extent.

Everything is lazy: ``diffdrr``, ``torch`` and ``torchio`` are imported inside functions.
Randomness comes from the caller's ``np.random.Generator``.
"""
from __future__ import annotations

import functools
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from spinexr.labels import VERTEBRA_CLASS
from spinexr.types import Box

VIEWS: tuple[str, ...] = ("lateral", "oblique", "ap")

_CORD_ID = 79
# TotalSegmentator ids of this CT's levels, head to tail (C5 46 ... L3 29).
_LEVEL_IDS: dict[str, int] = {
    **{f"C{k}": 51 - k for k in range(1, 8)},
    **{f"T{k}": 44 - k for k in range(1, 13)},
    **{f"L{k}": 32 - k for k in range(1, 6)},
}
_CANAL_MM = 3.0            # CSF in front of the cord: the body starts this far in front of it
_MIN_VISIBLE = 0.6         # keep a box when at least this share of it is inside the image
_RENDER_PX = 192           # rays per side (about the CT in-plane resolution); resized to ``size``
_N_POINTS = 128            # samples per ray (trilinear renderer)
_BONE_GAIN = 3.0           # extra attenuation of bone over the HU-linear density (70 kVp-ish)
_ARM_IDS = (69, 70)        # humeri: raised out of the beam in spine laterals, so removed


@dataclass(frozen=True)
class DrrImage:
    """One rendered radiograph and its ground truth.

    Attributes:
        pixels: float32 (H, W) in [0, 1], bone bright (as MONOCHROME2 is shown).
        vertebrae: vertebral-body boxes ``[x1, y1, x2, y2]`` in pixels of ``pixels``, label
            ``"Vertebra"``, ``level`` like ``"T7"``, ordered head to tail.
        view: ``"lateral"``, ``"oblique"`` or ``"ap"``.
        spacing_mm: pixel size at the isocentre (the spine), mm.
    """

    pixels: np.ndarray
    vertebrae: tuple[Box, ...]
    view: str
    spacing_mm: float


@dataclass(frozen=True)
class _Scene:
    """The loaded CT as a DRR module plus each level's body voxel centres (world mm, RAS)."""

    drr: Any                                   # diffdrr.drr.DRR, detector reset per image
    bodies: tuple[tuple[str, np.ndarray], ...]  # (level, (N, 3) points), head to tail
    z_range: tuple[float, float]               # superior-inferior extent of the scan, mm


@dataclass(frozen=True)
class _Geometry:
    sdd: float            # source to detector, mm
    sid: float            # source to isocentre, mm
    fov: float            # field of view at the isocentre, mm
    center: np.ndarray    # isocentre (world mm)
    direction: np.ndarray  # unit vector source -> detector
    up: np.ndarray        # unit vector shown as "up" in the image (about superior)


def _import_diffdrr() -> Any:
    try:
        import diffdrr.drr  # noqa: F401
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError(
            "spinexr.phantom.drr needs diffdrr: pip install -e '.[drr]' "
            f"(import failed: {exc})") from exc
    return diffdrr


@functools.cache
def _scene() -> _Scene:
    """Load the example CT once per process (about 10 s) and build the renderer."""
    _import_diffdrr()
    import torch
    from diffdrr.data import load_example_ct
    from diffdrr.drr import DRR
    from torchio import ScalarImage, Subject

    ct = load_example_ct()  # centred on the world origin, RAS mm
    hu = ct.volume.data[0].to(torch.float32)
    affine = np.asarray(ct.volume.affine, dtype=np.float64)
    mask = ct.mask.data[0].numpy()
    density, small_affine = _density(hu, affine, np.isin(mask, _ARM_IDS))
    image = ScalarImage(tensor=density[None], affine=small_affine)
    subject = Subject(volume=image, density=image, mask=None,
                      reorient=torch.eye(4, dtype=torch.float32), orientation=None)
    drr = DRR(subject, sdd=1000.0, height=_RENDER_PX, delx=1.0, renderer="trilinear",
              reverse_x_axis=False)
    z = affine[2, 2] * np.array([0, mask.shape[2] - 1]) + affine[2, 3]
    return _Scene(drr=drr, bodies=_body_points(mask, affine),
                  z_range=(float(z.min()), float(z.max())))


def _density(hu: Any, affine: np.ndarray, drop: np.ndarray) -> tuple[Any, np.ndarray]:
    """HU -> linear attenuation (water 1, air 0), bone boosted, CT table, outside air and the
    ``drop`` voxels removed, averaged 2 x 2 in-plane (1.4 mm voxels) for speed. Returns (density, its affine)."""
    import torch
    from scipy import ndimage

    body = (hu > -500).numpy() & ~drop
    body = ndimage.binary_opening(body, structure=np.ones((5, 5, 1), bool))
    lab, n = ndimage.label(body)
    if n:
        body = lab == (np.argmax(np.bincount(lab.ravel())[1:]) + 1)
    for k in range(body.shape[2]):  # lungs are air inside the body: keep them
        body[:, :, k] = ndimage.binary_fill_holes(body[:, :, k])
    mu = torch.clamp(hu + 1000.0, min=0.0) / 1000.0
    mu = mu + (_BONE_GAIN - 1.0) * torch.clamp(hu - 100.0, min=0.0) / 1000.0
    mu = mu * torch.from_numpy(body)
    small = torch.nn.functional.avg_pool3d(mu[None, None], (2, 2, 1))[0, 0]
    out = affine.copy()
    out[:3, :3] = affine[:3, :3] @ np.diag([2.0, 2.0, 1.0])
    out[:3, 3] = affine[:3, 3] + affine[:3, :3] @ np.array([0.5, 0.5, 0.0])
    return small.contiguous(), out


def _body_points(mask: np.ndarray, affine: np.ndarray) -> tuple[tuple[str, np.ndarray], ...]:
    """Vertebral-body voxel centres per level (world mm), head to tail.

    A body is the part of the level's label in front of the spinal canal (see module doc).
    Levels whose body is cut by the scan range to less than 60 % of the height of the
    neighbouring body are left out.
    """
    from scipy import ndimage

    ant = _cord_front(mask)  # voxel row (anterior index) of the canal's front, per slice
    margin = _CANAL_MM / abs(affine[1, 1])
    found: list[tuple[str, np.ndarray, bool]] = []
    for level, lid in _LEVEL_IDS.items():
        ijk = np.argwhere(mask == lid)
        if len(ijk) < 200:
            continue
        keep = ijk[:, 1] > ant[ijk[:, 2]] + margin
        sel = np.zeros(mask.shape, bool)
        sel[tuple(ijk[keep].T)] = True
        lab, n = ndimage.label(sel)
        if n == 0:
            continue
        sel = lab == (np.argmax(np.bincount(lab.ravel())[1:]) + 1)
        pts = np.argwhere(sel)
        cut = pts[:, 2].min() == 0 or pts[:, 2].max() == mask.shape[2] - 1
        world = pts @ affine[:3, :3].T + affine[:3, 3]
        found.append((level, world.astype(np.float32), cut))
    return tuple((lv, p) for i, (lv, p, cut) in enumerate(found)
                 if not cut or _height(p) >= _MIN_VISIBLE * _neighbour_height(found, i))


def _cord_front(mask: np.ndarray) -> np.ndarray:
    """Per axial slice, the most anterior voxel row of the spinal cord (interpolated)."""
    k_all = np.arange(mask.shape[2])
    ks, fronts = [], []
    for k in k_all:
        rows = np.nonzero((mask[:, :, k] == _CORD_ID).any(axis=0))[0]
        if rows.size:
            ks.append(k)
            fronts.append(rows.max())
    if not ks:
        raise RuntimeError("diffdrr example CT: no spinal cord label (79) to find the bodies")
    return np.interp(k_all, ks, fronts)


def _height(points: np.ndarray) -> float:
    return float(np.ptp(points[:, 2]))


def _neighbour_height(found: list[tuple[str, np.ndarray, bool]], i: int) -> float:
    heights = [_height(found[j][1]) for j in (i - 1, i + 1)
               if 0 <= j < len(found) and not found[j][2]]
    return max(heights) if heights else float("inf")


def _view_direction(view: str, rng: np.random.Generator) -> np.ndarray:
    """Unit vector from source to detector before jitter (world RAS: +x right, +y anterior)."""
    if view == "ap":
        angle = rng.normal(0.0, 3.0)
    elif view == "oblique":
        angle = rng.choice([-1.0, 1.0]) * rng.uniform(30.0, 60.0)
    elif view == "lateral":
        angle = rng.choice([-1.0, 1.0]) * 90.0 + rng.normal(0.0, 3.0)
    else:
        raise ValueError(f"view must be one of {VIEWS}, got {view!r}")
    a = np.deg2rad(angle) + rng.choice([0.0, np.pi])  # AP or PA, left or right lateral
    return np.array([np.sin(a), -np.cos(a), 0.0])


def _rotation(rng: np.random.Generator, deg: float) -> np.ndarray:
    """A random small rotation: axis uniform, angle ~ N(0, deg)."""
    from scipy.spatial.transform import Rotation

    axis = rng.normal(size=3)
    axis /= np.linalg.norm(axis)
    return Rotation.from_rotvec(axis * np.deg2rad(rng.normal(0.0, deg))).as_matrix()


def _sample_geometry(view: str, rng: np.random.Generator, scene: _Scene) -> _Geometry:
    """Random pose: view angle, a few degrees of tilt, SDD 1000-1800 mm, a field of view from
    a coned 3-4 vertebrae (about 110 mm) to the whole scanned column, centred on the spine."""
    direction = _view_direction(view, rng)
    rot = _rotation(rng, 3.0)
    zlo, zhi = scene.z_range
    fov = float(np.exp(rng.uniform(np.log(110.0), np.log(0.95 * (zhi - zlo)))))
    centres = np.array([p.mean(axis=0) for _, p in scene.bodies])
    z = rng.uniform(zlo + fov / 2, zhi - fov / 2)
    order = np.argsort(centres[:, 2])
    center = np.array([np.interp(z, centres[order, 2], centres[order, i]) for i in range(3)])
    center[:2] += rng.normal(0.0, 0.08 * fov, size=2)  # the spine is not always centred
    sdd = float(rng.uniform(1000.0, 1800.0))
    sid = sdd - float(rng.uniform(150.0, 300.0))
    return _Geometry(sdd=sdd, sid=sid, fov=fov, center=center,
                     direction=rot @ direction, up=rot @ np.array([0.0, 0.0, 1.0]))


def _camera(geom: _Geometry) -> Any:
    """Camera-to-world rigid transform: source at the origin, detector along +z, image up +y."""
    import torch
    from diffdrr.pose import RigidTransform

    z = geom.direction / np.linalg.norm(geom.direction)
    y = geom.up - np.dot(geom.up, z) * z
    y /= np.linalg.norm(y)
    x = np.cross(y, z)
    m = np.eye(4)
    m[:3, 0], m[:3, 1], m[:3, 2] = x, y, z
    m[:3, 3] = geom.center - geom.sid * z
    return RigidTransform(torch.as_tensor(m, dtype=torch.float32)[None])


def _render(scene: _Scene, geom: _Geometry) -> tuple[np.ndarray, np.ndarray]:
    """Line integrals (render_px, render_px) and each body's box in render pixels (L, 4)."""
    import torch

    drr = scene.drr
    delx = geom.fov * geom.sdd / geom.sid / _RENDER_PX  # detector pixel, mm
    drr.set_intrinsics_(sdd=geom.sdd, delx=delx, dely=delx)
    pose = _camera(geom)
    with torch.no_grad():
        img = drr(pose, n_points=_N_POINTS)[0, 0].numpy()
        boxes = []
        for _, pts in scene.bodies:
            uv = drr.perspective_projection(pose, torch.from_numpy(pts)[None])[0].numpy()
            boxes.append([*uv.min(axis=0), *uv.max(axis=0)])
    return img.astype(np.float32), np.asarray(boxes, dtype=np.float64)


def _appearance(raw: np.ndarray, rng: np.random.Generator, size: int) -> np.ndarray:
    """Line integrals -> a radiograph look in [0, 1], bone bright: window, gamma, blur,
    noise, sometimes collimator shutters. Same (size, size) geometry as the boxes."""
    import cv2

    img = cv2.resize(raw, (size, size), interpolation=cv2.INTER_CUBIC)
    lo, hi = np.percentile(img, [rng.uniform(0.5, 30.0), rng.uniform(97.0, 99.9)])
    img = np.clip((img - lo) / max(hi - lo, 1e-6), 0.0, 1.0)
    img = img ** rng.uniform(0.6, 1.8)
    big = cv2.GaussianBlur(img, (0, 0), rng.uniform(8.0, 30.0) * size / 512)
    img = img + rng.uniform(0.0, 1.5) * (img - big)  # unsharp masking, as processed radiographs
    sigma = rng.uniform(0.3, 1.6) * size / 512
    img = cv2.GaussianBlur(img, (0, 0), sigma)
    img = img + rng.normal(0.0, rng.uniform(0.005, 0.04), img.shape)
    if rng.random() < 0.3:
        img = _shutters(img, rng)
    return np.clip(img, 0.0, 1.0).astype(np.float32)


def _shutters(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Tight collimation on the spine: dim the left and right margins."""
    h, w = img.shape
    left, right = (int(rng.uniform(0.0, 0.22) * w) for _ in range(2))
    out = img.copy()
    fill = rng.uniform(0.0, 0.12)
    out[:, :left] = fill + 0.15 * img[:, :left]
    out[:, w - right:] = fill + 0.15 * img[:, w - right:]
    return out


def _boxes(raw_boxes: np.ndarray, levels: list[str], scale: float, size: int,
           flip: bool) -> tuple[Box, ...]:
    """Scale to the output, mirror if flipped, clip, drop boxes less than 60 % visible."""
    out = []
    for (x1, y1, x2, y2), level in zip(raw_boxes * scale, levels):
        if flip:
            x1, x2 = size - x2, size - x1
        area = (x2 - x1) * (y2 - y1)
        cx1, cy1, cx2, cy2 = max(x1, 0.0), max(y1, 0.0), min(x2, size), min(y2, size)
        if cx2 <= cx1 or cy2 <= cy1 or (cx2 - cx1) * (cy2 - cy1) < _MIN_VISIBLE * area:
            continue
        out.append(Box(float(cx1), float(cy1), float(cx2), float(cy2), VERTEBRA_CLASS,
                       level=level))
    return tuple(out)


def render_drr(view: str, rng: np.random.Generator, size: int = 512) -> DrrImage:
    """Render one DRR of the example CT from a random pose of the given view.

    Args:
        view: ``"lateral"``, ``"oblique"`` (30-60 degrees either side) or ``"ap"``.
        rng: the only source of randomness.
        size: output side in pixels (rays are cast at 192 x 192, then resized).

    Returns:
        A ``DrrImage`` with float32 (size, size) pixels in [0, 1], bone bright, and its
        vertebral-body boxes head to tail (at least 60 % inside the image each).
    """
    if view not in VIEWS:
        raise ValueError(f"view must be one of {VIEWS}, got {view!r}")
    scene = _scene()
    geom = _sample_geometry(view, rng, scene)
    raw, raw_boxes = _render(scene, geom)
    flip = bool(rng.random() < 0.5)
    pixels = _appearance(raw, rng, size)
    if flip:
        pixels = np.ascontiguousarray(pixels[:, ::-1])
    levels = [lv for lv, _ in scene.bodies]
    boxes = _boxes(raw_boxes, levels, size / _RENDER_PX, size, flip)
    return DrrImage(pixels=pixels, vertebrae=boxes, view=view, spacing_mm=geom.fov / size)


def write_drr_yolo(out_dir: str | Path, n: int, seed: int,
                   views: tuple[str, ...] = VIEWS, size: int = 512) -> Path:
    """Write ``n`` DRRs as 8-bit PNG + YOLO labels (one class, index 0).

    Layout: ``out_dir/images/drr_00000.png``, ``out_dir/labels/drr_00000.txt`` (``0 cx cy w h``
    normalised), ``out_dir/levels.json`` (image name -> levels in label order). Views cycle
    through ``views``. Deterministic for (n, seed, views, size).
    """
    import cv2
    from tqdm import tqdm

    out = Path(out_dir)
    (out / "images").mkdir(parents=True, exist_ok=True)
    (out / "labels").mkdir(parents=True, exist_ok=True)
    levels: dict[str, list[str]] = {}
    rngs = np.random.default_rng(seed).spawn(n)
    for i in tqdm(range(n), desc="drr", unit="img", file=sys.stderr):
        img = render_drr(views[i % len(views)], rngs[i], size)
        name = f"drr_{i:05d}"
        cv2.imwrite(str(out / "images" / f"{name}.png"),
                    np.round(img.pixels * 255).astype(np.uint8))
        (out / "labels" / f"{name}.txt").write_text(_yolo_lines(img.vertebrae, size))
        levels[f"{name}.png"] = [b.level or "" for b in img.vertebrae]
    (out / "levels.json").write_text(json.dumps(levels, indent=1))
    return out


def _yolo_lines(boxes: tuple[Box, ...], size: int) -> str:
    return "".join(
        f"0 {(b.x1 + b.x2) / 2 / size:.6f} {(b.y1 + b.y2) / 2 / size:.6f} "
        f"{b.width / size:.6f} {b.height / size:.6f}\n" for b in boxes)
