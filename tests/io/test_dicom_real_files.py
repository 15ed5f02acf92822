"""The 30 real DICOM files of ../shared/data/dicom, each by name, with its expected outcome."""
from __future__ import annotations

import os
import warnings
from dataclasses import dataclass

import numpy as np
import pydicom
import pytest
from dicom_factory import ANY_MODALITY

from spinexr.errors import (CorruptImageError, ModalityNotAllowedError, NoPixelDataError,
                            SpinexrError, UnsupportedImageError)
from spinexr.io import MRI_POLICY, RADIOGRAPH_POLICY, read_radiograph


@dataclass(frozen=True)
class Loads:
    shape: tuple[int, int]
    lut_path: str | None = None        # exact, or a prefix ending in "..."
    spacing: tuple[float, float] | None = None


@dataclass(frozen=True)
class Refused:
    error: type[SpinexrError]
    match: str


NOT_RADIOGRAPHY = r"Modality '{}' is not projection radiography; the radiograph path accepts " \
                  r"CR, DR, DX, RG"
COLOUR = r"Photometric Interpretation is '{}' .* spinexr reads grayscale radiographs only"
MULTI_FRAME = Refused(UnsupportedImageError, r"Number of Frames is 10; spinexr reads single-frame")

#: file -> outcome with RADIOGRAPH_POLICY (what a spine radiograph service does).
RADIOGRAPH = {
    "RG1_J2KI.dcm": Loads((1955, 1841), "window(15000,30000,LINEAR) > invert", None),
    "RG3_J2KR.dcm": Loads((1760, 1760), "window(550,1024,LINEAR) > invert"),
    "RG3_J2KI.dcm": Loads((1760, 1760), "window(550,1024,LINEAR) > invert"),
    "CR1_6154": Loads((16, 16), "rescale(0.684,200) > window(1600,2800,LINEAR) > invert",
                      (0.1, 0.1)),
    "JLSL_16_15_1_1F.dcm": Loads((128, 128), "percentile(0.5,99.5)=..."),
    "JLSL_08_07_0_1F.dcm": Loads((128, 128), "percentile(0.5,99.5)=..."),
    "JPEGLSNearLossless_16.dcm": Loads((50, 10), "percentile(0.5,99.5)=..."),
    "image_dfl.dcm": Loads((512, 512), "percentile(0.5,99.5)=..."),
    "vlut_04.dcm": Loads((512, 512), "voi_lut(256 entries,first 0,16 bit)"),
    "mlut_18.dcm": Loads((512, 512), "modality_lut(4096 entries,first -2048,16 bit) > ..."),
    "693_J2KR.dcm": Refused(ModalityNotAllowedError, NOT_RADIOGRAPHY.format("CT")),
    "J2K_pixelrep_mismatch.dcm": Refused(ModalityNotAllowedError, NOT_RADIOGRAPHY.format("CT")),
    "MR2_J2KR.dcm": Refused(ModalityNotAllowedError, NOT_RADIOGRAPHY.format("MR")),
    "MR_small_RLE.dcm": Refused(ModalityNotAllowedError, NOT_RADIOGRAPHY.format("MR")),
    "MR_truncated.dcm": Refused(ModalityNotAllowedError, NOT_RADIOGRAPHY.format("MR")),
    "emri_small_RLE.dcm": Refused(ModalityNotAllowedError, NOT_RADIOGRAPHY.format("MR")),
    "emri_small_big_endian.dcm": Refused(ModalityNotAllowedError, NOT_RADIOGRAPHY.format("MR")),
    "emri_small_jpeg_ls_lossless.dcm": Refused(ModalityNotAllowedError,
                                               NOT_RADIOGRAPHY.format("MR")),
    "JPEG-LL.dcm": Refused(ModalityNotAllowedError, NOT_RADIOGRAPHY.format("NM")),
    "JPGExtended.dcm": Refused(ModalityNotAllowedError, NOT_RADIOGRAPHY.format("NM")),
    "JPEG-lossy.dcm": Refused(ModalityNotAllowedError, NOT_RADIOGRAPHY.format("NM")),
    "JPEG2000-embedded-sequence-delimiter.dcm": Refused(ModalityNotAllowedError,
                                                        NOT_RADIOGRAPHY.format("NM")),
    "JPGLosslessP14SV1_1s_1f_8b.dcm": Refused(ModalityNotAllowedError,
                                              NOT_RADIOGRAPHY.format("US")),
    "examples_ybr_color.dcm": Refused(ModalityNotAllowedError, NOT_RADIOGRAPHY.format("US")),
    "HTJ2KLossless_08_RGB.dcm": Refused(UnsupportedImageError, COLOUR.format("RGB")),
    "SC_rgb_jpeg_dcmtk.dcm": Refused(UnsupportedImageError, COLOUR.format("YBR_FULL")),
    "OT-PAL-8-face.dcm": Refused(UnsupportedImageError, r"'PALETTE COLOR'"),
    "ExplVR_LitEndNoMeta.dcm": Refused(NoPixelDataError, r"RT Ion Plan Storage.*no \(7FE0,0010\)"),
    "ExplVR_BigEndNoMeta.dcm": Refused(NoPixelDataError, r"RT Ion Plan Storage.*no \(7FE0,0010\)"),
    "meta_missing_tsyntax.dcm": Refused(CorruptImageError, r"\(0028,0010\) Rows is None"),
}

