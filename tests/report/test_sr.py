"""Comprehensive SR (TID 1500): build, save to memory, read back, check against the findings."""
from __future__ import annotations

import dataclasses
import warnings
from copy import deepcopy
from io import BytesIO

import highdicom as hd
import numpy as np
import pydicom
import pytest
from pydicom.uid import ComprehensiveSRStorage
from report_factory import (CONFIRMED, FINDINGS, UNCERTAIN_REASON, UNCONFIRMED, make_analysis,
                            make_refused, make_uncertain)

from spinexr.errors import ConfigError
from spinexr.report import codes, make_sr
from spinexr.types import GateResult, TriageResult


def _read_back(ds) -> hd.sr.ComprehensiveSR:
    buf = BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("error")          # e.g. text the character set cannot encode
        ds.save_as(buf)
    return hd.sr.ComprehensiveSR.from_dataset(pydicom.dcmread(BytesIO(buf.getvalue())))


def _image_group(sr):
    (group,) = [g for g in sr.content.get_image_measurement_groups()
                if g.tracking_identifier == "Image-level result"]
    return group


def _grade_groups(sr):
    return [g for g in sr.content.get_image_measurement_groups()
            if g.tracking_identifier.startswith("Grade ")]


def _evaluations(group) -> dict[str, str]:
    return {q.name.value: q.value.value for q in group.get_qualitative_evaluations()}


def _measurements(group) -> dict[str, list[float]]:
    found: dict[str, list[float]] = {}
    for m in group.get_measurements():
        found.setdefault(m.name.value, []).append(m.value)
    return found


def test_sr_is_in_the_source_study_and_references_the_image(analysis, radiograph):
    sr = _read_back(make_sr(analysis, radiograph.header))
    h = radiograph.header
    assert sr.SOPClassUID == ComprehensiveSRStorage
    assert sr.StudyInstanceUID == h.StudyInstanceUID
    assert sr.SeriesInstanceUID != h.SeriesInstanceUID and sr.SOPInstanceUID != h.SOPInstanceUID
    assert (sr.PatientID, sr.PatientName, sr.AccessionNumber) == \
        (h.PatientID, h.PatientName, h.AccessionNumber)
    assert sr.Manufacturer == "spinexr" and sr.SoftwareVersions
    assert sr.ContentDate and sr.ContentTime
    ref = sr.CurrentRequestedProcedureEvidenceSequence[0].ReferencedSeriesSequence[0]
    assert ref.ReferencedSOPSequence[0].ReferencedSOPInstanceUID == h.SOPInstanceUID
    assert sr.CodingSchemeIdentificationSequence[0].CodingSchemeDesignator == "99SPINEXR"


def test_one_planar_roi_group_per_finding_matching_its_box(analysis, radiograph):
    sr = _read_back(make_sr(analysis, radiograph.header))
    groups = sr.content.get_planar_roi_measurement_groups()
    assert len(groups) == len(FINDINGS)
    for group, (x1, y1, x2, y2, label, score, level) in zip(groups, FINDINGS):
        region = group.roi
        assert region.graphic_type == hd.sr.GraphicTypeValues.POLYLINE
        np.testing.assert_allclose(region.value, [[x1, y1], [x2, y1], [x2, y2], [x1, y2],
                                                  [x1, y1]], atol=1e-4)
        source = region.ContentSequence[0].ReferencedSOPSequence[0]
        assert source.ReferencedSOPInstanceUID == radiograph.header.SOPInstanceUID
        assert source.ReferencedSOPClassUID == radiograph.header.SOPClassUID
        assert codes.label_from_code(group.finding_type) == label
        assert [codes.level_from_code(s.value) for s in group.finding_sites] == [level]
        assert label in group.tracking_identifier and level in group.tracking_identifier
        assert group.tracking_uid
        probs = group.get_measurements(name=codes.PROBABILITY)
        assert [m.value for m in probs] == [pytest.approx(score)]
        assert probs[0].unit.value == "{probability}"
        width = group.get_measurements(name=codes.WIDTH)[0]
        assert width.value == pytest.approx((x2 - x1) * analysis.spacing_mm[1], rel=1e-5)
        assert width.unit.value == "mm"
        algo = {i.ConceptNameCodeSequence[0].CodeMeaning: i.TextValue
                for i in group[0].ContentSequence if i.ValueType == "TEXT"}
        assert algo["Algorithm Name"] == "spinexr demo-phantom"
        assert algo["Algorithm Version"] == "0.3.1"


