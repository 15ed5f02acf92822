"""Read a DICOM radiograph: parse, check the header, decode one frame, normalize.

Untrusted bytes are touched at three depths, each wrapped so that only a
:class:`~spinexr.errors.SpinexrError` leaves: parsing (pydicom), header values (lazy element
conversion in pydicom), and decoding (codecs). The pixel pipeline itself is pure numpy on
values validated here.
"""
from __future__ import annotations

import io
import time
from collections.abc import Callable
from dataclasses import replace
from typing import TypeVar

import numpy as np
import pydicom
from pydicom import uid
from pydicom.dataset import Dataset
from pydicom.encaps import generate_frames

from spinexr.errors import (CorruptImageError, NoPixelDataError, SpinexrError,
                            UnsupportedImageError)
from spinexr.io import codecs, dicom_walk
from spinexr.io import dicom_header as hdr
from spinexr.io.codestream import CodestreamInfo, j2k_info, jpeg_info
from spinexr.io.pixels import normalize
from spinexr.io.policy import ModalityPolicy
from spinexr.types import Radiograph, ReadInfo

T = TypeVar("T")

_NATIVE_BY_ENCODING = {  # (implicit VR, little endian) -> syntax of uncompressed pixel data
    (True, True): str(uid.ImplicitVRLittleEndian),
    (False, True): str(uid.ExplicitVRLittleEndian),
    (False, False): str(uid.ExplicitVRBigEndian),
}


def read_dicom(data: bytes, source: str, path: str | None, policy: ModalityPolicy,
               max_pixels: int, reduce: int, min_side: int | None = None) -> Radiograph:
    """Read DICOM bytes into a :class:`Radiograph` (see :func:`spinexr.io.read_radiograph`)."""
    cut = _structure(data, source)
    ds = _parse(data, source, cut)
    if cut is not None and 0x7FE00010 not in ds:
        raise _truncated(cut, source)
    header = _guard(lambda: _check_header(ds, source, policy, max_pixels), source,
                    "DICOM header")
    syntax, syntax_name, frame, info = _guard(lambda: _transfer_syntax(ds, source, header),
                                              source, "DICOM header")
    pmeta, notes = _guard(lambda: hdr.pixel_meta(ds, header, _little_endian(ds)), source,
                          "DICOM header")
    if min_side and not reduce and syntax in codecs.J2K_SYNTAXES and info is not None:
        reduce = j2k_level_for(max(header.rows, header.columns), info.levels, min_side)
    start = time.perf_counter()
    stored, done = _decode(ds, syntax, frame, info, header, reduce, source)
    bits = max(header.bits_stored, info.precision if info else 0)
    pmeta = replace(pmeta, bits_stored=min(bits, stored.dtype.itemsize * 8))
    pixels, lut_path = normalize(stored, pmeta, factor=2 ** (reduce - done))
    seconds = time.perf_counter() - start
    lut_path = " > ".join([*notes, *([f"j2k_level({done})"] if done else []), lut_path])
    spacing, spacing_attribute, source_ref, meta = _guard(
        lambda: _describe(ds, header, path), source, "DICOM header")
    if spacing is not None and reduce:
        spacing = (spacing[0] * 2**reduce, spacing[1] * 2**reduce)
    del ds[0x7FE00010]  # the header travels on without the pixels
    pixels.flags.writeable = False
    return Radiograph(
        pixels=pixels, spacing_mm=spacing, source=source_ref,
        info=ReadInfo(format="dicom", transfer_syntax=syntax, transfer_syntax_name=syntax_name,
                      photometric=header.photometric, bits_stored=header.bits_stored,
                      lut_path=lut_path, stored_shape=(header.rows, header.columns),
                      reduce=reduce, decode_seconds=seconds),
        meta=meta, header=ds)


