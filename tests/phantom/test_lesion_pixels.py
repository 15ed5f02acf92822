"""The rendered pixels carry each label: hardware is bright, collapsed bodies and narrowed
discs are short, focal lesions differ from the bone around them."""
from __future__ import annotations

import numpy as np
import pytest
from phantom_helpers import box_pixels, overlaps

from spinexr.phantom import XrayConfig, generate_xray, render_display
from spinexr.phantom.xray import XrayPhantom

MEDIUM = (544, 448)


def forced(seed: int, lesion: str, view: str, region: str, **kw) -> XrayPhantom:
    cfg = XrayConfig(view=view, region=region, size=MEDIUM, force_lesions=(lesion,),
                     cervical=kw.pop("cervical", None), markers=False, **kw)
    return generate_xray(seed, cfg)


def mono2(ph: XrayPhantom) -> np.ndarray:
    s = ph.stored.astype(np.float64)
    return 4095 - s if ph.photometric == "MONOCHROME1" else s


def only(ph: XrayPhantom, label: str):
    boxes = [b for b in ph.lesions if b.label == label]
    assert len(boxes) == 1, (ph.seed, ph.lesions)
    return boxes[0]


@pytest.mark.parametrize("view,region", [("lateral", "lumbar"), ("ap", "lumbar"),
                                         ("lateral", "cervical"), ("ap", "cervical")])
def test_implant_is_brighter_than_any_bone(view, region):
    for seed in range(3):
        ph = forced(seed, "Surgical implant", view, region)
        img = mono2(ph)
        box = only(ph, "Surgical implant")
        normal = [v for v in ph.vertebrae if not overlaps(v, box)]
        hardware = np.percentile(box_pixels(img, box), 99.5)
        bone = np.median([np.percentile(box_pixels(img, v), 99.5) for v in normal])
        assert hardware > bone + 0.05 * 4095, (seed, hardware, bone)


@pytest.mark.parametrize("view,region", [("lateral", "lumbar"), ("ap", "lumbar"),
                                         ("ap", "cervical")])
def test_collapsed_body_is_shorter_than_its_neighbours(view, region):
    for seed in range(3):
        ph = forced(seed, "Vertebral collapse", view, region,
                    cervical=1 if region == "cervical" else None)
        box = only(ph, "Vertebral collapse")
        levels = [v.level for v in ph.vertebrae]
        i = levels.index(box.level)
        body = ph.vertebrae[i]
        neighbours = [ph.vertebrae[j].height for j in (i - 1, i + 1) if 0 <= j < len(levels)]
        assert body.height < 0.93 * np.mean(neighbours), (seed, body, neighbours)


def _gap(display: np.ndarray, upper, lower) -> int:
    """Pixels of dark (disc) on the line joining two body centres (noise-free image)."""
    (x0, y0), (x1, y1) = upper.center, lower.center
    n = int(np.hypot(x1 - x0, y1 - y0))
    t = np.linspace(0, 1, n)
    xs, ys = np.rint(x0 + t * (x1 - x0)).astype(int), np.rint(y0 + t * (y1 - y0)).astype(int)
    prof = np.convolve(display[ys, xs], np.ones(3) / 3, "same")
    q = max(2, n // 5)
    bone = 0.5 * (np.median(prof[:q]) + np.median(prof[-q:]))
    thr = 0.5 * (bone + prof[q:-q].min())
    return int((prof[q:-q] < thr).sum())


def test_narrowed_disc_is_thinner_than_its_neighbours():
    for seed in range(4):
        ph = forced(seed, "Disc space narrowing", "lateral", "lumbar", noise=0.0)
        box = only(ph, "Disc space narrowing")
        disp = render_display(ph)
        names = [f"{a.level}-{b.level}" for a, b in zip(ph.vertebrae, ph.vertebrae[1:])]
        gaps = [_gap(disp, a, b) for a, b in zip(ph.vertebrae, ph.vertebrae[1:])]
        i = names.index(box.level)
        neighbours = [gaps[j] for j in (i - 1, i + 1) if 0 <= j < len(gaps)]
        assert gaps[i] < 0.8 * min(neighbours), (seed, box.level, dict(zip(names, gaps)))


def test_disc_box_spans_the_disc_between_its_bodies():
    ph = forced(2, "Disc space narrowing", "lateral", "lumbar")
    box = only(ph, "Disc space narrowing")
    upper, lower = (next(v for v in ph.vertebrae if v.level == lv)
                    for lv in box.level.split("-"))
    assert upper.center[1] < box.center[1] < lower.center[1]
    assert overlaps(box, upper) and overlaps(box, lower)


def _ring(img: np.ndarray, box, inner: float, outer: float) -> np.ndarray:
    """Pixels between ``inner`` and ``outer`` box half-sizes from the box centre."""
    cx, cy = box.center
    ys, xs = np.mgrid[0:img.shape[0], 0:img.shape[1]] + 0.5
    r = np.maximum(np.abs(xs - cx) / (box.width / 2), np.abs(ys - cy) / (box.height / 2))
    return img[(r >= inner) & (r < outer)]


@pytest.mark.parametrize("view", ["lateral", "ap"])
def test_other_lesion_stands_out_from_its_body(view):
    for seed in range(3):
        ph = forced(seed, "Other lesions", view, "lumbar", noise=0.0)
        img = mono2(ph)
        box = only(ph, "Other lesions")
        inside = np.median(_ring(img, box, 0.0, 0.5))
        around = np.median(_ring(img, box, 1.3, 2.0))
        assert abs(inside - around) > 0.015 * 4095, (seed, inside, around)


def test_osteophyte_box_is_small_and_at_a_body_corner():
    for seed in range(4):
        ph = forced(seed, "Osteophytes", "lateral", "lumbar")
        box = only(ph, "Osteophytes")
        body = next(v for v in ph.vertebrae if v.level == box.level)
        assert box.width * box.height < 0.5 * body.width * body.height
        corners = [(x, y) for x in (body.x1, body.x2) for y in (body.y1, body.y2)]
        reach = 0.35 * max(body.width, body.height)
        assert min(np.hypot(box.center[0] - x, box.center[1] - y) for x, y in corners) < reach


def test_listhesis_shifts_the_upper_body():
    ph = forced(1, "Spondylolisthesis", "lateral", "lumbar")
    box = only(ph, "Spondylolisthesis")
    upper, lower = (next(v for v in ph.vertebrae if v.level == lv)
                    for lv in box.level.split("-"))
    assert box.x1 <= min(upper.x1, lower.x1) + 2 and box.x2 >= max(upper.x2, lower.x2) - 2
    assert box.y1 <= upper.y1 + 2 and box.y2 >= lower.y2 - 2


def test_foraminal_stenosis_is_behind_the_disc():
    ph = forced(0, "Foraminal stenosis", "lateral", "lumbar")
    box = only(ph, "Foraminal stenosis")
    upper, lower = (next(v for v in ph.vertebrae if v.level == lv)
                    for lv in box.level.split("-"))
    assert upper.center[1] - upper.height < box.center[1] < lower.center[1] + lower.height
    body_x = 0.5 * (upper.center[0] + lower.center[0])
    assert abs(box.center[0] - body_x) < 2.0 * upper.width
