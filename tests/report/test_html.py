"""The HTML report: one self-contained, script-free, escaped file without patient data."""
from __future__ import annotations

import base64
import dataclasses
from html.parser import HTMLParser

import numpy as np
from report_factory import (FINDINGS, UNCERTAIN_REASON, UNCONFIRMED, make_analysis,
                            make_refused)

from spinexr.report import png_bytes, render_html
from spinexr.report.overlay import BANNER_TEXT
from spinexr.types import GateResult, LevelNaming

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


class _Alerts(HTMLParser):
    """The text inside each element with role="alert", and of each level-note paragraph."""

    def __init__(self):
        super().__init__()
        self.alerts: list[str] = []
        self.notes: list[str] = []
        self._into: list | None = None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if attrs.get("role") == "alert":
            self._into = self.alerts
        elif "level-note" in (attrs.get("class") or ""):
            self._into = self.notes
        if self._into is not None and tag in ("div", "p"):
            self._into.append("")

    def handle_endtag(self, tag):
        if tag in ("div", "p"):
            self._into = None

    def handle_data(self, data):
        if self._into is not None:
            self._into[-1] += data


def _alerts(html: str) -> _Alerts:
    parser = _Alerts()
    parser.feed(html)
    return parser


def test_uncertain_input_gets_a_warning_banner_before_the_results(uncertain):
    html = render_html(uncertain, PNG, PNG, {}, CARD)
    page = _alerts(html)
    warning = (f"Uncertain input: {UNCERTAIN_REASON}; check that this is a spine radiograph")
    assert page.alerts == [warning]
    assert html.index(warning) < html.index("<main>")
    text = "".join(_parse(html).text)
    assert "Input uncertain: " in text and "P(spine radiograph) = 0.550" in text
    assert "Abnormal: P(abnormal) = 0.830" in text                  # analysed all the same


def test_unconfirmed_levels_are_marked_and_explained_beside_the_findings(uncertain):
    html = render_html(uncertain, PNG, PNG, {}, CARD)
    for *_, level in FINDINGS:
        assert f"<td>{level}?</td>" in html
    assert _alerts(html).notes == ["? = levels counted, unconfirmed (lowest body taken as L5)"]


def test_anchored_levels_are_named_as_they_are_with_their_anchor(radiograph):
    a = make_analysis(radiograph, levels=LevelNaming(True, "C2 (dens)", "cervical"))
    html = render_html(a, PNG, PNG, {}, CARD)
    assert "<td>L3</td>" in html and "L3?" not in html
    page = _alerts(html)
    assert page.alerts == [] and page.notes == ["Levels anchored on the C2 (dens)."]
    assert "Input accepted: " in "".join(_parse(html).text)


def test_refused_report_has_no_uncertain_banner(radiograph):
    a = dataclasses.replace(make_refused(radiograph), levels=UNCONFIRMED)
    page = _alerts(render_html(a, PNG, PNG, {}, {}))
    assert page.alerts == [] and page.notes == []
