"""write_outputs: every file for DICOM input, no DICOM objects for raster input, said so."""
from __future__ import annotations

import copy
import dataclasses
import json
from xml.etree import ElementTree as ET

import pydicom
import pytest
from PIL import Image
from report_factory import make_analysis

from spinexr.errors import ConfigError
from spinexr.report import validate_result, write_outputs
from spinexr.report.outputs import NOT_DICOM_NOTE, REFUSED_NOTE


def test_dicom_input_gets_all_seven_files(analysis, radiograph, tmp_path):
    paths = write_outputs(analysis, radiograph, tmp_path / "out", heatmap="gradcam",
                          card={"intended_use": "testing"})
    names = {"result.json", "overlay.png", "boxes.xml", "report.html", "sr.dcm", "gsps.dcm",
             "sc.dcm"}
    assert {p.name for p in paths.values()} == names
    assert {p.name for p in (tmp_path / "out").iterdir()} == names
    doc = json.loads(paths["json"].read_text("utf-8"))
    validate_result(doc)
    assert set(doc["outputs"]) == names and doc["notes"] == []
    for key in ("sr", "gsps", "sc"):
        ds = pydicom.dcmread(paths[key])
        assert ds.StudyInstanceUID == radiograph.header.StudyInstanceUID
    assert Image.open(paths["overlay"]).size == (200, 256)
    assert len(ET.parse(paths["voc"]).getroot().findall("object")) == 3
    html = paths["html"].read_text("utf-8")
    assert "gradcam for abnormal (densenet121)" in html and "testing" in html


def test_raster_input_skips_dicom_and_says_why(png_radiograph, tmp_path):
    a = make_analysis(png_radiograph)
    paths = write_outputs(a, png_radiograph, tmp_path)
    assert set(paths) == {"json", "overlay", "voc", "html"}
    doc = json.loads(paths["json"].read_text("utf-8"))
    assert doc["notes"] == [NOT_DICOM_NOTE]
    assert "sr.dcm" not in doc["outputs"] and doc["source"]["path"].endswith("phantom.png")
    assert doc["source"]["study_instance_uid"] is None


def test_refused_input_still_gets_a_valid_result(refused, radiograph, tmp_path):
    paths = write_outputs(refused, radiograph, tmp_path)
    doc = json.loads(paths["json"].read_text("utf-8"))
    assert doc["gate"]["accepted"] is False and doc["triage"] is None
    assert "sr.dcm" in doc["outputs"]
    assert "gsps.dcm" not in doc["outputs"] and "sc.dcm" not in doc["outputs"]
    assert set(paths) == {"json", "overlay", "voc", "html", "sr"}
    assert doc["notes"] == [REFUSED_NOTE]
    texts = []
    pydicom.dcmread(paths["sr"]).walk(
        lambda ds, elem: texts.append(elem.value) if elem.keyword == "TextValue" else None)
    assert f"Not analysed: the input was refused ({refused.gate.reason})." in texts


def test_unknown_heatmap_name_lists_the_available_ones(analysis, radiograph, tmp_path):
    with pytest.raises(ConfigError, match="no heatmap 'lime'.*gradcam:abnormal"):
        write_outputs(analysis, radiograph, tmp_path, heatmap="lime")
    assert not list(tmp_path.iterdir())


def test_a_header_of_another_image_writes_nothing(analysis, radiograph, tmp_path):
    header = copy.deepcopy(radiograph.header)
    header.SOPInstanceUID = "1.2.3"
    other = dataclasses.replace(radiograph, header=header)
    with pytest.raises(ConfigError, match="SOP Instance"):
        write_outputs(analysis, other, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_every_output_of_an_uncertain_input_carries_the_warning(uncertain, radiograph):
    from io import BytesIO

    from spinexr.report import render_outputs

    files = render_outputs(uncertain, radiograph)
    doc = json.loads(files["result.json"])
    validate_result(doc)
    warning = doc["warnings"][0]
    assert warning.startswith("Uncertain input: ") and doc["gate"]["outcome"] == "uncertain"
    assert warning in files["report.html"].decode("utf-8")
    sr, gsps, sc = (pydicom.dcmread(BytesIO(files[n])) for n in ("sr.dcm", "gsps.dcm", "sc.dcm"))
    for ds in (sr, gsps, sc):
        assert "UNCERTAIN INPUT" in ds.SeriesDescription
    assert warning in sc.ImageComments
    assert any(ann.GraphicLayer == "SPINEXR_WARNING" for ann in gsps.GraphicAnnotationSequence)
