"""Read what the reader needs from a parsed DICOM header, tolerating real-world defects.

Text attributes are taken from the raw bytes where possible, so malformed UIDs or strings
(VinDr-SpineXR has both) neither raise nor depend on pydicom's global validation mode. Every
value that decides a refusal is checked here and named in the message with its tag.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from pydicom.dataset import Dataset
from pydicom.multival import MultiValue

from spinexr.errors import CorruptImageError, ImageTooLargeError, UnsupportedImageError
from spinexr.io.pixels import WINDOW_FUNCTIONS, Lut, PixelMeta, Window
from spinexr.types import SourceRef

MONOCHROME = ("MONOCHROME1", "MONOCHROME2")

#: (meta key, tag) of the PHI-free attributes copied into ``Radiograph.meta``.
META_TAGS: tuple[tuple[str, int], ...] = (
    ("modality", 0x00080060),
    ("body_part_examined", 0x00180015),
    ("view_position", 0x00185101),
    # Free text typed at the modality: not patient identifiers by definition, but a person may
    # have typed anything, so they feed the gate's header evidence and are never logged.
    ("study_description", 0x00081030),
    ("series_description", 0x0008103E),
    ("protocol_name", 0x00181030),
    ("image_laterality", 0x00200062),
    ("laterality", 0x00200060),
    ("manufacturer", 0x00080070),
    ("manufacturer_model_name", 0x00081090),
    ("lossy_image_compression", 0x00282110),
    ("burned_in_annotation", 0x00280301),
)


@dataclass(frozen=True)
class ImageHeader:
    """The Image Pixel module values that decide whether and how to decode."""

    rows: int
    columns: int
    frames: int
    samples: int
    bits_allocated: int
    bits_stored: int
    signed: bool
    photometric: str | None


def text(ds: Dataset, tag: int) -> str | None:
    """The value of ``tag`` as stripped text (multi-values joined by ``\\``), or ``None``."""
    elem = ds.get_item(tag)
    if elem is None or elem.value is None:
        return None
    value = elem.value
    if isinstance(value, (bytes, bytearray, memoryview)):
        result = bytes(value).decode("latin-1")
    elif isinstance(value, (list, tuple, MultiValue)):
        result = "\\".join(str(v) for v in value)
    else:
        result = str(value)
    return result.strip(" \x00") or None


def numbers(ds: Dataset, tag: int) -> list[float] | None:
    """Decimal/integer string values of ``tag`` as floats; ``None`` if absent or non-numeric."""
    raw = text(ds, tag)
    if raw is None:
        return None
    try:
        values = [float(part) for part in raw.split("\\")]
    except ValueError:
        return None
    return values if all(math.isfinite(v) for v in values) else None


def integer(ds: Dataset, tag: int, default: int | None = None) -> int | None:
    """A US/SS/IS value as int (first of several); ``default`` when absent or empty."""
    if tag not in ds:
        return default
    value = ds[tag].value
    if isinstance(value, (list, tuple, MultiValue)):
        value = value[0] if len(value) else None
    if value is None or value == "":
        return default
    if isinstance(value, (bytes, bytearray)):
        value = bytes(value).decode("latin-1").strip(" \x00")
    return int(value)


def image_header(ds: Dataset, source: str) -> ImageHeader:
    """Validate the Image Pixel module; refuse colour, palette, odd bit depths."""
    rows, columns = integer(ds, 0x00280010), integer(ds, 0x00280011)
    if not rows or not columns or rows < 0 or columns < 0:
        raise CorruptImageError(
            f"(0028,0010) Rows is {rows!r} and (0028,0011) Columns is {columns!r}; an image needs "
            "both (the header is incomplete)", source)
    frames_text = text(ds, 0x00280008)
    try:
        frames = max(int(float(frames_text)), 1) if frames_text else 1
    except (ValueError, OverflowError):
        raise CorruptImageError(
            f"(0028,0008) Number of Frames is {frames_text!r}, not a number", source) from None
    samples = integer(ds, 0x00280002, 1)
    bits_allocated = integer(ds, 0x00280100)
    if bits_allocated not in (8, 16, 32):
        raise UnsupportedImageError(
            f"(0028,0100) Bits Allocated is {bits_allocated!r}; spinexr reads 8, 16 or 32-bit "
            "grayscale images", source)
    bits_stored = integer(ds, 0x00280101, bits_allocated)
    if not bits_stored or not 1 <= bits_stored <= bits_allocated:
        bits_stored = bits_allocated
    representation = integer(ds, 0x00280103, 0)
    photometric = text(ds, 0x00280004)
    return ImageHeader(rows, columns, frames, samples or 1, bits_allocated, bits_stored,
                       representation == 1, photometric.upper() if photometric else None)


def check_image(header: ImageHeader, max_pixels: int, source: str) -> None:
    """Refuse from the header alone: too many pixels, colour or palette, several frames."""
    total = header.rows * header.columns * header.frames
    if total > max_pixels:
        raise ImageTooLargeError(
            f"{header.rows} rows x {header.columns} columns x {header.frames} frame(s) = "
            f"{total:,} pixels is over the limit of {max_pixels:,} (raise max_pixels if the "
            "file is trusted)", source)
    photometric = header.photometric
    if photometric == "PALETTE COLOR":
        raise UnsupportedImageError(
            "(0028,0004) Photometric Interpretation is 'PALETTE COLOR'; spinexr reads "
            "grayscale radiographs only (MONOCHROME1/MONOCHROME2)", source)
    if header.samples != 1 or (photometric is not None and photometric not in MONOCHROME):
        raise UnsupportedImageError(
            f"(0028,0004) Photometric Interpretation is {photometric!r} with (0028,0002) "
            f"Samples per Pixel {header.samples}: a colour image; spinexr reads grayscale "
            "radiographs only (MONOCHROME1/MONOCHROME2)", source)
    if header.frames > 1:
        raise UnsupportedImageError(
            f"(0028,0008) Number of Frames is {header.frames}; spinexr reads single-frame "
            "radiographs (export the frame you want as its own instance)", source)


def pixel_meta(ds: Dataset, header: ImageHeader,
               little_endian: bool) -> tuple[PixelMeta, list[str]]:
    """The grayscale pipeline parameters, and notes on attributes that had to be ignored."""
    notes: list[str] = []
    rescale = _rescale(ds, notes)
    negative = header.signed or (rescale is not None and rescale[1] < 0)
    modality_lut = _first_lut(ds, 0x00283000, header.signed, little_endian, "modality_lut", notes)
    voi_lut = _first_lut(ds, 0x00283010, negative, little_endian, "voi_lut", notes)
    invert, reason = _inversion(ds, header.photometric)
    return PixelMeta(bits_stored=header.bits_stored, signed=header.signed, invert=invert,
                     invert_reason=reason, rescale=rescale, modality_lut=modality_lut,
                     voi_lut=voi_lut, window=_window(ds)), notes


def _rescale(ds: Dataset, notes: list[str]) -> tuple[float, float] | None:
    slope, intercept = numbers(ds, 0x00281053), numbers(ds, 0x00281052)
    if slope is None and intercept is None:
        return None
    s, i = (slope or [1.0])[0], (intercept or [0.0])[0]
    if s == 0:
        notes.append("rescale slope 0 ignored")
        return None
    return None if (s, i) == (1.0, 0.0) else (s, i)


def _window(ds: Dataset) -> Window | None:
    centers, widths = numbers(ds, 0x00281050), numbers(ds, 0x00281051)
    if not centers or not widths:
        return None
    function = (text(ds, 0x00281056) or "LINEAR").upper()
    return Window(centers[0], widths[0], function if function in WINDOW_FUNCTIONS else "LINEAR")


def _inversion(ds: Dataset, photometric: str | None) -> tuple[bool, str]:
    if photometric == "MONOCHROME1":
        return True, "MONOCHROME1"
    if (text(ds, 0x20500020) or "").upper() == "INVERSE":
        return True, "PresentationLUTShape INVERSE"
    return False, ""


def _first_lut(ds: Dataset, tag: int, negative: bool, little_endian: bool, name: str,
               notes: list[str]) -> Lut | None:
    if tag not in ds:
        return None
    try:
        items = ds[tag].value
        lut = _lut(items[0], negative, little_endian) if items else None
    except Exception as exc:  # a broken optional LUT must not hide an otherwise good image
        lut = None
        notes.append(f"{name} unreadable ({type(exc).__name__})")
    return lut


def _lut(item: Dataset, negative: bool, little_endian: bool) -> Lut | None:
    """One LUT item: LUT Descriptor (entries, first mapped, bits) and LUT Data."""
    descriptor = item[0x00283002].value
    entries, first, bits = (int(v) for v in list(descriptor)[:3])
    entries = entries or 65536
    if negative and first >= 32768:
        first -= 65536  # second value is SS when inputs can be negative (US/SS ambiguity)
    elif not negative and first < 0:
        first += 65536
    data = item[0x00283006].value
    if isinstance(data, (bytes, bytearray)):
        raw = bytes(data)
        if bits <= 8 and len(raw) == entries:
            table = np.frombuffer(raw, dtype=np.uint8)
        else:
            table = np.frombuffer(raw[: len(raw) // 2 * 2], dtype="<u2" if little_endian else ">u2")
    else:
        table = np.atleast_1d(np.asarray(data, dtype=np.int64)) & 0xFFFF
    table = table[:entries].astype(np.int64)
    if table.size == 0:
        raise ValueError("empty LUT Data")
    return Lut(first_mapped=first, bits=bits, data=table)


def spacing(ds: Dataset) -> tuple[tuple[float, float] | None, str | None]:
    """(row, column) spacing in mm from Pixel Spacing, else Imager Pixel Spacing.

    Zero, negative, non-numeric, single-valued or missing values are unknown (``None``).
    """
    for keyword, tag in (("PixelSpacing", 0x00280030), ("ImagerPixelSpacing", 0x00181164)):
        values = numbers(ds, tag)
        if values and len(values) >= 2 and values[0] > 0 and values[1] > 0:
            return (values[0], values[1]), keyword
    return None, None


def meta(ds: Dataset, header: ImageHeader, spacing_attribute: str | None,
         sop_class_name: str | None) -> dict[str, Any]:
    """A small PHI-free dict of the header: never names, IDs, dates or accession numbers."""
    out: dict[str, Any] = {key: text(ds, tag) for key, tag in META_TAGS}
    out.update(rows=header.rows, columns=header.columns, number_of_frames=header.frames,
               bits_allocated=header.bits_allocated, bits_stored=header.bits_stored,
               pixel_representation=int(header.signed), photometric=header.photometric,
               spacing_attribute=spacing_attribute, sop_class_name=sop_class_name)
    return out


def source_ref(ds: Dataset, path: str | None) -> SourceRef:
    """Path and UIDs as stored (possibly malformed; kept as they are)."""
    sop_class = text(ds, 0x00080016)
    if sop_class is None and hasattr(ds, "file_meta"):
        sop_class = text(ds.file_meta, 0x00020002)
    return SourceRef(path=path, study_instance_uid=text(ds, 0x0020000D),
                     series_instance_uid=text(ds, 0x0020000E),
                     sop_instance_uid=text(ds, 0x00080018), sop_class_uid=sop_class)
