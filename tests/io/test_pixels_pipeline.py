"""The pure grayscale pipeline (spinexr.io.pixels) against values derived by hand from PS3.3."""
from __future__ import annotations

import math

import numpy as np
import pytest

from spinexr.io.pixels import (Lut, PixelMeta, Window, apply_modality_lut, apply_range,
                               apply_rescale, apply_voi_lut, apply_window, downscale, invert,
                               lut_output_max, normalize, robust_range, stored_values)


def test_stored_values_masks_unsigned_high_bits():
    raw = np.array([0xF000, 0x1FFF, 0x0800, 0x0FFF], dtype=np.uint16)
    np.testing.assert_array_equal(stored_values(raw, 12, signed=False), [0, 4095, 2048, 4095])
    np.testing.assert_array_equal(raw, [0xF000, 0x1FFF, 0x0800, 0x0FFF])  # input untouched


def test_stored_values_sign_extends_from_bits_stored():
    # 12-bit two's complement: 0xFFF = -1, 0x800 = -2048, 0x7FF = 2047; junk above bit 11 ignored.
    raw = np.array([0x0FFF, 0x0800, 0x07FF, 0xF7FF, 0x0000], dtype=np.uint16)
    out = stored_values(raw, 12, signed=True)
    assert out.dtype == np.int16
    np.testing.assert_array_equal(out, [-1, -2048, 2047, 2047, 0])


def test_stored_values_reinterprets_codec_signedness():
    # A codec gave signed values but the header says unsigned 13-bit (J2K_pixelrep_mismatch kind).
    decoded = np.array([-1, -4096, 4095], dtype=np.int16)
    np.testing.assert_array_equal(stored_values(decoded, 13, signed=False), [8191, 4096, 4095])


def test_stored_values_big_endian_and_full_width():
    big = np.array([1, 256, 65535], dtype=">u2")
    out = stored_values(big, 16, signed=False)
    assert out.dtype.isnative
    np.testing.assert_array_equal(out, [1, 256, 65535])
    np.testing.assert_array_equal(stored_values(np.array([-5], np.int16), 16, True), [-5])


def test_rescale_is_slope_times_value_plus_intercept():
    out = apply_rescale(np.array([0, 100, 1000], dtype=np.uint16), 0.5, -100.0)
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, [-100.0, -50.0, 400.0])


def test_modality_lut_clamps_below_first_and_past_end():
    lut = Lut(first_mapped=10, bits=16, data=np.array([100, 200, 300, 400]))
    out = apply_modality_lut(np.array([9, 10, 11, 12, 13, 14], dtype=np.int16), lut)
    np.testing.assert_array_equal(out, [100, 100, 200, 300, 400, 400])


def test_modality_lut_with_negative_first_mapped():
    lut = Lut(first_mapped=-2, bits=16, data=np.array([7, 8, 9]))
    np.testing.assert_array_equal(apply_modality_lut(np.array([-3, -2, -1, 0, 5]), lut),
                                  [7, 7, 8, 9, 9])


def test_voi_lut_with_8_bit_descriptor_does_not_wrap_indices():
    # 512 entries of 8 bits: entry i = i // 2. pydicom 3.0.2 indexes with uint8 and would map
    # input 256 to entry 0 and 300 to entry 44; the right answers are entries 256 and 300.
    lut = Lut(first_mapped=0, bits=8, data=np.arange(512) // 2)
    out = apply_voi_lut(np.array([0, 255, 256, 300, 511, 600], dtype=np.uint16), lut)
    np.testing.assert_allclose(out, np.array([0, 127, 128, 150, 255, 255]) / 255.0, atol=1e-7)


def test_voi_lut_output_max_follows_declared_bits_or_the_data():
    assert lut_output_max(Lut(0, 16, np.array([0, 65535]))) == 65535
    assert lut_output_max(Lut(0, 8, np.array([0, 255]))) == 255
    # 12-bit entries declared as 16 bits (common encoder mistake): 4095 maps to 1.0
    assert lut_output_max(Lut(0, 16, np.arange(4096))) == 4095
    # entries larger than declared: widened rather than exceeding 1.0
    assert lut_output_max(Lut(0, 8, np.array([0, 1000]))) == 1023


@pytest.mark.parametrize("function, center, width, x, expected", [
    # LINEAR: y = (x - (c - 0.5)) / (w - 1) + 0.5, 0 at or below c - 0.5 - (w-1)/2 = 44.5,
    # 1 above c - 0.5 + (w-1)/2 = 54.5.
    ("LINEAR", 50, 11, [44, 45, 50, 54, 55, 56], [0.0, 0.05, 0.55, 0.95, 1.0, 1.0]),
    # LINEAR_EXACT: y = (x - c) / w + 0.5, 0 at or below c - w/2 = 45, 1 above c + w/2 = 55.
    ("LINEAR_EXACT", 50, 10, [44, 45, 50, 52, 55, 56], [0.0, 0.0, 0.5, 0.7, 1.0, 1.0]),
    # SIGMOID: y = 1 / (1 + exp(-4 (x - c) / w)).
    ("SIGMOID", 50, 10, [45, 50, 55, 60],
     [1 / (1 + math.exp(2)), 0.5, 1 / (1 + math.exp(-2)), 1 / (1 + math.exp(-4))]),
])
def test_window_functions_match_ps3_3_c_11_2_1_2(function, center, width, x, expected):
    out = apply_window(np.array(x, dtype=np.float32), Window(center, width, function))
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, expected, atol=1e-6)


