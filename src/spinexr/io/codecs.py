"""Decode one DICOM frame to stored integer values, choosing one codec per transfer syntax.

pydicom 3 decodes with the plugin named here (one per syntax, so a corrupt codestream fails
once, with one message, instead of being retried by every plugin, some of which print to the
process's stderr). Two paths go around pydicom:

* JPEG 2000 at a reduced resolution (``reduce > 0``): openjpeg, through Pillow, decodes only
  the wavelet levels needed (pylibjpeg-openjpeg 2.6 has no reduce option).
* 12-bit JPEG Extended (Process 4): pydicom refuses it with gdcm and Pillow, and the GPL
  pylibjpeg-libjpeg is not installed; gdcm itself decodes it correctly.
"""
from __future__ import annotations

import io
import math
from typing import Any

import numpy as np
from pydicom import uid
from pydicom.pixels import get_decoder

from spinexr.io.codestream import JP2_SIGNATURE, CodestreamInfo, j2k_info, jpeg_info

#: Transfer syntax -> preferred pydicom decoding plugin.
PREFERRED_PLUGIN: dict[str, str] = {
    **{str(u): "pylibjpeg" for u in uid.JPEG2000TransferSyntaxes},
    str(uid.JPEGBaseline8Bit): "pillow",
    str(uid.JPEGExtended12Bit): "pillow",
    str(uid.JPEGLossless): "gdcm",
    str(uid.JPEGLosslessSV1): "gdcm",
    str(uid.JPEGLSLossless): "pyjpegls",
    str(uid.JPEGLSNearLossless): "pyjpegls",
    # pylibjpeg-rle is ~8x faster than pydicom's numpy decoder; it panics (a BaseException)
    # on some corrupt data, which decode_with_pydicom turns into an ordinary error.
    str(uid.RLELossless): "pylibjpeg",
}

J2K_SYNTAXES = frozenset(str(u) for u in uid.JPEG2000TransferSyntaxes)
JPEG_SYNTAXES = frozenset(str(u) for u in (
    uid.JPEGBaseline8Bit, uid.JPEGExtended12Bit, uid.JPEGLossless, uid.JPEGLosslessSV1,
    uid.JPEGLSLossless, uid.JPEGLSNearLossless))
#: Every encapsulated syntax spinexr decodes. Checked against this list, not pydicom's UID
#: dictionary: other libraries (pynetdicom) add newer syntaxes such as JPEG XL to that one.
ENCAPSULATED_SYNTAXES = J2K_SYNTAXES | JPEG_SYNTAXES | {str(uid.RLELossless)}


def decode_with_pydicom(pixel_data: bytes, transfer_syntax: str, options: dict[str, Any]
                        ) -> np.ndarray:
    """First frame decoded by pydicom with the preferred plugin, shape (rows, columns).

    Args:
        pixel_data: the (7FE0,0010) value, native or encapsulated.
        transfer_syntax: the syntax to decode as (stated or inferred; the data set's own file
            meta is not consulted, so an inferred syntax needs no edit of the header).
        options: pydicom decoding options (rows, columns, bits_allocated, bits_stored,
            pixel_representation, photometric_interpretation, number_of_frames, ...).
    """
    decoder = get_decoder(transfer_syntax)
    plugin = PREFERRED_PLUGIN.get(transfer_syntax, "")
    if plugin and plugin not in decoder.available_plugins:
        plugin = ""
    try:
        arr, _ = decoder.as_array(pixel_data, index=0, raw=True, decoding_plugin=plugin,
                                  **options)
    except Exception:
        raise
    except BaseException as exc:  # Rust codecs (pylibjpeg-rle) panic with a BaseException
        if type(exc).__name__ == "PanicException":
            raise RuntimeError(f"the decoder panicked: {exc}") from exc
        raise
    return arr


