"""Every result a pack produces reaches every output: the issue's cervical fracture at 0.84 on
an image the triage called normal appears in the verdict lines, result.json, the overlay, the
GSPS, the SC and the SR, and the disagreement is said in plain words in each."""
from __future__ import annotations

import dataclasses
import json
from io import BytesIO

import numpy as np
import pydicom
import pytest
from PIL import Image
from report_factory import CONFIRMED, make_analysis

from spinexr.report import _dicom, codes, overlay, render_outputs
from spinexr.types import Grade, TriageResult

FRACTURE = Grade("cervical", "fracture", 1, {"normal": 0.10, "fracture": 0.84,
                                             "dislocation": 0.06})
DISAGREE = ("The models disagree: the triage says normal (P(abnormal) 0.20) but grades "
            "cervical: fracture (whole image); review the image")


@pytest.fixture(scope="module")
def fractured(radiograph):
    a = make_analysis(radiograph, levels=CONFIRMED,
                      findings=((20.5, 30.25, 60.0, 70.0, "Osteophytes", 0.91, "L3"),))
    return dataclasses.replace(a, triage=TriageResult(0.20, False, "balanced", 0.42),
                               grades=(FRACTURE,))


@pytest.fixture(scope="module")
def files(fractured, radiograph):
    return render_outputs(fractured, radiograph)


def _texts(ds) -> list[str]:
    found: list[str] = []
    ds.walk(lambda _, e: found.append(str(e.value))
            if e.keyword in ("TextValue", "UnformattedTextValue", "ImageComments") else None)
    return found


def test_verdict_lines_hold_every_result_and_the_disagreement(fractured):
    lines = _dicom.verdict_lines(fractured)
    assert lines[0].startswith("Triage NORMAL")
    assert lines[1:] == ["Finding 1: Osteophytes 0.91 at L3",
                         "Grade: cervical fracture (whole image), P 0.84", f"{DISAGREE}."]


def test_result_json_has_the_grade_and_the_warning(files):
    doc = json.loads(files["result.json"])
    assert doc["grades"][0]["label"] == "fracture" and doc["grades"][0]["box"] is None
    assert doc["grades"][0]["probabilities"]["fracture"] == pytest.approx(0.84)
    assert doc["warnings"] == [DISAGREE]
    assert {"sr.dcm", "gsps.dcm", "sc.dcm"} <= set(doc["outputs"])


def test_overlay_and_sc_burn_in_the_grade_and_the_disagreement(files, fractured, radiograph,
                                                                monkeypatch):
    drawn: list[str] = []
    real = overlay._label
    monkeypatch.setattr(overlay, "_label", lambda draw, rect, text, *rest:
                        drawn.append(text) or real(draw, rect, text, *rest))
    overlay.render_overlay(radiograph.pixels, fractured)
    assert "cervical: fracture (whole image)" in drawn
    assert "Triage NORMAL: P(abnormal) 0.20 < 0.42" in drawn
    png = np.asarray(Image.open(BytesIO(files["overlay.png"])).convert("RGB"))
    band = np.all(png == overlay.DISAGREE_BACKGROUND, axis=2).mean(axis=1)
    assert band.max() > 0.5                              # a vermillion strip across the image
    sc = pydicom.dcmread(BytesIO(files["sc.dcm"]))
    np.testing.assert_array_equal(sc.pixel_array, png)   # the SC is the overlay
    assert DISAGREE + "." in sc.ImageComments


def test_gsps_draws_the_grade_on_its_layer_and_the_disagreement(files):
    ps = pydicom.dcmread(BytesIO(files["gsps.dcm"]))
    layers = {item.GraphicLayer for item in ps.GraphicLayerSequence}
    assert "G_FRACTURE" in layers
    texts = _texts(ps)
    assert "Grade: cervical fracture (whole image), P 0.84" in texts
    assert f"{DISAGREE}." in texts


def test_sr_codes_the_fracture_at_the_cervical_spine(files):
    import highdicom as hd

    sr = hd.sr.ComprehensiveSR.from_dataset(pydicom.dcmread(BytesIO(files["sr.dcm"])))
    (grade,) = [g for g in sr.content.get_image_measurement_groups()
                if g.tracking_identifier.startswith("Grade")]
    assert grade.tracking_identifier == "Grade 1: cervical: fracture (whole image)"
    assert grade.finding_type.value == codes.FRACTURE_OF_BONE.value
    assert [s.value.value for s in grade.finding_sites] == [codes.REGION_SITES["cervical"].value]
    assert [m.value for m in grade.get_measurements()] == [pytest.approx(0.84)]
    assert DISAGREE in _texts(pydicom.dcmread(BytesIO(files["sr.dcm"])))
