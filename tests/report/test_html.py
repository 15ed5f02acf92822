"""The HTML report: one self-contained, script-free, escaped file without patient data."""
from __future__ import annotations

import base64
import dataclasses
from html.parser import HTMLParser
from types import SimpleNamespace

import numpy as np
from report_factory import (FINDINGS, UNCERTAIN_REASON, UNCONFIRMED, make_analysis,
                            make_refused)

from spinexr.report import png_bytes, render_html, render_outputs
from spinexr.report.card import clinical_card
from spinexr.report.identity import Identity, identity_of, iso_date, iso_time
from spinexr.report.overlay import BANNER_TEXT
from spinexr.types import GateResult, LevelNaming, TriageResult

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
    data = [u for u in page.urls if u.startswith("data:image/png;base64,")]
    links = [u for u in page.urls if u.startswith("#")]        # finding row -> its box
    assert len(data) == 3 and len(data) + len(links) == len(page.urls)
    assert base64.b64decode(data[0].split(",", 1)[1]) == PNG
    assert links and all(f'id="{u[1:]}"' in html for u in links)


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
    assert "PHANTOM^" not in html and "PHANTOM, " not in html and "1983-06-16" not in html


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


# ---------------------------------------------------------------- identifiers (issue 12.4)
def test_identity_is_shown_at_the_top_escaped_with_iso_dates(analysis, radiograph):
    ident = identity_of(radiograph.header)
    html = render_html(analysis, PNG, PNG, {}, CARD, identity=ident)
    top = html[:html.index("<main>")]
    for text in ("PHANTOM, Seed0003", "PHANTOM-0003", "1983-06-16", "2021-11-16 17:20",
                 "PH0000000003", "LSPINE AP (SYNTHETIC PHANTOM)", "LSPINE"):
        assert text in top, text
    assert "PHANTOM" not in html[:html.index("</title>")]         # never in the title
    evil = Identity(patient_name="<b>x</b>")
    assert "&lt;b&gt;x&lt;/b&gt;" in render_html(analysis, PNG, PNG, {}, CARD, identity=evil)


def test_render_outputs_shows_identifiers_unless_hidden_and_result_json_never(analysis,
                                                                             radiograph):
    shown = render_outputs(analysis, radiograph)
    hidden = render_outputs(analysis, radiograph, identifiers=False)
    assert b"PHANTOM, Seed0003" in shown["report.html"]
    for files in (shown, hidden):
        assert b"PHANTOM" not in files["result.json"] and b"19830616" not in files["result.json"]
    assert b"PHANTOM, Seed0003" not in hidden["report.html"]
    assert b"PHANTOM-0003" not in hidden["report.html"]


def test_identity_of_formats_names_dates_and_views():
    from pydicom import Dataset

    ds = Dataset()
    ds.PatientName, ds.PatientID, ds.StudyDate = "DOE^JANE^M^DR^", "P1", "20240131"
    ds.ViewPosition, ds.ImageLaterality, ds.PatientBirthDate = "LL", "L", "19700102"
    ident = identity_of(ds)
    assert (ident.patient_name, ident.study_date, ident.view, ident.birth_date) == (
        "DR DOE, JANE M", "2024-01-31", "LL (L)", "1970-01-02")
    assert iso_date("2024") == "2024" and iso_time("0930") == "09:30" and iso_time("9") is None
    assert ident.rows()[:2] == [("Patient", "DR DOE, JANE M"), ("Patient ID", "P1")]
    assert identity_of(None) is None and not identity_of(Dataset())


# ---------------------------------------------------------------- plain wording (issue 12.5)
def test_operating_points_are_named_for_what_they_do_with_thresholds(radiograph):
    a = dataclasses.replace(make_analysis(radiograph), triage=TriageResult(
        0.5, True, "youden", 0.42, {"m": 0.5}, {"youden": True, "high_sensitivity": True}))
    card = {**CARD, "operating_points": {"youden": 0.42, "high_sensitivity": 0.18}}
    html = render_html(a, PNG, PNG, {}, card)
    assert "at the balanced operating point (threshold 0.420)" in html
    assert "<td>balanced (used)</td><td class=\"num\">0.420</td><td>abnormal</td>" in html
    assert "<td>high sensitivity</td><td class=\"num\">0.180</td><td>abnormal</td>" in html
    assert "youden" not in html.lower()


