"""Box copy-paste: pasted pixels and boxes agree, nothing existing is covered, inputs untouched."""
from __future__ import annotations

import numpy as np
import pytest

from spinexr.train.copy_paste import cut_patch, feather, paste, rare_classes
from spinexr.types import Box


def test_cut_patch_keeps_the_box_inside_with_margin():
    img = np.arange(100 * 80, dtype=np.float32).reshape(100, 80) / 8000
    patch = cut_patch(img, Box(20, 30, 40, 50, "Vertebral collapse"), margin=0.25)
    assert patch.pixels.shape == (30, 30)          # 20 px box + 5 px each side
    assert (patch.box.x1, patch.box.y1, patch.box.x2, patch.box.y2) == (5, 5, 25, 25)
    np.testing.assert_array_equal(patch.pixels, img[25:55, 15:45])


def test_feather_is_one_inside_and_falls_to_the_edge():
    alpha = feather((30, 30), Box(5, 5, 25, 25, "x"))
    assert alpha[15, 15] == 1.0 and alpha[6:24, 6:24].min() == 1.0
    assert alpha[0, 15] < 0.2 and alpha[15, 29] < 0.2
    assert 0.0 <= alpha.min() and alpha.max() <= 1.0


def test_paste_adds_box_with_the_patch_content_and_avoids_existing_boxes():
    rng = np.random.default_rng(0)
    img = np.zeros((200, 200), np.float32)
    existing = (Box(0, 0, 120, 200, "Osteophytes"),)
    patch = cut_patch(np.ones((40, 40), np.float32), Box(10, 10, 30, 30, "Vertebral collapse"))
    out, boxes = paste(img, existing, [patch], rng)
    assert img.max() == 0.0                          # input untouched
    assert len(boxes) == 2 and boxes[0] == existing[0]
    new = boxes[1]
    assert new.label == "Vertebral collapse" and new.x1 >= 120
    inside = out[int(new.y1):int(new.y2), int(new.x1):int(new.x2)]
    np.testing.assert_allclose(inside, 1.0)          # fully opaque inside the box
    assert out[:, :120].max() == 0.0                 # existing box region never covered


def test_paste_skips_a_patch_that_fits_nowhere():
    img = np.zeros((50, 50), np.float32)
    patch = cut_patch(np.ones((60, 60), np.float32), Box(5, 5, 55, 55, "x"), margin=0)
    out, boxes = paste(img, (), [patch], np.random.default_rng(0))
    assert boxes == () and out.max() == 0.0


def test_rare_classes_by_ratio_to_the_most_frequent():
    counts = {"Osteophytes": 470, "Vertebral collapse": 10, "Surgical implant": 200, "none": 0}
    assert rare_classes(counts, 0.25) == {"Vertebral collapse"}
    assert rare_classes({}, 0.25) == set()


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_paste_is_deterministic_for_a_seed(seed):
    img = np.random.default_rng(9).random((120, 120), dtype=np.float32)
    patch = cut_patch(img, Box(10, 10, 30, 30, "x"))
    a = paste(img, (), [patch, patch], np.random.default_rng(seed))
    b = paste(img, (), [patch, patch], np.random.default_rng(seed))
    np.testing.assert_array_equal(a[0], b[0])
    assert a[1] == b[1]
