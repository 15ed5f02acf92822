"""Turn stored pixel values into a model-ready float32 image. Pure: no I/O, no globals.

The stages follow DICOM PS3.4 N.2 (grayscale pipeline) and are named after it:
stored values (Bits Stored, Pixel Representation) -> Modality LUT or Rescale -> VOI LUT or
window (or the image's own robust percentiles when it has neither) -> MONOCHROME1 inversion.
Every public function returns a new array and never modifies its input.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

#: Window functions of (0028,1056) VOI LUT Function, PS3.3 C.11.2.1.3.
WINDOW_FUNCTIONS = ("LINEAR", "LINEAR_EXACT", "SIGMOID")

#: Default robust window (percent) for images without a VOI LUT or window.
DEFAULT_PERCENTILES = (0.5, 99.5)

_PERCENTILE_SAMPLES = 1 << 18  # enough for stable 0.5 % tails, ~5 ms on any image size


@dataclass(frozen=True)
class Lut:
    """A DICOM lookup table (Modality LUT, PS3.3 C.11.1, or VOI LUT, C.11.2).

    Attributes:
        first_mapped: the input value mapped to ``data[0]``; 2nd LUT Descriptor value.
        bits: bits per entry as declared; 3rd LUT Descriptor value.
        data: 1-D integer array of entries; inputs below ``first_mapped`` take ``data[0]``,
            inputs past the end take ``data[-1]``.
    """

    first_mapped: int
    bits: int
    data: np.ndarray = field(compare=False, repr=False)

    def describe(self, name: str) -> str:
        return f"{name}({self.data.size} entries,first {self.first_mapped},{self.bits} bit)"


@dataclass(frozen=True)
class Window:
    """Window Center/Width and VOI LUT Function, in modality units (after rescale)."""

    center: float
    width: float
    function: str = "LINEAR"

    def is_valid(self) -> bool:
        """PS3.3 C.11.2.1.2: width >= 1 for LINEAR, > 0 for LINEAR_EXACT and SIGMOID."""
        if not (np.isfinite(self.center) and np.isfinite(self.width)):
            return False
        return self.width >= 1 if self.function == "LINEAR" else self.width > 0

    def describe(self) -> str:
        return f"window({self.center:g},{self.width:g},{self.function})"


@dataclass(frozen=True)
class PixelMeta:
    """The attributes that decide how stored values map to brightness.

    Attributes:
        bits_stored: significant bits per stored value (mask or sign-extend to these).
        signed: (0028,0103) Pixel Representation is 1 (two's complement).
        invert: low values display bright (MONOCHROME1, or Presentation LUT Shape INVERSE).
        invert_reason: why, for the LUT path (e.g. ``"MONOCHROME1"``).
        rescale: (slope, intercept), ``None`` when absent or the identity.
        modality_lut: Modality LUT Sequence item (takes precedence over ``rescale``).
        voi_lut: VOI LUT Sequence item (takes precedence over ``window``).
        window: first Window Center/Width pair; ``None`` when absent.
        percentiles: robust window used when there is no VOI LUT and no valid window.
    """

    bits_stored: int
    signed: bool = False
    invert: bool = False
    invert_reason: str = "MONOCHROME1"
    rescale: tuple[float, float] | None = None
    modality_lut: Lut | None = None
    voi_lut: Lut | None = None
    window: Window | None = None
    percentiles: tuple[float, float] = DEFAULT_PERCENTILES


def stored_values(arr: np.ndarray, bits_stored: int, signed: bool) -> np.ndarray:
    """Keep the ``bits_stored`` low bits of each value, sign-extended when ``signed``.

    Args:
        arr: integer array of any shape as decoded (bits above Bits Stored may hold junk,
            e.g. retired overlays, or a codec's other signedness).
        bits_stored: (0028,0101) Bits Stored, 1..itemsize*8.
        signed: (0028,0103) Pixel Representation == 1.

    Returns:
        Native-endian integer array of the same shape and item size: unsigned values in
        ``[0, 2**bits_stored)`` or signed values in ``[-2**(bits_stored-1), 2**(bits_stored-1))``.
        May be a read-through view of the input when no bit needs changing; the input is
        never modified.
    """
    if arr.dtype.kind not in "iu":
        raise TypeError(f"stored values must be integers, got {arr.dtype}")
    if not arr.dtype.isnative:
        arr = arr.astype(arr.dtype.newbyteorder("="))
    size = arr.dtype.itemsize
    nbits = size * 8
    bits = min(max(int(bits_stored), 1), nbits)
    unsigned = arr.view(f"u{size}")
    if not signed:
        return unsigned if bits == nbits else np.bitwise_and(unsigned, (1 << bits) - 1)
    as_signed = unsigned.view(f"i{size}")
    if bits == nbits:
        return as_signed
    shift = nbits - bits
    return np.right_shift(np.left_shift(as_signed, shift), shift)


def apply_rescale(arr: np.ndarray, slope: float, intercept: float) -> np.ndarray:
    """Rescale Slope/Intercept (PS3.3 C.11.1.1.2): ``arr * slope + intercept`` as float32."""
    out = arr.astype(np.float32)
    return _rescale_into(out, slope, intercept)


def apply_modality_lut(arr: np.ndarray, lut: Lut) -> np.ndarray:
    """Modality LUT Sequence (PS3.3 C.11.1): look each stored value up; float32 output."""
    return _lookup(arr, lut, lut.data.astype(np.float32))


def apply_voi_lut(arr: np.ndarray, lut: Lut) -> np.ndarray:
    """VOI LUT Sequence (PS3.3 C.11.2.1.1) scaled to [0, 1] float32.

    The lookup is done here with integer indices of full width (pydicom 3.0.2 builds uint8
    indices for an 8-bit LUT Descriptor and wraps). Entries are divided by ``2**bits - 1``
    where ``bits`` is the declared bit depth, corrected to the bit length of the largest entry
    when the data contradict it (a common encoder mistake: 12-bit entries declared as 16).
    """
    top = lut_output_max(lut)
    return _lookup(arr, lut, lut.data.astype(np.float32) / np.float32(top))


def lut_output_max(lut: Lut) -> int:
    """The value that maps to 1.0 for a VOI LUT: ``2**bits - 1``, corrected by the data."""
    bits = int(lut.bits) if lut.bits in range(1, 17) else 16
    largest = int(lut.data.max()) if lut.data.size else 0
    if largest >= (1 << bits) or (bits > 8 and 0 < largest < (1 << (bits - 1))):
        bits = max(largest.bit_length(), 1)
    return (1 << bits) - 1


def apply_window(arr: np.ndarray, window: Window) -> np.ndarray:
    """Window Center/Width with the VOI LUT Function, exactly per PS3.3 C.11.2.1.2, to [0, 1].

    With output range 0..1:
      * LINEAR: ``((x - (c - 0.5)) / (w - 1) + 0.5)`` clipped to [0, 1];
      * LINEAR_EXACT: ``((x - c) / w + 0.5)`` clipped to [0, 1];
      * SIGMOID: ``1 / (1 + exp(-4 (x - c) / w))``.
    """
    if not window.is_valid():
        raise ValueError(f"invalid {window.describe()}: width must be >= 1 for LINEAR, > 0 else")
    return _window_into(arr.astype(np.float32, copy=True), window)


def robust_range(arr: np.ndarray, low: float = DEFAULT_PERCENTILES[0],
                 high: float = DEFAULT_PERCENTILES[1]) -> tuple[float, float]:
    """The ``low`` and ``high`` percentiles of ``arr`` from a regular subsample of ~262k values.

    Falls back to (min, max) when the percentiles coincide; both equal means a constant image.
    """
    flat = np.ravel(arr)
    sample = flat[:: max(1, flat.size // _PERCENTILE_SAMPLES)]
    lo, hi = (float(v) for v in np.percentile(sample, [low, high]))
    if hi <= lo:
        lo, hi = float(sample.min()), float(sample.max())
    return lo, hi


def apply_range(arr: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """Map ``[lo, hi]`` linearly onto [0, 1] and clip (zeros when ``hi <= lo``)."""
    return _range_into(arr.astype(np.float32, copy=True), lo, hi)


def invert(arr: np.ndarray) -> np.ndarray:
    """``1 - arr``: for MONOCHROME1 images, applied after the VOI stage."""
    return np.subtract(np.float32(1.0), arr, dtype=np.float32)


def downscale(arr: np.ndarray, factor: int) -> np.ndarray:
    """Shrink a 2-D array by an integer ``factor`` with area averaging, as float32.

    The output is ``(ceil(H / factor), ceil(W / factor))`` (the size a JPEG 2000 decoder gives
    at reduction level ``log2(factor)``); edge blocks average the pixels they have.
    """
    if factor < 1:
        raise ValueError(f"downscale factor must be >= 1, got {factor}")
    src = arr.astype(np.float32, copy=factor == 1)
    if factor == 1:
        return src
    h, w = src.shape
    rows, cols = np.arange(0, h, factor), np.arange(0, w, factor)
    sums = np.add.reduceat(np.add.reduceat(src, rows, axis=0), cols, axis=1)
    counts = np.outer(np.minimum(factor, h - rows), np.minimum(factor, w - cols))
    sums /= counts.astype(np.float32)
    return sums


def normalize(stored: np.ndarray, meta: PixelMeta, factor: int = 1) -> tuple[np.ndarray, str]:
    """Map an (H, W) array of stored values to float32 in [0, 1], bone bright.

    Order follows PS3.4 N.2: stored bits, Modality LUT or rescale, optional area downscale by
    ``factor`` (in modality units, so it commutes with rescale), then VOI LUT, window or robust
    percentiles, then inversion. The input is not modified.

    Returns:
        ``(pixels, lut_path)``: pixels (ceil(H/factor), ceil(W/factor)) float32 in [0, 1] and
        the stages taken, e.g. ``"rescale(0.684,200) > window(1600,2800,LINEAR) > invert"``.
    """
    steps: list[str] = []
    values = stored_values(stored, meta.bits_stored, meta.signed)
    x = _modality_stage(values, meta, steps)
    if factor > 1:
        x = downscale(x, factor)
        steps.append(f"area(1/{factor})")
    x = _voi_stage(x, meta, steps)
    if meta.invert:
        np.subtract(np.float32(1.0), x, out=x)
        steps.append("invert" if meta.invert_reason == "MONOCHROME1"
                     else f"invert({meta.invert_reason})")
    return x, " > ".join(steps)


def _modality_stage(values: np.ndarray, meta: PixelMeta, steps: list[str]) -> np.ndarray:
    if meta.modality_lut is not None:
        steps.append(meta.modality_lut.describe("modality_lut"))
        return apply_modality_lut(values, meta.modality_lut)
    if meta.rescale is not None:
        steps.append(f"rescale({meta.rescale[0]:g},{meta.rescale[1]:g})")
        return apply_rescale(values, *meta.rescale)
    return values.astype(np.float32)


def _voi_stage(x: np.ndarray, meta: PixelMeta, steps: list[str]) -> np.ndarray:
    """VOI stage on an array this module owns (modified in place when possible)."""
    if meta.voi_lut is not None:
        steps.append(meta.voi_lut.describe("voi_lut"))
        return apply_voi_lut(x, meta.voi_lut)
    if meta.window is not None and meta.window.is_valid():
        steps.append(meta.window.describe())
        return _window_into(x, meta.window)
    if meta.window is not None:
        steps.append(f"{meta.window.describe()} invalid")
    lo, hi = robust_range(x, *meta.percentiles)
    p_lo, p_hi = meta.percentiles
    steps.append(f"percentile({p_lo:g},{p_hi:g})=[{lo:g},{hi:g}]")
    return _range_into(x, lo, hi)


def _rescale_into(x: np.ndarray, slope: float, intercept: float) -> np.ndarray:
    if slope != 1:
        x *= np.float32(slope)
    if intercept != 0:
        x += np.float32(intercept)
    return x


def _lookup(arr: np.ndarray, lut: Lut, table: np.ndarray) -> np.ndarray:
    """``table[clip(round(arr) - first_mapped, 0, n - 1)]`` with full-width indices."""
    if table.size == 0:
        raise ValueError("empty LUT Data")
    if arr.dtype.kind == "f":
        index = np.rint(arr).astype(np.int64)
    else:
        index = arr.astype(np.int64)
    index -= int(lut.first_mapped)
    np.clip(index, 0, table.size - 1, out=index)
    return np.take(table, index)


def _window_into(x: np.ndarray, window: Window) -> np.ndarray:
    c, w = window.center, window.width
    if window.function == "SIGMOID":
        x -= np.float32(c)
        x *= np.float32(-4.0 / w)
        with np.errstate(over="ignore", under="ignore"):  # saturates to 0 or 1
            np.exp(x, out=x)
        x += np.float32(1.0)
        np.reciprocal(x, out=x)
        return x
    if window.function == "LINEAR_EXACT":
        x -= np.float32(c)
        x *= np.float32(1.0 / w)
    else:  # LINEAR
        x -= np.float32(c - 0.5)
        x *= np.float32(1.0 / (w - 1))
    x += np.float32(0.5)
    return np.clip(x, 0.0, 1.0, out=x)


def _range_into(x: np.ndarray, lo: float, hi: float) -> np.ndarray:
    if not hi > lo:
        x.fill(0.0)
        return x
    x -= np.float32(lo)
    x *= np.float32(1.0 / (hi - lo))
    return np.clip(x, 0.0, 1.0, out=x)
