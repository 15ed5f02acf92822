"""Grayscale Softcopy Presentation State: graphics match the boxes, one layer per class."""
from __future__ import annotations

import dataclasses
from copy import deepcopy
from io import BytesIO

import numpy as np
import pydicom
import pytest
from pydicom.uid import GrayscaleSoftcopyPresentationStateStorage
from report_factory import CONFIRMED, FINDINGS, UNCERTAIN_REASON, make_analysis

from spinexr.errors import ConfigError
from spinexr.report import codes, make_gsps
from spinexr.report.gsps import SUMMARY_LAYER, WARNING_LAYER
from spinexr.types import Box, Grade, TriageResult


def _read_back(ds):
    buf = BytesIO()
    ds.save_as(buf)
    return pydicom.dcmread(BytesIO(buf.getvalue()))


def _by_layer(gsps) -> dict[str, list]:
    found: dict[str, list] = {}
    for ann in gsps.GraphicAnnotationSequence:
        found.setdefault(ann.GraphicLayer, []).append(ann)
    return found


def test_gsps_is_in_the_source_study_and_references_the_image(analysis, radiograph):
    ps = _read_back(make_gsps(analysis, radiograph.header))
    h = radiograph.header
    assert ps.SOPClassUID == GrayscaleSoftcopyPresentationStateStorage
    assert ps.StudyInstanceUID == h.StudyInstanceUID and ps.Modality == "PR"
    assert ps.SeriesInstanceUID != h.SeriesInstanceUID
    assert ps.PatientID == h.PatientID
    series = ps.ReferencedSeriesSequence[0]
    assert series.SeriesInstanceUID == h.SeriesInstanceUID
    assert series.ReferencedImageSequence[0].ReferencedSOPInstanceUID == h.SOPInstanceUID
    for ann in ps.GraphicAnnotationSequence:
        assert ann.ReferencedImageSequence[0].ReferencedSOPInstanceUID == h.SOPInstanceUID


def test_graphic_objects_match_the_boxes_layer_per_class(analysis, radiograph):
    ps = _read_back(make_gsps(analysis, radiograph.header))
    layers = {item.GraphicLayer for item in ps.GraphicLayerSequence}
    assert layers == {codes.lesion_layer(f[4]) for f in FINDINGS} | {SUMMARY_LAYER,
                                                                     "G_MODERATE"}
    by_layer = _by_layer(ps)
    for x1, y1, x2, y2, label, score, level in FINDINGS:
        (ann,) = by_layer[codes.lesion_layer(label)]
        (graphic,) = ann.GraphicObjectSequence
        assert graphic.GraphicType == "POLYLINE" and graphic.GraphicAnnotationUnits == "PIXEL"
        np.testing.assert_allclose(np.reshape(graphic.GraphicData, (-1, 2)),
                                   [[x1, y1], [x2, y1], [x2, y2], [x1, y2], [x1, y1]], atol=1e-4)
        (text,) = ann.TextObjectSequence
        assert text.UnformattedTextValue == f"{label} {score:.2f} {level}"
        assert text.TrackingUID == graphic.TrackingUID
        top, bottom = text.BoundingBoxTopLeftHandCorner, text.BoundingBoxBottomRightHandCorner
        assert 0 <= top[0] < bottom[0] <= 200 and 0 <= top[1] < bottom[1] <= 256


def test_summary_layer_states_verdict_and_synthetic_warning(analysis, radiograph):
    by_layer = _by_layer(_read_back(make_gsps(analysis, radiograph.header)))
    texts = _texts(by_layer[SUMMARY_LAYER][0])
    assert texts[0] == "SYNTHETIC-TRAINED MODEL - NOT FOR CLINICAL USE"
    assert "ABNORMAL" in texts[1] and "balanced" in texts[1]
    (grade,) = by_layer["G_MODERATE"]
    assert _texts(grade) == ["Grade: degeneration moderate (whole image), P 0.50"]
    (box,) = grade.TextObjectSequence
    assert box.BoundingBoxAnnotationUnits == "DISPLAY"
    assert float(box.BoundingBoxTopLeftHandCorner[1]) == pytest.approx(0.01 + 0.05 * 2)


def test_a_refused_input_gets_no_gsps(refused, radiograph):
    with pytest.raises(ConfigError, match="no GSPS for a refused input"):
        make_gsps(refused, radiograph.header)


