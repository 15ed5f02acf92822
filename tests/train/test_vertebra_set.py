"""The joint vertebra set: coned crops keep the bodies they show, the input contract is applied
to every written image, and the layout is what ultralytics reads."""
from __future__ import annotations

import numpy as np
from PIL import Image

from spinexr.train.vertebra_set import (LabelledImage, coned_crop, crop_boxes, phantom_images,
                                        write_image)
from spinexr.types import Box


def _column(n, top=20.0, h=30.0, gap=10.0):
    return [Box(100, top + i * (h + gap), 150, top + i * (h + gap) + h, "Vertebra")
            for i in range(n)]


def test_crop_boxes_shift_clip_and_drop_bodies_mostly_outside():
    boxes = _column(3)                     # y: 20-50, 60-90, 100-130
    out = crop_boxes(boxes, 90, 55, 200, 110)
    # body 1 fully inside; body 2 keeps 10 of 30 rows (< 60%): dropped; body 0 outside
    assert [(b.x1, b.y1, b.x2, b.y2) for b in out] == [(10, 5, 60, 35)]


def test_coned_crops_show_two_to_six_adjacent_bodies_and_copy_pixels():
    pixels = np.random.default_rng(0).random((400, 300), dtype=np.float32)
    rng = np.random.default_rng(1)
    for _ in range(20):
        crop, boxes = coned_crop(pixels, _column(9), rng)
        assert 2 <= len(boxes) <= 8              # a run of 2-6 plus neighbours in the margins
        h, w = crop.shape
        assert all(0 <= b.x1 < b.x2 <= w and 0 <= b.y1 < b.y2 <= h for b in boxes)
        assert not np.shares_memory(crop, pixels)


def test_written_images_are_equalised_and_labels_are_yolo(tmp_path):
    pixels = np.linspace(0.2, 0.3, 200 * 100, dtype=np.float32).reshape(200, 100)
    write_image(LabelledImage("a", pixels, tuple(_column(1, top=10)), "test"), tmp_path,
                "equalize")
    png = np.asarray(Image.open(tmp_path / "images" / "a.png"))
    assert png.min() == 0 and png.max() == 255           # a 0.2-0.3 ramp spread to full range
    (line,) = (tmp_path / "labels" / "a.txt").read_text().splitlines()
    cls, cx, cy, bw, bh = line.split()
    assert cls == "0" and float(cx) == 1.25 and float(bh) == 0.15   # x 100-150 in 100 px wide


def test_phantoms_of_every_view_and_region_come_with_their_bodies():
    items = list(phantom_images(4, seed=3, coned=0.0))
    names = [it.name.split("-")[1:3] for it in items]
    assert names == [["lateral", "cervical"], ["ap", "cervical"], ["lateral", "lumbar"],
                     ["ap", "lumbar"]]
    for it in items:
        h, w = it.pixels.shape
        assert len(it.boxes) >= 5 and all(b.is_valid(w, h) for b in it.boxes)
        assert it.pixels.dtype == np.float32 and 0 <= it.pixels.min() < it.pixels.max() <= 1
