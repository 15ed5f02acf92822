"""The HTML report: one self-contained, script-free, escaped file without patient data."""
from __future__ import annotations

import base64
import dataclasses
from html.parser import HTMLParser

import numpy as np
from report_factory import FINDINGS, make_refused

from spinexr.report import png_bytes, render_html
from spinexr.report.overlay import BANNER_TEXT
from spinexr.types import GateResult

CARD = {"intended_use": "Research on synthetic spine radiographs.",
        "limitations": "Trained on phantoms <only>; fails on real images."}
PNG = png_bytes(np.zeros((4, 4), np.uint8))


class _Collector(HTMLParser):
    def __init__(self):
        super().__init__()
        self.tags: list[str] = []
        self.urls: list[str] = []
        self.text: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        self.urls += [v for k, v in attrs if k in ("src", "href") and v]

    def handle_data(self, data):
        self.text.append(data)


def _parse(html: str) -> _Collector:
    parser = _Collector()
    parser.feed(html)
    parser.close()
    return parser


def test_report_parses_and_is_self_contained(analysis):
    html = render_html(analysis, PNG, PNG, {"gradcam for abnormal": PNG}, CARD)
    page = _parse(html)
    assert html.startswith("<!DOCTYPE html>") and page.tags[0] == "html"
    assert "script" not in page.tags and "link" not in page.tags
    assert page.urls and all(u.startswith("data:image/png;base64,") for u in page.urls)
    assert len(page.urls) == 3
    assert base64.b64decode(page.urls[0].split(",", 1)[1]) == PNG


def test_report_shows_every_finding_triage_grade_gate_and_card(analysis):
    text = " ".join(_parse(render_html(analysis, PNG, PNG, {}, CARD)).text)
    for x1, y1, x2, y2, label, score, level in FINDINGS:
        assert label in text and level in text and f"{score:.3f}" in text
        assert f"[{x1:.1f}, {y1:.1f}, {x2:.1f}, {y2:.1f}]" in text
    for word in ("densenet121", "resnet50", "0.830", "balanced", "0.420", "moderate",
                 "accepted", "Research on synthetic spine radiographs.", "demo-phantom",
                 "0.3.1", BANNER_TEXT, "not for clinical use"):
        assert word in text, word
    assert "Trained on phantoms <only>" in text             # escaped in the file, text here


def test_report_has_no_patient_data(analysis, radiograph):
    html = render_html(analysis, PNG, PNG, {}, CARD)
    for keyword in ("PatientName", "PatientID", "PatientBirthDate", "AccessionNumber"):
        value = str(radiograph.header.get(keyword))
        assert value not in html, keyword
    assert "PHANTOM^" not in html


def test_all_text_is_escaped(radiograph):
    evil = "<script>alert(1)</script>"
    a = dataclasses.replace(make_refused(radiograph), gate=GateResult(False, evil, {evil: evil}))
    html = render_html(a, PNG, PNG, {evil: PNG}, {"limitations": evil})
    assert "<script>" not in html and "&lt;script&gt;" in html
    assert "script" not in _parse(html).tags


def test_refused_report_says_not_analysed(refused):
    text = " ".join(_parse(render_html(refused, PNG, PNG, {}, {})).text)
    assert "Not analysed" in text and refused.gate.reason in text
    assert "No findings." in text and "No model card was provided." in text
