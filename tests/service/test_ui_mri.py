"""The browser UI shows an MR analysis: each graded region's box in its grade colour, and a
region / grade table. Headless Chromium (the system browser) loads the static UI with every
request answered in the test (no server): the result document is a real result.json."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

sync_api = pytest.importorskip(
    "playwright.sync_api", reason="playwright is not installed: pip install playwright==1.63.0 "
    "(its browser download is not needed; the system Chromium is used)")

from test_ui_e2e import _chromium  # noqa: E402  (the system Chromium, or skip)

from spinexr.report import analysis_to_dict  # noqa: E402
from spinexr.types import Analysis, Box, GateResult, Grade, PackInfo, SourceRef  # noqa: E402

pytestmark = pytest.mark.slow

STATIC = Path(__file__).resolve().parents[2] / "src" / "spinexr" / "service" / "static"
#: (region, grade index): what the stand-in analysis reports.
REGIONS = (("central canal", 2), ("left neural foramen", 3), ("right neural foramen", 0))
GRADES = ("normal", "mild", "moderate", "severe")
#: One grey 64 x 64 PNG (any picture does: the boxes are drawn over it by the SVG layer).
PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d49484452000000400000004008000000008f022e020000002c49444154789cedcc"
    "a101000008c330e0724ee7881944ea9bdeca9af007000000000000000000000000f01e3840740100b62fcfe400"
    "00000049454e44ae426082")


def _result() -> dict:
    grades = tuple(Grade("stenosis", GRADES[k], k, {g: 0.25 for g in GRADES},
                         Box(10.0 + 15 * i, 20.0, 22.0 + 15 * i, 32.0, name, 0.9))
                   for i, (name, k) in enumerate(REGIONS))
    a = Analysis(image_id="mr1", source=SourceRef(path="mr1.dcm"), image_size=(64, 64),
                 spacing_mm=(0.7, 0.7), gate=GateResult(True, "axial MR slice: 3 regions"),
                 pack=PackInfo("demo", "1.0.0", True), grades=grades, modality="mri")
    doc = analysis_to_dict(a)
    doc.update(id="abc123", status="done", links={"image.png": "/v1/analyses/abc123/image.png",
                                                  "result.json": "x"})
    return doc


def _answer(route) -> None:
    url = route.request.url.split("://", 1)[1].split("/", 1)[1]
    path = "/" + url.split("?", 1)[0].split("#", 1)[0]
    if path == "/":
        route.fulfill(body=(STATIC / "index.html").read_bytes(), content_type="text/html")
    elif path.startswith("/static/"):
        name = path[len("/static/"):]
        kind = {"js": "text/javascript", "css": "text/css", "svg": "image/svg+xml"}
        route.fulfill(body=(STATIC / name).read_bytes(),
                      content_type=kind.get(name.rsplit(".", 1)[-1], "application/octet-stream"))
    elif path == "/v1/models":
        route.fulfill(json={"name": "demo", "version": "1.0.0", "synthetic": True, "card": {}})
    elif path == "/v1/analyses":
        route.fulfill(json={"items": [], "next": None})
    elif path == "/v1/analyses/abc123":
        route.fulfill(body=json.dumps(_result()), content_type="application/json")
    elif path.endswith(".png"):
        route.fulfill(body=PNG, content_type="image/png")
    else:
        route.fulfill(status=404, json={"error": {"code": "not_found", "message": path}})


def test_mr_regions_are_drawn_and_listed_with_their_grades():
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=_chromium())
        try:
            page = browser.new_page()
            page.route("**/*", _answer)
            page.goto("http://spinexr.test/#analysis=abc123")
            page.wait_for_selector("#result[data-ready=true]", timeout=15000)
            boxes = page.locator("[data-testid=region-box]")
            sync_api.expect(boxes).to_have_count(len(REGIONS))
            drawn = [(boxes.nth(i).get_attribute("data-region"),
                      boxes.nth(i).get_attribute("data-grade"),
                      boxes.nth(i).locator("rect").get_attribute("stroke"))
                     for i in range(len(REGIONS))]
            assert drawn == [("central canal", "moderate", "#e69f00"),
                             ("left neural foramen", "severe", "#d55e00"),
                             ("right neural foramen", "normal", "#009e73")]
            table = page.locator("[data-testid=grades-table]")
            assert table.locator("th").all_inner_texts()[:2] == ["Region", "Grade"]
            rows = table.locator("tbody tr")
            assert [rows.nth(i).locator("td").nth(0).inner_text()
                    for i in range(len(REGIONS))] == [r for r, _ in REGIONS]
            assert "3 stenosis region(s) graded" in page.locator("#status").inner_text()
        finally:
            browser.close()
