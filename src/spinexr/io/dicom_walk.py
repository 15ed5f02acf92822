"""Walk the element structure of DICOM bytes without converting a single value.

:func:`walk` follows element headers (tag, VR, length) from the start of the data set to
(7FE0,0010) Pixel Data, skipping every value and descending only into undefined-length
sequences, and records where the pixel data sit and the few Image Pixel attributes that size
them. It costs microseconds per element and is bounded (:data:`MAX_ELEMENTS`, :data:`MAX_DEPTH`),
so a file of a million tiny elements or of zeros is refused before pydicom (which reads such
files element by element, seconds per megabyte) sees it. Pure: bytes in, a record out.

It is as lenient as the reader where the reader copes (tags out of order, a transfer syntax that
contradicts the data, an explicit-VR file with implicit elements) and strict only where the
reader must fail too: a file that ends inside an element is truncated.
"""
from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass, field

PIXEL_DATA = 0x7FE00010
UNDEFINED = 0xFFFFFFFF
MAX_ELEMENTS = 200_000
MAX_DEPTH = 32
#: Inflated size limit of a deflated data set (its header; pixel data are never deflated alone).
MAX_INFLATED = 512 << 20

_ITEM, _ITEM_END, _SEQUENCE_END = 0xFFFEE000, 0xFFFEE00D, 0xFFFEE0DD
_LONG_VRS = {b"OB", b"OD", b"OF", b"OL", b"OV", b"OW", b"SQ", b"SV", b"UC", b"UN", b"UR",
             b"UT", b"UV"}
_DEFLATED = "1.2.840.10008.1.2.1.99"
_EXPLICIT_BIG = "1.2.840.10008.1.2.2"
#: (0028,xxxx) values that size the pixel data: tag -> name.
IMAGE_TAGS = {0x00280002: "samples", 0x00280004: "photometric", 0x00280008: "frames",
              0x00280010: "rows", 0x00280011: "columns", 0x00280100: "bits_allocated"}
#: Zero-length (0000,0000) elements in a row taken as zero-filled bytes, not a data set.
_ZERO_RUN = 4


class Truncated(Exception):
    """The bytes end inside an element; the message says where."""


class Malformed(Exception):
    """The bytes are not a DICOM element structure (zeros, runaway nesting, too many elements)."""


@dataclass
class Walk:
    """What :func:`walk` found.

    Attributes:
        transfer_syntax: (0002,0010) as stored, ``None`` without a file meta group.
        little_endian / implicit: the data set's encoding as walked.
        pixel_offset: byte offset (in ``data``) of the Pixel Data value, ``None`` without one.
        pixel_length: its declared length (``UNDEFINED`` when encapsulated).
        data: the bytes walked (the inflated data set for the deflated transfer syntax).
        image: raw values of :data:`IMAGE_TAGS` found at the top level, by name.
        elements: how many element headers were read.
    """

    transfer_syntax: str | None = None
    little_endian: bool = True
    implicit: bool = False
    pixel_offset: int | None = None
    pixel_length: int = 0
    data: bytes = b""
    image: dict[str, bytes] = field(default_factory=dict)
    elements: int = 0


def walk(data: bytes) -> Walk:
    """Walk ``data`` (a DICOM file or bare data set) up to the Pixel Data value.

    Raises:
        Truncated: the data end inside an element header, value or sequence.
        Malformed: zero-filled, nested deeper than :data:`MAX_DEPTH` or more than
            :data:`MAX_ELEMENTS` element headers before the pixel data.
    """
    w = Walk(data=data)
    pos = 0
    if data[128:132] == b"DICM":
        pos = _file_meta(data, 132, w)
    elif data[:2] == b"\x02\x00":             # a file meta group without the preamble
        pos = _file_meta(data, 0, w)
    if w.transfer_syntax == _DEFLATED:
        w.data = _inflate(data[pos:])
        pos = 0
    w.little_endian, w.implicit = _encoding(w.data, pos, w.transfer_syntax)
    _elements(w, pos, len(w.data), depth=0, implicit=w.implicit)
    return w


def _file_meta(data: bytes, pos: int, w: Walk) -> int:
    """Walk group 0002 (explicit VR little endian); the offset of the data set after it."""
    while pos + 4 <= len(data) and struct.unpack_from("<H", data, pos)[0] == 0x0002:
        tag, _, length, value = _header(data, pos, little=True, implicit=False)
        w.elements += 1
        end = _value_end(data, tag, value, length)
        if tag == 0x00020010:
            w.transfer_syntax = data[value:end].decode("latin-1").strip(" \x00") or None
        pos = end
    return pos


def _encoding(data: bytes, pos: int, syntax: str | None) -> tuple[bool, bool]:
    """(little endian, implicit VR) of the data set at ``pos``: big endian only when the
    transfer syntax says so or the first group reads as 0x0008 big endian; implicit VR when the
    first element has no VR (what pydicom does when the two disagree)."""
    if pos + 8 > len(data):
        return True, False
    little = syntax != _EXPLICIT_BIG
    if syntax is None and struct.unpack_from(">H", data, pos)[0] in (0x0002, 0x0008) \
            and struct.unpack_from("<H", data, pos)[0] not in (0x0002, 0x0008):
        little = False
    return little, not _is_vr(data[pos + 4:pos + 6])


def _is_vr(two: bytes) -> bool:
    return len(two) == 2 and all(0x41 <= c <= 0x5A for c in two)