def test_disagreeing_heads_and_window_grades_are_drawn(radiograph):
    a = dataclasses.replace(
        make_analysis(radiograph, findings=(), levels=CONFIRMED),
        triage=TriageResult(0.2, False, "balanced", 0.42),
        grades=(Grade("cervical", "fracture", 1, {"normal": 0.16, "fracture": 0.84},
                      Box(10.0, 20.0, 60.0, 80.0, "window", 0.9, "C5")),))
    by_layer = _by_layer(_read_back(make_gsps(a, radiograph.header)))
    summary = _texts(by_layer[SUMMARY_LAYER][0])
    assert summary[2] == ("The models disagree: the triage says normal (P(abnormal) 0.20) but "
                          "grades cervical: fracture (C5); review the image.")
    (window,) = by_layer["G_FRACTURE"]
    (graphic,) = window.GraphicObjectSequence
    np.testing.assert_allclose(np.reshape(graphic.GraphicData, (-1, 2))[:3],
                               [[10, 20], [60, 20], [60, 80]], atol=1e-4)
    assert _texts(window) == ["cervical: fracture (C5)"]


def test_body_part_and_laterality_come_from_the_source(analysis, radiograph):
    header = deepcopy(radiograph.header)
    header.Laterality = "R"
    ps = _read_back(make_gsps(analysis, header))
    assert (ps.BodyPartExamined, ps.Laterality) == (header.BodyPartExamined, "R")
    del header.BodyPartExamined, header.Laterality
    ps = _read_back(make_gsps(analysis, header))
    assert "BodyPartExamined" not in ps and ps.Laterality == ""


def test_softcopy_voi_lut_is_the_source_window(analysis, radiograph):
    ps = _read_back(make_gsps(analysis, radiograph.header))
    (voi,) = ps.SoftcopyVOILUTSequence
    assert float(voi.WindowCenter) == pytest.approx(float(radiograph.header.WindowCenter))
    assert float(voi.WindowWidth) == pytest.approx(float(radiograph.header.WindowWidth))
    assert ps.PresentationLUTShape == "IDENTITY"


def test_monochrome1_gets_inverse_and_missing_window_gets_no_voi(analysis, radiograph):
    header = deepcopy(radiograph.header)
    header.PhotometricInterpretation = "MONOCHROME1"
    del header.WindowCenter, header.WindowWidth
    ps = _read_back(make_gsps(analysis, header))
    assert ps.PresentationLUTShape == "INVERSE"
    assert "SoftcopyVOILUTSequence" not in ps


def test_multi_valued_window_uses_the_first_pair(analysis, radiograph):
    header = deepcopy(radiograph.header)
    header.WindowCenter, header.WindowWidth = [1000, 2000], [500, 800]
    (voi,) = _read_back(make_gsps(analysis, header)).SoftcopyVOILUTSequence
    assert (float(voi.WindowCenter), float(voi.WindowWidth)) == (1000.0, 500.0)


def _texts(ann) -> list[str]:
    return [t.UnformattedTextValue for t in ann.TextObjectSequence]


def test_uncertain_input_is_announced_first_on_its_own_amber_layer(uncertain, radiograph):
    ps = _read_back(make_gsps(uncertain, radiograph.header))
    by_layer = _by_layer(ps)
    (warning,) = by_layer[WARNING_LAYER]
    assert _texts(warning) == [f"UNCERTAIN INPUT: {UNCERTAIN_REASON}."]
    (box,) = warning.TextObjectSequence
    assert box.BoundingBoxAnnotationUnits == "DISPLAY"
    assert float(box.BoundingBoxTopLeftHandCorner[1]) == pytest.approx(0.01)   # top line
    layer = {item.GraphicLayer: item for item in ps.GraphicLayerSequence}[WARNING_LAYER]
    assert layer.GraphicLayerOrder == max(i.GraphicLayerOrder for i in ps.GraphicLayerSequence)
    summary = _texts(by_layer[SUMMARY_LAYER][0])
    assert summary == ["SYNTHETIC-TRAINED MODEL - NOT FOR CLINICAL USE", summary[1],
                       "? = levels counted, unconfirmed (lowest body taken as L5)"]
    assert summary[1].startswith("Triage ABNORMAL")
    assert "UNCERTAIN INPUT" in ps.SeriesDescription


def test_unconfirmed_level_names_end_with_a_question_mark(uncertain, radiograph):
    by_layer = _by_layer(_read_back(make_gsps(uncertain, radiograph.header)))
    for *_, label, score, level in FINDINGS:
        (ann,) = by_layer[codes.lesion_layer(label)]
        assert _texts(ann) == [f"{label} {score:.2f} {level}?"]


def test_confirmed_levels_have_no_mark_legend_or_warning_layer(radiograph):
    ps = _read_back(make_gsps(make_analysis(radiograph, levels=CONFIRMED), radiograph.header))
    by_layer = _by_layer(ps)
    assert WARNING_LAYER not in by_layer
    assert not any("unconfirmed" in t for t in _texts(by_layer[SUMMARY_LAYER][0]))
    assert _texts(by_layer[codes.lesion_layer("Osteophytes")][0]) == ["Osteophytes 0.91 L3"]
