"""SR, GSPS and SC filed against real-world headers (../shared/data/dicom, headers only):
MONOCHROME1 CR, a VOI LUT Sequence with US data, ACR-NEMA style dates, single-component
patient names."""
from __future__ import annotations

import warnings
from io import BytesIO

import numpy as np
import pydicom
import pytest

from spinexr.report import make_gsps, make_sc, make_sr
from spinexr.types import (Analysis, Box, Finding, GateResult, PackInfo, Radiograph, SourceRef,
                           TriageResult)

FILES = ("RG1_J2KI.dcm", "RG3_J2KR.dcm", "CR1_6154", "vlut_04.dcm", "OT-PAL-8-face.dcm",
         "693_J2KR.dcm")


def _analysis(h) -> Analysis:
    w, hgt = int(h.Columns), int(h.Rows)
    src = SourceRef(None, h.StudyInstanceUID, h.SeriesInstanceUID, h.SOPInstanceUID,
                    h.SOPClassUID)
    box = Box(0.1 * w, 0.2 * hgt, 0.4 * w, 0.5 * hgt, "Osteophytes", 0.8, "L4")
    return Analysis(image_id=h.SOPInstanceUID, source=src, image_size=(w, hgt),
                    spacing_mm=None, gate=GateResult(True, "ok"), pack=PackInfo("p", "1", False),
                    triage=TriageResult(0.7, True, "balanced", 0.5), findings=(Finding(box),))


def _round_trip(ds):
    buf = BytesIO()
    ds.save_as(buf)
    return pydicom.dcmread(BytesIO(buf.getvalue()))


@pytest.mark.parametrize("name", FILES)
def test_real_headers_give_valid_objects_without_warnings(dicom_dir, name):
    header = pydicom.dcmread(dicom_dir / name, stop_before_pixels=True, force=True)
    a = _analysis(header)
    image = Radiograph(np.zeros((4, 4), np.float32), None, a.source, None, {}, header)
    with warnings.catch_warnings():
        warnings.simplefilter("error")        # no patient name in a warning, no invalid VRs
        sr = _round_trip(make_sr(a, header))
        ps = _round_trip(make_gsps(a, header))
        sc = _round_trip(make_sc(a, image, np.zeros((8, 8, 3), np.uint8)))
    for ds in (sr, ps, sc):
        assert ds.StudyInstanceUID == header.StudyInstanceUID
        assert ds.PatientID == header.get("PatientID", "")
    if header.PhotometricInterpretation == "MONOCHROME1":
        assert ps.PresentationLUTShape == "INVERSE"
    if "VOILUTSequence" in header and "WindowCenter" not in header:
        lut = ps.SoftcopyVOILUTSequence[0].VOILUTSequence[0]
        assert list(lut.LUTDescriptor)[:2] == list(header.VOILUTSequence[0].LUTDescriptor)[:2]


def test_acr_nema_dates_are_repaired(dicom_dir):
    header = pydicom.dcmread(dicom_dir / "OT-PAL-8-face.dcm", stop_before_pixels=True,
                             force=True)
    assert (header.StudyDate, header.StudyTime) == ("1996.10.29", "15:18:59")
    sr = make_sr(_analysis(header), header)
    assert (sr.StudyDate, sr.StudyTime) == ("19961029", "151859")
