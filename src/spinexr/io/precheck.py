"""``precheck(data, name)``: is a file worth decoding? Headers only, microseconds to milliseconds.

Run on untrusted uploads before they wait for a worker. DICOM: the element structure is walked
to (7FE0,0010) Pixel Data without converting values (:mod:`spinexr.io.dicom_walk`); a file that
ends inside an element, zero-filled bytes or a runaway structure are refused; native pixel data
must hold Rows x Columns x Samples per Pixel x Number of Frames x Bits Allocated / 8 bytes and
encapsulated pixel data at least one fragment. PNG, JPEG, TIFF: the signature and the size in the
file's own header, against the pixel limit. Nothing is decoded, so the cost does not grow with
the pixel count. Anything the check lets through is still read in full by
:func:`~spinexr.io.read_radiograph`, which has the last word (modality, colour, frames, ...):
the check refuses only files the reader would refuse too.
"""
from __future__ import annotations

import struct

from spinexr.errors import CorruptImageError, NotAnImageError
from spinexr.io.dicom_walk import UNDEFINED, Malformed, Truncated, Walk, fragments, walk
from spinexr.io.raster import raster_size
from spinexr.io.reader import DEFAULT_MAX_PIXELS, sniff


def precheck(data: bytes, name: str, *, max_pixels: int = DEFAULT_MAX_PIXELS) -> str:
    """Check ``data`` cheaply; returns its kind (``"dicom"``, ``"png"``, ``"jpeg"``,
    ``"tiff"``).

    Args:
        data: the file's bytes.
        name: what messages call the file.
        max_pixels: the reader's pixel limit (raster headers are checked against it here).

    Raises:
        NotAnImageError: neither DICOM nor PNG, JPEG or TIFF by its first bytes.
        CorruptImageError: truncated (the file ends inside an element or the pixel data are
            shorter than the header needs), zero-filled or malformed structure, encapsulated
            pixel data without fragments, a raster header without a size.
        ImageTooLargeError: a raster header over ``max_pixels``.
    """
    kind = sniff(data)
    if kind is None:
        raise NotAnImageError("not DICOM, PNG, JPEG or TIFF (judged from its first bytes)", name)
    if kind == "dicom":
        _check_dicom(data, name)
    else:
        raster_size(data, kind, name, max_pixels)
    return kind


def _check_dicom(data: bytes, name: str) -> None:
    try:
        w = walk(data)
        if w.pixel_offset is None:
            return                        # the reader names what is missing
        if w.pixel_length == UNDEFINED:
            if not fragments(w):
                raise CorruptImageError("the encapsulated (7FE0,0010) Pixel Data hold no "
                                        "fragments: there is no image in them", name)
            return
    except Truncated as exc:
        raise CorruptImageError(f"the file is truncated: {exc}", name) from None
    except Malformed as exc:
        raise CorruptImageError(f"not a readable DICOM data set: {exc}", name) from None
    _check_native_length(w, name)


def _check_native_length(w: Walk, name: str) -> None:
    expected = native_bytes(w)
    have = min(w.pixel_length, len(w.data) - w.pixel_offset)
    if expected is None or have >= expected:
        return
    need = (f"Rows x Columns x Samples per Pixel x Number of Frames x Bits Allocated / 8 = "
            f"{expected:,} bytes")
    if have < w.pixel_length:
        raise CorruptImageError(f"the file is truncated: its pixel data are incomplete (the "
                                f"file ends {have:,} bytes into (7FE0,0010) Pixel Data; the "
                                f"header needs {need})", name)
    raise CorruptImageError(f"pixel data incomplete: (7FE0,0010) Pixel Data holds {have:,} "
                            f"bytes but the header needs {need}", name)


def native_bytes(w: Walk) -> int | None:
    """The bytes native pixel data need by the header, ``None`` when it cannot say (attributes
    missing or unreadable, or chroma subsampled YBR, whose size follows other rules)."""
    order = "<H" if w.little_endian else ">H"
    values = {}
    for key in ("rows", "columns", "samples", "bits_allocated"):
        raw = w.image.get(key)
        if raw is not None and len(raw) >= 2:
            values[key] = struct.unpack(order, raw[:2])[0]
    photometric = w.image.get("photometric", b"").decode("latin-1").strip(" \x00").upper()
    frames = _frames(w.image.get("frames"))
    if not all(values.get(k) for k in ("rows", "columns", "bits_allocated")) or frames is None \
            or photometric.startswith("YBR") and photometric.endswith(("_422", "_420")):
        return None
    bits = (values["rows"] * values["columns"] * (values.get("samples") or 1) * frames
            * values["bits_allocated"])
    return -(-bits // 8)


def _frames(raw: bytes | None) -> int | None:
    if raw is None:
        return 1
    text = raw.decode("latin-1").strip(" \x00")
    try:
        return max(int(float(text)), 1) if text else 1
    except (ValueError, OverflowError):
        return None
