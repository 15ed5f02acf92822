"""Read PNG, JPEG and TIFF radiographs through Pillow.

The size is read from the file's own header first (PNG IHDR, JPEG SOF, TIFF IFD0) and checked
against the pixel limit before Pillow sees the file, so Pillow's own decompression-bomb check
never fires. 8-bit images map by /255; deeper ones by a robust percentile window. RGB images
whose channels are (nearly) equal are grayscale saved as colour and are accepted; so are grey
films photographed or scanned in colour, whose chroma is only a cast (see :mod:`spinexr.io.tint`),
which become BT.601 luminance. Colour content is refused, as are palettes that are not gray.
EXIF orientation is not applied: pixels stay in stored order, the frame that annotation files
(YOLO, COCO) refer to.
"""
from __future__ import annotations

import io
import time

import numpy as np

from spinexr.errors import (CorruptImageError, ImageTooLargeError, SpinexrError,
                            UnsupportedImageError)
from spinexr.io.codestream import jpeg_info, png_info, tiff_info
from spinexr.io.pixels import DEFAULT_PERCENTILES, apply_range, downscale, robust_range
from spinexr.io.policy import ModalityPolicy
from spinexr.io.tint import luminance, measure_tint
from spinexr.types import Radiograph, ReadInfo, SourceRef

FORMATS = {"png": "PNG", "jpeg": "JPEG", "tiff": "TIFF"}
_HEADERS = {"png": png_info, "jpeg": jpeg_info, "tiff": tiff_info}

#: A channel may differ from the channel mean by this fraction of full scale in 99.9 % of the
#: pixels and the image still counts as gray (JPEG chroma noise, a small coloured marker).
GRAY_TOLERANCE = 0.02
_GRAY_MODES = {"1": 1, "L": 8, "LA": 8, "I;16": 16, "I;16L": 16, "I;16B": 16, "I;16N": 16,
               "I": 32, "F": 32}
_RGB_MODES = {"RGB", "RGBA", "RGBX", "RGBa"}


def read_raster(data: bytes, kind: str, source: str, path: str | None, policy: ModalityPolicy,
                max_pixels: int, reduce: int) -> Radiograph:
    """Read PNG/JPEG/TIFF bytes (``kind`` from sniffing) into a :class:`Radiograph`."""
    policy.check(None, source)
    rows, columns = raster_size(data, kind, source, max_pixels)
    start = time.perf_counter()
    image = _open(data, kind, source)
    gray, bits, steps, colour = _to_gray(image, source)
    if gray.dtype.kind == "f" and not np.isfinite(gray).all():
        raise UnsupportedImageError("a floating-point image with NaN or infinite values", source)
    if gray.shape != (rows, columns):
        raise CorruptImageError(f"decoded size {gray.shape} differs from the header's "
                                f"{(rows, columns)}", source)
    pixels = _normalize(gray, bits, 2**reduce, steps)
    pixels.flags.writeable = False
    info = ReadInfo(format=kind, transfer_syntax=None, transfer_syntax_name=None,
                    photometric="MONOCHROME2", bits_stored=bits, lut_path=" > ".join(steps),
                    stored_shape=(rows, columns), reduce=reduce,
                    decode_seconds=time.perf_counter() - start)
    meta = {"modality": None, "rows": rows, "columns": columns, "bits_stored": bits,
            "photometric": "MONOCHROME2", "format": kind, "mode": image.mode, "colour": colour}
    return Radiograph(pixels=pixels, spacing_mm=None, source=SourceRef(path=path), info=info,
                      meta=meta, header=None)


def raster_size(data: bytes, kind: str, source: str, max_pixels: int) -> tuple[int, int]:
    """(rows, columns) from the file's own header (PNG IHDR, JPEG SOF, TIFF IFD0), nothing
    decoded.

    Raises:
        CorruptImageError: no size in the header.
        ImageTooLargeError: more than ``max_pixels`` pixels.
    """
    info = _HEADERS[kind](data)
    if info is None or info.rows <= 0 or info.columns <= 0:
        raise CorruptImageError(
            f"the {kind.upper()} header is incomplete or damaged (no image size found)", source)
    rows, columns = info.rows, info.columns
    if rows * columns > max_pixels:
        raise ImageTooLargeError(
            f"{kind.upper()} header says {columns}x{rows} = {rows * columns:,} pixels, over the "
            f"limit of {max_pixels:,} (raise max_pixels if the file is trusted)", source)
    return rows, columns


