"""Each method against values derived by hand."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from explain_models import PRE, QUADRANT_ON_CANVAS, binary_classifier, quadrant_mass
from spinexr.explain import explain
from spinexr.explain import integrated_gradients, saliency
from spinexr.models.classifier import Classifier, Preprocess


def test_ig_of_a_sum_of_squares_is_the_squares():
    # score = sum x^2, baseline 0: IG_i = x_i * int_0^1 2 a x_i da = x_i^2, exactly for any
    # rule that integrates a linear function exactly (Gauss-Legendre with >= 1 point)
    x = torch.tensor([[[[1.0, -2.0], [0.5, 3.0]]]])
    attr, delta = integrated_gradients.attribute(lambda b: (b ** 2).flatten(1).sum(1), x,
                                                 torch.zeros_like(x), steps=4,
                                                 return_delta=True)
    np.testing.assert_allclose(attr.numpy(), (x ** 2).numpy(), rtol=1e-5)
    assert abs(float(delta[0])) < 1e-4


def test_ig_is_complete_on_a_nonlinear_network():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.Tanh(), nn.Conv2d(4, 2, 3), nn.Softplus(),
                        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(2, 1)).eval()
    x = torch.randn(1, 1, 12, 12, generator=torch.Generator().manual_seed(1))
    baseline = torch.zeros_like(x)

    def score(b):
        return net(b)[:, 0]

    attr, delta = integrated_gradients.attribute(score, x, baseline, steps=64,
                                                 internal_batch_size=16, return_delta=True)
    with torch.no_grad():
        gap = float(score(x) - score(baseline))
    assert abs(gap) > 1e-3
    np.testing.assert_allclose(float(attr.sum()), gap, rtol=1e-3, atol=1e-5)
    assert abs(float(delta[0])) < 1e-3 * abs(gap) + 1e-6


def test_saliency_of_a_linear_model_is_its_weights():
    s = 8
    rng = np.random.default_rng(0)
    w = rng.choice([-2.0, -1.0, 1.0, 2.0], size=(s, s)).astype(np.float32)
    w[0, :4] = [2.0, -2.0, 1.0, -1.0]                   # both magnitudes present
    linear = nn.Linear(s * s, 1)
    with torch.no_grad():
        linear.weight.copy_(torch.from_numpy(w.reshape(1, -1)))
    model = nn.Sequential(nn.Flatten(), linear)
    x = torch.randn(1, 1, s, s)
    grad = saliency.attribute(lambda b: model(b)[:, 0], x)
    np.testing.assert_array_equal(grad[0, 0].numpy(), w)
    # through explain: an S x S source is not resized; |w| over its 99th percentile among
    # positives, which is 2 because more than 1% of |w| equals 2, is |w| / 2
    clf = Classifier(model, ["normal", "abnormal"], "binary", Preprocess(s, mean=0.5, std=0.25))
    heat = explain(clf, rng.random((s, s), dtype=np.float32), "saliency")
    np.testing.assert_allclose(heat.array, np.abs(w) / 2.0, rtol=1e-6)


def test_saliency_smoothing_spreads_but_keeps_the_range():
    clf = binary_classifier(QUADRANT_ON_CANVAS[(48, 96)])
    image = np.full((48, 96), 0.9, np.float32)
    sharp = explain(clf, image, "saliency").array
    smooth = explain(clf, image, "saliency", sigma=2.0).array
    assert 0.0 <= smooth.min() and smooth.max() <= 1.0
    assert (smooth > 0.01).sum() > (sharp > 0.01).sum()
    assert quadrant_mass(smooth)[0] > 0.8


def test_ig_baselines_and_sign_options():
    clf = binary_classifier(QUADRANT_ON_CANVAS[(48, 96)])
    dark = np.full((48, 96), 0.2, np.float32)          # below the mean grey 0.5
    # from mean grey, a darker quadrant lowers the abnormal logit: no positive evidence
    assert not explain(clf, dark, "ig").array.any()
    assert quadrant_mass(explain(clf, dark, "ig", sign="absolute").array)[0] > 0.9
    # from black, the same image raises it
    assert quadrant_mass(explain(clf, dark, "ig", baseline="black").array)[0] > 0.9
    assert quadrant_mass(explain(clf, dark, "ig", baseline=0.0, steps=8).array)[0] > 0.9


def test_lime_is_deterministic_for_a_seed():
    clf = binary_classifier(QUADRANT_ON_CANVAS[(48, 96)])
    image = np.random.default_rng(3).uniform(0.6, 1.0, (48, 96)).astype(np.float32)
    # 4 x 4 cells + padding: 17 coefficients from 60 samples
    a = explain(clf, image, "lime", n_samples=60, cells=4, seed=7).array
    b = explain(clf, image, "lime", n_samples=60, cells=4, seed=7).array
    c = explain(clf, image, "lime", n_samples=60, cells=4, seed=8).array
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    assert quadrant_mass(c)[0] > 0.9


def test_lime_cells_follow_the_grid():
    clf = binary_classifier(QUADRANT_ON_CANVAS[(48, 96)])
    heat = explain(clf, np.full((48, 96), 0.9, np.float32), "lime", cells=2, n_samples=40)
    # 2 x 2 cells over the image: the top-left quadrant is lit uniformly, the other three
    # cells barely (the ridge penalty leaks a few % between sampled features), but for the
    # bilinear resize, 16 x 32 -> 48 x 96, at the cell borders
    np.testing.assert_allclose(heat.array[:22, :46], 1.0, atol=1e-6)
    np.testing.assert_allclose(heat.array[26:, :], 0.0, atol=0.05)
    np.testing.assert_allclose(heat.array[:, 50:], 0.0, atol=0.05)


@pytest.mark.parametrize("method, options, match", [
    ("ig", {"steps": 0}, "steps"), ("ig", {"baseline": "purple"}, "baseline"),
    ("ig", {"sign": "negative"}, "sign"), ("ig", {"internal_batch_size": 0}, "batch_size"),
    ("saliency", {"sigma": -1.0}, "sigma"), ("saliency", {"percentile": 0}, "percentile"),
    ("lime", {"n_samples": 1}, "n_samples"), ("lime", {"cells": 0}, "cells"),
    ("gradcam", {"layer": "no_such_layer"}, "no_such_layer")])
def test_bad_option_values_are_refused(method, options, match):
    from spinexr.errors import ConfigError

    clf = binary_classifier(QUADRANT_ON_CANVAS[(48, 96)])
    with pytest.raises(ConfigError, match=match):
        explain(clf, np.full((48, 96), 0.9, np.float32), method, **options)


def test_gradcam_accepts_a_layer_by_name_or_module():
    clf = binary_classifier(QUADRANT_ON_CANVAS[(48, 96)])
    image = np.full((48, 96), 0.9, np.float32)
    by_name = explain(clf, image, "gradcam", layer="1").array     # the KeepRegion module
    by_module = explain(clf, image, "gradcam", layer=clf.model[1]).array
    np.testing.assert_array_equal(by_name, by_module)
    np.testing.assert_array_equal(by_name, explain(clf, image, "gradcam").array)
    assert PRE.input_size == 32
