"""The browser UI end to end: headless Chromium (the system browser, never a download) drives
the page served by the real ``create_app`` under uvicorn, against a stand-in pack whose
findings are known, so boxes are guaranteed to appear."""
from __future__ import annotations

import os
import shutil
import threading
import time
from dataclasses import replace

import numpy as np
import pydicom
import pytest

pytest.importorskip("fastapi", reason="the web service needs the 'serve' extra (fastapi)")
uvicorn = pytest.importorskip("uvicorn", reason="the web service needs the 'serve' extra (uvicorn)")
sync_api = pytest.importorskip(
    "playwright.sync_api", reason="playwright is not installed: pip install playwright==1.63.0 "
    "(its browser download is not needed; the system Chromium is used)")

from spinexr.analyze import Analyzer  # noqa: E402
from spinexr.labels import LESION_CLASSES, VERTEBRA_CLASS  # noqa: E402
from spinexr.models.ensemble import TriageEnsemble  # noqa: E402
from spinexr.models.manifest import parse_manifest  # noqa: E402
from spinexr.phantom import XrayConfig, generate_xray, xray_to_dicom  # noqa: E402
from spinexr.service.app import create_app  # noqa: E402
from spinexr.service.settings import Settings  # noqa: E402
from spinexr.types import Box, GateResult, LevelNaming  # noqa: E402

pytestmark = pytest.mark.slow

#: What the stand-in lesion detector finds on every image (source pixels of a 200 x 256 image).
FINDINGS = [Box(80.0, 56.0, 120.0, 64.0, "Disc space narrowing", score=0.7),
            Box(60.0, 100.0, 75.0, 120.0, "Osteophytes", score=0.6),
            Box(125.0, 150.0, 140.0, 170.0, "Osteophytes", score=0.55)]
VERTEBRAE = [Box(70.0, 20.0 + 45 * i, 130.0, 55.0 + 45 * i, VERTEBRA_CLASS, score=0.9)
             for i in range(5)]


def _chromium() -> str:
    """The system Chromium: $PLAYWRIGHT_CHROMIUM_EXECUTABLE, else `chromium` on PATH."""
    path = os.environ.get("PLAYWRIGHT_CHROMIUM_EXECUTABLE") or shutil.which("chromium")
    if not path or not os.access(path, os.X_OK):
        pytest.skip("no Chromium executable: set PLAYWRIGHT_CHROMIUM_EXECUTABLE or put "
                    "'chromium' on PATH (`make browser`, or Debian: apt-get install chromium)")
    return path


class _Det:
    def __init__(self, boxes):
        self.boxes = boxes

    def predict(self, images, conf=0.25, **_):
        return [[b for b in self.boxes if (b.score or 0) >= conf] for _ in images]


class _Member:
    head, labels = "binary", ("normal", "abnormal")

    def predict_logits(self, images):
        return np.full((len(images), 1), 2.0)


class _Grader:
    labels = ("healthy", "doubtful", "minimal", "moderate", "severe")

    def predict_proba(self, images):
        return np.tile([0.1, 0.1, 0.6, 0.1, 0.1], (len(images), 1))


def _spec(kind, labels, **extra):
    """A version-1 model spec (no role: the manifest parser infers it, as for old packs)."""
    return {"kind": kind, "arch": "stand-in", "labels": labels, "weights": "none",
            "input": {"size": 64}, **({"head": "binary"} if kind == "classifier" else {}),
            **extra}


#: The operating points of the stand-in pack (the UI shows both, by plain names).
POINTS = {"youden": 0.5, "high_sensitivity": 0.2}


class _Pack:
    """A synthetic pack: triage says abnormal (p = 0.88), the detectors return FINDINGS, the
    degeneration grade is "minimal"."""

    name, version, synthetic = "stand-in", "0.0.1", True
    manifest = parse_manifest({
        "format": "spinexr-pack", "format_version": 1, "name": "stand-in", "version": "0.0.1",
        "synthetic": True, "card": {"intended_use": "end-to-end tests of the web UI only",
                                    "command": "spinexr train secret-recipe.yaml"},
        "metrics": {"triage/test": {"auroc": 0.9, "n": 10, "n_positive": 5,
                                    "youden.sensitivity": 0.8, "youden.specificity": 0.7}},
        "ensemble": {"members": ["a"], "weights": {"a": 1.0}, "operating_points": POINTS},
        "models": {"a": _spec("classifier", ["normal", "abnormal"]),
                   "lesions": _spec("detector", list(LESION_CLASSES),
                                    thresholds={"conf": 0.25}),
                   "vert": _spec("detector", [VERTEBRA_CLASS]),
                   "deg": _spec("classifier", ["0", "1", "2", "3", "4"],
                                part="degeneration")}})

    def triage(self, device="cpu"):
        return TriageEnsemble({"a": _Member()}, {"a": 1.0}, operating_points=POINTS)

    def detector(self, key, device="cpu"):
        return _Det(FINDINGS if key == "lesions" else VERTEBRAE)

    image_detector = detector       # no model of this pack runs on windows

    def classifier(self, key, device="cpu"):
        return _Grader()

    def grader(self, key, device="cpu"):
        return self.classifier(key, device)

    def model_spec(self, key):
        return self.manifest.models[key]


