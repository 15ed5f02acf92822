"""read_radiograph on tiny DICOM files built in the test: LUTs, windows, bits, spacing, refusals."""
from __future__ import annotations

import math

import numpy as np
import pytest
from dicom_factory import ANY_MODALITY, dicom_bytes, lut_item, make_dataset, to_bytes
from pydicom import uid
from pydicom.sequence import Sequence

from spinexr.errors import (ConfigError, CorruptImageError, ImageTooLargeError,
                            ModalityNotAllowedError, NoPixelDataError, NotAnImageError,
                            SpinexrError, UnsupportedImageError)
from spinexr.io import MRI_POLICY, RADIOGRAPH_POLICY, ModalityPolicy, read_radiograph

ROW = np.array([[44, 45, 50, 55, 56]], dtype=np.uint16)


def test_rescale_and_window_from_the_header():
    data = dicom_bytes(np.array([[0, 1000]], np.uint16), bits_stored=12, RescaleSlope="0.684",
                       RescaleIntercept="200", WindowCenter="1600", WindowWidth="2800")
    image = read_radiograph(data)
    expected = [(200 - 1599.5) / 2799 + 0.5, (884 - 1599.5) / 2799 + 0.5]
    np.testing.assert_allclose(image.pixels, [expected], atol=1e-6)
    assert image.info.lut_path == "rescale(0.684,200) > window(1600,2800,LINEAR)"


@pytest.mark.parametrize("function, expected", [
    ("LINEAR", [0.0, 0.05, 0.55, 1.0, 1.0]),
    ("LINEAR_EXACT", [0.0, 0.5 - 5 / 11, 0.5, 0.5 + 5 / 11, 1.0]),  # (x - 50) / 11 + 0.5
    ("SIGMOID", [1 / (1 + math.exp(4 * d / 11)) for d in (6, 5, 0, -5, -6)]),
])
def test_voi_lut_function_is_honoured(function, expected):
    data = dicom_bytes(ROW, WindowCenter="50", WindowWidth="11", VOILUTFunction=function)
    image = read_radiograph(data)
    np.testing.assert_allclose(image.pixels[0], expected, atol=1e-6)
    assert image.info.lut_path == f"window(50,11,{function})"


def test_multi_valued_window_uses_the_first_pair():
    data = dicom_bytes(ROW, WindowCenter=["50", "1000"], WindowWidth=["11", "2000"])
    image = read_radiograph(data)
    np.testing.assert_allclose(image.pixels[0], [0.0, 0.05, 0.55, 1.0, 1.0], atol=1e-6)


def test_monochrome1_is_inverted_after_the_window():
    data = dicom_bytes(ROW, photometric="MONOCHROME1", WindowCenter="50", WindowWidth="11")
    image = read_radiograph(data)
    np.testing.assert_allclose(image.pixels[0], [1.0, 0.95, 0.45, 0.0, 0.0], atol=1e-6)
    assert image.info.lut_path == "window(50,11,LINEAR) > invert"


def test_presentation_lut_shape_inverse_on_monochrome2_inverts():
    data = dicom_bytes(ROW, WindowCenter="50", WindowWidth="11", PresentationLUTShape="INVERSE")
    image = read_radiograph(data)
    np.testing.assert_allclose(image.pixels[0], [1.0, 0.95, 0.45, 0.0, 0.0], atol=1e-6)
    assert image.info.lut_path.endswith("invert(PresentationLUTShape INVERSE)")


def test_modality_lut_sequence_then_percentiles():
    ds = make_dataset(np.array([[9, 10, 11, 12, 13, 14]], np.uint16), bits_stored=12)
    ds.ModalityLUTSequence = Sequence([lut_item([4, 10, 16], [100, 200, 300, 400])])
    image = read_radiograph(to_bytes(ds))
    # modality values [100 100 200 300 400 400]; 0.5/99.5 % of those: 100 and 400
    np.testing.assert_allclose(image.pixels[0], [0, 0, 1 / 3, 2 / 3, 1, 1], atol=1e-6)
    assert image.info.lut_path.startswith("modality_lut(4 entries,first 10,16 bit) > percentile")


