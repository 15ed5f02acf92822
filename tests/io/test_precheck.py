"""``precheck``: the header-only check of uploads, and the reader's word for truncated files.

Each case is a file the full reader refuses too; the check must refuse it in milliseconds and
say why, and must let through every file the reader accepts (every transfer syntax, a sequence
of undefined length, a bare data set, a cut exactly at the end of the pixel data's padding).
"""
from __future__ import annotations

import io
import time

import numpy as np
import pytest
from pydicom import dcmwrite, uid
from pydicom.sequence import Sequence

from dicom_factory import dicom_bytes, lut_item, make_dataset, to_bytes
from spinexr.errors import CorruptImageError, ImageTooLargeError, NotAnImageError
from spinexr.io import read_radiograph
from spinexr.io.precheck import precheck

PIXELS = (np.arange(64 * 48, dtype=np.uint16).reshape(64, 48) * 7) % 4096


def _written(syntax=None, *, sequence: bool = True, compress=None) -> bytes:
    ds = make_dataset(PIXELS, bits_stored=12)
    if sequence:                       # of undefined length, so that walking must descend
        ds.VOILUTSequence = Sequence([lut_item([4096, 0, 16], list(range(4096)))])
        ds["VOILUTSequence"].is_undefined_length = True
        ds.VOILUTSequence[0].is_undefined_length_sequence_item = True
    if syntax == uid.ExplicitVRBigEndian:
        ds.PixelData = PIXELS.astype(">u2").tobytes()
    if syntax is not None:
        ds.file_meta.TransferSyntaxUID = syntax
    if compress is not None:
        ds.compress(compress, PIXELS)
    buf = io.BytesIO()
    dcmwrite(buf, ds, enforce_file_format=True)
    return buf.getvalue()


GOOD = {
    "explicit little": lambda: _written(),
    "implicit little": lambda: _written(uid.ImplicitVRLittleEndian),
    "explicit big": lambda: _written(uid.ExplicitVRBigEndian),
    "deflated": lambda: _written(uid.DeflatedExplicitVRLittleEndian),
    "rle": lambda: _written(compress=uid.RLELossless),
    "jpeg 2000": lambda: _written(compress=uid.JPEG2000Lossless),
    "bare data set": lambda: to_bytes(make_dataset(PIXELS), preamble=False),
    "8-bit": lambda: dicom_bytes(np.zeros((5, 7), np.uint8)),     # odd length, padded
}


@pytest.mark.parametrize("make", GOOD.values(), ids=GOOD.keys())
def test_files_the_reader_accepts_pass(make):
    data = make()
    read_radiograph(data)
    assert precheck(data, "x.dcm") == "dicom"


def _encapsulated_without_fragments() -> bytes:
    data = _written(compress=uid.RLELossless, sequence=False)
    at = data.index(b"\xe0\x7f\x10\x00OB")
    item = b"\xfe\xff\x00\xe0\x00\x00\x00\x00"                  # an empty offset table
    return data[:at + 12] + item + b"\xfe\xff\xdd\xe0\x00\x00\x00\x00"


BAD = {
    "DICM then zeros": (lambda: b"\0" * 128 + b"DICM" + b"\0" * (60 << 20), "zero bytes"),
    "cut in the header": (lambda: _written()[:700], "truncated"),
    "cut in the pixels": (lambda: _written()[:-100], "pixel data are incomplete"),
    "cut in a sequence": (lambda: _written()[:_written().index(b"\xfe\xff\xdd\xe0") - 3],
                          "truncated"),
    "Rows larger than the pixels": (lambda: dicom_bytes(PIXELS, Rows=640),
                                    "pixel data incomplete"),
    "no fragments": (_encapsulated_without_fragments, "no fragments"),
    "cut in a fragment": (lambda: _written(compress=uid.JPEG2000Lossless)[:-40], "truncated"),
}


@pytest.mark.parametrize("make, words", BAD.values(), ids=BAD.keys())
def test_files_not_worth_decoding_are_refused_fast_with_the_reason(make, words):
    data = make()
    with pytest.raises(CorruptImageError):
        read_radiograph(data, name="x.dcm")                      # the reader refuses it too
    t0 = time.perf_counter()
    with pytest.raises(CorruptImageError, match=words) as info:
        precheck(data, "x.dcm")
    assert time.perf_counter() - t0 < 0.5
    assert info.value.source == "x.dcm"


def test_raster_headers_and_unknown_bytes():
    from PIL import Image

    buf = io.BytesIO()
    Image.new("L", (300, 200)).save(buf, format="PNG")
    assert precheck(buf.getvalue(), "a.png") == "png"
    with pytest.raises(ImageTooLargeError, match="300x200"):
        precheck(buf.getvalue(), "a.png", max_pixels=1000)
    with pytest.raises(CorruptImageError, match="no image size"):
        precheck(b"\x89PNG\r\n\x1a\n" + bytes(100), "b.png")
    with pytest.raises(NotAnImageError, match="c.bin"):
        precheck(b"hello world" * 20, "c.bin")


def test_a_truncated_file_is_called_truncated_by_the_reader():
    """It used to say the file had 'no (7FE0,0010) Pixel Data element: it holds no image'."""
    data = _written()
    for cut in (600, 700, 1500):
        with pytest.raises(CorruptImageError, match="the file is truncated .*Pixel Data are "
                                                    "missing or incomplete"):
            read_radiograph(data[:cut], name="x.dcm")