def test_image_level_group_carries_triage_and_gate(analysis, radiograph):
    group = _image_group(_read_back(make_sr(analysis, radiograph.header)))
    assert group.finding_type.value == codes.ABNORMAL.value
    values = _measurements(group)
    assert sorted(values["122157"]) == [pytest.approx(0.80), pytest.approx(0.83),
                                        pytest.approx(0.86)]
    assert values["122411"] == [pytest.approx(0.42)]
    evaluations = _evaluations(group)
    assert evaluations["GATE"] == "ACCEPTED"
    assert evaluations[codes.NORMALITY.value] == codes.ABNORMAL.value
    comment = [i.TextValue for i in group[0].ContentSequence if i.ValueType == "TEXT"
               and i.ConceptNameCodeSequence[0].CodeValue == codes.COMMENT.value]
    assert comment and "balanced" in comment[0] and "ABNORMAL" in comment[0]


def test_each_ensemble_member_probability_names_its_model(analysis, radiograph):
    group = _image_group(_read_back(make_sr(analysis, radiograph.header)))
    named = {}
    for item in group[0].ContentSequence:
        if item.ValueType == "NUM" and "ContentSequence" in item:
            names = [i.TextValue for i in item.ContentSequence
                     if i.ConceptNameCodeSequence[0].CodeMeaning == "Algorithm Name"]
            named[names[0]] = float(item.MeasuredValueSequence[0].NumericValue)
    assert named == {"densenet121": pytest.approx(0.80), "resnet50": pytest.approx(0.86)}


def test_whole_image_grade_has_its_own_group_with_standard_codes(analysis, radiograph):
    (grade,) = _grade_groups(_read_back(make_sr(analysis, radiograph.header)))
    assert grade.tracking_identifier == "Grade 1: degeneration: moderate (whole image)"
    assert grade.finding_type.value == codes.SPONDYLOSIS.value
    assert [s.value.value for s in grade.finding_sites] == [codes.SPINE.value]
    assert _evaluations(grade) == {codes.SEVERITY.value: "6736007"}         # SCT Moderate
    assert _measurements(grade)["122157"] == [pytest.approx(0.5)]
    assert _comments(grade) == ["degeneration grade moderate: healthy 0.050, doubtful 0.100, "
                                "minimal 0.200, moderate 0.500, severe 0.150"]


def test_window_grade_is_a_region_at_its_level(radiograph):
    from spinexr.types import Box, Grade

    a = make_analysis(radiograph, findings=(), levels=CONFIRMED)
    a = dataclasses.replace(a, grades=(
        Grade("cervical", "fracture", 1, {"normal": 0.1, "fracture": 0.84},
              Box(10.0, 20.0, 60.0, 80.0, "window", 0.9, "C5")),))
    sr = _read_back(make_sr(a, radiograph.header))
    (group,) = sr.content.get_planar_roi_measurement_groups()
    assert group.tracking_identifier == "Grade 1: cervical: fracture (C5)"
    assert group.finding_type.value == codes.FRACTURE_OF_BONE.value
    assert [codes.level_from_code(s.value) for s in group.finding_sites] == ["C5"]
    np.testing.assert_allclose(group.roi.value, [[10, 20], [60, 20], [60, 80], [10, 80],
                                                 [10, 20]], atol=1e-4)


def test_no_code_value_is_long(analysis, uncertain, refused, radiograph):
    """Every code fits Code Value (16 characters): none goes to Long Code Value or URN."""
    def walk(ds):
        for elem in ds:
            if elem.VR == "SQ":
                for item in elem.value:
                    yield from walk(item)
            else:
                yield elem

    for a in (analysis, uncertain, refused):
        elems = list(walk(make_sr(a, radiograph.header)))
        assert not [e for e in elems if e.keyword in ("LongCodeValue", "URNCodeValue")]
        assert all(len(e.value) <= 16 for e in elems if e.keyword == "CodeValue")


