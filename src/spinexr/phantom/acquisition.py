"""From projected material to stored 12-bit pixels: the X-ray acquisition and processing.

Order follows the physics: attenuation -> transmitted intensity -> focal spot / detector blur
-> scatter veil -> heel effect and collimation -> quantum noise (Gaussian approximation of
Poisson counts) -> log -> the modality's processing (dynamic range compression, unsharp mask)
-> 12-bit quantization with an exposure-dependent offset and gain -> MONOCHROME1 inversion.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw, ImageFont
from scipy import ndimage as ndi

from spinexr.phantom.raster import F32, Layers, upsample

#: Effective linear attenuation (1/mm) of water and of cortical bone at spine radiography kVp.
MU_WATER = 0.02
MU_BONE = 0.05
MAX_STORED = 4095
#: Share of the stored span given to the patient; the rest is headroom where metal saturates.
HEADROOM = 0.86


@dataclass(frozen=True)
class Acquisition:
    """Random acquisition settings of one image (all drawn up front, whatever the labels)."""

    tilt: float                 # patient rotation in the image plane, radians
    facing: int                 # +1 / -1 mirror of the patient's x axis
    photons: float              # mean detected quanta per pixel without the patient
    blur_mm: float              # focal spot + detector unsharpness (Gaussian sigma)
    scatter: float              # scatter-to-primary ratio
    heel: float                 # relative intensity change from top to bottom
    collimation: tuple[float, float, float, float]   # margins (top, bottom, left, right), 0-1
    collimation_tilt: float     # radians
    shutter: bool               # electronic shutter blacks out the collimated border
    compress: float             # dynamic range compression strength
    sharpen: float              # unsharp mask amount
    span: float                 # stored range used by the anatomy (of 4095)
    offset: float               # stored value of the darkest anatomy
    monochrome1: bool
    marker: str                 # "L" or "R"
    marker_corner: int          # 0..3: top-left, top-right, bottom-left, bottom-right
    ruler: bool
    window_widen: float


def sample_acquisition(rng: np.random.Generator, monochrome1_rate: float) -> Acquisition:
    """Draw acquisition settings; always the same number of draws (stable streams)."""
    u = rng.random(20)
    tilt = float(np.clip(rng.normal(0.0, 2.5), -6.0, 6.0))
    margins = rng.uniform(0.0, 0.09, 4) * (u[7] < 0.8)
    span = 2600.0 + 1400.0 * u[1]
    return Acquisition(
        tilt=math.radians(tilt),
        facing=1 if u[2] < 0.5 else -1,
        photons=float(1400.0 * np.exp(1.2 * (u[3] - 0.5))),
        blur_mm=0.08 + 0.14 * u[4],
        scatter=0.15 + 0.5 * u[5],
        heel=(u[6] - 0.5) * 0.4,
        collimation=tuple(float(m) for m in margins),
        collimation_tilt=math.radians((u[8] - 0.5) * 4),
        shutter=bool(u[9] < 0.5),
        compress=0.6 + 0.3 * u[10],
        sharpen=0.2 + 0.9 * u[11],
        span=span,
        offset=(MAX_STORED - span) * u[12],
        monochrome1=bool(u[13] < monochrome1_rate),
        marker="L" if u[14] < 0.5 else "R",
        marker_corner=int(u[15] * 4) % 4,
        ruler=bool(u[16] < 0.2),
        window_widen=1.0 + 0.3 * u[17],
    )


def trabecular_texture(rng: np.random.Generator, layers: Layers, px_per_mm: float) -> np.ndarray:
    """Multiplicative texture on the ``bone_lo`` grid: fine vertical trabeculae plus patches of
    denser and sparser bone (mean 1, never below 0.3)."""
    h, w = layers.bone_lo.shape
    k = px_per_mm / layers.lo_f
    z = rng.standard_normal((h, w), dtype=np.float32)
    fine = ndi.gaussian_filter(z, (0.9 * k, 0.4 * k))
    fine /= F32(max(float(fine.std()), 1e-6))
    coarse = ndi.gaussian_filter(rng.standard_normal((h, w), dtype=np.float32), 3.0 * k)
    coarse /= F32(max(float(coarse.std()), 1e-6))
    return np.maximum(F32(1) + F32(0.16) * fine + F32(0.08) * coarse, F32(0.3))


def attenuation(layers: Layers, tex_lo: np.ndarray) -> np.ndarray:
    """Total line integral of attenuation per pixel (float32, >= 0)."""
    shape = layers.shape
    tex = upsample(tex_lo, layers.lo_f, shape)
    bone = layers.trab * tex
    bone += layers.cort
    bone += upsample(layers.bone_lo * tex_lo, layers.lo_f, shape)
    a = upsample(layers.soft, layers.soft_f, shape) * F32(MU_WATER)
    a += bone * F32(MU_BONE)
    a += layers.metal
    return np.maximum(a, 0, out=a)


def _coarse(img: np.ndarray, f: int) -> np.ndarray:
    h, w = img.shape
    pil = Image.fromarray(np.ascontiguousarray(img, dtype=F32), mode="F")
    return np.asarray(pil.resize((max(1, -(-w // f)), max(1, -(-h // f))), Image.BOX), F32)


def _lowpass(img: np.ndarray, sigma_px: float) -> np.ndarray:
    """Gaussian blur computed on a grid coarsened to about sigma / 3 (cheap for wide sigma;
    exact enough because the result is smooth at that scale)."""
    f = max(1, int(sigma_px / 3))
    if f == 1:
        return ndi.gaussian_filter(img, sigma_px, mode="nearest")
    lo = ndi.gaussian_filter(_coarse(img, f), sigma_px / f, mode="nearest")
    return upsample(lo, f, img.shape)


def collimation_mask(shape: tuple[int, int], acq: Acquisition) -> np.ndarray:
    """1 inside the collimated field, 0 outside, with a 2-pixel penumbra."""
    h, w = shape
    top, bottom, left, right = acq.collimation
    cx, cy = w * (0.5 + (left - right) / 2), h * (0.5 + (top - bottom) / 2)
    hx, hy = w * (1 - left - right) / 2, h * (1 - top - bottom) / 2
    c, s = math.cos(acq.collimation_tilt), math.sin(acq.collimation_tilt)
    xs = np.arange(w, dtype=F32)[None, :] + F32(0.5 - cx)
    ys = np.arange(h, dtype=F32)[:, None] + F32(0.5 - cy)
    u = np.abs(xs * F32(c) + ys * F32(s)) - F32(hx if left or right else w)
    v = np.abs(ys * F32(c) - xs * F32(s)) - F32(hy if top or bottom else h)
    return np.clip(F32(0.5) - np.maximum(u, v) / F32(2), 0, 1)


def expose(a: np.ndarray, acq: Acquisition, px_per_mm: float, noise: float,
           rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Detected log signal (float32, high = attenuating) and the collimation mask.

    The exposure is set like an automatic exposure control: ``acq.photons`` quanta reach the
    detector behind the middle of the image (the spine), whatever the patient's thickness.
    """
    h, w = a.shape
    t = np.exp(-a)
    sigma = acq.blur_mm * px_per_mm
    if sigma > 0.3:
        t = ndi.gaussian_filter(t, sigma)
    t += F32(acq.scatter) * _lowpass(t, 25 * px_per_mm)
    yy = np.linspace(-1, 1, h, dtype=F32)[:, None]
    xx = np.linspace(-1, 1, w, dtype=F32)[None, :]
    field = (F32(1) + F32(acq.heel / 2) * yy) * (F32(1) - F32(0.08) * (xx * xx + yy * yy))
    mask = collimation_mask(a.shape, acq)
    field = field * (F32(0.03) + F32(0.97) * mask)
    centre = t[h * 3 // 10:h * 7 // 10:4, w * 3 // 10:w * 7 // 10:4]
    n0 = F32(acq.photons / max(float(np.median(centre)), 1e-6))
    counts = t * field * n0
    if noise > 0:
        z = rng.standard_normal((h, w), dtype=np.float32)
        counts += np.sqrt(np.maximum(counts, 0)) * z * F32(noise)
    return -np.log(np.maximum(counts, F32(0.5)) / n0), mask


def process(log_signal: np.ndarray, mask: np.ndarray, acq: Acquisition, px_per_mm: float,
            metal: np.ndarray | None = None) -> tuple[np.ndarray, tuple[float, float]]:
    """The modality's image processing and 12-bit mapping (MONOCHROME2: bone bright).

    Large-scale range compression (subtract a share of a 28 mm low-pass), an unsharp mask,
    then a linear map of the patient's range (direct exposure and ``metal`` pixels excluded,
    as a modality's histogram analysis does, so metal saturates) to ``acq.span`` stored values
    starting at ``acq.offset``. Returns stored uint16 and (center, width).
    """
    sig = log_signal - F32(acq.compress) * _lowpass(log_signal, 28 * px_per_mm)
    sig += F32(acq.sharpen) * (sig - _lowpass(sig, 1.0 * px_per_mm))
    sub, msub = sig[::4, ::4], mask[::4, ::4] > 0.5
    msub &= log_signal[::4, ::4] > 1.5
    if metal is not None:
        msub &= ndi.maximum_filter(metal[::4, ::4], 3) < 0.3
    body = sub[msub]
    if body.size < 100:
        body = sub.ravel()
    lo, hi = np.percentile(body, [0.5, 99.9])
    scale = F32(HEADROOM * acq.span / max(float(hi - lo), 1e-6))
    out = (sig - F32(lo)) * scale + F32(acq.offset)
    if acq.shutter:
        out *= mask
    stored = np.clip(np.rint(out), 0, MAX_STORED).astype(np.uint16)
    vals = stored[::4, ::4][msub]
    if vals.size < 100:
        vals = stored[::4, ::4].ravel()
    p_lo, p_hi = np.percentile(vals, [1.0, 99.7])
    width = max(float(p_hi - p_lo) * acq.window_widen, 64.0)
    return stored, (float(round((p_lo + p_hi) / 2)), float(round(width)))


def draw_marker(layers: Layers, acq: Acquisition, px_per_mm: float) -> None:
    """Burn a lead side marker (letter in a square) and, sometimes, a lead ruler into metal."""
    h, w = layers.shape
    size = int(round(14 * px_per_mm))
    margin = int(round(0.1 * min(h, w)))
    if size < 8:
        return
    font = ImageFont.load_default(size=max(8, int(size * 0.8)))
    img = Image.new("L", (size + 4, size + 4), 0)
    draw = ImageDraw.Draw(img)
    draw.rectangle([1, 1, size + 2, size + 2], outline=90, width=max(1, size // 12))
    draw.text(((size + 4) / 2, (size + 4) / 2), acq.marker, fill=255, font=font, anchor="mm")
    patch_ = np.asarray(img, dtype=F32) * F32(3.0 / 255)
    row = margin if acq.marker_corner < 2 else h - margin - patch_.shape[0]
    col = margin if acq.marker_corner % 2 == 0 else w - margin - patch_.shape[1]
    row, col = max(row, 0), max(col, 0)
    ph, pw = min(patch_.shape[0], h - row), min(patch_.shape[1], w - col)
    layers.metal[row:row + ph, col:col + pw] += patch_[:ph, :pw]
    if acq.ruler:
        _ruler(layers, px_per_mm, 1 - acq.marker_corner % 2)


def _ruler(layers: Layers, px_per_mm: float, right: int) -> None:
    h, w = layers.shape
    x0 = int(w * (0.93 if right else 0.04))
    bar = max(1, int(0.8 * px_per_mm))
    layers.metal[int(0.08 * h):int(0.92 * h), x0:x0 + bar] += F32(1.2)
    for i, y in enumerate(np.arange(0.08 * h, 0.92 * h, 10 * px_per_mm)):
        length = int((6 if i % 5 == 0 else 3) * px_per_mm)
        y = int(y)
        layers.metal[y:y + bar, x0:x0 + length] += F32(1.2)