def _open(data: bytes, kind: str, source: str):
    from PIL import Image

    try:
        image = Image.open(io.BytesIO(data), formats=(FORMATS[kind],))
        if getattr(image, "n_frames", 1) > 1:
            raise UnsupportedImageError(
                f"the {kind.upper()} holds {image.n_frames} frames/pages; spinexr reads "
                "single-image files", source)
        image.load()
    except SpinexrError:
        raise
    except Image.DecompressionBombError as exc:
        raise ImageTooLargeError(f"Pillow refuses the image size ({exc})", source) from exc
    except Exception as exc:
        raise CorruptImageError(
            f"cannot decode the {kind.upper()} ({type(exc).__name__}: {exc}); it is truncated "
            "or corrupt", source) from exc
    return image


def _to_gray(image, source: str) -> tuple[np.ndarray, int, list[str], str]:
    """(H, W) gray values, their bit depth, the steps taken, and "gray" or "tinted"."""
    mode = image.mode
    if mode in _GRAY_MODES:
        arr = np.asarray(image)
        if arr.ndim == 3:  # LA: drop alpha
            arr = arr[..., 0]
        return arr, _GRAY_MODES[mode], [], "gray"
    if mode in ("P", "PA"):
        return _palette_gray(image, source), 8, ["palette(gray)"], "gray"
    if mode in _RGB_MODES:
        return _rgb_gray(np.asarray(image)[..., :3], mode, source)
    raise UnsupportedImageError(
        f"image mode {mode!r} is colour or unsupported; spinexr reads grayscale radiographs "
        "(8/16-bit gray, or RGB with equal channels or a colour cast)", source)


def _rgb_gray(rgb: np.ndarray, mode: str, source: str) -> tuple[np.ndarray, int, list[str], str]:
    """Gray saved as RGB: channel mean; a tinted film: BT.601 luminance; colour: refused."""
    if _is_gray(rgb, 255):
        return rgb.mean(axis=2, dtype=np.float32), 8, [f"gray({mode})"], "gray"
    why = measure_tint(rgb).why_colour()
    if why is not None:
        raise UnsupportedImageError(
            f"a colour {mode} image ({why}); send the radiograph as DICOM or a greyscale "
            "PNG/JPEG", source)
    return luminance(rgb), 8, [f"luminance(tinted {mode})"], "tinted"


def _palette_gray(image, source: str) -> np.ndarray:
    palette = np.frombuffer(image.palette.tobytes(), dtype=np.uint8)
    channels = len(image.palette.mode)
    table = palette[: palette.size // channels * channels].reshape(-1, channels)[:, :3]
    index = np.asarray(image)
    if index.ndim == 3:
        index = index[..., 0]
    present = np.unique(index)
    used = table[present[present < len(table)]]
    if used.size and not _is_gray(used[None, ...], 255):
        raise UnsupportedImageError(
            "a palette (indexed colour) image whose palette is not gray; spinexr reads "
            "grayscale radiographs only", source)
    lut = np.zeros(256, dtype=np.uint8)
    lut[: len(table)] = table[:256, 0]
    return lut[index]


def _is_gray(rgb: np.ndarray, full_scale: float) -> bool:
    flat = rgb.reshape(-1, 3)
    sample = flat[:: max(1, len(flat) // (1 << 18))].astype(np.float32)
    spread = np.abs(sample - sample.mean(axis=1, keepdims=True)).max(axis=1)
    return float(np.quantile(spread, 0.999)) <= GRAY_TOLERANCE * full_scale


def _normalize(gray: np.ndarray, bits: int, factor: int, steps: list[str]) -> np.ndarray:
    x = gray.astype(np.float32)
    if factor > 1:
        x = downscale(x, factor)
        steps.append(f"area(1/{factor})")
    if bits <= 8:
        scale = 1.0 if bits == 1 else 255.0
        x *= np.float32(1.0 / scale)
        steps.append(f"scale(1/{scale:g})")
        return x
    lo, hi = robust_range(x, *DEFAULT_PERCENTILES)
    steps.append(f"percentile({DEFAULT_PERCENTILES[0]:g},{DEFAULT_PERCENTILES[1]:g})"
                 f"=[{lo:g},{hi:g}]")
    return apply_range(x, lo, hi)