def _header(data: bytes, pos: int, *, little: bool, implicit: bool
            ) -> tuple[int, bytes | None, int, int]:
    """(tag, VR or None, length, offset of the value) of the element at ``pos``."""
    if pos + 8 > len(data):
        raise Truncated(f"the file ends inside an element header at byte {pos:,}")
    order = "<" if little else ">"
    group, element, length = struct.unpack_from(order + "HHL", data, pos)
    tag = group << 16 | element
    if group == 0xFFFE or implicit:
        return tag, None, length, pos + 8
    vr = data[pos + 4:pos + 6]
    if not b"AA" <= vr <= b"ZZ":       # an implicit element in an explicit data set (pydicom's
        return tag, None, length, pos + 8    # test: unknown VRs in that range get 2-byte lengths)
    if vr in _LONG_VRS:
        if pos + 12 > len(data):
            raise Truncated(f"the file ends inside the header of element {_name(tag)}")
        return tag, vr, struct.unpack_from(order + "L", data, pos + 8)[0], pos + 12
    return tag, vr, struct.unpack_from(order + "H", data, pos + 6)[0], pos + 8


def _value_end(data: bytes, tag: int, value: int, length: int) -> int:
    if value + length > len(data):
        raise Truncated(f"element {_name(tag)} declares {length:,} bytes but the file ends "
                        f"{len(data) - value:,} bytes after its header")
    return value + length


def _elements(w: Walk, pos: int, end: int, *, depth: int, implicit: bool) -> int:
    """Walk elements from ``pos`` to ``end``, or to the item delimiter of an undefined-length
    item (``end`` is then the file's end); stops at Pixel Data at the top level."""
    zeros = 0
    while pos < end:
        tag, vr, length, value = _header(w.data, pos, little=w.little_endian, implicit=implicit)
        _count(w)
        if tag == _ITEM_END:
            return value
        zeros = zeros + 1 if tag == 0 and length == 0 else 0
        if zeros >= _ZERO_RUN:
            raise Malformed(f"zero bytes where DICOM elements should be (from byte "
                            f"{pos - 8 * (_ZERO_RUN - 1):,})")
        if depth == 0 and tag == PIXEL_DATA:
            w.pixel_offset, w.pixel_length = value, length
            return pos
        if length == UNDEFINED:
            pos = _sequence(w, value, depth=depth + 1, implicit=implicit or vr == b"UN")
            continue
        pos = _value_end(w.data, tag, value, length)
        if depth == 0 and tag in IMAGE_TAGS:
            w.image[IMAGE_TAGS[tag]] = w.data[value:pos]
    if depth:
        raise Truncated("the file ends inside a sequence item")
    return pos


def _sequence(w: Walk, pos: int, *, depth: int, implicit: bool) -> int:
    """Walk the items of an undefined-length sequence; the offset after its delimiter."""
    if depth > MAX_DEPTH:
        raise Malformed(f"sequences nested deeper than {MAX_DEPTH} levels")
    while True:
        tag, _, length, value = _header(w.data, pos, little=w.little_endian, implicit=True)
        _count(w)
        if tag == _SEQUENCE_END:
            return value
        if tag != _ITEM:
            raise Malformed(f"element {_name(tag)} at byte {pos:,} where a sequence item "
                            "(FFFE,E000) should be")
        if length == UNDEFINED:
            pos = _elements(w, value, len(w.data), depth=depth, implicit=implicit)
        else:
            pos = _value_end(w.data, tag, value, length)


def fragments(w: Walk) -> int:
    """How many non-empty fragments the encapsulated pixel data hold (the first item, the
    Basic Offset Table, is not one); a missing sequence delimiter at the very end is allowed.

    Raises:
        Truncated: the file ends inside an item.
        Malformed: something other than an item among the fragments.
    """
    data, pos, count, first = w.data, w.pixel_offset, 0, True
    while pos < len(data):
        tag, _, length, value = _header(data, pos, little=True, implicit=True)
        if tag == _SEQUENCE_END:
            break
        if tag != _ITEM or length == UNDEFINED:
            raise Malformed(f"element {_name(tag)} at byte {pos:,} among the fragments of the "
                            "encapsulated Pixel Data")
        pos = _value_end(data, tag, value, length)
        count += 0 if first or not length else 1
        first = False
    return count


def pixel_truncation(w: Walk) -> str | None:
    """Where the file ends inside its pixel data (a fragment, or short of the declared length),
    or ``None``."""
    if w.pixel_offset is None:
        return None
    if w.pixel_length == UNDEFINED:
        try:
            fragments(w)
        except Truncated as exc:
            return str(exc)
        except Malformed:
            return None
        return None
    have = len(w.data) - w.pixel_offset
    if have < w.pixel_length:
        return (f"the file ends {have:,} bytes into the {w.pixel_length:,} bytes of (7FE0,0010) "
                "Pixel Data")
    return None


def _count(w: Walk) -> None:
    w.elements += 1
    if w.elements > MAX_ELEMENTS:
        raise Malformed(f"more than {MAX_ELEMENTS:,} elements before the pixel data")


def _inflate(raw: bytes) -> bytes:
    try:
        inflater = zlib.decompressobj(-zlib.MAX_WBITS)
        out = inflater.decompress(raw, MAX_INFLATED)
    except zlib.error as exc:
        raise Malformed(f"the deflated data set cannot be inflated ({exc})") from None
    if inflater.unconsumed_tail:
        raise Malformed(f"the deflated data set inflates to more than {MAX_INFLATED:,} bytes")
    return out


def _name(tag: int) -> str:
    return f"({tag >> 16:04X},{tag & 0xFFFF:04X})"