def decode_jpeg12_gdcm(frame: bytes, info: CodestreamInfo, photometric: str,
                       transfer_syntax: str) -> np.ndarray:
    """A 12-bit JPEG Extended frame decoded by gdcm, shape (rows, columns), uint16.

    Raises:
        RuntimeError: when gdcm returns no pixels.
    """
    import gdcm  # lazy: heavy, and only this rare syntax needs it directly

    fragment = gdcm.Fragment()
    fragment.SetByteStringValue(frame)
    fragments = gdcm.SequenceOfFragments.New()
    fragments.AddFragment(fragment)
    element = gdcm.DataElement(gdcm.Tag(0x7FE0, 0x0010))
    element.SetValue(fragments.__ref__())
    image = gdcm.Image()
    image.SetNumberOfDimensions(2)
    image.SetDimensions((info.columns, info.rows, 1))
    image.SetDataElement(element)
    pi = gdcm.PhotometricInterpretation.GetPIType(photometric)
    image.SetPhotometricInterpretation(gdcm.PhotometricInterpretation(pi))
    image.SetTransferSyntax(gdcm.TransferSyntax(gdcm.TransferSyntax.GetTSType(transfer_syntax)))
    image.SetPixelFormat(gdcm.PixelFormat(1, 16, info.precision, info.precision - 1, 0))
    buffer = image.GetBuffer()
    expected = info.rows * info.columns * 2
    if buffer is None:
        raise RuntimeError("gdcm could not decode the 12-bit JPEG codestream")
    data = buffer.encode("utf-8", "surrogateescape")  # gdcm returns char* as str
    if len(data) != expected:
        raise RuntimeError(f"gdcm returned {len(data)} bytes, expected {expected}")
    return np.frombuffer(data, dtype="<u2").reshape(info.rows, info.columns)


def decode_j2k_reduced(codestream: bytes, info: CodestreamInfo, level: int) -> np.ndarray:
    """Decode a JPEG 2000 codestream at resolution level ``level`` (1..info.levels).

    Returns:
        Integer array (ceil(rows / 2**level), ceil(columns / 2**level)) of the codestream's own
        values: unsigned, or int32 for signed codestreams; the caller applies Bits Stored.
    """
    from PIL import Image, ImageFile

    image = Image.open(io.BytesIO(codestream), formats=("JPEG2000",))
    size = (math.ceil(image.size[0] / 2**level), math.ceil(image.size[1] / 2**level))
    # Pillow's own ``reduce`` rounds the size (int((w + 2**(r-1)) / 2**r)) where openjpeg
    # takes the ceiling, and then fails on odd sizes ("broken data stream"): set both here.
    tile = image.tile[0]
    args = tuple(tile.args)
    image._size = size
    image.tile = [ImageFile._Tile(tile.codec_name, (0, 0, *size), tile.offset,
                                  (args[0], level, *args[2:]))]
    image.load()
    raw = np.asarray(image)
    container = 8 if raw.dtype.itemsize == 1 else 16
    shift = container - info.precision  # Pillow scales N-bit samples up to 8 or 16 bits
    if info.signed:  # ... and stores signed samples with an offset of 2**(N-1)
        return (raw.astype(np.int32) >> shift) - (1 << (info.precision - 1))
    return raw >> shift if shift > 0 else raw


def split_j2k(frame: bytes) -> bytes:
    """The raw codestream of a frame, unwrapping a (non-conformant) JP2 file header."""
    if frame.startswith(JP2_SIGNATURE):
        at = frame.find(b"jp2c")
        if at >= 0:
            return frame[at + 4:]
    return frame


def infer_encapsulated_syntax(frame: bytes) -> str | None:
    """Guess the transfer syntax of an encapsulated frame from its first marker segments."""
    if j2k_info(split_j2k(frame)) is not None:
        return str(uid.JPEG2000)
    jpeg = jpeg_info(frame)
    if jpeg is None:
        return str(uid.RLELossless) if _looks_like_rle(frame) else None
    return {0xC0: str(uid.JPEGBaseline8Bit), 0xC1: str(uid.JPEGExtended12Bit),
            0xC3: str(uid.JPEGLossless), 0xF7: str(uid.JPEGLSLossless)}.get(jpeg.marker)


def _looks_like_rle(frame: bytes) -> bool:
    """An RLE frame starts with a 64-byte header: segment count 1..15, first offset 64."""
    if len(frame) < 64:
        return False
    count, first = int.from_bytes(frame[0:4], "little"), int.from_bytes(frame[4:8], "little")
    return 1 <= count <= 15 and first == 64
