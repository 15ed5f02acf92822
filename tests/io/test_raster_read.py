"""PNG, JPEG and TIFF through read_radiograph: round trips made here, a real JPEG, refusals."""
from __future__ import annotations

import io
import struct
import zlib

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from spinexr.errors import (CorruptImageError, ImageTooLargeError, ModalityNotAllowedError,
                            NotAnImageError, SpinexrError, UnsupportedImageError)
from spinexr.io import ModalityPolicy, read_radiograph
from spinexr.io.tint import measure_tint


def _encode(arr: np.ndarray, fmt: str, mode: str | None = None, **kwargs) -> bytes:
    buf = io.BytesIO()
    image = Image.fromarray(arr, mode=mode) if mode else Image.fromarray(arr)
    image.save(buf, format=fmt, **kwargs)
    return buf.getvalue()


def _ramp8() -> np.ndarray:
    return (np.arange(24 * 32).reshape(24, 32) % 256).astype(np.uint8)


def _png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


@pytest.mark.parametrize("fmt", ["PNG", "TIFF"])
def test_8_bit_lossless_round_trip_is_value_over_255(fmt):
    arr = _ramp8()
    image = read_radiograph(_encode(arr, fmt), name=f"ramp.{fmt.lower()}")
    np.testing.assert_allclose(image.pixels, arr / 255.0, atol=1e-7)
    assert image.pixels.dtype == np.float32 and not image.pixels.flags.writeable
    assert image.info.format == fmt.lower() and image.info.lut_path == "scale(1/255)"
    assert image.info.bits_stored == 8 and image.spacing_mm is None and image.header is None
    assert image.source.path is None and image.meta["rows"] == 24


@pytest.mark.parametrize("fmt", ["PNG", "TIFF"])
def test_16_bit_uses_a_robust_percentile_window(fmt):
    arr = (np.arange(40 * 50).reshape(40, 50) * 2).astype(np.uint16)  # 0..3998, all distinct
    image = read_radiograph(_encode(arr, fmt))
    lo, hi = np.percentile(arr.astype(np.float32), [0.5, 99.5])
    np.testing.assert_allclose(image.pixels, np.clip((arr - lo) / (hi - lo), 0, 1), atol=1e-6)
    assert image.info.bits_stored == 16
    assert image.info.lut_path.startswith("percentile(0.5,99.5)=[")


def test_16_bit_tiff_written_by_tifffile():
    tifffile = pytest.importorskip("tifffile")
    arr = np.linspace(100, 60000, 30 * 20).reshape(30, 20).astype(np.uint16)
    buf = io.BytesIO()
    tifffile.imwrite(buf, arr)
    image = read_radiograph(buf.getvalue())
    assert image.pixels.shape == (30, 20)
    assert image.pixels[0, 0] == 0.0 and image.pixels[-1, -1] == 1.0


def test_jpeg_gray_round_trip_is_close():
    yy, xx = np.mgrid[:64, :64]
    arr = (xx * 2 + yy).astype(np.uint8)
    image = read_radiograph(_encode(arr, "JPEG", quality=95))
    np.testing.assert_allclose(image.pixels, arr / 255.0, atol=0.03)


def test_rgb_with_equal_channels_is_gray():
    arr = _ramp8()
    image = read_radiograph(_encode(np.stack([arr] * 3, axis=-1), "PNG"))
    np.testing.assert_allclose(image.pixels, arr / 255.0, atol=1e-6)
    assert image.info.lut_path == "gray(RGB) > scale(1/255)"


def test_real_vertebra_jpeg_loads(vertebrae_dir):
    path = sorted((vertebrae_dir / "test" / "images").glob("*.jpg"))[0]
    image = read_radiograph(path)
    assert image.info.format == "jpeg" and image.source.path == str(path)
    assert image.pixels.ndim == 2 and max(image.pixels.shape) in (415, 416)
    assert image.info.lut_path == "gray(RGB) > scale(1/255)"
    assert 0.0 <= image.pixels.min() < image.pixels.max() <= 1.0


def test_colour_images_are_refused():
    rgb = np.zeros((16, 16, 3), np.uint8)
    rgb[..., 0] = 200  # red
    with pytest.raises(UnsupportedImageError,
                       match=r"photo\.png: a colour RGB image \(strongly coloured throughout.*"
                             r"send the radiograph as DICOM or a greyscale PNG/JPEG"):
        read_radiograph(_encode(rgb, "PNG"), name="photo.png")
    with pytest.raises(UnsupportedImageError, match=r"mode 'CMYK'"):
        read_radiograph(_encode(np.zeros((8, 8, 4), np.uint8), "JPEG", mode="CMYK"))