class _VertebraPack:
    """The vertebra pack beside it, trained on real films (a phantom-only detector never lets
    real input in without a warning), as models/vertebrae is beside models/demo."""

    name, version, synthetic = "stand-in-vertebrae", "0.0.1", False
    manifest = parse_manifest({
        "format": "spinexr-pack", "format_version": 1, "name": "stand-in-vertebrae",
        "version": "0.0.1", "models": {"vert": _spec("detector", [VERTEBRA_CLASS])}})

    def detector(self, key, device="cpu"):
        return _Det(VERTEBRAE)

    def model_spec(self, key):
        return self.manifest.models[key]


UNCERTAIN_REASON = "spine content not confirmed (p_spine=0.55)"


class _UncertainAnalyzer(Analyzer):
    """The stand-in pack's analyses, each turned into an uncertain input whose levels were
    counted, unconfirmed (what the three-outcome gate gives an image it cannot confirm)."""

    def analyze_batch(self, images, **options):
        return [replace(a, gate=GateResult(True, UNCERTAIN_REASON, a.gate.checks,
                                           uncertain=True, p_spine=0.55),
                        levels=LevelNaming(False, "lowest body taken as L5", "lumbar"))
                if a.gate.accepted else a for a in super().analyze_batch(images, **options)]


@pytest.fixture()
def base_url(tmp_path, request):
    """The real app on a free loopback port, served by uvicorn in a background thread; the
    analyzer is the stand-in pack's, or ``_UncertainAnalyzer`` when parametrized "uncertain"."""
    settings = Settings(data_dir=tmp_path / "data", auth_required=False, rate_limit_per_minute=0)
    kind = getattr(request, "param", "plain")
    app = create_app(settings, analyzer=(_UncertainAnalyzer if kind == "uncertain"
                                         else Analyzer)(_Pack(), vertebrae_pack=_VertebraPack()))
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning",
                                           lifespan="on"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            pytest.fail("uvicorn did not start within 30 s")
        time.sleep(0.05)
    port = server.servers[0].sockets[0].getsockname()[1]
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=30)


@pytest.fixture()
def page(base_url):
    executable = _chromium()
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=executable, headless=True)
        context = browser.new_context(viewport={"width": 1366, "height": 768},
                                      accept_downloads=True)
        page = context.new_page()
        page.problems = []             # uncaught errors and console errors (CSP violations too)
        page.on("pageerror", lambda e: page.problems.append(f"pageerror: {e}"))
        page.on("console", lambda m: m.type == "error" and page.problems.append(m.text))
        page.on("response",
                lambda r: r.status >= 400 and page.problems.append(f"{r.status} {r.url}"))
        page.goto(base_url)
        yield page
        browser.close()


