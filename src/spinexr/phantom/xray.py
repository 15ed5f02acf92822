"""``generate_xray``: one synthetic spine radiograph with exact labels.

Randomness: one ``np.random.default_rng(seed)`` spawns independent streams for metadata,
anatomy, lesions, acquisition, texture and noise. Acquisition never looks at the labels, so
normal and abnormal images share the same variety of exposure, size, markers and processing;
changing ``abnormal_rate`` changes the lesions and nothing else.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping

import numpy as np

from spinexr.errors import ConfigError
from spinexr.labels import VERTEBRA_CLASS
from spinexr.phantom import acquisition as acq_mod
from spinexr.phantom.anatomy import (
    FOV_MM, LESION_LEVELS, Frame, Vertebra, centreline, place, sample_shape,
)
from spinexr.phantom.config import XrayConfig
from spinexr.phantom.lesions import (
    Plan, apply_geometry, cervical_class, degeneration_grade, plan_lesions,
)
from spinexr.phantom.overlays import draw_lesions
from spinexr.phantom.patient import FakePatient, StudyTime, StudyUids, make_uids, sample_patient
from spinexr.phantom.raster import BBox, Layers
from spinexr.phantom.render import draw_spine
from spinexr.phantom.skeleton import draw_neighbours
from spinexr.phantom.soft import draw_soft
from spinexr.types import Box

#: Detector pixel pitches (mm) of common DR/CR systems.
PIXEL_SPACINGS = (0.1, 0.125, 0.139, 0.143, 0.148, 0.15, 0.16, 0.168, 0.175, 0.2)
SIDE_RANGE = (1200, 3000)
#: Width / height of the film per (region, view).
ASPECT = {("lumbar", "lateral"): (0.72, 0.85), ("lumbar", "ap"): (0.75, 0.85),
          ("cervical", "lateral"): (0.78, 1.0), ("cervical", "ap"): (0.75, 0.85)}


@dataclass(frozen=True, eq=False)
class XrayPhantom:
    """A synthetic radiograph and its ground truth.

    Attributes:
        stored: uint16 (H, W), 12-bit values 0..4095 in the ``photometric`` convention
            (MONOCHROME1: low values display bright).
        photometric: ``"MONOCHROME1"`` or ``"MONOCHROME2"``.
        spacing_mm: (row, column) pixel spacing in mm.
        view: ``"lateral"`` or ``"ap"``; region: ``"cervical"`` or ``"lumbar"``.
        lesions: lesion boxes (label in ``LESION_CLASSES``, level ``"L4"`` or ``"L4-L5"``).
        vertebrae: one box per visible vertebral body, label ``VERTEBRA_CLASS``, level set,
            top to bottom.
        abnormal: True iff there is at least one lesion.
        degeneration: 0-4, index into ``DEGENERATION_GRADES``.
        cervical: index into ``CERVICAL_CLASSES`` (0 for lumbar images).
        window: (center, width) for display, in stored units.
        patient, study_time, uids: fake patient data, study date/time and DICOM UIDs.
        seed: the seed it was made from.
        modality: ``"DX"`` or ``"CR"``.
        severities: severity (1-3) of each lesion, aligned with ``lesions``.
    """

    stored: np.ndarray
    photometric: str
    spacing_mm: tuple[float, float]
    view: str
    region: str
    lesions: tuple[Box, ...]
    vertebrae: tuple[Box, ...]
    abnormal: bool
    degeneration: int
    cervical: int
    window: tuple[float, float]
    patient: FakePatient
    study_time: StudyTime
    uids: StudyUids
    seed: int
    modality: str = "DX"
    severities: tuple[int, ...] = ()
    grades: Mapping[str, int] = field(default_factory=dict)

    @property
    def height(self) -> int:
        return int(self.stored.shape[0])

    @property
    def width(self) -> int:
        return int(self.stored.shape[1])


def render_display(ph) -> np.ndarray:
    """Window the stored values for display: float32 (H, W) in [0, 1], bone bright.

    Linear VOI as DICOM PS3.3 C.11.2.1.2 with the phantom's (center, width), then inversion
    for MONOCHROME1. Works for :class:`XrayPhantom` and ``MriPhantom``.
    """
    c, w = ph.window
    x = ph.stored.astype(np.float32)
    y = np.clip((x - np.float32(c - 0.5)) / np.float32(max(w - 1.0, 1.0)) + np.float32(0.5),
                0.0, 1.0)
    return (1.0 - y).astype(np.float32) if ph.photometric == "MONOCHROME1" else y


def _choose(rng: np.random.Generator, cfg: XrayConfig) -> tuple[str, str]:
    u = rng.random(2)
    view = cfg.view or ("lateral" if u[0] < 0.5 else "ap")
    region = cfg.region or ("cervical" if cfg.cervical is not None or u[1] < 0.35 else "lumbar")
    return view, region


def _geometry(rng: np.random.Generator, region: str, view: str,
              size: tuple[int, int] | None) -> tuple[tuple[int, int], float]:
    """Image size and (isotropic) pixel spacing; the field of view keeps anatomy in mm."""
    u = rng.random(3)
    lo, hi = FOV_MM[region]
    fov = lo + (hi - lo) * u[0]
    a0, a1 = ASPECT[(region, view)]
    if size is not None:
        return (int(size[0]), int(size[1])), fov / size[0]
    ok = [s for s in PIXEL_SPACINGS if SIDE_RANGE[0] <= fov / s <= SIDE_RANGE[1]]
    spacing = ok[int(u[1] * len(ok)) % len(ok)] if ok else fov / SIDE_RANGE[1]
    h = int(np.clip(round(fov / spacing), *SIDE_RANGE))
    w = int(np.clip(round(h * (a0 + (a1 - a0) * u[2])), *SIDE_RANGE))
    return (h, w), spacing


def _frame(rng: np.random.Generator, shape_hw: tuple[int, int], k: float, acq, centres,
           levels: tuple[str, ...], region: str) -> Frame:
    """Place the spine: lesion levels always inside, position varying within the slack."""
    h, w = shape_hw
    u = rng.random(2)
    frame = Frame(k, (0.0, 0.0), acq.tilt, acq.facing)
    xs, ys = frame.to_px(centres[:, 0], centres[:, 1])
    keep = [i for i, lv in enumerate(levels) if lv in LESION_LEVELS[region]]
    reach = 24.0 * k if region == "lumbar" else 14.0 * k
    y0, y1 = ys[keep].min() - reach, ys[keep].max() + reach
    # Centring as a radiographer does: L3 (lumbar) or C4 (cervical) near the film centre,
    # then nudged so that every level that may carry a lesion stays inside.
    anchor = ys[levels.index("L3" if region == "lumbar" else "C4")]
    ty = h * (0.42 + 0.12 * u[0]) - anchor
    ty = min(max(ty, 0.02 * h - y0), 0.98 * h - y1)
    tx = w * (0.44 + 0.12 * u[1]) - float(np.mean(xs))
    return Frame(k, (tx, ty), acq.tilt, acq.facing)


def _clip_box(box: BBox, w: int, h: int) -> tuple[BBox, float]:
    """The box clipped to the image and the fraction of its area that stayed."""
    x0, y0, x1, y1 = box
    cx0, cy0, cx1, cy1 = max(x0, 0.0), max(y0, 0.0), min(x1, float(w)), min(y1, float(h))
    area = max(x1 - x0, 1e-9) * max(y1 - y0, 1e-9)
    kept = max(cx1 - cx0, 0.0) * max(cy1 - cy0, 0.0) / area
    return (cx0, cy0, cx1, cy1), kept


def _boxes(vertebrae: tuple[Vertebra, ...], drawn, w: int, h: int):
    vboxes = []
    for vb in vertebrae:
        (x0, y0, x1, y1), kept = _clip_box(vb.bbox(), w, h)
        if kept >= 0.5 and x1 - x0 >= 1 and y1 - y0 >= 1:
            vboxes.append(Box(round(x0, 2), round(y0, 2), round(x1, 2), round(y1, 2),
                              VERTEBRA_CLASS, level=vb.level))
    lboxes, kept_lesions = [], []
    for les, box in drawn:
        (x0, y0, x1, y1), kept = _clip_box(box, w, h)
        if kept >= 0.5 and x1 - x0 >= 1 and y1 - y0 >= 1:
            lboxes.append(Box(round(x0, 2), round(y0, 2), round(x1, 2), round(y1, 2), les.kind,
                              level=les.level))
            kept_lesions.append(les)
    return tuple(vboxes), tuple(lboxes), tuple(kept_lesions)


def _draw(shape_hw: tuple[int, int], k: float, frame: Frame, shape, centres, plan: Plan,
          sclerosis, region: str, view: str, rng: np.random.Generator):
    """Rasterize anatomy and lesions into fresh layers; returns them, the vertebrae and the
    drawn lesions with their pixel boxes."""
    vertebrae = place(shape, frame, centres)
    layers = Layers.empty(shape_hw, k)
    draw_soft(layers, frame, shape.levels, centres, shape.depths, region, view, rng)
    draw_spine(layers, vertebrae, region, view, rng, dict(sclerosis))
    draw_neighbours(layers, vertebrae, region, view, rng)
    drawn = draw_lesions(layers, vertebrae, plan.lesions, region, view)
    return layers, vertebrae, drawn


def _acquire(layers: Layers, acq, k: float, noise: float, r_tex: np.random.Generator,
             r_noise: np.random.Generator) -> tuple[np.ndarray, tuple[float, float]]:
    """Expose, process and quantize; stored values and window in ``acq``'s photometric."""
    a = acq_mod.attenuation(layers, acq_mod.trabecular_texture(r_tex, layers, k))
    log_signal, mask = acq_mod.expose(a, acq, k, noise, r_noise)
    stored, window = acq_mod.process(log_signal, mask, acq, k, layers.metal)
    if acq.monochrome1:
        stored = np.uint16(acq_mod.MAX_STORED) - stored
        # 4096 - c (not 4095 - c): DICOM's linear VOI is offset by half a step, so this
        # window displays the inverted values exactly as the MONOCHROME2 ones.
        window = (acq_mod.MAX_STORED + 1 - window[0], window[1])
    stored.setflags(write=False)
    return stored, window


