"""``generate_mri``: one axial T2-weighted lumbar MRI slice at a disc level, with stenosis
regions boxed and graded 0-3 (``STENOSIS_GRADES``) as in Lu et al., Radiology 2021 (seed 003).

The slice is painted back to front with antialiased masks in patient millimetres (x to the
patient's left = image right, radiological convention; y posterior = down): body and fat,
muscles, vessels and bowel, the disc, the canal (epidural fat, dural sac with CSF and the
cauda equina), ligamentum flavum, laminae, facet joints, lateral recesses with traversing
roots and neural foramina with exiting roots in fat. A region's grade narrows that region's
bright space (CSF or fat) and crowds its nerve roots; boxes mark where the region is in a
normal spine, so their size does not give the grade away.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Mapping

import numpy as np
from scipy import ndimage as ndi

from spinexr.labels import STENOSIS_REGIONS
from spinexr.phantom.config import MriConfig
from spinexr.phantom.patient import FakePatient, StudyTime, StudyUids, make_uids, sample_patient
from spinexr.types import Box

F32 = np.float32
LEVELS = ("L1-L2", "L2-L3", "L3-L4", "L4-L5", "L5-S1")
LEVEL_P = (0.05, 0.1, 0.2, 0.4, 0.25)
GRADE_P = (0.45, 0.35, 0.2)
#: Remaining share of the bright space per grade: central canal (CSF), recess and foramen (fat).
CANAL_KEEP = (1.0, 0.62, 0.36, 0.14)
SPACE_KEEP = (1.0, 0.65, 0.38, 0.12)
#: Tissue signal on T2 (CSF = 1).
T2 = {"fat": 0.72, "muscle": 0.2, "marrow": 0.42, "annulus": 0.12, "nucleus": 0.62,
      "csf": 1.0, "root": 0.22, "flavum": 0.1, "cortex": 0.05, "fluid": 0.85, "psoas": 0.2,
      "void": 0.04, "ivc": 0.3}


@dataclass(frozen=True, eq=False)
class MriPhantom:
    """A synthetic axial T2 lumbar slice and its ground truth.

    Attributes:
        stored: uint16 (H, W), 12-bit values 0..4095, MONOCHROME2.
        spacing_mm: (row, column) pixel spacing in mm.
        level: disc level of the slice, e.g. ``"L4-L5"``.
        regions: one box per ``STENOSIS_REGIONS`` name (label = region name, level set).
        grades: region name -> grade 0-3 (index into ``STENOSIS_GRADES``).
        abnormal: any grade above 0.
        window: (center, width) for display.
        patient, study_time, uids, seed: fake metadata derived from the seed.
        slice_z: table position of the slice in mm (for Image Position Patient).
    """

    stored: np.ndarray
    spacing_mm: tuple[float, float]
    level: str
    regions: tuple[Box, ...]
    grades: Mapping[str, int]
    abnormal: bool
    window: tuple[float, float]
    patient: FakePatient
    study_time: StudyTime
    uids: StudyUids
    seed: int
    slice_z: float = 0.0
    photometric: str = "MONOCHROME2"
    meta: Mapping[str, float] = field(default_factory=dict)


class _Canvas:
    """Painter over a pixel grid given in patient mm (rotated by the patient's tilt)."""

    def __init__(self, n: int, spacing: float, center: tuple[float, float], tilt: float):
        c = (np.arange(n, dtype=F32) + F32(0.5) - F32(n / 2)) * F32(spacing)
        xs, ys = c[None, :], c[:, None]
        ct, st = F32(math.cos(tilt)), F32(math.sin(tilt))
        self.x = xs * ct + ys * st + F32(center[0])
        self.y = -xs * st + ys * ct + F32(center[1])
        self.img = np.zeros((n, n), F32)
        self.soft = F32(0.6 * spacing)
        self.n, self.spacing, self.center, self.tilt = n, spacing, center, tilt

    def ellipse(self, cx, cy, a, b, angle: float = 0.0) -> np.ndarray:
        ca, sa = F32(math.cos(angle)), F32(math.sin(angle))
        dx, dy = self.x - F32(cx), self.y - F32(cy)
        u, v = (dx * ca + dy * sa) / F32(a), (-dx * sa + dy * ca) / F32(b)
        d = (np.sqrt(u * u + v * v) - 1) * F32(min(a, b))
        return np.clip(F32(0.5) - d / (2 * self.soft), 0, 1)

    def capsule(self, p0, p1, r) -> np.ndarray:
        p0, p1 = np.asarray(p0, F32), np.asarray(p1, F32)
        d = p1 - p0
        t = np.clip(((self.x - p0[0]) * d[0] + (self.y - p0[1]) * d[1]) / F32(d @ d), 0, 1)
        dist = np.hypot(self.x - p0[0] - t * d[0], self.y - p0[1] - t * d[1]) - F32(r)
        return np.clip(F32(0.5) - dist / (2 * self.soft), 0, 1)

    def paint(self, mask: np.ndarray, value: float | np.ndarray) -> None:
        self.img += (F32(value) - self.img) * mask

    def to_px(self, x: float, y: float) -> tuple[float, float]:
        """Pixel (col, row) position of patient point (x, y) mm."""
        dx, dy = x - self.center[0], y - self.center[1]
        ct, st = math.cos(self.tilt), math.sin(self.tilt)
        u, v = dx * ct - dy * st, dx * st + dy * ct
        return u / self.spacing + self.n / 2, v / self.spacing + self.n / 2


def _grades(rng: np.random.Generator, cfg: MriConfig) -> dict[str, int]:
    u = rng.random(8)
    grades = {r: 0 for r in STENOSIS_REGIONS}
    if u[0] < cfg.abnormal_rate:
        count = 1 + int(u[1] * 3)
        order = rng.permutation(len(STENOSIS_REGIONS))[:count]
        for i in order:
            grades[STENOSIS_REGIONS[i]] = int(rng.choice([1, 2, 3], p=GRADE_P))
    grades.update(cfg.grades or {})
    return grades


def _body(cv: _Canvas, rng: np.random.Generator, s: float, low: float) -> None:
    back = rng.uniform(72, 95)
    cv.paint(cv.ellipse(0, (back - 120) * s, rng.uniform(150, 180) * s, 120 * s), T2["fat"])
    cv.paint(cv.ellipse(0, -75 * s, rng.uniform(115, 140) * s, rng.uniform(60, 72) * s), 0.3)
    for _ in range(int(rng.integers(8, 16))):                 # bowel loops
        cv.paint(cv.ellipse(rng.uniform(-90, 90) * s, rng.uniform(-110, -45) * s,
                            rng.uniform(6, 16) * s, rng.uniform(5, 12) * s, rng.uniform(0, 3)),
                 rng.uniform(0.1, 0.75))
    cv.paint(cv.ellipse(0, 22 * s, rng.uniform(75, 88) * s, (back - 30) * s), T2["muscle"])
    for side in (-1, 1):
        cv.paint(cv.ellipse(side * 62 * s, 10 * s, 14 * s, 10 * s, side * 0.5), T2["muscle"])
        cv.paint(cv.ellipse(side * 40 * s, 38 * s, 23 * s, 25 * s, side * 0.25),
                 T2["muscle"] + rng.uniform(-0.03, 0.05))
        cv.paint(cv.capsule((side * 30 * s, 18 * s), (side * 34 * s, 60 * s), 0.6 * s),
                 T2["fat"] * 0.8)                           # fat plane between muscles
        cv.paint(cv.ellipse(side * 15 * s, 38 * s, 12 * s, 19 * s), T2["muscle"] + 0.05)
        cv.paint(cv.ellipse(side * (36 + 6 * low) * s, -24 * s, (11 + 6 * low) * s,
                            (12 + 3 * low) * s, side * 0.4), T2["psoas"])
    cv.paint(cv.ellipse(8 * s, -52 * s, 9 * s, 9 * s), T2["void"])          # aorta
    cv.paint(cv.ellipse(-18 * s, -50 * s, 11 * s, 7 * s), T2["ivc"])        # IVC


def _disc(cv: _Canvas, g: Mapping[str, int], s: float, nucleus: float) -> None:
    cc = g["central canal"]
    cv.paint(cv.ellipse(0, -23 * s, 25 * s, 16 * s), T2["annulus"])
    for side, rec, fora in ((-1, g["right lateral recess"], g["right neural foramen"]),
                            (1, g["left lateral recess"], g["left neural foramen"])):
        cv.paint(cv.ellipse(side * (10 + 0.8 * rec) * s, (-9 + 1.4 * rec) * s, 8 * s,
                            (4 + 1.2 * rec) * s), T2["annulus"])      # paracentral bulge
        cv.paint(cv.ellipse(side * (21 + 1.2 * fora) * s, (-12 + 0.6 * fora) * s,
                            (6 + 1.5 * fora) * s, (5 + 0.8 * fora) * s), T2["annulus"])
    cv.paint(cv.ellipse(0, (-9 + 1.6 * cc) * s, 9 * s, (3 + 1.6 * cc) * s), T2["annulus"])
    cv.paint(cv.ellipse(0, -24 * s, 15 * s, 9 * s), nucleus)
    cv.paint(cv.ellipse(0, -4.5 * s, 8.5 * s, 4.2 * s) * (cc == 0), T2["fat"])


def _canal(cv: _Canvas, g: Mapping[str, int], s: float, rng: np.random.Generator) -> None:
    cc = g["central canal"]
    keep = CANAL_KEEP[cc]
    a, b = 10.5 * s * keep ** 0.35, 7.5 * s * keep ** 0.65
    cy = (2.0 + 3.0 * (1 - keep)) * s
    cv.paint(cv.ellipse(0, 8 * s, 7 * s, 5 * s), T2["fat"])          # posterior epidural fat
    cv.paint(cv.ellipse(0, cy, a + 0.5 * s, b + 0.5 * s), T2["root"])  # thecal sac wall
    cv.paint(cv.ellipse(0, cy, a, b), T2["csf"])
    n_roots = 14
    for i in range(n_roots):                                  # cauda equina, posterior half
        t = (i + 0.5) / n_roots
        ang = math.pi * (0.1 + 0.8 * t)
        rr = 0.55 + 0.25 * rng.random()
        x, y = math.cos(ang) * a * rr, cy + math.sin(ang) * b * rr * 0.8
        cv.paint(cv.ellipse(x, y, 0.9 * s, 0.9 * s), T2["root"])
    for side in (-1, 1):                                      # ligamentum flavum
        thick = (2.2 + 1.6 * cc) * s
        cv.paint(cv.capsule((side * 13 * s, 4 * s), (side * 2 * s, (12 + 0.5 * cc) * s),
                            thick / 2), T2["flavum"])


def _posterior(cv: _Canvas, g: Mapping[str, int], s: float) -> None:
    cv.paint(cv.capsule((0, 17 * s), (0, 46 * s), 3.5 * s), T2["cortex"])
    cv.paint(cv.capsule((0, 18 * s), (0, 44 * s), 2.0 * s), T2["marrow"])
    for side, name in ((-1, "right lateral recess"), (1, "left lateral recess")):
        rec = g[name]
        cv.paint(cv.capsule((side * 15 * s, 10 * s), (side * 3 * s, 18 * s), 3.2 * s),
                 T2["cortex"])                                 # lamina
        cv.paint(cv.capsule((side * 15 * s, 10 * s), (side * 3 * s, 18 * s), 1.8 * s),
                 T2["marrow"])
        sap_x, sap_y = side * (19 - 1.1 * rec) * s, (2 - 0.4 * rec) * s
        size = 1 + 0.12 * rec
        ang = side * 0.7
        cv.paint(cv.ellipse(side * 23 * s, 12 * s, 6.5 * s, 8 * s, ang), T2["cortex"])  # IAP
        cv.paint(cv.ellipse(side * 23 * s, 12 * s, 5 * s, 6.5 * s, ang), T2["marrow"])
        cv.paint(cv.ellipse(sap_x, sap_y, 6.5 * s * size, 8 * s * size, ang), T2["cortex"])
        cv.paint(cv.ellipse(sap_x, sap_y, 5 * s * size, 6.5 * s * size, ang), T2["marrow"])
        jx, jy = side * 21.5 * s, 7.5 * s                     # facet joint fluid
        cv.paint(cv.capsule((jx - side * 4 * s, jy - 4 * s), (jx + side * 3 * s, jy + 4 * s),
                            0.5 * s), T2["fluid"])


def _recess_foramen(cv: _Canvas, g: Mapping[str, int], s: float) -> None:
    for side, rec_name, for_name in ((-1, "right lateral recess", "right neural foramen"),
                                     (1, "left lateral recess", "left neural foramen")):
        keep = SPACE_KEEP[g[rec_name]]
        x, y = side * 12.5 * s, -3.0 * s
        cv.paint(cv.ellipse(x, y, 3.8 * s * keep ** 0.5, 3.3 * s * keep ** 0.5), T2["fat"])
        cv.paint(cv.ellipse(x, y, 1.7 * s, 1.7 * s * max(keep, 0.35) ** 0.5), T2["root"])
        keep = SPACE_KEEP[g[for_name]]
        x, y = side * 27.0 * s, -5.0 * s
        cv.paint(cv.ellipse(x, y, 4.8 * s * keep ** 0.5, 6.0 * s * keep ** 0.5, side * 0.3),
                 T2["fat"])
        cv.paint(cv.ellipse(x, y - 1 * s, 2.3 * s, 2.3 * s * max(keep, 0.3) ** 0.5),
                 T2["root"])


REGION_SHAPES = {  # (x, y, half width, half height) in mm of the normal region, x for left
    "central canal": (0.0, 2.0, 12.0, 9.5),
    "left lateral recess": (12.5, -3.0, 5.0, 4.8),
    "right lateral recess": (-12.5, -3.0, 5.0, 4.8),
    "left neural foramen": (27.0, -5.0, 6.5, 7.5),
    "right neural foramen": (-27.0, -5.0, 6.5, 7.5),
}


def _boxes(cv: _Canvas, s: float, level: str) -> tuple[Box, ...]:
    out = []
    n = cv.n
    for name in STENOSIS_REGIONS:
        x, y, hw, hh = REGION_SHAPES[name]
        pts = [cv.to_px((x + dx * hw) * s, (y + dy * hh) * s) for dx in (-1, 1) for dy in (-1, 1)]
        xs, ys = [p[0] for p in pts], [p[1] for p in pts]
        out.append(Box(round(max(min(xs), 0.0), 2), round(max(min(ys), 0.0), 2),
                       round(min(max(xs), float(n)), 2), round(min(max(ys), float(n)), 2),
                       name, level=level))
    return tuple(out)


def _acquire(img: np.ndarray, rng: np.random.Generator, noise: float, spacing: float
             ) -> tuple[np.ndarray, tuple[float, float]]:
    n = img.shape[0]
    yy = np.linspace(-1, 1, n, dtype=F32)[:, None]
    xx = np.linspace(-1, 1, n, dtype=F32)[None, :]
    u = rng.random(4)
    bias = F32(1) + F32(0.25 + 0.2 * u[0]) * yy - F32(0.15) * xx * xx
    sig = ndi.gaussian_filter(img * bias, 0.35 / spacing + 0.3)
    sigma = F32((0.015 + 0.03 * u[1]) * noise)
    re = sig + sigma * rng.standard_normal((n, n), dtype=np.float32)
    im = sigma * rng.standard_normal((n, n), dtype=np.float32)
    mag = np.sqrt(re * re + im * im)
    gain = 2600 + 1200 * u[2]
    stored = np.clip(np.rint(mag * F32(gain)), 0, 4095).astype(np.uint16)
    lo, hi = np.percentile(stored[stored > 0.1 * gain], [1, 99.5]) if (stored > 0.1 * gain
                                                                       ).sum() > 100 else (0, gain)
    return stored, (float(round((lo + hi) / 2)), float(max(round(hi - lo), 64)))


def generate_mri(seed: int, config: MriConfig = MriConfig()) -> MriPhantom:
    """Make one synthetic axial T2 lumbar slice from ``seed`` (any int >= 0)."""
    seed = int(seed)
    r_meta, r_anat, r_grade, r_acq = np.random.default_rng(seed).spawn(4)
    u = r_meta.random(6)
    n = config.size or int(320 + 192 * u[0]) // 16 * 16
    level = config.level or LEVELS[int(np.searchsorted(np.cumsum(LEVEL_P), u[1] * 0.9999))]
    low = LEVELS.index(level) / 4
    fov = 150 + 60 * u[2]
    spacing = fov / n
    grades = _grades(r_grade, config)
    s = float(r_anat.uniform(0.9, 1.1))
    center = (float(r_anat.normal(0, 4)), float(r_anat.normal(-8, 5)))
    cv = _Canvas(n, spacing, center, math.radians(float(r_anat.normal(0, 3))))
    degenerate = sum(grades.values()) / 15
    _body(cv, r_anat, s, low)
    _disc(cv, grades, s, T2["nucleus"] * (1 - 0.6 * degenerate) * float(r_anat.uniform(0.8, 1.1)))
    _canal(cv, grades, s, r_anat)
    _posterior(cv, grades, s)
    _recess_foramen(cv, grades, s)
    stored, window = _acquire(cv.img, r_acq, config.noise, spacing)
    stored.setflags(write=False)
    patient, when = sample_patient(r_meta, seed)
    return MriPhantom(stored, (spacing, spacing), level, _boxes(cv, s, level), dict(grades),
                      any(grades.values()), window, patient, when, make_uids(seed, "mri"), seed,
                      slice_z=float(-40.0 * LEVELS.index(level) + 100.0))