#: Outcomes when every modality is allowed: reaches the decoder for the files refused above.
ANY = {
    "693_J2KR.dcm": Loads((512, 512), "rescale(1,-1024) > window(40,100,LINEAR)",
                          (0.478516, 0.478516)),
    "J2K_pixelrep_mismatch.dcm": Loads((512, 512), "window(40,100,LINEAR)", (0.431, 0.431)),
    "MR2_J2KR.dcm": Loads((1024, 1024), "rescale(3.77411,6.1e-05) > window(1000,2000,LINEAR)",
                          (0.195313, 0.195313)),
    "MR_small_RLE.dcm": Loads((64, 64), "window(600,1600,LINEAR)", (0.3125, 0.3125)),
    "JPEG-LL.dcm": Loads((1024, 256), "percentile(0.5,99.5)=...", (2.26, 2.26)),
    "JPGExtended.dcm": Loads((1024, 256), "percentile(0.5,99.5)=...", (2.26, 2.26)),
    "JPGLosslessP14SV1_1s_1f_8b.dcm": Loads((768, 1024), "window(127,254,LINEAR)"),
    "MR_truncated.dcm": Refused(CorruptImageError, r"less than expected \(8130 vs 8192 bytes\)"),
    "JPEG-lossy.dcm": Refused(CorruptImageError, r"scan header \(SOS\) is invalid"),
    "JPEG2000-embedded-sequence-delimiter.dcm": Refused(
        CorruptImageError, r"codestream is 1024x3722445056 but \(0028,0010\) Rows"),
    "emri_small_RLE.dcm": MULTI_FRAME,
    "emri_small_big_endian.dcm": MULTI_FRAME,
    "emri_small_jpeg_ls_lossless.dcm": MULTI_FRAME,
    "examples_ybr_color.dcm": Refused(UnsupportedImageError, COLOUR.format("YBR_FULL_422")),
}

#: Outcomes with MRI_POLICY for the MR files and one radiograph.
MRI = {
    "MR2_J2KR.dcm": ANY["MR2_J2KR.dcm"],
    "MR_small_RLE.dcm": ANY["MR_small_RLE.dcm"],
    "MR_truncated.dcm": ANY["MR_truncated.dcm"],
    "emri_small_RLE.dcm": MULTI_FRAME,
    "CR1_6154": Refused(ModalityNotAllowedError, r"Modality 'CR' is not magnetic resonance"),
}


def _check(path: str, outcome, policy) -> None:
    name = os.path.basename(path)
    if isinstance(outcome, Refused):
        with pytest.raises(outcome.error, match=outcome.match) as caught:
            read_radiograph(path, policy=policy)
        assert str(caught.value).startswith(f"{path}: ")  # the message names the file
        return
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # codec chatter (e.g. J2K signedness) is not the point
        image = read_radiograph(path, policy=policy)
    px = image.pixels
    assert px.shape == outcome.shape and px.dtype == np.float32, name
    assert not px.flags.writeable
    assert np.isfinite(px).all() and px.min() >= 0.0 and px.max() <= 1.0
    assert px.max() - px.min() > 0.15, f"{name}: no contrast"
    if outcome.lut_path is not None:
        if outcome.lut_path.endswith("..."):
            assert image.info.lut_path.startswith(outcome.lut_path[:-3]), image.info.lut_path
        else:
            assert image.info.lut_path == outcome.lut_path
    if outcome.spacing is None:
        assert image.spacing_mm is None
    else:
        assert image.spacing_mm == pytest.approx(outcome.spacing)
    assert image.header is not None and "PixelData" not in image.header


