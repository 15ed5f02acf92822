"""Outputs of an MR stenosis analysis: result.json, overlay, HTML, SR, and which DICOM objects."""
from __future__ import annotations

import json
import warnings
from dataclasses import replace
from io import BytesIO

import highdicom as hd
import numpy as np
import pydicom
import pytest

from spinexr.io import read_radiograph
from spinexr.io.policy import MRI_POLICY
from spinexr.labels import STENOSIS_GRADES
from spinexr.phantom import MriConfig, generate_mri, mri_to_dicom
from spinexr.phantom.dicom import to_bytes
from spinexr.report import (ResultValidationError, analysis_to_dict, codes, make_sr,
                            render_html, render_outputs, render_overlay, validate_result)
from spinexr.report.overlay import GRADE_COLORS
from spinexr.types import Analysis, Box, GateResult, Grade, PackInfo

#: Ground-truth grades of the slice: every grade appears once.
GRADES = {"central canal": 2, "left lateral recess": 0, "right lateral recess": 1,
          "left neural foramen": 3, "right neural foramen": 0}
PACK = PackInfo("demo", "1.0.0", True)


@pytest.fixture(scope="module")
def mr_slice():
    ph = generate_mri(21, MriConfig(size=256, grades=GRADES))
    return ph, read_radiograph(to_bytes(mri_to_dicom(ph)), policy=MRI_POLICY)


def _probs(index: int) -> dict[str, float]:
    p = np.full(len(STENOSIS_GRADES), 0.1)
    p[index] = 0.7
    return dict(zip(STENOSIS_GRADES, (float(v) for v in p)))


@pytest.fixture(scope="module")
def mri_analysis(mr_slice) -> Analysis:
    """The phantom's own regions and grades, as the MRI path would report them."""
    ph, image = mr_slice
    grades = tuple(Grade("stenosis", STENOSIS_GRADES[ph.grades[r.label]], ph.grades[r.label],
                         _probs(ph.grades[r.label]),
                         Box(float(r.x1), float(r.y1), float(r.x2), float(r.y2), r.label, 0.9))
                   for r in ph.regions)
    return Analysis(image_id=image.image_id, source=image.source, image_size=(256, 256),
                    spacing_mm=image.spacing_mm, pack=PACK, modality="mri", grades=grades,
                    gate=GateResult(True, "axial MR slice: 5 stenosis region(s) found",
                                    {"regions": 5}))


def test_result_json_carries_modality_and_each_region(mri_analysis):
    doc = analysis_to_dict(mri_analysis)
    validate_result(doc)
    assert doc["schema_version"] == "1.2" and doc["modality"] == "mri"
    assert doc["triage"] is None and doc["findings"] == []
    by_region = {g["region"]: g for g in doc["grades"]}
    assert set(by_region) == set(GRADES)
    canal = by_region["central canal"]
    assert (canal["task"], canal["label"], canal["index"], canal["score"]) == \
        ("stenosis", "moderate", 2, 0.9)
    assert canal["probabilities"]["moderate"] == pytest.approx(0.7)
    box = next(g.box for g in mri_analysis.grades if g.box.label == "central canal")
    assert canal["box"] == pytest.approx(box.as_list())


def test_radiograph_documents_gain_only_the_modality(analysis):
    doc = analysis_to_dict(analysis)
    assert doc["modality"] == "radiograph"
    assert "region" not in doc["grades"][0] and "score" not in doc["grades"][0]
    old = {k: v for k, v in doc.items() if k != "modality"}     # a 1.1 document still validates
    validate_result({**old, "schema_version": "1.1"})


@pytest.mark.parametrize("key, value, message", [
    ("triage", {"probability": 0.5, "abnormal": False, "operating_point": "x", "threshold": 0.5,
                "per_model": {}, "decisions": {}}, r"\$\.triage"),
    ("modality", "ct", r"\$\.modality: 'ct' is not one of"),
])
def test_schema_refuses_an_mr_document_with_radiograph_results(mri_analysis, key, value, message):
    doc = analysis_to_dict(mri_analysis)
    doc[key] = value
    with pytest.raises(ResultValidationError, match=message):
        validate_result(doc)


def test_overlay_draws_each_region_in_its_grade_colour(mri_analysis, mr_slice):
    _, image = mr_slice
    rgb = render_overlay(image.pixels, mri_analysis)
    for g in mri_analysis.grades:
        x, y = int(g.box.x1), int((g.box.y1 + g.box.y2) / 2)      # middle of the left edge
        assert tuple(rgb[y, x]) == GRADE_COLORS[g.label], g.box.label


