"""The viewer in real Chromium (the system browser): wheel zoom, drag pan, contrast by right
drag, class toggles, a finding clicked in the list highlighting its box, keyboard shortcuts,
the heatmap kept within the radiograph with its colour bar, patient identifiers and plain
wording. Pixel checks on screenshots and on the canvas, against values derived from the
pictures served (no golden files).

The static UI is loaded with every request answered in the test (no server, so it is fast
enough for the default run): the result document is a real result.json, the image a
horizontal grey ramp (grey value = round(x * 255 / 299)), so what a contrast change must do
to a pixel is known."""
from __future__ import annotations

import io
import json
import re
from pathlib import Path

import numpy as np
import pytest

sync_api = pytest.importorskip(
    "playwright.sync_api", reason="playwright is not installed: pip install playwright==1.63.0 "
    "(its browser download is not needed; the system Chromium is used)")

from test_ui_e2e import _chromium  # noqa: E402  (the system Chromium, or skip)

from spinexr.report import analysis_to_dict  # noqa: E402
from spinexr.report.wording import GATE_CHECK_TITLES, OPERATING_POINT_TITLES  # noqa: E402
from spinexr.types import (Analysis, Box, Finding, GateResult, Grade, Heatmap,  # noqa: E402
                           PackInfo, SourceRef, TriageResult)

STATIC = Path(__file__).resolve().parents[2] / "src" / "spinexr" / "service" / "static"
W, H = 300, 400
#: (box, class, score, level): two Osteophytes and one disc space narrowing.
FINDINGS = (((40, 60, 100, 120), "Osteophytes", 0.91, "L2"),
            ((120, 150, 180, 190), "Disc space narrowing", 0.70, "L3-L4"),
            ((200, 250, 260, 300), "Osteophytes", 0.60, None))
ORANGE = (0xe6, 0x9f, 0x00)            # Osteophytes (dom.js CLASS_COLORS)
HOT = (150, 250, 50, 150)              # x1, x2, y1, y2 of the heatmap's hot block
IDENTITY = {"patient_name": "DOE, Jane", "patient_id": "P-12345", "birth_date": "1960-02-03",
            "study_date": "2024-05-06 10:11", "accession_number": "ACC-9", "view": "AP",
            "body_part": "LSPINE", "study_description": "L-SPINE 2 VIEWS"}
POINTS = {"youden": 0.42, "high_sensitivity": 0.2}


def _png(array: np.ndarray) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(array).save(buf, format="PNG")
    return buf.getvalue()


def _ramp() -> np.ndarray:
    return np.tile(np.rint(np.arange(W) * 255 / (W - 1)).astype(np.uint8), (H, 1))


def _heat() -> np.ndarray:
    heat = np.zeros((H, W), np.uint8)
    x1, x2, y1, y2 = HOT
    heat[y1:y2, x1:x2] = 255
    return heat


def _result() -> dict:
    heat = Heatmap("gradcam", "abnormal", _heat().astype(np.float32) / 255, "densenet")
    a = Analysis(
        image_id="x1", source=SourceRef(path="x1.dcm"), image_size=(W, H),
        spacing_mm=(0.2, 0.2), pack=PackInfo("demo", "1.0.0", True),
        gate=GateResult(True, "spine radiograph", {"std": 0.21, "saturated": 0.012,
                                                   "vertebra_chain": 5}),
        triage=TriageResult(0.6, True, "youden", 0.42, {"densenet": 0.6},
                            {"youden": True, "high_sensitivity": True}),
        findings=tuple(Finding(Box(*b, label, score, level), None)
                       for b, label, score, level in FINDINGS),
        grades=(Grade("degeneration", "severe", 4, {"severe": 0.8},
                      Box(100.0, 310.0, 200.0, 380.0, "vertebra window", level="L4")),),
        heatmaps=(heat,))
    doc = analysis_to_dict(a)
    names = ("image.png", "heat/gradcam.png", "heatmap/gradcam.png", "identity.json",
             "result.json", "report.html")
    doc.update(id="abc123", status="done", created="2024-05-06T10:20:00Z",
               links={n: f"/v1/analyses/abc123/{n}" for n in names})
    return doc


