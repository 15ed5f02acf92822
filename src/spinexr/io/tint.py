"""Tell a grey film photographed or scanned in colour from a colour picture. Pure numpy.

A phone photo or colour scan of a grey film carries a colour cast: a constant tint, a tint that
scales with brightness (a warm light box), a per-channel tone curve (sepia) or a cast that drifts
across the frame (uneven light). In every case the chroma is a smooth function of luma and
position. In a colour picture (people, a cat, histology, a fundus) chroma follows the content.

The measure: shrink the image to at most ``SIDE`` pixels on its long side (area averaging, which
also removes JPEG chroma noise), convert to BT.601 luma Y and chroma (Cb, Cr) in [0, 1] units,
fit the chroma by least squares on ``1, Y, Y^2, x, y, Yx, Yy`` and compare the RMS residual
chroma with the standard deviation of luma (``residual``). The median chroma magnitude
(``chroma``) catches pictures whose colour is a function of luma but far too saturated for a
tinted film (a fundus photograph is orange-red from edge to edge).

Calibration on the 99 RGB(A) files of ``shared/data/radiographs`` (real images, measured on
every file): the grey ones, including a photographed lumbar film, a red arrow drawn on a knee
film, coloured viewer text on MRI, a red box on a CT figure and a black-and-white photo, have
``residual`` <= 0.052; the 9 colour pictures have >= 0.106 (fundus 0.106, melanoma 0.116, the
others 0.21-0.35). ``RESIDUAL_MAX`` sits near their geometric midpoint (x1.4 margin each way).
Synthetic tints of five real grey images (warm, cold, strong sepia, a cast drifting left to
right, chroma noise; JPEG quality 75) stay <= 0.051 with ``chroma`` <= 0.145; the fundus has
``chroma`` 0.27, hence ``CHROMA_MAX`` 0.2.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from spinexr.io.pixels import downscale

#: Long side (pixels) of the image the measure is taken on.
SIDE = 256
#: Most RMS residual chroma, as a fraction of the luma standard deviation, of a tinted film.
RESIDUAL_MAX = 0.075
#: Most median chroma magnitude (BT.601 Cb/Cr, full scale 1) of a tinted film.
CHROMA_MAX = 0.2
#: BT.601 luma weights for R, G, B.
LUMA_WEIGHTS = (0.299, 0.587, 0.114)
_LUMA_FLOOR = 0.02      # a flat image has no luma spread to compare chroma with
_SPATIAL_MIN = 1024     # fewer samples than this: fit on luma only (7 terms would overfit)


@dataclass(frozen=True)
class TintMeasure:
    """How an RGB image's chroma behaves.

    Attributes:
        residual: RMS chroma left after the smooth fit, over the luma standard deviation.
        chroma: median chroma magnitude, full scale 1.
    """

    residual: float
    chroma: float

    @property
    def tinted(self) -> bool:
        """True for a grey image with a colour cast; False for colour content."""
        return self.why_colour() is None

    def why_colour(self) -> str | None:
        """Why this is colour content rather than a tinted film, or ``None`` if it is tinted."""
        if self.residual > RESIDUAL_MAX:
            return (f"chroma varies with the content, not a tinted film: residual chroma "
                    f"{self.residual:.3f} of the luma spread, tinted films <= {RESIDUAL_MAX}")
        if self.chroma > CHROMA_MAX:
            return (f"strongly coloured throughout, not a tinted film: median chroma "
                    f"{self.chroma:.3f}, tinted films <= {CHROMA_MAX}")
        return None


def measure_tint(rgb: np.ndarray, full_scale: float = 255.0) -> TintMeasure:
    """Measure the chroma of an ``(H, W, 3)`` RGB array with values in ``[0, full_scale]``.

    The input is not modified.
    """
    factor = max(1, -(-max(rgb.shape[:2]) // SIDE))
    small = np.stack([downscale(rgb[..., c], factor) for c in range(3)], axis=-1)
    x = small.reshape(-1, 3) / np.float32(full_scale)
    y = x @ np.asarray(LUMA_WEIGHTS, np.float32)
    chroma = np.stack([0.564 * (x[:, 2] - y), 0.713 * (x[:, 0] - y)], axis=1)
    design = _design(y, small.shape[:2])
    coef, *_ = np.linalg.lstsq(design, chroma, rcond=None)
    residual = chroma - design @ coef
    rms = float(np.sqrt(np.mean(np.sum(residual**2, axis=1))))
    spread = max(float(y.std()), _LUMA_FLOOR)
    return TintMeasure(residual=rms / spread,
                       chroma=float(np.median(np.hypot(chroma[:, 0], chroma[:, 1]))))


def _design(y: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Columns ``1, Y, Y^2`` and, with enough samples, ``x, y, Yx, Yy`` (x, y in [-0.5, 0.5))."""
    columns = [np.ones_like(y), y, y * y]
    if y.size >= _SPATIAL_MIN:
        rows, cols = np.mgrid[: shape[0], : shape[1]].astype(np.float32)
        v = (rows / shape[0] - 0.5).ravel()
        u = (cols / shape[1] - 0.5).ravel()
        columns += [u, v, y * u, y * v]
    return np.stack(columns, axis=1)


def luminance(rgb: np.ndarray) -> np.ndarray:
    """BT.601 luma ``0.299 R + 0.587 G + 0.114 B`` of an ``(H, W, 3)`` array, as float32."""
    return rgb.astype(np.float32) @ np.asarray(LUMA_WEIGHTS, np.float32)