def _film(size: int = 128) -> np.ndarray:
    """A grey 'film' in [0, 1]: a diagonal ramp with a bright disc and a dark bar."""
    yy, xx = np.mgrid[:size, :size] / size
    film = 0.15 + 0.5 * (xx + yy) / 2
    film[(yy - 0.5) ** 2 + (xx - 0.4) ** 2 < 0.04] = 0.9
    film[60:70, 10:110] = 0.05
    return film


def _luma(rgb: np.ndarray) -> np.ndarray:
    return rgb.astype(np.float64) @ np.array([0.299, 0.587, 0.114]) / 255


@pytest.mark.parametrize("tint", ["warm", "sepia", "drifting cast"])
def test_tinted_grey_film_reads_as_bt601_luminance(tint):
    g = _film()
    drift = np.linspace(0.0, 1.0, g.shape[1])[None, :]
    channels = {"warm": (g, 0.92 * g, 0.78 * g),                       # warm light box
                "sepia": (g**0.8, g, g**1.3),                            # per-channel curve
                "drifting cast": (g * (1 - 0.15 * drift), 0.95 * g, g * (0.8 + 0.2 * drift))}
    rgb = (np.stack(channels[tint], axis=-1) * 255).round().astype(np.uint8)
    image = read_radiograph(_encode(rgb, "PNG"), name="phone.png")
    np.testing.assert_allclose(image.pixels, _luma(rgb), atol=1e-5)
    assert image.info.lut_path == "luminance(tinted RGB) > scale(1/255)"
    assert image.meta["colour"] == "tinted" and image.meta["mode"] == "RGB"


def test_gray_inputs_say_so_in_meta():
    assert read_radiograph(_encode(_ramp8(), "PNG")).meta["colour"] == "gray"
    rgb = np.stack([_ramp8()] * 3, axis=-1)
    assert read_radiograph(_encode(rgb, "PNG")).meta["colour"] == "gray"


def test_colour_blobs_are_refused_as_content_colour():
    rng = np.random.default_rng(7)
    small = rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)   # 64 blobs of random colour
    rgb = np.kron(small, np.ones((16, 16, 1), np.uint8))
    with pytest.raises(UnsupportedImageError,
                       match=r"blobs\.png: a colour RGB image \(chroma varies with the content"):
        read_radiograph(_encode(rgb, "PNG"), name="blobs.png")


def test_a_grey_film_with_a_coloured_photo_inset_is_refused():
    rgb = np.stack([(_film() * 255).astype(np.uint8)] * 3, axis=-1)
    rng = np.random.default_rng(3)
    rgb[:64, :64] = np.kron(rng.integers(0, 256, (4, 4, 3), dtype=np.uint8),
                            np.ones((16, 16, 1), np.uint8))
    with pytest.raises(UnsupportedImageError, match="chroma varies with the content"):
        read_radiograph(_encode(rgb, "PNG"))


def test_tint_measure_matches_hand_derived_values():
    red = np.zeros((16, 16, 3), np.uint8)
    red[..., 0] = 200
    r = 200 / 255
    y = 0.299 * r
    measure = measure_tint(red)
    assert measure.residual == pytest.approx(0.0, abs=1e-6)
    assert measure.chroma == pytest.approx(np.hypot(0.564 * (0 - y), 0.713 * (r - y)), rel=1e-5)
    assert not measure.tinted and "median chroma 0.414" in measure.why_colour()
    flat = np.full((16, 16, 3), (120, 110, 100), np.uint8)   # a flat warm grey
    assert measure_tint(flat).tinted


def test_real_photographed_lumbar_film_is_read(radiographs_dir):
    path = radiographs_dir / "spine" / "wm_sma__normal-lumbar-spine-lateral.jpg"
    image = read_radiograph(path)
    assert image.meta["colour"] == "tinted" and image.pixels.shape == (2500, 2181)
    assert image.info.lut_path == "luminance(tinted RGB) > scale(1/255)"
    rgb = np.asarray(Image.open(path))
    np.testing.assert_allclose(image.pixels[::97, ::89], _luma(rgb)[::97, ::89], atol=1e-5)


@pytest.mark.parametrize("name", ["skimage__chelsea.png", "skimage__retina.jpg",
                                  "medivanai__melanoma_example.jpg", "skimage__ihc.png"])
def test_real_colour_pictures_are_refused(radiographs_dir, name):
    with pytest.raises(UnsupportedImageError, match=f"{name}: a colour RGB image"):
        read_radiograph(radiographs_dir / "other" / name)