def test_sr_has_an_image_library_describing_the_source(analysis, radiograph):
    text = str(make_sr(analysis, radiograph.header))
    assert "Image Library" in text and "Pixel Data Rows" in text
    assert "Horizontal Pixel Spacing" in text           # projection descriptors (TID 1603)


def test_refused_image_gives_an_sr_without_roi_groups(refused, radiograph):
    sr = _read_back(make_sr(refused, radiograph.header))
    assert sr.content.get_planar_roi_measurement_groups() == []
    group = _image_group(sr)
    assert _evaluations(group) == {"GATE": "REFUSED"}
    assert group.get_measurements() == []
    texts = [i.TextValue for i in group[0].ContentSequence if i.ValueType == "TEXT"]
    assert any(refused.gate.reason in t for t in texts)


def test_normal_image_gives_triage_normal_and_no_roi_groups(radiograph):
    a = make_analysis(radiograph, findings=())
    a = dataclasses.replace(a, triage=TriageResult(0.1, False, "balanced", 0.42))
    sr = _read_back(make_sr(a, radiograph.header))
    assert sr.content.get_planar_roi_measurement_groups() == []
    assert _evaluations(_image_group(sr))[codes.NORMALITY.value] == codes.NORMAL.value


def test_text_outside_the_character_set_is_folded(radiograph):
    reason = "not a spine radiograph \u2014 chest PA \u2192 refused (ca\u00f1a)"
    sr = _read_back(make_sr(make_refused(radiograph, reason), radiograph.header))
    texts = [i.TextValue for i in _image_group(sr)[0].ContentSequence if i.ValueType == "TEXT"]
    assert any("radiograph - chest PA ? refused (ca\u00f1a)" in t for t in texts)   # Latin-1


def test_source_header_is_not_modified(analysis, radiograph):
    before = deepcopy(radiograph.header)
    make_sr(analysis, radiograph.header)
    assert radiograph.header == before


def test_header_errors_name_the_problem(analysis, radiograph):
    with pytest.raises(ConfigError, match="not DICOM"):
        make_sr(analysis, None)
    other = deepcopy(radiograph.header)
    other.SOPInstanceUID = "1.2.3.4"
    with pytest.raises(ConfigError, match="header is of 1.2.3.4"):
        make_sr(analysis, other)
    del other.StudyInstanceUID
    with pytest.raises(ConfigError, match="lacks StudyInstanceUID"):
        make_sr(analysis, other)


def test_header_without_type2_patient_attributes_still_works(analysis, radiograph):
    bare = deepcopy(radiograph.header)
    for keyword in ("PatientName", "PatientBirthDate", "AccessionNumber", "StudyID"):
        delattr(bare, keyword)
    sr = _read_back(make_sr(analysis, bare))
    assert sr.PatientName == "" and sr.PatientID == radiograph.header.PatientID


def test_gate_refusal_wins_over_a_stray_triage(radiograph):
    a = make_analysis(radiograph, findings=())
    a = dataclasses.replace(a, gate=GateResult(False, "blank image"))
    assert _evaluations(_image_group(_read_back(make_sr(a, radiograph.header)))) == \
        {"GATE": "REFUSED"}


def test_unknown_label_and_level_keep_their_text(radiograph):
    a = make_analysis(radiograph, findings=((5.0, 5.0, 20.0, 20.0, "Fracture", 0.7, "L9"),))
    (group,) = _read_back(make_sr(a, radiograph.header)).content \
        .get_planar_roi_measurement_groups()
    assert codes.label_from_code(group.finding_type) == "Other lesions"
    assert group.finding_sites == []
    assert group.tracking_identifier == "Finding 1: Fracture at L9"


def _comments(group) -> list[str]:
    return [i.TextValue for i in group[0].ContentSequence if i.ValueType == "TEXT"
            and i.ConceptNameCodeSequence[0].CodeValue == codes.COMMENT.value]


