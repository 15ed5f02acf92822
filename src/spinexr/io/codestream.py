"""Read image sizes from the first bytes of codestreams and raster files, without decoding.

Decoders allocate what a header claims; these parsers let the reader compare the claim with
the DICOM header and the pixel limit first (decompression bombs, fuzzed files). Pure: bytes in,
small records out; ``None`` when the bytes are not of that kind or are cut short.
"""
from __future__ import annotations

import struct
from dataclasses import dataclass

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
JPEG_SOI = b"\xff\xd8"
J2K_SOC_SIZ = b"\xff\x4f\xff\x51"
JP2_SIGNATURE = b"\x00\x00\x00\x0cjP  \r\n\x87\n"
TIFF_SIGNATURES = (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+")

# Start-of-frame markers: baseline, extended, progressive, lossless (Huffman and arithmetic),
# and JPEG-LS SOF55.
_JPEG_SOF = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF, 0xF7}
_JPEG_STANDALONE = {0x01, *range(0xD0, 0xD8)}
_JPEG_SEQUENTIAL = {0xC0, 0xC1}


@dataclass(frozen=True)
class CodestreamInfo:
    """What a codestream header claims.

    Attributes:
        rows, columns: image size (``rows`` 0 when a JPEG defers it to a DNL marker).
        components: samples per pixel.
        precision: bits per sample.
        signed: samples are signed (JPEG 2000 only; JPEG cannot say).
        levels: JPEG 2000 wavelet decomposition levels (main header COD), else 0.
        marker: the JPEG SOF marker (e.g. 0xC1), 0 for JPEG 2000.
        scan_ok: for sequential JPEG, the first SOS has Ss=0, Se=63, Ah=Al=0 as ISO 10918-1
            requires (``None`` when not checked or not sequential).
    """

    rows: int
    columns: int
    components: int
    precision: int
    signed: bool = False
    levels: int = 0
    marker: int = 0
    scan_ok: bool | None = None


def j2k_info(data: bytes) -> CodestreamInfo | None:
    """Parse a raw JPEG 2000 codestream's SIZ and first COD marker segments."""
    if not data.startswith(J2K_SOC_SIZ) or len(data) < 4 + 40:
        return None
    lsiz = struct.unpack_from(">H", data, 4)[0]
    xsiz, ysiz, xo, yo = struct.unpack_from(">4I", data, 8)
    csiz = struct.unpack_from(">H", data, 40)[0]
    if csiz < 1 or len(data) < 42 + 3 * csiz or lsiz < 38 + 3 * csiz:
        return None
    ssiz = data[42]
    levels = _j2k_levels(data, 4 + lsiz)
    return CodestreamInfo(rows=max(ysiz - yo, 0), columns=max(xsiz - xo, 0), components=csiz,
                          precision=(ssiz & 0x7F) + 1, signed=bool(ssiz & 0x80),
                          levels=levels if levels is not None else 0)


def _j2k_levels(data: bytes, pos: int) -> int | None:
    """Decomposition levels from the first main-header COD (0xFF52), or ``None``."""
    while pos + 4 <= len(data):
        marker, length = struct.unpack_from(">HH", data, pos)
        if marker == 0xFF52 and pos + 2 + 10 <= len(data):
            return data[pos + 2 + 7]  # Lcod(2) Scod(1) SGcod(4) then SPcod: levels first
        if marker == 0xFF90 or length < 2:  # first tile-part: main header ended
            return None
        pos += 2 + length
    return None


def jpeg_info(data: bytes) -> CodestreamInfo | None:
    """Parse a JPEG (ISO 10918) or JPEG-LS (ISO 14495) codestream's SOF and first SOS."""
    if not data.startswith(JPEG_SOI):
        return None
    pos, frame = 2, None
    while pos + 4 <= len(data):
        if data[pos] != 0xFF:
            return frame
        marker = data[pos + 1]
        if marker == 0xFF:  # fill byte
            pos += 1
            continue
        if marker in _JPEG_STANDALONE:
            pos += 2
            continue
        if marker == 0xD9:
            return frame
        length = struct.unpack_from(">H", data, pos + 2)[0]
        if length < 2:
            return frame
        segment = data[pos + 4: pos + 2 + length]
        if marker in _JPEG_SOF and frame is None:
            frame = _jpeg_frame(marker, segment)
            if frame is None:
                return None
        elif marker == 0xDA:
            return _with_scan(frame, segment) if frame is not None else None
        pos += 2 + length
    return frame


def _jpeg_frame(marker: int, seg: bytes) -> CodestreamInfo | None:
    if len(seg) < 6:
        return None
    precision, rows, columns, components = struct.unpack_from(">BHHB", seg, 0)
    return CodestreamInfo(rows=rows, columns=columns, components=components,
                          precision=precision, marker=marker)


def _with_scan(frame: CodestreamInfo, seg: bytes) -> CodestreamInfo:
    if frame.marker not in _JPEG_SEQUENTIAL or len(seg) < 1:
        return frame
    ns = seg[0]
    tail = seg[1 + 2 * ns: 1 + 2 * ns + 3]
    ok = len(tail) == 3 and tail[0] == 0 and tail[1] == 63 and tail[2] == 0
    return CodestreamInfo(frame.rows, frame.columns, frame.components, frame.precision,
                          marker=frame.marker, scan_ok=ok)


def png_info(data: bytes) -> CodestreamInfo | None:
    """Parse a PNG's IHDR chunk (always first)."""
    if not data.startswith(PNG_SIGNATURE) or len(data) < 29 or data[12:16] != b"IHDR":
        return None
    width, height, depth, colour = struct.unpack_from(">IIBB", data, 16)
    components = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}.get(colour, 0)
    return CodestreamInfo(rows=height, columns=width, components=components, precision=depth)


def tiff_info(data: bytes) -> CodestreamInfo | None:
    """Parse the first IFD of a TIFF or BigTIFF for ImageWidth/ImageLength/SamplesPerPixel."""
    if data[:4] not in TIFF_SIGNATURES:
        return None
    end = "<" if data[:2] == b"II" else ">"
    big = data[2:4] in (b"+\x00", b"\x00+")
    try:
        if big:
            ifd = struct.unpack_from(end + "Q", data, 8)[0]
            count, pos, entry = struct.unpack_from(end + "Q", data, ifd)[0], ifd + 8, 20
        else:
            ifd = struct.unpack_from(end + "I", data, 4)[0]
            count, pos, entry = struct.unpack_from(end + "H", data, ifd)[0], ifd + 2, 12
        tags = {}
        for i in range(min(count, 4096)):
            tag, typ = struct.unpack_from(end + "HH", data, pos + i * entry)
            if tag in (256, 257, 258, 277):
                value_at = pos + i * entry + (12 if big else 8)
                fmt = {3: "H", 4: "I", 16: "Q"}.get(typ)
                if fmt is not None:
                    tags[tag] = struct.unpack_from(end + fmt, data, value_at)[0]
    except struct.error:
        return None
    if 256 not in tags or 257 not in tags:
        return None
    return CodestreamInfo(rows=tags[257], columns=tags[256], components=tags.get(277, 1),
                          precision=tags.get(258, 0) if tags.get(277, 1) == 1 else 0)
