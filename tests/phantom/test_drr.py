"""DRRs of diffdrr's example CT: boxes, views, determinism.

Loading the CT takes 10-40 s once per process, so every test here is marked slow.
"""
from __future__ import annotations

import json

import numpy as np
import pytest

pytest.importorskip("diffdrr", reason="diffdrr not installed (optional, for rendering DRR "
                    "training images): pip install --no-deps diffdrr==0.6.1 plus the other "
                    "pins of the 'drr' extra in pyproject.toml")

from spinexr.labels import VERTEBRA_CLASS, VERTEBRAL_LEVELS  # noqa: E402
from spinexr.phantom.drr import render_drr, write_drr_yolo  # noqa: E402

pytestmark = pytest.mark.slow
SIZE = 256


@pytest.fixture(scope="module")
def renders():
    return {view: [render_drr(view, np.random.default_rng(s), SIZE) for s in range(3)]
            for view in ("lateral", "oblique", "ap")}


def test_pixels_are_float32_in_unit_range(renders):
    for img in (im for ims in renders.values() for im in ims):
        assert img.pixels.shape == (SIZE, SIZE)
        assert img.pixels.dtype == np.float32
        assert 0.0 <= img.pixels.min() and img.pixels.max() <= 1.0
        assert img.spacing_mm > 0


def test_boxes_inside_image_and_head_to_tail(renders):
    for img in (im for ims in renders.values() for im in ims):
        assert len(img.vertebrae) >= 3
        for box in img.vertebrae:
            assert box.is_valid(SIZE, SIZE)
            assert box.label == VERTEBRA_CLASS
        ranks = [VERTEBRAL_LEVELS.index(b.level) for b in img.vertebrae]
        assert ranks == sorted(ranks) and len(set(ranks)) == len(ranks)
        centres_y = [b.center[1] for b in img.vertebrae]
        assert centres_y == sorted(centres_y)  # no vertical flip: head at the top


def test_lateral_body_boxes_are_not_elongated_sideways(renders):
    # A body box, seen from the side, spans its height (about 20-30 mm) by its depth
    # (25-35 mm, pedicles and spinous process excluded): the median width/height ratio stays
    # well under 2. A box around the whole vertebra (60-70 mm deep) would exceed it.
    for img in renders["lateral"]:
        full = [b for b in img.vertebrae if 2 < b.x1 and b.x2 < SIZE - 2 and 2 < b.y1 and b.y2 < SIZE - 2]
        if full:
            assert np.median([b.width / b.height for b in full]) < 2.0


def test_lateral_differs_from_ap():
    lat = render_drr("lateral", np.random.default_rng(7), SIZE).pixels
    ap = render_drr("ap", np.random.default_rng(7), SIZE).pixels
    assert np.abs(lat - ap).mean() > 0.05


def test_same_seed_same_image():
    a = render_drr("oblique", np.random.default_rng(3), SIZE)
    b = render_drr("oblique", np.random.default_rng(3), SIZE)
    np.testing.assert_array_equal(a.pixels, b.pixels)
    assert a.vertebrae == b.vertebrae


def test_unknown_view_is_rejected():
    with pytest.raises(ValueError, match="view must be one of"):
        render_drr("pa-erect", np.random.default_rng(0), SIZE)


def test_write_drr_yolo_layout_and_determinism(tmp_path):
    out1 = write_drr_yolo(tmp_path / "a", n=2, seed=5, size=SIZE)
    out2 = write_drr_yolo(tmp_path / "b", n=2, seed=5, size=SIZE)
    levels = json.loads((out1 / "levels.json").read_text())
    assert sorted(levels) == ["drr_00000.png", "drr_00001.png"]
    for name, lv in levels.items():
        lines = (out1 / "labels" / name.replace(".png", ".txt")).read_text().splitlines()
        assert len(lines) == len(lv)
        for line in lines:
            cls, *xywh = line.split()
            assert cls == "0" and all(0.0 <= float(v) <= 1.0 for v in xywh)
        assert (out1 / "images" / name).read_bytes() == (out2 / "images" / name).read_bytes()
