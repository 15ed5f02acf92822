"""Pascal VOC XML: parses back to the findings, VOC's 1-based inclusive pixel convention."""
from __future__ import annotations

import math
from xml.etree import ElementTree as ET

from report_factory import FINDINGS, make_analysis

from spinexr.report import voc_xml


def test_voc_round_trip(analysis):
    root = ET.fromstring(voc_xml(analysis).encode("utf-8"))
    assert root.tag == "annotation"
    assert root.findtext("filename") == f"{analysis.image_id}.dcm"
    assert (int(root.findtext("size/width")), int(root.findtext("size/height"))) == (200, 256)
    objects = root.findall("object")
    assert len(objects) == len(FINDINGS)
    for obj, (x1, y1, x2, y2, label, score, level) in zip(objects, FINDINGS):
        assert obj.findtext("name") == label
        assert float(obj.findtext("score")) == round(score, 4)
        assert obj.findtext("level") == level
        b = {k: int(obj.findtext(f"bndbox/{k}")) for k in ("xmin", "ymin", "xmax", "ymax")}
        assert (b["xmin"], b["ymin"]) == (math.floor(x1) + 1, math.floor(y1) + 1)
        assert (b["xmax"], b["ymax"]) == (math.ceil(x2), math.ceil(y2))
        assert b["xmin"] - 1 <= x1 < b["xmin"] and b["xmax"] - 1 < x2 <= b["xmax"]


def test_voc_of_raster_input_names_the_file_and_omits_missing_levels(png_radiograph):
    a = make_analysis(png_radiograph, findings=((0.0, 0.0, 200.0, 256.0, "Other lesions", 0.5,
                                                 None),))
    root = ET.fromstring(voc_xml(a))
    assert root.findtext("filename") == "phantom.png"
    obj = root.find("object")
    assert obj.find("level") is None
    assert [int(obj.findtext(f"bndbox/{k}")) for k in ("xmin", "ymin", "xmax", "ymax")] == \
        [1, 1, 200, 256]


def test_voc_of_a_refused_image_has_no_objects(refused):
    assert ET.fromstring(voc_xml(refused)).findall("object") == []