MODELS = {"pack": {"name": "demo", "version": "1.0.0", "synthetic": True,
                   "card": {"intended_use": "tests", "command": "spinexr train secret.yaml"}},
          "clinical": {"intended_use": "tests", "training_data": "phantoms",
                       "operating_points": POINTS,
                       "performance": [{"title": "Normal / abnormal triage",
                                        "text": "AUROC 0.90 on 10 test images"}]},
          "explain_methods": ["gradcam"], "show_identifiers": True}
HISTORY = {"items": [{"id": "abc123", "created": "2024-05-06T10:20:00Z", "status": "done",
                      "abnormal": True, "probability": 0.6, "n_findings": 3,
                      "pack": {"name": "demo", "version": "1.0.0"}, "identity": IDENTITY}],
           "next_cursor": None}


def _answer(route) -> None:
    path = "/" + route.request.url.split("://", 1)[1].split("/", 1)[1].split("?")[0]
    kinds = {"js": "text/javascript", "css": "text/css", "svg": "image/svg+xml"}
    served = {"/v1/models": MODELS, "/v1/analyses": HISTORY, "/v1/analyses/abc123": _result(),
              "/v1/analyses/abc123/identity.json": IDENTITY}
    pictures = {"/v1/analyses/abc123/image.png": _ramp(),
                "/v1/analyses/abc123/heat/gradcam.png": _heat()}
    if path == "/":
        route.fulfill(body=(STATIC / "index.html").read_bytes(), content_type="text/html")
    elif path.startswith("/static/"):
        name = path[len("/static/"):]
        route.fulfill(body=(STATIC / name).read_bytes(),
                      content_type=kinds.get(name.rsplit(".", 1)[-1], "text/plain"))
    elif path in served:
        route.fulfill(body=json.dumps(served[path]), content_type="application/json")
    elif path in pictures:
        route.fulfill(body=_png(pictures[path]), content_type="image/png")
    else:
        route.fulfill(status=404, json={"error": {"code": "not_found", "message": path}})


@pytest.fixture(scope="module")
def browser():
    executable = _chromium()
    with sync_api.sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=executable, headless=True)
        yield b
        b.close()


@pytest.fixture()
def page(browser):
    context = browser.new_context(viewport={"width": 1366, "height": 900})
    page = context.new_page()
    page.problems = []
    page.on("pageerror", lambda e: page.problems.append(f"pageerror: {e}"))
    page.on("console", lambda m: m.type == "error" and page.problems.append(m.text))
    page.route("**/*", _answer)
    page.goto("http://spinexr.test/#analysis=abc123")
    page.wait_for_selector("#result[data-ready=true]", timeout=15000)
    page.wait_for_function("document.querySelectorAll('[data-testid=box-label]').length > 0")
    yield page
    assert page.problems == []
    context.close()


def _shot(locator) -> np.ndarray:
    from PIL import Image

    return np.asarray(Image.open(io.BytesIO(locator.screenshot())).convert("RGB")).astype(int)


def _near(img: np.ndarray, rgb, tol: int = 12) -> np.ndarray:
    return np.all(np.abs(img - np.array(rgb)) <= tol, axis=-1)


def _rect(locator) -> dict:
    return locator.bounding_box()


def _pixel(page, x: int, y: int) -> int:
    """The red value the image canvas shows at image pixel (x, y)."""
    return page.evaluate(f"document.getElementById('image-canvas').getContext('2d')"
                         f".getImageData({x}, {y}, 1, 1).data[0]")


def _scale(page) -> float:
    return float(page.get_attribute("#viewer", "data-scale"))


