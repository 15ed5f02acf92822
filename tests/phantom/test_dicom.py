"""xray_to_dicom / mri_to_dicom: build, save to memory, read back, assert."""
from __future__ import annotations

from io import BytesIO

import numpy as np
import pydicom
import pytest
from phantom_helpers import SMALL

from spinexr.errors import ConfigError
from spinexr.phantom import (
    TRANSFER_SYNTAXES, MriConfig, XrayConfig, generate_mri, generate_xray, mri_to_dicom,
    xray_to_dicom,
)
from spinexr.phantom.dicom import to_bytes

LOSSLESS = [k for k in TRANSFER_SYNTAXES if k != "j2k-lossy"]


@pytest.fixture(scope="module")
def ph():
    return generate_xray(21, XrayConfig(size=SMALL, view="lateral", region="lumbar",
                                        abnormal_rate=1.0, monochrome1_rate=1.0))


def _read(data: bytes) -> pydicom.Dataset:
    return pydicom.dcmread(BytesIO(data))


@pytest.mark.parametrize("name", LOSSLESS)
def test_lossless_round_trip_is_exact(ph, name):
    data = to_bytes(xray_to_dicom(ph, transfer_syntax=TRANSFER_SYNTAXES[name]))
    ds = _read(data)
    assert ds.file_meta.TransferSyntaxUID == TRANSFER_SYNTAXES[name]
    np.testing.assert_array_equal(ds.pixel_array, ph.stored)
    assert ds.SOPInstanceUID == ph.uids.sop


def test_lossy_j2k_is_close_and_flagged(ph):
    ds = _read(to_bytes(xray_to_dicom(ph, transfer_syntax=TRANSFER_SYNTAXES["j2k-lossy"])))
    err = np.abs(ds.pixel_array.astype(float) - ph.stored.astype(float))
    assert err.mean() < 40 and ds.pixel_array.shape == ph.stored.shape
    assert ds.LossyImageCompression == "01"
    assert ds.SOPInstanceUID != ph.uids.sop and ds.StudyInstanceUID == ph.uids.study


@pytest.mark.parametrize("name", list(TRANSFER_SYNTAXES))
def test_same_phantom_gives_identical_bytes(ph, name):
    ts = TRANSFER_SYNTAXES[name]
    again = generate_xray(21, XrayConfig(size=SMALL, view="lateral", region="lumbar",
                                         abnormal_rate=1.0, monochrome1_rate=1.0))
    assert to_bytes(xray_to_dicom(ph, transfer_syntax=ts)) == to_bytes(
        xray_to_dicom(again, transfer_syntax=ts))


def test_xray_header(ph):
    ds = _read(to_bytes(xray_to_dicom(ph)))
    assert ds.Modality in ("DX", "CR") and ds.Modality == ph.modality
    assert (ds.BodyPartExamined, ds.ViewPosition) == ("LSPINE", "LL")
    assert ds.PhotometricInterpretation == "MONOCHROME1"
    assert (ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation) == (16, 12, 11, 0)
    assert [float(v) for v in ds.PixelSpacing] == pytest.approx(list(ph.spacing_mm), rel=1e-5)
    assert [float(v) for v in ds.ImagerPixelSpacing] == pytest.approx(list(ph.spacing_mm),
                                                                      rel=1e-5)
    assert (float(ds.WindowCenter), float(ds.WindowWidth)) == pytest.approx(ph.window)
    assert str(ds.PatientName) == ph.patient.name and ds.PatientID == ph.patient.patient_id
    assert ds.PatientIdentityRemoved == "YES"
    assert ds.StudyDate == ph.study_time.date and ds.PatientBirthDate == ph.patient.birth_date
    assert (ds.StudyInstanceUID, ds.SeriesInstanceUID) == (ph.uids.study, ph.uids.series)


def test_uids_are_valid_and_seed_derived(ph):
    other = generate_xray(22, XrayConfig(size=SMALL))
    for uid in (ph.uids.study, ph.uids.series, ph.uids.sop):
        assert pydicom.uid.UID(uid).is_valid
    assert len({ph.uids.study, ph.uids.series, ph.uids.sop}) == 3
    assert ph.uids.study != other.uids.study


def test_cervical_ap_header():
    ph = generate_xray(3, XrayConfig(size=SMALL, view="ap", region="cervical"))
    ds = _read(to_bytes(xray_to_dicom(ph)))
    assert (ds.BodyPartExamined, ds.ViewPosition) == ("CSPINE", "AP")


def test_unknown_transfer_syntax_is_refused(ph):
    with pytest.raises(ConfigError, match="transfer syntax"):
        xray_to_dicom(ph, transfer_syntax=pydicom.uid.JPEGBaseline8Bit)


@pytest.mark.parametrize("name", ["explicit", "rle", "jpegls"])
def test_mri_round_trip(name):
    mri = generate_mri(4, MriConfig(size=256))
    ds = _read(to_bytes(mri_to_dicom(mri, transfer_syntax=TRANSFER_SYNTAXES[name])))
    np.testing.assert_array_equal(ds.pixel_array, mri.stored)
    assert ds.Modality == "MR" and ds.PhotometricInterpretation == "MONOCHROME2"
    assert ds.BodyPartExamined == "LSPINE" and ds.BitsStored == 12
    assert str(ds.PatientName).startswith("PHANTOM^")