def test_modality_lut_with_signed_first_value():
    ds = make_dataset(np.array([[-3, -2, -1, 0]], np.int16), bits_stored=16,
                      WindowCenter="8", WindowWidth="3", VOILUTFunction="LINEAR_EXACT")
    ds.ModalityLUTSequence = Sequence([lut_item([3, 65534, 16], [7, 8, 9])])  # 65534 = -2 as SS
    image = read_radiograph(to_bytes(ds))
    # values [7 7 8 9]; LINEAR_EXACT (x - 8) / 3 + 0.5
    np.testing.assert_allclose(image.pixels[0], [1 / 6, 1 / 6, 0.5, 5 / 6], atol=1e-6)


def test_voi_lut_sequence_with_8_bit_descriptor():
    ds = make_dataset(np.array([[0, 255, 256, 300, 511, 600]], np.uint16), bits_stored=12,
                      WindowCenter="0", WindowWidth="1")  # the VOI LUT takes precedence
    ds.VOILUTSequence = Sequence([lut_item([512, 0, 8], list(np.arange(512) // 2))])
    image = read_radiograph(to_bytes(ds))
    np.testing.assert_allclose(image.pixels[0], np.array([0, 127, 128, 150, 255, 255]) / 255,
                               atol=1e-7)
    assert image.info.lut_path == "voi_lut(512 entries,first 0,8 bit)"


def test_bits_stored_masks_junk_high_bits():
    data = dicom_bytes(np.array([[0xF000, 0x1FFF, 0x0800]], np.uint16), bits_stored=12,
                       WindowCenter="2048", WindowWidth="4096", VOILUTFunction="LINEAR_EXACT")
    image = read_radiograph(data)
    np.testing.assert_allclose(image.pixels[0], [0.0, 4095 / 4096, 0.5], atol=1e-6)


def test_signed_pixels_sign_extended_from_bits_stored():
    raw = np.array([[0x0FFF, 0x0800, 0x07FF]], np.uint16).view(np.int16)  # -1, -2048, 2047
    data = dicom_bytes(raw, bits_stored=12, WindowCenter="0", WindowWidth="4096",
                       VOILUTFunction="LINEAR_EXACT")
    image = read_radiograph(data)
    np.testing.assert_allclose(image.pixels[0], [0.5 - 1 / 4096, 0.0, 0.5 + 2047 / 4096],
                               atol=1e-6)


@pytest.mark.parametrize("attrs, expected", [
    ({"PixelSpacing": ["0.2", "0.3"], "ImagerPixelSpacing": ["0.1", "0.1"]}, (0.2, 0.3)),
    ({"PixelSpacing": ["0", "0"]}, None),
    ({"PixelSpacing": ["0", "0"], "ImagerPixelSpacing": ["0.15", "0.15"]}, (0.15, 0.15)),
    ({"ImagerPixelSpacing": ["0.139", "0.139"]}, (0.139, 0.139)),
    ({"PixelSpacing": ["-0.1", "0.1"]}, None),
    ({}, None),
])
def test_pixel_spacing_edge_cases(attrs, expected):
    image = read_radiograph(dicom_bytes(np.zeros((4, 4), np.uint8), **attrs))
    assert image.spacing_mm == (pytest.approx(expected) if expected else None)


def test_non_numeric_spacing_is_unknown():
    data = dicom_bytes(np.zeros((4, 4), np.uint8), PixelSpacing=["0.5", "0.5"])
    image = read_radiograph(_replace_value(data, 0x00280030, b"ab\\cd "))
    assert image.spacing_mm is None


def _replace_value(data: bytes, tag: int, value: bytes) -> bytes:
    """Put raw ``value`` (even-length, possibly invalid) into explicit-LE element ``tag``."""
    key = (tag >> 16).to_bytes(2, "little") + (tag & 0xFFFF).to_bytes(2, "little")
    at = data.index(key) + 4
    length = int.from_bytes(data[at + 2: at + 4], "little")
    return data[: at + 2] + len(value).to_bytes(2, "little") + value + data[at + 4 + length:]


def test_spacing_scales_with_reduce():
    data = dicom_bytes(np.zeros((8, 6), np.uint8), PixelSpacing=["0.1", "0.2"])
    image = read_radiograph(data, reduce=1)
    assert image.pixels.shape == (4, 3)
    assert image.spacing_mm == pytest.approx((0.2, 0.4))
    assert image.info.reduce == 1 and image.info.stored_shape == (8, 6)


def test_reduce_averages_in_modality_units_before_the_window():
    data = dicom_bytes(np.array([[0, 100], [100, 200]], np.uint16), RescaleSlope="2",
                       RescaleIntercept="0", WindowCenter="200", WindowWidth="400",
                       VOILUTFunction="LINEAR_EXACT")
    image = read_radiograph(data, reduce=1)
    # mean of 2 * [0 100 100 200] = 200 -> LINEAR_EXACT (200 - 200) / 400 + 0.5 = 0.5
    np.testing.assert_allclose(image.pixels, [[0.5]], atol=1e-6)
    assert image.info.lut_path == "rescale(2,0) > area(1/2) > window(200,400,LINEAR_EXACT)"


def test_result_contract_source_meta_and_header():
    data = dicom_bytes(ROW, modality="CR", BodyPartExamined="LSPINE", ViewPosition="AP")
    image = read_radiograph(data, name="upload.dcm")
    assert image.pixels.dtype == np.float32 and image.pixels.shape == (1, 5)
    assert not image.pixels.flags.writeable
    assert image.source.path is None
    assert image.source.study_instance_uid == "1.2.826.0.1.3680043.8.498.2"
    assert image.source.sop_class_uid == uid.DigitalXRayImageStorageForPresentation
    assert image.meta["modality"] == "CR" and image.meta["body_part_examined"] == "LSPINE"
    assert image.meta["view_position"] == "AP" and image.meta["rows"] == 1
    text = repr(image.meta)
    for phi in ("Doe", "PID-12345", "19700101", "ACC-999"):
        assert phi not in text
    assert "PixelData" not in image.header and image.header.PatientID == "PID-12345"
    assert image.info.format == "dicom" and image.info.stored_shape == (1, 5)


def test_no_modality_and_malformed_uids_still_load():
    # As in VinDr-SpineXR: no (0008,0060) and UIDs that break the UI rules (written raw here).
    data = dicom_bytes(ROW, modality=None)
    data = _replace_value(data, 0x0020000D, b"1.2.04.5 x")       # Study Instance UID
    data = _replace_value(data, 0x00020003, b"1.2.840.abc\x00")  # Media Storage SOP Instance
    data = _replace_value(data, 0x00080018, b"01.2.3\x00")         # SOP Instance UID
    image = read_radiograph(data)
    assert image.source.study_instance_uid == "1.2.04.5 x"
    assert image.source.sop_instance_uid == "01.2.3"
    assert image.meta["modality"] is None


def test_no_preamble_and_no_transfer_syntax_is_inferred():
    data = dicom_bytes(ROW, preamble=False, WindowCenter="50", WindowWidth="11")
    assert data[128:132] != b"DICM"
    image = read_radiograph(data)
    np.testing.assert_allclose(image.pixels[0], [0.0, 0.05, 0.55, 1.0, 1.0], atol=1e-6)
    assert image.info.transfer_syntax == uid.ExplicitVRLittleEndian
    assert "inferred" in image.info.transfer_syntax_name


def test_compressed_syntaxes_made_here_round_trip():
    rng = np.random.default_rng(3)
    arr = rng.integers(0, 4096, (32, 48)).astype(np.uint16)
    for syntax in (uid.RLELossless, uid.JPEGLSLossless, uid.JPEG2000Lossless):
        ds = make_dataset(arr, bits_stored=12, WindowCenter="2048", WindowWidth="4096",
                          VOILUTFunction="LINEAR_EXACT")
        ds.compress(syntax)
        image = read_radiograph(to_bytes(ds))
        np.testing.assert_allclose(image.pixels, arr / 4096, atol=1e-6, err_msg=syntax.name)
        assert image.info.transfer_syntax == syntax


def test_jpeg2000_reduce_decodes_at_a_lower_level():
    yy, xx = np.mgrid[:61, :37]
    arr = (xx * 40 + yy * 20).astype(np.int16) - 1000  # signed, odd sizes
    ds = make_dataset(arr, bits_stored=13, WindowCenter="0", WindowWidth="4000",
                      VOILUTFunction="LINEAR_EXACT")
    ds.compress(uid.JPEG2000Lossless)
    full = read_radiograph(to_bytes(ds))
    half = read_radiograph(to_bytes(ds), reduce=1)
    assert half.pixels.shape == (31, 19)
    assert half.info.lut_path.startswith("j2k_level(1) > ")
    ref = full.pixels.astype(np.float64)
    mean = np.add.reduceat(np.add.reduceat(ref, np.arange(0, 61, 2), 0), np.arange(0, 37, 2), 1)
    counts = np.outer(np.minimum(2, 61 - np.arange(0, 61, 2)),
                      np.minimum(2, 37 - np.arange(0, 37, 2)))
    np.testing.assert_allclose(half.pixels, mean / counts, atol=0.02)


def test_refusals_name_the_input_and_reason():
    with pytest.raises(ModalityNotAllowedError,
                       match=r"<bytes>: .*Modality 'CT' is not projection radiography; the "
                             r"radiograph path accepts CR, DR, DX, RG"):
        read_radiograph(dicom_bytes(ROW, modality="CT"))
    with pytest.raises(ModalityNotAllowedError, match="not magnetic resonance"):
        read_radiograph(dicom_bytes(ROW, modality="CR"), policy=MRI_POLICY)
    strict = ModalityPolicy("strict", frozenset({"DX"}), allow_unknown=False)
    with pytest.raises(ModalityNotAllowedError, match="'missing'"):
        read_radiograph(dicom_bytes(ROW, modality=None), policy=strict)
    assert read_radiograph(dicom_bytes(ROW, modality="MR"), policy=MRI_POLICY).height == 1


def test_header_size_limit_refuses_before_decoding():
    ds = make_dataset(np.zeros((2, 2), np.uint8))
    ds.Rows, ds.Columns = 60000, 60000  # Pixel Data holds only 4 bytes
    with pytest.raises(ImageTooLargeError, match=r"60000 rows x 60000 columns .* over the limit"):
        read_radiograph(to_bytes(ds))
    with pytest.raises(ImageTooLargeError, match="over the limit of 3"):
        read_radiograph(dicom_bytes(np.zeros((2, 2), np.uint8)), max_pixels=3)


def test_multi_frame_colour_and_missing_pixels_are_refused():
    ds = make_dataset(np.zeros((4, 4), np.uint8), NumberOfFrames="2")
    ds.PixelData = bytes(32)
    with pytest.raises(UnsupportedImageError, match=r"Number of Frames is 2"):
        read_radiograph(to_bytes(ds))
    ds = make_dataset(np.zeros((4, 4), np.uint8), photometric="RGB", SamplesPerPixel=3)
    ds.PixelData = bytes(48)
    with pytest.raises(UnsupportedImageError, match=r"'RGB' with \(0028,0002\) Samples per "):
        read_radiograph(to_bytes(ds))
    ds = make_dataset(np.zeros((4, 4), np.uint8))
    del ds.PixelData
    with pytest.raises(CorruptImageError, match="no \\(7FE0,0010\\) Pixel Data: the file is "
                                                "probably truncated"):
        read_radiograph(to_bytes(ds))
    for keyword in ("Rows", "Columns", "PixelData"):
        delattr(ds, keyword) if keyword in ds else None
    with pytest.raises(NoPixelDataError, match="no \\(7FE0,0010\\) Pixel Data element"):
        read_radiograph(to_bytes(ds))


def test_truncated_pixel_data_is_corrupt():
    data = dicom_bytes(np.zeros((16, 16), np.uint16))
    with pytest.raises(CorruptImageError, match="truncated or corrupt"):
        read_radiograph(data[:-40])


def test_not_an_image_and_bad_arguments():
    with pytest.raises(NotAnImageError, match=r"notes\.txt: not DICOM .* not a PNG, JPEG or TIFF"):
        read_radiograph(b"hello, this is plain text and not an image", name="notes.txt")
    with pytest.raises(NotAnImageError, match="empty"):
        read_radiograph(b"")
    with pytest.raises(ValueError, match="reduce"):
        read_radiograph(dicom_bytes(ROW), reduce=-1)
    with pytest.raises(ValueError, match="max_pixels"):
        read_radiograph(dicom_bytes(ROW), max_pixels=0)


def test_missing_file_is_a_spinexr_error(tmp_path):
    with pytest.raises(SpinexrError, match=r"nope\.dcm: cannot read the file"):
        read_radiograph(tmp_path / "nope.dcm")


def test_reading_a_path_keeps_it_as_source(tmp_path):
    path = tmp_path / "x.dcm"
    path.write_bytes(dicom_bytes(ROW))
    image = read_radiograph(path, policy=ANY_MODALITY)
    assert image.source.path == str(path) and image.image_id == "1.2.826.0.1.3680043.8.498.1"
    assert RADIOGRAPH_POLICY.accepts("DX") and not RADIOGRAPH_POLICY.accepts("CT")


def _j2k_bytes() -> bytes:
    arr = (np.arange(64 * 48).reshape(64, 48) % 4096).astype(np.uint16)
    ds = make_dataset(arr, bits_stored=12)
    ds.compress(uid.JPEG2000Lossless)
    return to_bytes(ds)


def test_missing_transfer_syntax_of_compressed_data_is_inferred_from_the_codestream():
    data = _replace_value(_j2k_bytes(), 0x00020010, b"")
    image = read_radiograph(data)
    assert image.info.transfer_syntax == uid.JPEG2000
    assert image.info.transfer_syntax_name.endswith("(inferred from the codestream)")
    assert image.pixels.shape == (64, 48)


def test_unknown_or_contradicting_transfer_syntax_is_refused():
    jpeg_xl = b"1.2.840.10008.1.2.4.110\x00"  # JPEG XL: not decodable by pydicom 3.0
    with pytest.raises(UnsupportedImageError, match=r"'1.2.840.10008.1.2.4.110' is not one"):
        read_radiograph(_replace_value(_j2k_bytes(), 0x00020010, jpeg_xl))
    native = dicom_bytes(ROW)
    with pytest.raises(CorruptImageError, match="is compressed but the Pixel Data is not "
                                                "encapsulated"):
        read_radiograph(_replace_value(native, 0x00020010, b"1.2.840.10008.1.2.4.90\x00"))


def test_jpeg2000_reduce_falls_back_to_area_averaging(monkeypatch):
    from spinexr.io import codecs

    def broken(*args, **kwargs):
        raise AttributeError("Pillow internals changed")

    monkeypatch.setattr(codecs, "decode_j2k_reduced", broken)
    image = read_radiograph(_j2k_bytes(), reduce=1)
    assert image.pixels.shape == (32, 24)
    assert image.info.lut_path.startswith("area(1/2) > ")


def test_unreadable_voi_lut_is_noted_and_the_window_used():
    ds = make_dataset(ROW, WindowCenter="50", WindowWidth="11")
    broken = lut_item([256, 0, 8], [0])
    del broken[0x00283006]  # LUT Data missing
    ds.VOILUTSequence = Sequence([broken])
    image = read_radiograph(to_bytes(ds))
    assert image.info.lut_path == "voi_lut unreadable (KeyError) > window(50,11,LINEAR)"
    np.testing.assert_allclose(image.pixels[0], [0.0, 0.05, 0.55, 1.0, 1.0], atol=1e-6)


def test_min_side_picks_the_coarsest_level_that_is_still_large_enough():
    from spinexr.io.dicom import j2k_level_for

    assert j2k_level_for(2500, 5, 640) == 1        # 1250 >= 640, 625 < 640
    assert j2k_level_for(2500, 5, 600) == 2        # 625 >= 600
    assert j2k_level_for(2500, 1, 100) == 1        # no finer split than the codestream has
    assert j2k_level_for(500, 5, 640) == 0
    assert j2k_level_for(61, 5, 31) == 1           # ceil(61 / 2) = 31


def test_min_side_reduces_jpeg2000_by_level_and_other_syntaxes_by_area():
    yy, xx = np.mgrid[:61, :37]
    arr = (xx * 40 + yy * 20).astype(np.uint16)
    ds = make_dataset(arr, bits_stored=12)
    ds.compress(uid.JPEG2000Lossless)
    data = to_bytes(ds)
    half = read_radiograph(data, min_side=31)
    assert half.pixels.shape == (31, 19) and half.info.reduce == 1
    assert half.info.stored_shape == (61, 37)
    assert read_radiograph(data, min_side=32).info.reduce == 0      # 31 < 32: full size
    plain = to_bytes(make_dataset(arr, bits_stored=12))
    full, small = read_radiograph(plain), read_radiograph(plain, min_side=8)
    assert small.pixels.shape == (8, 5) and small.info.reduce == 3      # 61 -> 31 -> 16 -> 8
    assert small.info.stored_shape == (61, 37) and small.info.lut_path.endswith("area(8)")
    np.testing.assert_allclose(small.pixels[0, 0], full.pixels[:8, :8].mean(), atol=1e-6)
    np.testing.assert_allclose(small.pixels[-1, -1], full.pixels[56:, 32:].mean(), atol=1e-6)
    assert read_radiograph(plain, min_side=32).pixels.shape == (61, 37)  # 31 < 32: full size
    with pytest.raises(ConfigError):
        read_radiograph(data, min_side=0)