def j2k_level_for(longest: int, levels: int, min_side: int) -> int:
    """The coarsest JPEG 2000 resolution level (<= ``levels``) whose longer side, ceil(longest /
    2**level), is still >= ``min_side``; 0 when even level 1 is smaller."""
    level = 0
    while level < levels and -(-longest // 2 ** (level + 1)) >= min_side:
        level += 1
    return level


def _guard(step: Callable[[], T], source: str, what: str) -> T:
    """Run ``step``; any non-spinexr exception means the file is malformed."""
    try:
        return step()
    except SpinexrError:
        raise
    except Exception as exc:  # pydicom converts elements lazily: any error here is bad data
        raise CorruptImageError(f"malformed {what} ({_one_line(exc)})", source) from exc


def _truncated(cut: str, source: str) -> CorruptImageError:
    return CorruptImageError(f"the file is truncated ({cut}): its (7FE0,0010) Pixel Data are "
                             "missing or incomplete; send the complete file", source)


def _parse(data: bytes, source: str, cut: str | None = None) -> Dataset:
    try:
        return pydicom.dcmread(io.BytesIO(data), force=True)
    except Exception as exc:
        if cut is not None:
            raise _truncated(cut, source) from exc
        raise CorruptImageError(
            f"cannot parse the DICOM data set ({_one_line(exc)}); the file is truncated or "
            "corrupt", source) from exc


def _structure(data: bytes, source: str) -> str | None:
    """Walk the element structure first (:mod:`.dicom_walk`, microseconds): refuse what is not
    a data set at all (zeros, runaway nesting) before pydicom spends seconds on it, and return
    where the file is cut, if it is. pydicom reads what is there, so without this a cut file
    would be reported as one that never had pixel data."""
    try:
        w = dicom_walk.walk(data)
    except dicom_walk.Truncated as exc:
        return str(exc)
    except dicom_walk.Malformed as exc:
        raise CorruptImageError(f"not a readable DICOM data set: {exc}", source) from None
    return dicom_walk.pixel_truncation(w)


def _check_header(ds: Dataset, source: str, policy: ModalityPolicy,
                  max_pixels: int) -> hdr.ImageHeader:
    """Pixel Data present, modality allowed, image attributes acceptable: in that order."""
    if 0x7FE00010 not in ds:
        other = [name for tag, name in ((0x7FE00008, "Float Pixel Data"),
                                        (0x7FE00009, "Double Float Pixel Data")) if tag in ds]
        if other:
            raise UnsupportedImageError(
                f"holds {other[0]} (a parametric map), not integer (7FE0,0010) Pixel Data", source)
        if 0x00280010 in ds and 0x00280011 in ds:
            raise CorruptImageError(
                "has (0028,0010) Rows and (0028,0011) Columns but no (7FE0,0010) Pixel Data: "
                "the file is probably truncated", source)
        sop = hdr.text(ds, 0x00080016)
        kind = f" (SOP Class {uid.UID(sop).name})" if sop else ""
        raise NoPixelDataError(
            f"this DICOM object{kind} has no (7FE0,0010) Pixel Data element: it holds no image",
            source)
    policy.check(hdr.text(ds, 0x00080060), source)
    header = hdr.image_header(ds, source)
    hdr.check_image(header, max_pixels, source)
    return header


def _transfer_syntax(ds: Dataset, source: str, header: hdr.ImageHeader
                     ) -> tuple[str, str, bytes | None, CodestreamInfo | None]:
    """The syntax to decode with, its name for display, and the first frame if encapsulated.

    A missing or unknown (0002,0010) is inferred: from the data set's own encoding for
    uncompressed pixels, from the codestream's first marker for encapsulated ones.
    """
    meta = getattr(ds, "file_meta", None)
    stated = hdr.text(meta, 0x00020010) if meta is not None else None
    known = bool(stated) and uid.UID(stated).is_transfer_syntax
    if not ds[0x7FE00010].is_undefined_length:
        if known and uid.UID(stated).is_encapsulated:
            raise CorruptImageError(
                f"(0002,0010) Transfer Syntax UID {stated!r} ({uid.UID(stated).name}) is "
                "compressed but the Pixel Data is not encapsulated; the file is inconsistent",
                source)
        native = _NATIVE_BY_ENCODING.get(tuple(ds.original_encoding))  # type: ignore[arg-type]
        if native is None:
            raise CorruptImageError("cannot tell the byte order of the data set", source)
        if known:
            return native, uid.UID(stated).name, None, None
        return native, f"{uid.UID(native).name} (inferred: (0002,0010) Transfer Syntax UID " \
            f"is {stated!r})", None, None
    frame = next(generate_frames(ds.PixelData, number_of_frames=header.frames))
    decodable = known and stated in codecs.ENCAPSULATED_SYNTAXES
    if decodable:
        syntax, name = stated, uid.UID(stated).name
    elif stated and (not known or uid.UID(stated).is_encapsulated):
        raise UnsupportedImageError(
            f"(0002,0010) Transfer Syntax UID {stated!r} is not one spinexr decodes (JPEG, "
            "JPEG-LS, JPEG 2000, HTJ2K, RLE, uncompressed, deflated); convert the file first",
            source)
    else:
        syntax = codecs.infer_encapsulated_syntax(frame)
        if syntax is None:
            raise CorruptImageError(
                f"(0002,0010) Transfer Syntax UID is {stated!r} but the Pixel Data is "
                "encapsulated and its codestream is not JPEG, JPEG-LS, JPEG 2000 or RLE; add "
                "the right Transfer Syntax UID", source)
        name = f"{uid.UID(syntax).name} (inferred from the codestream)"
    return syntax, name, frame, _check_codestream(frame, syntax, header, source)


def _check_codestream(frame: bytes, syntax: str, header: hdr.ImageHeader,
                      source: str) -> CodestreamInfo | None:
    """Compare the codestream's own size with the header before any decoder allocates it."""
    if syntax in codecs.J2K_SYNTAXES:
        info, kind = j2k_info(codecs.split_j2k(frame)), "JPEG 2000"
    elif syntax in codecs.JPEG_SYNTAXES:
        info, kind = jpeg_info(frame), "JPEG"
    else:
        return None
    if info is None:
        raise CorruptImageError(
            f"the first frame does not start with a {kind} codestream header; the Pixel Data "
            "is corrupt or the Transfer Syntax UID is wrong", source)
    if info.components != 1:
        raise CorruptImageError(
            f"the {kind} codestream has {info.components} components but (0028,0002) Samples "
            "per Pixel is 1", source)
    if info.columns != header.columns or info.rows not in (0, header.rows):
        raise CorruptImageError(
            f"the {kind} codestream is {info.rows}x{info.columns} but (0028,0010) Rows x "
            f"(0028,0011) Columns is {header.rows}x{header.columns}", source)
    return info


def _decode(ds: Dataset, syntax: str, frame: bytes | None, info: CodestreamInfo | None,
            header: hdr.ImageHeader, reduce: int, source: str) -> tuple[np.ndarray, int]:
    """Stored values of the first frame, and the reduction level the codec already applied."""
    name = uid.UID(syntax).name
    try:
        if reduce and syntax in codecs.J2K_SYNTAXES and frame is not None and info is not None:
            reduced = _j2k_reduced(frame, info, reduce)
            if reduced is not None:
                return reduced
        if syntax == uid.JPEGExtended12Bit and info is not None and info.precision > 8:
            if info.scan_ok is False:
                raise CorruptImageError(
                    "the 12-bit JPEG codestream's scan header (SOS) is invalid for sequential "
                    "JPEG (spectral selection must be 0..63)", source)
            photometric = header.photometric or "MONOCHROME2"
            return codecs.decode_jpeg12_gdcm(frame, info, photometric, syntax), 0
        arr = codecs.decode_with_pydicom(ds.PixelData, syntax, _decode_options(ds, header))
    except SpinexrError:
        raise
    except NotImplementedError as exc:
        raise UnsupportedImageError(f"cannot decode {name} pixel data here ({_one_line(exc)})",
                                    source) from exc
    except Exception as exc:
        raise CorruptImageError(
            f"cannot decode the {name} pixel data ({_one_line(exc)}); it is truncated or corrupt",
            source) from exc
    if arr.shape != (header.rows, header.columns) or arr.dtype.kind not in "iu":
        raise CorruptImageError(
            f"decoded pixel data has shape {arr.shape} {arr.dtype}, expected "
            f"({header.rows}, {header.columns}) integers", source)
    return arr, 0


def _j2k_reduced(frame: bytes, info: CodestreamInfo, reduce: int) -> tuple[np.ndarray, int] | None:
    """JPEG 2000 decoded at level min(reduce, levels), or ``None`` to decode at full size.

    Any failure here falls back to the full-size decoder, whose error (if the data are bad)
    is the one reported.
    """
    level = min(reduce, info.levels)
    if level < 1 or info.precision > 16:
        return None
    try:
        arr = codecs.decode_j2k_reduced(codecs.split_j2k(frame), info, level)
    except Exception:
        return None
    expected = (-(-info.rows // 2**level), -(-info.columns // 2**level))
    return (arr, level) if arr.shape == expected and arr.dtype.kind in "iu" else None


def _decode_options(ds: Dataset, header: hdr.ImageHeader) -> dict:
    return {"rows": header.rows, "columns": header.columns, "samples_per_pixel": 1,
            "bits_allocated": header.bits_allocated, "bits_stored": header.bits_stored,
            "pixel_representation": int(header.signed), "number_of_frames": header.frames,
            "photometric_interpretation": header.photometric or "MONOCHROME2",
            "pixel_keyword": "PixelData", "pixel_vr": ds[0x7FE00010].VR}


def _describe(ds: Dataset, header: hdr.ImageHeader, path: str | None):
    """Spacing, its attribute, the source reference and the PHI-free meta dict."""
    spacing, spacing_attribute = hdr.spacing(ds)
    source_ref = hdr.source_ref(ds, path)
    sop_class = source_ref.sop_class_uid
    sop_name = uid.UID(sop_class).name if sop_class else None
    meta = hdr.meta(ds, header, spacing_attribute, sop_name if sop_name != sop_class else None)
    return spacing, spacing_attribute, source_ref, meta


def _little_endian(ds: Dataset) -> bool:
    encoding = getattr(ds, "original_encoding", (None, True))
    return encoding[1] is not False


def _one_line(exc: BaseException, limit: int = 240) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    text = f"{type(exc).__name__}: {text}" if not text.startswith(type(exc).__name__) else text
    return text if len(text) <= limit else text[: limit - 3] + "..."
