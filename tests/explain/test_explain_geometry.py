"""Mapping canvas maps back to the source, scaling to [0, 1], and every method on a model that
only looks at the source's top-left quadrant."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from explain_models import PRE, QUADRANT_ON_CANVAS, binary_classifier, quadrant_mass
from spinexr.explain import METHODS, content_box, explain
from spinexr.explain.base import max_scale, resize_map, robust_scale
from spinexr.explain.lime import grid_mask
from spinexr.models.classifier import Preprocess, resize_to_input


@pytest.mark.parametrize("shape, box", [((48, 96), (8, 0, 16, 32)), ((96, 48), (0, 8, 32, 16)),
                                        ((32, 32), (0, 0, 32, 32)), ((10, 7), (0, 5, 32, 22))])
def test_content_box_by_hand_and_as_resize_to_input_pads(shape, box):
    # 10 x 7: scale 3.2, width round(22.4) = 22, left (32 - 22) // 2 = 5
    assert content_box(*shape, PRE) == box
    canvas = resize_to_input(np.ones(shape, np.float32), PRE)   # pad_value 0
    rows, cols = np.nonzero(canvas > 0.5)
    top, left, h, w = box
    assert (rows.min(), rows.max() + 1, cols.min(), cols.max() + 1) == (top, top + h, left,
                                                                          left + w)


def test_squash_uses_the_whole_canvas():
    assert content_box(48, 96, Preprocess(32, resize="squash")) == (0, 0, 32, 32)


def test_resize_map_keeps_same_size_maps_and_stays_in_range():
    m = np.arange(12, dtype=np.float32).reshape(3, 4) / 11
    np.testing.assert_array_equal(resize_map(m, (3, 4)), m)
    up = resize_map(m, (30, 40))
    assert up.shape == (30, 40) and up.dtype == np.float32
    assert 0.0 <= up.min() and up.max() <= 1.0
    np.testing.assert_allclose(resize_map(np.ones((9, 9)), (2, 5)), 1.0, atol=1e-6)


def test_robust_scale_by_hand():
    v = np.array([-3.0, 0.0, 1.0, 1.0, 1.0, 1.0, 5.0])
    # positives 1,1,1,1,5: 99th percentile = 1 + 0.96 * (5 - 1) = 4.84 (linear interpolation)
    np.testing.assert_allclose(robust_scale(v), [0, 0, 1 / 4.84, 1 / 4.84, 1 / 4.84,
                                                 1 / 4.84, 1.0], rtol=1e-6)
    np.testing.assert_array_equal(robust_scale(np.zeros((3, 3))), np.zeros((3, 3)))
    np.testing.assert_array_equal(robust_scale(-np.ones(4)), np.zeros(4))


def test_max_scale_by_hand_and_zero_safe():
    np.testing.assert_allclose(max_scale(np.array([-1.0, 0.5, 2.0])), [0.0, 0.25, 1.0])
    out = max_scale(np.zeros((2, 2)))
    assert out.dtype == np.float32 and not out.any()


def test_grid_mask_by_hand():
    # 8 x 8 canvas, image in rows 2..6: two rows of cells (2 px), two columns (4 px), pad = 4
    mask = grid_mask(8, (2, 0, 4, 8), 2)[0, 0].numpy()
    expected = np.full((8, 8), 4)
    expected[2:4, :4], expected[2:4, 4:], expected[4:6, :4], expected[4:6, 4:] = 0, 1, 2, 3
    np.testing.assert_array_equal(mask, expected)
    assert grid_mask(8, (0, 0, 8, 8), 2).max() == 3   # no padding, no extra feature


@pytest.mark.parametrize("shape", sorted(QUADRANT_ON_CANVAS))
@pytest.mark.parametrize("method", METHODS)
def test_every_method_lights_the_quadrant_the_model_reads(method, shape):
    # the model reads only the canvas region onto which the letterbox maps the source's
    # top-left quadrant: a map put back without cropping the padding (or cropped at the
    # wrong offset) would cover half of the quadrant or spill outside it
    clf = binary_classifier(QUADRANT_ON_CANVAS[shape])
    image = np.random.default_rng(0).uniform(0.6, 1.0, shape).astype(np.float32)  # > mean
    heat = explain(clf, image, method)
    assert heat.method == method and heat.target == "abnormal" and heat.model == "tiny"
    assert heat.array.shape == shape and heat.array.dtype == np.float32
    assert 0.0 <= heat.array.min() and heat.array.max() <= 1.0
    mass, covered, spill = quadrant_mass(heat.array)
    assert mass > 0.9 and covered > 0.9 and spill < 0.05, (mass, covered, spill)


@pytest.mark.parametrize("method", METHODS)
def test_a_model_that_reads_nothing_gives_an_all_zero_map(method):
    clf = binary_classifier(((0, 0), (0, 0)))     # empty region: constant output
    heat = explain(clf, np.full((20, 30), 0.8, np.float32), method, **(
        {"n_samples": 20} if method == "lime" else {}))
    assert heat.array.shape == (20, 30) and np.isfinite(heat.array).all()
    assert not heat.array.any()
    assert torch.is_grad_enabled()