def test_the_table_names_every_real_file(dicom_dir, dicom_manifest):
    on_disk = {p.name for p in dicom_dir.iterdir() if p.name not in ("manifest.json",
                                                                       "LICENSE-pydicom-data")}
    assert set(RADIOGRAPH) == on_disk == set(dicom_manifest)
    assert len(RADIOGRAPH) == 30
    modality_refused = {n for n, o in RADIOGRAPH.items()
                        if isinstance(o, Refused) and o.error is ModalityNotAllowedError}
    assert modality_refused == set(ANY)  # each of them is also run past the modality check


@pytest.mark.parametrize("name", sorted(RADIOGRAPH))
def test_real_file_with_radiograph_policy(dicom_dir, name):
    _check(str(dicom_dir / name), RADIOGRAPH[name], RADIOGRAPH_POLICY)


@pytest.mark.parametrize("name", sorted(ANY))
def test_real_file_past_the_modality_check(dicom_dir, name):
    _check(str(dicom_dir / name), ANY[name], ANY_MODALITY)


@pytest.mark.parametrize("name", sorted(MRI))
def test_real_file_with_mri_policy(dicom_dir, name):
    _check(str(dicom_dir / name), MRI[name], MRI_POLICY)


def test_radiographs_are_bone_bright(dicom_dir):
    chest = read_radiograph(dicom_dir / "RG1_J2KI.dcm").pixels  # MONOCHROME1 chest PA
    h, w = chest.shape
    mediastinum = chest[h // 3: 2 * h // 3, w // 2 - w // 20: w // 2 + w // 20].mean()
    lungs = (chest[h // 3: 2 * h // 3, w // 5: w // 3].mean()
             + chest[h // 3: 2 * h // 3, 2 * w // 3: 4 * w // 5].mean()) / 2
    assert mediastinum > lungs + 0.1
    leg = read_radiograph(dicom_dir / "RG3_J2KR.dcm").pixels  # MONOCHROME1 leg, bones central
    side = leg.shape[1]  # columns: collimator | air | soft tissue, tibia, fibula | air | collimator
    tibia = leg[: side // 2, int(0.45 * side): int(0.55 * side)].mean()
    air = leg[: side // 2, int(0.28 * side): int(0.32 * side)].mean()
    assert tibia > air + 0.3


def test_leg_lossless_and_lossy_jpeg2000_agree(dicom_dir):
    lossless = read_radiograph(dicom_dir / "RG3_J2KR.dcm").pixels
    lossy = read_radiograph(dicom_dir / "RG3_J2KI.dcm").pixels
    diff = np.abs(lossless - lossy)
    assert diff.mean() < 0.002 and diff.max() < 0.02


def test_jpeg2000_reduce_matches_a_downscaled_full_decode(dicom_dir):
    path = dicom_dir / "RG3_J2KR.dcm"
    full = read_radiograph(path).pixels
    small = read_radiograph(path, reduce=2)
    assert small.pixels.shape == (440, 440) and small.info.reduce == 2
    assert small.info.lut_path.startswith("j2k_level(2) > ")
    ref = full.reshape(440, 4, 440, 4).mean(axis=(1, 3))
    assert np.abs(small.pixels - ref).mean() < 0.01
    odd = read_radiograph(dicom_dir / "RG1_J2KI.dcm", reduce=2)  # 1955 x 1841: ceil sizes
    assert odd.pixels.shape == (489, 461)


def test_stored_values_of_the_pixel_representation_mismatch_file(dicom_dir):
    # Codestream unsigned 13-bit, header Pixel Representation 1: pydicom's reference decode
    # sign-extends; the reader must give the same values through its own window.
    path = dicom_dir / "J2K_pixelrep_mismatch.dcm"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        stored = pydicom.dcmread(path).pixel_array.astype(np.float64)
        image = read_radiograph(path, policy=ANY_MODALITY)
    assert stored.min() == -2000
    expected = np.clip((stored - 39.5) / 99 + 0.5, 0, 1)  # window(40, 100, LINEAR)
    np.testing.assert_allclose(image.pixels, expected, atol=1e-6)


def test_12_bit_jpeg_extended_matches_the_lossless_copy(dicom_dir):
    extended = read_radiograph(dicom_dir / "JPGExtended.dcm", policy=ANY_MODALITY).pixels
    lossless = read_radiograph(dicom_dir / "JPEG-LL.dcm", policy=ANY_MODALITY).pixels
    assert np.corrcoef(extended.ravel(), lossless.ravel())[0, 1] > 0.98