def test_gate_checks_are_behind_a_details_toggle_with_plain_names(radiograph):
    a = dataclasses.replace(make_analysis(radiograph), gate=GateResult(
        True, "spine radiograph", {"std": 0.21, "saturated": 0.012, "vertebra_chain": 5}))
    html = render_html(a, PNG, PNG, {}, CARD)
    details = html[html.index("<details><summary>Technical checks"):]
    details = details[:details.index("</details>")]
    for text in ("Contrast (spread of grey values", "Pixels pure black or white", "1.2%",
                 "Vertebrae in the longest column"):
        assert text in details, text
    assert ">std<" not in html and ">saturated<" not in html


def test_model_card_is_the_clinical_summary_without_command_lines(analysis):
    manifest = SimpleNamespace(
        card={**CARD, "training_data": "Phantoms, seed 7.", "command": "spinexr train x.yaml"},
        metrics={"triage/test": {"auroc": 0.77, "n": 200, "n_positive": 95,
                                 "youden.sensitivity": 0.31, "youden.specificity": 0.89},
                 "lesions/test": {"map50": 0.23, "n_images": 150},
                 "triage/oof": {"auroc": 0.6}},
        ensemble=SimpleNamespace(operating_points={"youden": 0.559}))
    card = clinical_card(manifest)
    assert "command" not in card and card["operating_points"] == {"youden": 0.559}
    text = " ".join(_parse(render_html(analysis, PNG, PNG, {}, card)).text)
    for part in ("Intended use", "Training data", "Phantoms, seed 7.", "Measured performance",
                 "AUROC 0.77 on 200 test images (95 abnormal); balanced (threshold 0.559): "
                 "sensitivity 31%, specificity 89%",
                 "mean average precision at 50% overlap 0.23 on 150 test images"):
        assert part in text, part
    assert "spinexr train" not in text and "0.60" not in text        # no oof, no command


# ---------------------------------------------------------------- the static viewer (12.3)
def test_viewer_zooms_and_toggles_without_script(analysis):
    picture = png_bytes(np.zeros((256, 200), np.uint8))
    html = render_html(analysis, picture, PNG, {}, CARD)
    for key in ("rv-fit", "rv-z1", "rv-z2", "rv-z4", "rv-labels", "rv-levels"):
        assert f'id="{key}"' in html and f'label for="{key}"' in html, key
    assert '<svg viewBox="0 0 200 256"' in html                   # source pixels
    assert "#rv-z1:checked ~ .rv-port .rv-img{width:200px}" in html   # 1:1 of the picture
    assert "#rv-z4:checked ~ .rv-port .rv-img{width:800px}" in html
    classes = sorted({f[4] for f in FINDINGS})
    for i, name in enumerate(classes):                           # one toggle per class
        assert f'<input type="checkbox" id="rv-c{i}" checked>' in html
        assert f"#rv-c{i}:not(:checked) ~ .rv-port .rv-c{i}{{display:none}}" in html
    x1, y1, x2, y2, label, score, level = FINDINGS[0]
    assert (f'<rect class="rv-box" x="{x1:.1f}" y="{y1:.1f}" width="{x2 - x1:.1f}" '
            f'height="{y2 - y1:.1f}" stroke="#e69f00"/>') in html
    assert f"{label} {score:.2f} \u00b7 {level}" in html              # label, always shown
    assert "vector-effect:non-scaling-stroke" in html


def test_process_step_and_cli_hide_identifiers_and_show_the_clinical_card(analysis,
                                                                          radiograph):
    """``spinexr analyze --hide-identifiers`` -> ProcessOptions(identifiers=False) -> a
    report.html without them; the default card is the pack's clinical summary."""
    import argparse
    from pathlib import Path

    from spinexr.cli import analyze_cmd
    from spinexr.io.prefetch import ReadResult
    from spinexr.process import ProcessOptions, Processor, Source

    sub = argparse.ArgumentParser().add_subparsers()
    analyze_cmd.add_parser(sub)
    args = sub.choices["analyze"].parse_args(["x.dcm", "--hide-identifiers"])
    assert args.hide_identifiers is True
    manifest = SimpleNamespace(card={**CARD, "command": "spinexr train x.yaml"}, metrics={},
                               ensemble=SimpleNamespace(operating_points={"balanced": 0.42}))
    analyzer = SimpleNamespace(pack=SimpleNamespace(manifest=manifest),
                               analyze_batch=lambda images, **kw: [analysis for _ in images])
    processor = Processor(analyzer)
    reads = [ReadResult(Path("x.dcm"), radiograph)]
    for hide in (False, True):
        done = processor.process_reads([Source(path=Path("x.dcm"))], reads,
                                       ProcessOptions(identifiers=not hide))[0]
        html = done.files["report.html"].decode()
        assert ("PHANTOM, Seed0003" in html) is not hide
        assert "Research on synthetic spine radiographs." in html
        assert "spinexr train" not in html and "0.420" in html