def test_upload_boxes_toggle_and_sr_download(page, tmp_path):
    ph = generate_xray(3, XrayConfig(size=(256, 200)))
    src = tmp_path / "PHANTOM_patient_file.dcm"
    xray_to_dicom(ph).save_as(src, enforce_file_format=True)
    expect = sync_api.expect

    page.set_input_files("[data-testid=file-input]", str(src))
    expect(page.locator("[data-testid=result]")).to_have_attribute("data-ready", "true",
                                                                   timeout=60_000)
    boxes = page.locator("[data-testid=box]")
    expect(boxes).to_have_count(3)
    expect(page.locator("[data-testid=synthetic-banner]")).to_be_visible()
    expect(page.locator("[data-testid=triage-decision]")).to_have_text("Abnormal")
    expect(page.locator("[data-testid=intended-use]")).to_contain_text("end-to-end tests")
    expect(page.locator("[data-testid=finding-row]")).to_have_count(3)
    expect(page.locator("[data-testid=history-item]")).to_have_count(1)
    # accepted: no uncertain-input warning, but the level names are counted, unconfirmed
    warnings = page.locator("[data-testid=warnings]")
    expect(warnings).to_have_attribute("data-outcome", "accepted")
    expect(warnings).to_contain_text("counted, unconfirmed")
    expect(warnings).not_to_contain_text("ncertain input")

    labels = page.locator("[data-testid=box-label][data-kind=finding]")      # always shown
    expect(labels).to_have_count(3)
    expect(labels.filter(has_text="Disc space narrowing")).to_contain_text("L2-L3")
    page.locator("[data-testid=box][data-index='0']").focus()     # keyboard: focus selects
    expect(page.locator("[data-testid=finding-row]").first).to_have_attribute(
        "aria-selected", "true")
    expect(page.locator("[data-testid=triage-operating-points]")).to_contain_text(
        "high sensitivity20.0%")                          # the pack's other point, its threshold
    expect(page.locator("[data-testid=model-summary]")).not_to_contain_text("secret-recipe")
    # the patient, for the reader to check; not in the title or the URL
    expect(page.locator("[data-testid=patient]")).to_contain_text(ph.patient.patient_id)
    expect(page.locator("[data-testid=history-who]")).to_contain_text(ph.patient.patient_id)

    page.uncheck("[data-testid=class-toggle][data-label=Osteophytes]")
    expect(page.locator("[data-testid=box][data-label=Osteophytes]")).to_have_count(0)
    expect(boxes).to_have_count(1)
    page.check("[data-testid=class-toggle][data-label=Osteophytes]")
    expect(boxes).to_have_count(3)

    with page.expect_download() as download:
        page.click("[data-testid='download-sr.dcm']")
    ds = pydicom.dcmread(download.value.path())
    assert ds.Modality == "SR" and ds.StudyInstanceUID == ph.uids.study

    # report.html as served (CSP sandbox, no script): the CSS-only viewer zooms and toggles.
    # (A page of its own: Chromium logs that it blocks the test driver's scripts there.)
    analysis_id = page.evaluate("location.hash.split('=')[1]")
    report = page.context.new_page()
    report.goto(f"{page.url.split('/#')[0]}/v1/analyses/{analysis_id}/report.html")
    fitted = report.locator(".rv-img").bounding_box()["width"]
    report.click("label[for=rv-z4]")
    natural = report.locator(".rv-img img").evaluate("i => i.naturalWidth")
    assert report.locator(".rv-img").bounding_box()["width"] == 4 * natural > fitted
    shown = report.locator("svg .rv-f")
    n = shown.count()
    report.click("label[for=rv-c1]")                      # one class off
    assert 0 < sum(shown.nth(i).is_visible() for i in range(n)) < n
    report.click("a[href='#rv-f0']")                      # a finding's row -> its box
    assert report.locator("#rv-f0 rect").evaluate("r => getComputedStyle(r).strokeWidth") \
        == "5px"
    expect(report.locator("body")).to_contain_text(ph.patient.patient_id)  # identifiers on
    report.close()

    # No patient identifier in the title or the URL; never the upload's file name.
    assert "PHANTOM_patient_file" not in page.content()
    for phi in (ph.patient.name, ph.patient.patient_id, "PHANTOM_patient_file"):
        assert phi not in page.title() and phi not in page.url
    assert page.problems == []


def test_refused_image_shows_the_gate_reason(page, tmp_path):
    from PIL import Image

    flat = tmp_path / "flat.png"
    Image.fromarray(np.full((300, 300), 128, np.uint8)).save(flat)
    page.set_input_files("[data-testid=file-input]", str(flat))
    expect = sync_api.expect
    expect(page.locator("[data-testid=result]")).to_have_attribute("data-ready", "true",
                                                                   timeout=60_000)
    expect(page.locator("[data-testid=refused]")).to_be_visible()
    expect(page.locator("[data-testid=refused-reason]")).not_to_be_empty()
    expect(page.locator("[data-testid=box]")).to_have_count(0)
    expect(page.locator("[data-testid=triage-none]")).to_contain_text("refused")
    assert page.problems == []


@pytest.mark.parametrize("base_url", ["uncertain"], indirect=True)
def test_uncertain_input_shows_the_warning_and_the_level_note(page, tmp_path):
    src = tmp_path / "image.dcm"
    xray_to_dicom(generate_xray(3, XrayConfig(size=(256, 200)))).save_as(
        src, enforce_file_format=True)
    expect = sync_api.expect
    page.set_input_files("[data-testid=file-input]", str(src))
    expect(page.locator("[data-testid=result]")).to_have_attribute("data-ready", "true",
                                                                   timeout=60_000)
    warnings = page.locator("[data-testid=warnings-list] li")
    expect(page.locator("[data-testid=warnings]")).to_be_visible()
    expect(warnings.first).to_have_text(
        f"Uncertain input: {UNCERTAIN_REASON}; check that this is a spine radiograph")
    expect(warnings.nth(1)).to_contain_text("levels counted, unconfirmed")
    expect(page.locator("[data-testid=level-note]")).to_have_text(
        "? = levels counted, unconfirmed (lowest body taken as L5)")
    expect(page.locator("[data-testid=status]")).to_contain_text("UNCERTAIN INPUT")
    expect(page.locator("[data-testid=box]")).to_have_count(3)         # analysed all the same
    expect(page.locator("[data-testid=refused]")).to_be_hidden()
    rows = page.locator("[data-testid=finding-row]")
    expect(rows.first.locator("td").nth(2)).to_have_text("L2-L3?")
    expect(page.locator("[data-testid=box-label][data-index='0']")).to_contain_text("L2-L3?")
    assert page.problems == []