# ---------------------------------------------------------------- smoke: default run
def test_viewer_shows_boxes_labels_patient_and_plain_words(page):
    expect = sync_api.expect
    expect(page.locator("[data-testid=box]")).to_have_count(3)
    labels = page.locator("[data-testid=box-label][data-kind=finding]")
    expect(labels).to_have_count(3)                       # always shown, not on hover
    assert labels.first.locator("rect").get_attribute("fill") in {"#e69f00", "#56b4e9"}
    expect(page.locator("[data-testid=grade-box]")).to_have_count(1)
    expect(page.locator("[data-testid=box-label][data-kind=grade]")).to_contain_text(
        "degeneration: severe (L4)")
    patient = page.locator("[data-testid=patient]")
    for text in ("DOE, Jane", "P-12345", "1960-02-03", "2024-05-06 10:11", "ACC-9", "AP"):
        expect(patient).to_contain_text(text)
    expect(page.locator("[data-testid=history-who]")).to_contain_text("DOE, Jane")
    expect(page.locator("[data-testid=history-item] .when")).to_have_text(
        re.compile(r"^2024-05-0\d \d\d:\d\d$"))           # ISO (local time)
    points = page.locator("[data-testid=triage-operating-points] tbody tr")
    expect(points.nth(0)).to_have_text(re.compile(r"balanced \(used\)\s*42\.0%\s*abnormal"))
    expect(points.nth(1)).to_have_text(re.compile(r"high sensitivity\s*20\.0%\s*abnormal"))
    expect(page.locator("[data-testid=triage]")).not_to_contain_text("youden")
    details = page.locator("[data-testid=gate-details]")
    expect(details).not_to_have_attribute("open", "")
    expect(details).to_contain_text("Pixels pure black or white")
    expect(page.locator("[data-testid=gate-checks]")).to_be_hidden()     # behind the toggle
    expect(page.locator("[data-testid=model-performance]")).to_contain_text("AUROC 0.90")
    expect(page.locator("[data-testid=model-summary]")).not_to_contain_text("spinexr train")
    page.keyboard.press("?")
    help_ = page.locator("[data-testid=help]")
    expect(help_).to_be_visible()
    expect(help_.locator("[data-testid=help-keys]")).to_contain_text("Next / previous finding")
    expect(help_.locator("[data-testid=help-wl]")).to_contain_text("needs the DICOM")
    page.keyboard.press("Escape")
    expect(help_).to_be_hidden()
    for phi in ("DOE", "P-12345"):                        # never in the title or the URL
        assert phi not in page.title() and phi not in page.url


def test_identifiers_hidden_by_the_service_are_not_fetched(page):
    asked = []
    page.on("request", lambda r: "identity" in r.url and asked.append(r.url))
    page.route("**/v1/models", lambda route: route.fulfill(
        json={**MODELS, "show_identifiers": False}))
    page.route(re.compile(r".*/v1/analyses\?.*"), lambda route: route.fulfill(json={"items": [
        {k: v for k, v in HISTORY["items"][0].items() if k != "identity"}],
        "next_cursor": None}))
    page.reload()
    page.wait_for_selector("#result[data-ready=true]", timeout=15000)
    # generous waits: on a loaded 2-core machine the reloaded page took over 5 s to settle
    sync_api.expect(page.locator("[data-testid=patient]")).to_have_attribute(
        "data-state", "hidden", timeout=30000)
    sync_api.expect(page.locator("[data-testid=patient-note]")).to_contain_text(
        "hidden", timeout=30000)
    sync_api.expect(page.locator("[data-testid=history-who]")).to_have_text(
        "Analysis abc123", timeout=30000)
    assert asked == [] and "DOE" not in page.content()


def test_js_wording_matches_the_report_wording():
    dom = (STATIC / "dom.js").read_text()
    for key, title in {**OPERATING_POINT_TITLES, **GATE_CHECK_TITLES}.items():
        assert f'{key}: "{title}"' in dom, key