def generate_xray(seed: int, config: XrayConfig = XrayConfig()) -> XrayPhantom:
    """Make one synthetic spine radiograph from ``seed`` (any int >= 0).

    Same seed and config give identical output on every run and machine.
    """
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ConfigError(f"seed is {seed!r}; give an int >= 0", "seed")
    seed = int(seed)
    r_meta, r_geom, r_les, r_acq, r_tex, r_noise = np.random.default_rng(seed).spawn(6)
    view, region = _choose(r_meta, config)
    (h, w), spacing = _geometry(r_meta, region, view, config.size)
    k = 1.0 / spacing
    acq = acq_mod.sample_acquisition(r_acq, config.monochrome1_rate)
    plan = plan_lesions(r_les, config, region, view)
    shape, sclerosis = apply_geometry(sample_shape(r_geom, region, view), plan.lesions, view)
    centres = centreline(shape)
    frame = _frame(r_acq, (h, w), k, acq, centres, shape.levels, region)
    layers, vertebrae, drawn = _draw((h, w), k, frame, shape, centres, plan, sclerosis, region,
                                     view, r_geom)
    if config.markers:
        acq_mod.draw_marker(layers, acq, k)
    stored, window = _acquire(layers, acq, k, config.noise, r_tex, r_noise)
    vboxes, lboxes, kept = _boxes(vertebrae, drawn, w, h)
    degeneration = degeneration_grade(kept)
    cervical = cervical_class(kept) if region == "cervical" else 0
    patient, when = sample_patient(r_meta, seed)
    return XrayPhantom(
        stored=stored, photometric="MONOCHROME1" if acq.monochrome1 else "MONOCHROME2",
        spacing_mm=(spacing, spacing), view=view, region=region, lesions=lboxes,
        vertebrae=vboxes, abnormal=bool(lboxes), degeneration=degeneration, cervical=cervical,
        window=window, patient=patient, study_time=when, uids=make_uids(seed, "xray"),
        seed=seed, modality="DX" if r_meta.random() < 0.7 else "CR",
        severities=tuple(les.severity for les in kept),
        grades={"triage": int(bool(lboxes)), "degeneration": degeneration, "cervical": cervical})