def test_sigmoid_saturates_without_overflow_warnings():
    with np.errstate(all="raise"):
        out = apply_window(np.array([-1e6, 1e6], np.float32), Window(0, 1, "SIGMOID"))
    np.testing.assert_allclose(out, [0.0, 1.0])


def test_window_validity_per_function():
    assert not Window(0, 0.5, "LINEAR").is_valid()      # LINEAR needs width >= 1
    assert Window(0, 0.5, "LINEAR_EXACT").is_valid()    # the others need width > 0
    assert not Window(0, 0, "SIGMOID").is_valid()
    with pytest.raises(ValueError, match="width"):
        apply_window(np.zeros(2), Window(0, 0.5, "LINEAR"))


def test_robust_range_and_apply_range():
    values = np.arange(1001, dtype=np.float32)  # 0..1000: 0.5 % = 5, 99.5 % = 995
    lo, hi = robust_range(values, 0.5, 99.5)
    assert (lo, hi) == pytest.approx((5.0, 995.0))
    np.testing.assert_allclose(apply_range(np.array([0, 5, 500, 995, 1000.0]), lo, hi),
                               [0, 0, 495 / 990, 1, 1], atol=1e-6)
    np.testing.assert_array_equal(apply_range(np.ones(3), 1.0, 1.0), [0, 0, 0])  # constant


def test_invert_and_downscale():
    np.testing.assert_allclose(invert(np.array([0.0, 0.25, 1.0])), [1.0, 0.75, 0.0])
    arr = np.arange(1, 16, dtype=np.float32).reshape(3, 5)
    # 2x2 area means with partial edge blocks: ceil(3/2) x ceil(5/2) = 2 x 3
    expected = [[(1 + 2 + 6 + 7) / 4, (3 + 4 + 8 + 9) / 4, (5 + 10) / 2],
                [(11 + 12) / 2, (13 + 14) / 2, 15]]
    np.testing.assert_allclose(downscale(arr, 2), expected)
    np.testing.assert_array_equal(arr, np.arange(1, 16).reshape(3, 5))


def test_normalize_inverts_monochrome1_after_the_window():
    # window(50, 11, LINEAR) gives 0.05 for 45; inversion afterwards gives 0.95.
    stored = np.array([[44, 45, 50, 55, 56]], dtype=np.uint8)
    meta = PixelMeta(bits_stored=8, invert=True, window=Window(50, 11))
    out, path = normalize(stored, meta)
    np.testing.assert_allclose(out, [[1.0, 0.95, 0.45, 0.0, 0.0]], atol=1e-6)
    assert path == "window(50,11,LINEAR) > invert"


def test_normalize_rescale_then_window_path_text():
    stored = np.array([[0, 1000]], dtype=np.uint16)
    meta = PixelMeta(bits_stored=12, rescale=(0.684, 200.0), window=Window(1600, 2800))
    out, path = normalize(stored, meta)
    # 0 -> 200, 1000 -> 884; LINEAR: (x - 1599.5) / 2799 + 0.5
    np.testing.assert_allclose(out, [[(200 - 1599.5) / 2799 + 0.5, (884 - 1599.5) / 2799 + 0.5]],
                               atol=1e-6)
    assert path == "rescale(0.684,200) > window(1600,2800,LINEAR)"


def test_normalize_prefers_modality_lut_and_voi_lut():
    meta = PixelMeta(bits_stored=8, rescale=(100.0, 0.0),
                     modality_lut=Lut(0, 16, np.array([0, 10, 20, 30])),
                     voi_lut=Lut(0, 8, np.arange(256)), window=Window(0, 1000))
    out, path = normalize(np.array([[0, 1, 3]], dtype=np.uint8), meta)
    np.testing.assert_allclose(out, [[0, 10 / 255, 30 / 255]], atol=1e-7)
    assert path == ("modality_lut(4 entries,first 0,16 bit) > "
                    "voi_lut(256 entries,first 0,8 bit)")


def test_normalize_invalid_window_falls_back_to_percentiles():
    out, path = normalize(np.arange(100, dtype=np.uint8).reshape(10, 10),
                          PixelMeta(bits_stored=8, window=Window(50, 0)))
    assert path.startswith("window(50,0,LINEAR) invalid > percentile(0.5,99.5)=")
    assert out.min() == 0.0 and out.max() == 1.0


def test_normalize_does_not_mutate_and_is_float32():
    stored = np.arange(16, dtype=np.uint16).reshape(4, 4) | 0xF000
    before = stored.copy()
    out, _ = normalize(stored, PixelMeta(bits_stored=12, invert=True), factor=2)
    np.testing.assert_array_equal(stored, before)
    assert out.dtype == np.float32 and out.shape == (2, 2)