# ---------------------------------------------------------------- zoom, pan, fit, 1:1
def test_wheel_zooms_about_the_pointer_and_drag_pans(page):
    stage, box = page.locator("#stage"), page.locator("[data-testid=box][data-index='0'] rect")
    s0, st0, b0 = _scale(page), _rect(stage), _rect(box)
    v = _rect(page.locator("#viewer"))
    cx, cy = v["x"] + v["width"] / 2, v["y"] + v["height"] / 2
    page.mouse.move(cx, cy)
    for _ in range(3):                                    # three notches, exp(0.1) each
        page.mouse.wheel(0, -100)
        page.wait_for_timeout(60)
    page.wait_for_function(f"Number(document.getElementById('viewer').dataset.scale) > "
                           f"{1.3 * s0}")
    page.wait_for_timeout(50)
    s1, st1, b1 = _scale(page), _rect(stage), _rect(box)
    np.testing.assert_allclose(s1 / s0, np.exp(0.3), rtol=0.01)
    np.testing.assert_allclose(st1["width"] / st0["width"], s1 / s0, rtol=0.02)
    np.testing.assert_allclose(b1["width"] / b0["width"], s1 / s0, rtol=0.05)  # boxes follow
    page.mouse.move(cx, cy)
    page.mouse.down()
    page.mouse.move(cx + 80, cy + 50, steps=5)
    page.mouse.up()
    page.wait_for_timeout(100)
    st2, b2 = _rect(stage), _rect(box)
    np.testing.assert_allclose([st2["x"] - st1["x"], st2["y"] - st1["y"]], [80, 50], atol=2)
    np.testing.assert_allclose([b2["x"] - b1["x"], b2["y"] - b1["y"]], [80, 50], atol=2)
    assert _scale(page) == s1                             # a drag pans, it does not zoom


def test_fit_and_one_to_one_by_key_and_button(page):
    viewer = _rect(page.locator("#viewer"))
    page.locator("#viewer").focus()
    page.keyboard.press("1")
    page.wait_for_function("document.getElementById('viewer').dataset.scale === '1.0000'")
    assert abs(_rect(page.locator("#stage"))["width"] - W) < 1
    page.click("[data-testid=zoom-fit]")
    page.wait_for_function("document.getElementById('viewer').dataset.scale !== '1.0000'")
    st = _rect(page.locator("#stage"))
    assert st["height"] <= viewer["height"] + 1 and st["height"] > 0.95 * viewer["height"]
    assert st["x"] >= viewer["x"] and st["x"] + st["width"] <= viewer["x"] + viewer["width"]


# ---------------------------------------------------------------- contrast
def test_right_drag_changes_displayed_pixel_values_and_invert(page):
    lo, mid, hi = 50, 150, 250                           # grey 43, 128, 213 in image.png
    assert [_pixel(page, x, 200) for x in (lo, mid, hi)] == [43, 128, 213]
    v = _rect(page.locator("#viewer"))
    x, y = v["x"] + v["width"] / 2, v["y"] + v["height"] / 2
    page.mouse.move(x, y)
    page.mouse.down(button="right")
    page.mouse.move(x - 127, y, steps=4)                 # width 255 -> 128: more contrast
    page.mouse.up(button="right")
    page.wait_for_function("document.getElementById('viewer').dataset.window === '128'")
    # lookup: round((v - (127.5 - 64)) / 128 * 255), clipped
    expect = [max(0, round((g - 63.5) / 128 * 255)) for g in (43, 128, 213)]
    assert [_pixel(page, x_, 200) for x_ in (lo, mid, hi)] == [0, expect[1], 255]
    assert page.get_attribute("#viewer", "data-level") == "128"        # no vertical move
    page.keyboard.press("i")
    page.wait_for_function("document.getElementById('viewer').dataset.invert === 'true'")
    assert _pixel(page, lo, 200) == 255 and _pixel(page, hi, 200) == 0
    page.keyboard.press("r")                             # reset: the picture as analysed
    page.keyboard.press("i")
    page.wait_for_function("document.getElementById('viewer').dataset.window === '255'")
    page.wait_for_timeout(50)
    assert [_pixel(page, x_, 200) for x_ in (lo, mid, hi)] == [43, 128, 213]