def test_palette_images_accepted_only_when_gray():
    index = (np.arange(64).reshape(8, 8) % 4).astype(np.uint8)
    gray = Image.fromarray(index, mode="P")
    gray.putpalette([0, 0, 0, 85, 85, 85, 170, 170, 170, 255, 255, 255])
    buf = io.BytesIO()
    gray.save(buf, format="PNG")
    image = read_radiograph(buf.getvalue())
    np.testing.assert_allclose(image.pixels, index * 85 / 255.0, atol=1e-7)
    assert image.info.lut_path == "palette(gray) > scale(1/255)"
    gray.putpalette([0, 0, 0, 255, 0, 0, 0, 255, 0, 0, 0, 255])
    buf = io.BytesIO()
    gray.save(buf, format="PNG")
    with pytest.raises(UnsupportedImageError, match="palette .* is not gray"):
        read_radiograph(buf.getvalue())


def test_not_an_image_is_refused():
    for data in (b"%PDF-1.7 not an image at all", _encode(_ramp8(), "GIF"), bytes(64)):
        with pytest.raises(NotAnImageError, match=r"scan\.bin: not DICOM"):
            read_radiograph(data, name="scan.bin")


def test_png_header_claiming_a_huge_image_is_refused_without_decoding():
    ihdr = struct.pack(">IIBBBBB", 100_000, 100_000, 8, 0, 0, 0, 0)
    bomb = b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", ihdr) + _png_chunk(b"IEND", b"")
    with pytest.raises(ImageTooLargeError, match=r"100000x100000 = 10,000,000,000 pixels"):
        read_radiograph(bomb)
    # Even when the caller lifts the limit, Pillow's own bomb check surfaces as ours.
    with pytest.raises(ImageTooLargeError, match="Pillow refuses"):
        read_radiograph(bomb, max_pixels=10**12)


def test_jpeg_and_tiff_headers_are_checked_before_decoding():
    jpeg = bytearray(_encode(_ramp8(), "JPEG"))
    sof = jpeg.index(b"\xff\xc0")
    jpeg[sof + 5: sof + 9] = struct.pack(">HH", 60000, 60000)
    with pytest.raises(ImageTooLargeError, match="JPEG header says 60000x60000"):
        read_radiograph(bytes(jpeg))
    with pytest.raises(ImageTooLargeError, match="over the limit of 100"):
        read_radiograph(_encode(_ramp8(), "TIFF"), max_pixels=100)


def test_truncated_and_inconsistent_files_are_corrupt():
    png = _encode(_ramp8(), "PNG")
    with pytest.raises(CorruptImageError, match="truncated or corrupt"):
        read_radiograph(png[: len(png) // 2])
    with pytest.raises(CorruptImageError, match="header is incomplete"):
        read_radiograph(png[:20])


def test_multi_page_tiff_is_refused():
    pages = [Image.fromarray(_ramp8()), Image.fromarray(_ramp8())]
    buf = io.BytesIO()
    pages[0].save(buf, format="TIFF", save_all=True, append_images=pages[1:])
    with pytest.raises(UnsupportedImageError, match="2 frames/pages"):
        read_radiograph(buf.getvalue())


def test_reduce_area_averages_raster_images():
    arr = np.array([[0, 2, 4], [2, 4, 6], [8, 8, 8]], np.uint8) * 10
    image = read_radiograph(_encode(arr, "PNG"), reduce=1)
    expected = np.array([[(0 + 20 + 20 + 40) / 4, (40 + 60) / 2], [80, 80]]) / 255
    np.testing.assert_allclose(image.pixels, expected, atol=1e-6)
    assert image.info.reduce == 1 and image.info.stored_shape == (3, 3)


def test_policy_without_unknown_modalities_refuses_raster():
    strict = ModalityPolicy("dx-only", frozenset({"DX"}), allow_unknown=False)
    with pytest.raises(ModalityNotAllowedError):
        read_radiograph(_encode(_ramp8(), "PNG"), policy=strict)


_SOURCES = {fmt: _encode(_ramp8(), fmt) for fmt in ("PNG", "JPEG", "TIFF")}


@settings(max_examples=60, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(fmt=st.sampled_from(sorted(_SOURCES)),
       flips=st.lists(st.tuples(st.integers(0, 1 << 20), st.integers(0, 7)), max_size=12),
       keep=st.floats(0.0, 1.0))
def test_mutated_raster_files_fail_only_with_spinexr_errors(fmt, flips, keep):
    data = bytearray(_SOURCES[fmt])
    for position, bit in flips:
        data[position % len(data)] ^= 1 << bit
    data = bytes(data[: max(1, int(keep * len(data)))]) if keep < 0.9 else bytes(data)
    try:
        image = read_radiograph(data)
    except SpinexrError:
        return
    assert image.pixels.dtype == np.float32 and image.pixels.ndim == 2
    assert np.isfinite(image.pixels).all()