def test_uncertain_input_gets_its_own_verdict_and_the_warning_as_a_comment(uncertain,
                                                                            radiograph):
    sr = _read_back(make_sr(uncertain, radiograph.header))
    group = _image_group(sr)
    evaluations = _evaluations(group)
    assert evaluations["GATE"] == "UNCERTAIN"
    assert evaluations[codes.NORMALITY.value] == codes.ABNORMAL.value   # analysed all the same
    (gate,) = [q for q in group.get_qualitative_evaluations() if q.name.value == "GATE"]
    assert gate.value.scheme_designator == "99SPINEXR"
    comments = _comments(group)
    assert comments[0] == (f"Uncertain input: {UNCERTAIN_REASON}; "
                           "check that this is a spine radiograph")
    assert comments[1] == "Level naming: levels counted, unconfirmed (lowest body taken as L5)"
    assert comments[2].startswith(f"UNCERTAIN INPUT: {UNCERTAIN_REASON}. Triage ABNORMAL")
    assert len(sr.content.get_planar_roi_measurement_groups()) == len(FINDINGS)
    assert "UNCERTAIN INPUT" in sr.SeriesDescription


def test_unconfirmed_levels_carry_the_qualifier_in_every_finding_group(radiograph):
    a = make_analysis(radiograph, levels=UNCONFIRMED)
    sr = _read_back(make_sr(a, radiograph.header))
    assert _evaluations(_image_group(sr))["GATE"] == "ACCEPTED"
    groups = sr.content.get_planar_roi_measurement_groups()
    for group, (*_, label, _score, level) in zip(groups, FINDINGS):
        assert group.tracking_identifier.endswith(f"{label} at {level}?")
        assert [codes.level_from_code(s.value) for s in group.finding_sites] == [level]
        assert _comments(group) == ["Level naming: levels counted, unconfirmed "
                                    "(lowest body taken as L5)"]


def test_confirmed_levels_and_findings_without_a_level_carry_no_qualifier(radiograph):
    sr = _read_back(make_sr(make_analysis(radiograph, levels=CONFIRMED), radiograph.header))
    for group, (*_, label, _score, level) in zip(
            sr.content.get_planar_roi_measurement_groups(), FINDINGS):
        assert group.tracking_identifier.endswith(f"at {level}") and _comments(group) == []
    a = make_analysis(radiograph, levels=UNCONFIRMED,
                      findings=((5.0, 5.0, 20.0, 20.0, "Osteophytes", 0.7, None),))
    (group,) = _read_back(make_sr(a, radiograph.header)).content \
        .get_planar_roi_measurement_groups()
    assert group.tracking_identifier == "Finding 1: Osteophytes" and _comments(group) == []


def test_refused_input_keeps_its_verdict_whatever_the_level_naming(radiograph):
    a = dataclasses.replace(make_refused(radiograph), levels=UNCONFIRMED)
    group = _image_group(_read_back(make_sr(a, radiograph.header)))
    assert _evaluations(group) == {"GATE": "REFUSED"}
    assert _comments(group) == [f"Not analysed: the input was refused ({a.gate.reason})."]


def test_uncertain_comment_is_folded_to_the_character_set(radiograph):
    a = make_uncertain(radiograph, reason="p_spine 0.5 \u2014 lateral?")
    comments = _comments(_image_group(_read_back(make_sr(a, radiograph.header))))
    assert comments[0] == ("Uncertain input: p_spine 0.5 - lateral?; "
                           "check that this is a spine radiograph")


def test_a_source_highdicom_cannot_describe_gets_no_image_library(analysis, radiograph):
    from spinexr.report.sr import library_image

    other = deepcopy(radiograph.header)
    other.SOPClassUID = "1.2.840.10008.5.1.4.1.1.481.5"          # RT Plan: not an image
    assert library_image(other) is None
    assert "Image Library" not in str(make_sr(analysis, other))
    partial = deepcopy(radiograph.header)
    del partial.ImagerPixelSpacing                               # TID 1603 incomplete
    view = library_image(partial)
    assert view.Modality == "OT" and "PatientOrientation" not in view
    assert (view.Rows, view.Columns) == (radiograph.header.Rows, radiograph.header.Columns)