# ---------------------------------------------------------------- toggles and selection
def test_class_toggle_hides_its_boxes_on_screen(page):
    viewer = page.locator("#viewer")
    page.select_option("[data-testid=heatmap-method]", "")        # nothing else orange-ish
    before = _near(_shot(viewer), ORANGE).sum()
    assert before > 200                                 # 2 boxes, 2 label backgrounds
    page.uncheck("[data-testid=class-toggle][data-label=Osteophytes]")
    sync_api.expect(page.locator("[data-testid=box][data-label=Osteophytes]")).to_have_count(0)
    sync_api.expect(page.locator("[data-testid=box]")).to_have_count(1)
    after = _near(_shot(viewer), ORANGE).sum()
    assert after < 0.02 * before
    page.keyboard.press("b")                            # B: every class back on
    sync_api.expect(page.locator("[data-testid=box]")).to_have_count(3)


def test_clicking_a_finding_highlights_its_box_and_n_steps(page):
    rows = page.locator("[data-testid=finding-row]")
    rows.nth(1).click()
    box = page.locator("[data-testid=box][data-index='1']")
    sync_api.expect(box).to_have_attribute("data-active", "true")
    sync_api.expect(rows.nth(1)).to_have_attribute("aria-selected", "true")
    width = box.locator("rect").evaluate("r => getComputedStyle(r).strokeWidth")
    assert width == "5px"
    assert page.locator("[data-testid=box][data-active=true]").count() == 1
    page.keyboard.press("n")
    sync_api.expect(page.locator("[data-testid=box][data-index='2']")).to_have_attribute(
        "data-active", "true")
    edge = _rect(page.locator("[data-testid=box][data-index='0'] rect"))
    page.mouse.click(edge["x"] + 1, edge["y"] + edge["height"] / 2)   # on its left side
    sync_api.expect(rows.nth(0)).to_have_attribute("aria-selected", "true")
    page.keyboard.press("Escape")
    sync_api.expect(page.locator("[data-testid=box][data-active=true]")).to_have_count(0)


# ---------------------------------------------------------------- heatmap
def test_heatmap_stays_on_the_radiograph_with_opacity_and_colour_bar(page):
    page.uncheck("[data-testid=class-toggle][data-label=__labels__]")
    for label in ("Osteophytes", "Disc space narrowing", "__grades__"):
        page.uncheck(f"[data-testid=class-toggle][data-label='{label}']")
    page.fill("[data-testid=heatmap-opacity]", "100")
    page.dispatch_event("[data-testid=heatmap-opacity]", "input")
    viewer = page.locator("#viewer")
    img = _shot(viewer)
    yellow = _near(img, (253, 231, 37), tol=30)          # viridis at 1: the hot block
    v, st = _rect(viewer), _rect(page.locator("#stage"))
    k = st["width"] / W
    x1, x2, y1, y2 = HOT
    ys, xs = np.nonzero(yellow)
    assert len(xs) > 0.8 * (x2 - x1) * (y2 - y1) * k * k
    ox, oy = st["x"] - v["x"], st["y"] - v["y"]
    assert xs.min() >= ox + x1 * k - 2 and xs.max() <= ox + x2 * k + 2      # the hot block,
    assert ys.min() >= oy + y1 * k - 2 and ys.max() <= oy + y2 * k + 2      # no larger
    cold = img[int(oy + 300 * k), int(ox + 100 * k)]     # heat 0: the radiograph shows
    assert abs(int(cold[0]) - 85) <= 3 and abs(int(cold[0]) - int(cold[2])) <= 3
    bar = _shot(page.locator("#colorbar-canvas"))
    assert _near(bar[:, :3], (68, 1, 84), 25).any() and _near(bar[:, -3:], (253, 231, 37), 25).any()
    page.keyboard.press("h")                             # H: heatmap off
    sync_api.expect(page.locator("#heatmap-canvas")).to_be_hidden()
    assert not _near(_shot(viewer), (253, 231, 37), tol=30).any()