def test_html_shows_a_region_table_and_no_triage_or_findings(mri_analysis):
    html = render_html(mri_analysis, b"png", b"png", {}, {})
    assert "lumbar MR stenosis grading" in html and "<h2>Regions</h2>" in html
    for region, grade in GRADES.items():
        assert f"<td>{region}</td>" in html
        assert f"</span>{STENOSIS_GRADES[grade]}</td>" in html
    assert "<h2>Triage</h2>" not in html and "<h2>Findings</h2>" not in html
    assert "worst severe (left neural foramen)" in html


def _read_sr(ds) -> hd.sr.ComprehensiveSR:
    buf = BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ds.save_as(buf)
    return hd.sr.ComprehensiveSR.from_dataset(pydicom.dcmread(BytesIO(buf.getvalue())))


def _comments(group) -> list[str]:
    return [item.TextValue for item in group[0].ContentSequence
            if item.ValueType == "TEXT" and item.ConceptNameCodeSequence[0].CodeValue
            == codes.COMMENT.value]


def test_sr_has_one_planar_roi_group_per_region_with_its_grade(mri_analysis, mr_slice):
    _, image = mr_slice
    sr = _read_sr(make_sr(mri_analysis, image.header))
    groups = sr.content.get_planar_roi_measurement_groups()
    assert len(groups) == len(GRADES)
    for group, g in zip(groups, mri_analysis.grades):
        assert g.box.label in group.tracking_identifier
        b = g.box
        np.testing.assert_allclose(group.roi.value, [[b.x1, b.y1], [b.x2, b.y1], [b.x2, b.y2],
                                                     [b.x1, b.y2], [b.x1, b.y1]], atol=1e-4)
        region, side = codes.region_codes(b.label)
        assert group.finding_type.value == codes.SPINAL_STENOSIS.value
        spine, site = group.finding_sites
        assert spine.value.value == codes.LUMBAR_SPINE.value
        assert site.value.value == region.value
        (severity,) = group.get_qualitative_evaluations()
        assert severity.name.value == codes.SEVERITY.value
        assert severity.value.value == codes.SEVERITY_CODES[g.label].value
        assert [m.value for m in group.get_measurements(name=codes.PROBABILITY)] == \
            [pytest.approx(0.9)]
        assert _comments(group) == [f"stenosis grade {g.label}: " + ", ".join(
            f"{k} {v:.3f}" for k, v in g.probabilities.items())]
    canal = groups[0]
    assert canal.finding_sites[1].value.value == "61853006"    # SCT Vertebral canal
    left_foramen = groups[3]
    assert left_foramen.finding_sites[1].laterality.value == codes.LEFT.value


def test_sr_reports_an_mr_procedure_and_no_region_grade_at_image_level(mri_analysis, mr_slice):
    _, image = mr_slice
    ds = make_sr(mri_analysis, image.header)
    text = str(ds)
    assert "Magnetic resonance imaging" in text and "Plain radiography" not in text
    (image_group,) = _read_sr(ds).content.get_image_measurement_groups()
    names = {q.name.value for q in image_group.get_qualitative_evaluations()}
    assert names == {codes.GATE.value}
    assert image_group.finding_type is None                   # no triage on an MR slice
    assert _comments(image_group) == ["Stenosis grading: 5 region(s) graded; worst severe "
                        "(left neural foramen)."]


def test_outputs_of_an_mr_slice_include_a_gsps_with_a_layer_per_grade(mri_analysis, mr_slice):
    _, image = mr_slice
    files = render_outputs(mri_analysis, image)
    assert {"sr.dcm", "gsps.dcm", "sc.dcm", "report.html"} <= set(files)
    doc = json.loads(files["result.json"])
    assert doc["notes"] == [] and "gsps.dcm" in doc["outputs"]
    ps = pydicom.dcmread(BytesIO(files["gsps.dcm"]))
    assert ps.StudyInstanceUID == image.header.StudyInstanceUID
    layers = {item.GraphicLayer for item in ps.GraphicLayerSequence}
    assert {f"G_{STENOSIS_GRADES[i].upper()}" for i in GRADES.values()} <= layers
    tags = {t.UnformattedTextValue for ann in ps.GraphicAnnotationSequence
            if ann.GraphicLayer.startswith("G_") for t in ann.TextObjectSequence}
    assert "1 central canal: moderate" in tags
    sc = pydicom.dcmread(BytesIO(files["sc.dcm"]))
    assert sc.StudyInstanceUID == image.header.StudyInstanceUID


def test_a_refused_mr_slice_renders(mri_analysis, mr_slice):
    _, image = mr_slice
    refused = replace(mri_analysis, grades=(), gate=GateResult(False, "unusable image: flat"))
    files = render_outputs(refused, image)
    doc = json.loads(files["result.json"])
    assert doc["modality"] == "mri" and doc["gate"]["outcome"] == "refused"
    assert "sr.dcm" in files and "gsps.dcm" not in files and "sc.dcm" not in files
    assert "Not analysed: unusable image: flat" in files["report.html"].decode()
