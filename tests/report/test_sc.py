"""Secondary Capture of the overlay: pixels, burned-in flag, study, orientation, spacing."""
from __future__ import annotations

import dataclasses
from copy import deepcopy
from io import BytesIO

import numpy as np
import pydicom
import pytest
from pydicom.uid import SecondaryCaptureImageStorage
from report_factory import UNCERTAIN_REASON, UNCONFIRMED, make_analysis

from spinexr.errors import ConfigError
from spinexr.report import make_sc, render_overlay


def _read_back(ds):
    buf = BytesIO()
    ds.save_as(buf)
    return pydicom.dcmread(BytesIO(buf.getvalue()))


def test_sc_holds_the_overlay_in_the_source_study(analysis, radiograph):
    overlay = render_overlay(radiograph.pixels, analysis)
    sc = _read_back(make_sc(analysis, radiograph, overlay))
    h = radiograph.header
    assert sc.SOPClassUID == SecondaryCaptureImageStorage
    assert (sc.Rows, sc.Columns, sc.SamplesPerPixel) == (256, 200, 3)
    assert sc.PhotometricInterpretation == "RGB" and sc.BitsAllocated == 8
    assert sc.BurnedInAnnotation == "YES"
    np.testing.assert_array_equal(sc.pixel_array, overlay)
    assert sc.StudyInstanceUID == h.StudyInstanceUID
    assert sc.SeriesInstanceUID != h.SeriesInstanceUID and sc.SOPInstanceUID != h.SOPInstanceUID
    assert (sc.PatientID, sc.PatientName, sc.StudyDescription) == \
        (h.PatientID, h.PatientName, h.StudyDescription)
    assert sc.SourceImageSequence[0].ReferencedSOPInstanceUID == h.SOPInstanceUID
    assert list(sc.PatientOrientation) == list(h.PatientOrientation)
    assert [float(v) for v in sc.PixelSpacing] == pytest.approx(list(radiograph.spacing_mm))
    assert sc.Manufacturer == "spinexr" and "demo-phantom" in sc.DerivationDescription
    assert "ImageComments" not in sc and "UNCERTAIN" not in sc.SeriesDescription


def test_shrunk_overlay_gets_scaled_spacing(analysis, radiograph):
    overlay = render_overlay(radiograph.pixels, analysis, max_side=128)
    sc = _read_back(make_sc(analysis, radiograph, overlay))
    assert (sc.Rows, sc.Columns) == (128, 100)
    assert float(sc.PixelSpacing[0]) == pytest.approx(radiograph.spacing_mm[0] * 2)


def test_unusable_orientation_is_left_empty(analysis, radiograph):
    image = dataclasses.replace(radiograph, header=deepcopy(radiograph.header))
    image.header.PatientOrientation = ["AF", "P"]
    sc = _read_back(make_sc(analysis, image, render_overlay(image.pixels, analysis)))
    assert "PatientOrientation" in sc and not sc.PatientOrientation


def test_raster_input_and_bad_overlays_are_refused(analysis, radiograph, png_radiograph):
    with pytest.raises(ConfigError, match="not DICOM"):
        make_sc(analysis, png_radiograph, np.zeros((256, 200, 3), np.uint8))
    with pytest.raises(ConfigError, match="uint8"):
        make_sc(analysis, radiograph, np.zeros((256, 200), np.uint8))


def test_uncertain_sc_says_so_in_its_pixels_and_its_header(uncertain, radiograph):
    from spinexr.report.overlay import WARNING_BACKGROUND

    overlay = render_overlay(radiograph.pixels, uncertain)
    sc = _read_back(make_sc(uncertain, radiograph, overlay))
    np.testing.assert_array_equal(sc.pixel_array, overlay)
    amber = (sc.pixel_array == np.array(WARNING_BACKGROUND, np.uint8)).all(axis=2)
    assert amber[:120].any(axis=1).sum() > 10                      # the warning band, burnt in
    assert sc.SeriesDescription == "spinexr AI overlay (SC) UNCERTAIN INPUT SYNTHETIC-TRAINED"
    assert sc.DerivationDescription.startswith(f"UNCERTAIN INPUT: {UNCERTAIN_REASON}. Overlay")
    assert sc.ImageComments == (
        f"Uncertain input: {UNCERTAIN_REASON}; check that this is a spine radiograph. "
        "Level naming: levels counted, unconfirmed (lowest body taken as L5).")


def test_unconfirmed_levels_alone_are_noted_in_image_comments(radiograph):
    a = make_analysis(radiograph, levels=UNCONFIRMED)
    sc = _read_back(make_sc(a, radiograph, render_overlay(radiograph.pixels, a)))
    assert sc.ImageComments == ("Level naming: levels counted, unconfirmed "
                                "(lowest body taken as L5).")
    assert sc.DerivationDescription.startswith("Overlay of AI findings")


def test_body_part_and_laterality_come_from_the_source(analysis, radiograph):
    overlay = np.zeros((8, 8, 3), np.uint8)
    image = dataclasses.replace(radiograph, header=deepcopy(radiograph.header))
    image.header.Laterality = "L"
    sc = _read_back(make_sc(analysis, image, overlay))
    assert (sc.BodyPartExamined, sc.Laterality) == (radiograph.header.BodyPartExamined, "L")
    del image.header.Laterality
    image.header.ImageLaterality = "R"                 # DX/CR images name the side here
    assert _read_back(make_sc(analysis, image, overlay)).Laterality == "R"


def test_a_refused_input_gets_no_sc(refused, radiograph):
    with pytest.raises(ConfigError, match="no Secondary Capture for a refused input"):
        make_sc(refused, radiograph, np.zeros((8, 8, 3), np.uint8))
