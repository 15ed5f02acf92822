"""The explain() interface: methods and options, targets per head, the model left as it was,
a real timm network, and ensembles."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from explain_models import (PRE, QUADRANT_ON_CANVAS, binary_classifier, quadrant_mass,
                            region_model)
from spinexr.errors import ConfigError
from spinexr.explain import METHODS, explain, explain_ensemble
from spinexr.explain.base import preserved_state
from spinexr.explain.gradcam import find_target_layer
from spinexr.models.classifier import Classifier, CoralModel, Preprocess, create_classifier
from spinexr.models.ensemble import TriageEnsemble

TOP_LEFT = QUADRANT_ON_CANVAS[(48, 96)]          # canvas region of the source's top-left
BOTTOM_RIGHT = ((16, 24), (16, 32))              # ... and of its bottom-right quadrant
FAST = {"gradcam": {}, "ig": {"steps": 8}, "saliency": {}, "lime": {"n_samples": 40, "cells": 4}}


def _bright(shape=(48, 96)) -> np.ndarray:
    return np.full(shape, 0.9, np.float32)        # normalised +1.6: above the mean grey


def _bottom_right_mass(array: np.ndarray) -> float:
    return quadrant_mass(array[::-1, ::-1])[0]


def test_methods_are_the_documented_four():
    assert METHODS == ("gradcam", "ig", "saliency", "lime")


def test_unknown_method_lists_the_methods():
    with pytest.raises(ConfigError, match=r"'shap'.*gradcam.*ig.*saliency.*lime"):
        explain(binary_classifier(TOP_LEFT), _bright(), "shap")


def test_unknown_option_names_the_options_of_the_method():
    with pytest.raises(ConfigError, match=r"\['n_steps'\].*'steps'"):
        explain(binary_classifier(TOP_LEFT), _bright(), "ig", n_steps=10)


def test_only_one_2d_image_is_accepted():
    with pytest.raises(ConfigError, match=r"\(H, W\).*\(2, 48, 96\)"):
        explain(binary_classifier(TOP_LEFT), np.stack([_bright(), _bright()]), "saliency")


def test_binary_targets_the_abnormal_logit_and_its_negative_for_normal():
    clf = binary_classifier(TOP_LEFT)
    abnormal, normal = explain(clf, _bright(), "ig"), explain(clf, _bright(), "ig", target=0)
    assert (abnormal.target, normal.target) == ("abnormal", "normal")
    assert quadrant_mass(abnormal.array)[0] > 0.9
    assert not normal.array.any()              # a bright quadrant is evidence against normal
    np.testing.assert_array_equal(explain(clf, _bright(), "saliency", target=0).array,
                                  explain(clf, _bright(), "saliency").array)  # |gradient|
    with pytest.raises(ConfigError, match="target=2 for a binary head"):
        explain(clf, _bright(), "saliency", target=2)


@pytest.mark.parametrize("method", ["gradcam", "ig"])
def test_softmax_explains_the_predicted_class_unless_told(method):
    # logits: class 0 = 0.4 from the top-left region (2 * 1.6 * 128 / 1024), class 1 = the
    # same from the bottom-right region + 0.5, class 2 = 0: class 1 is predicted
    model = region_model([TOP_LEFT, BOTTOM_RIGHT], [[1, 0], [0, 1], [0, 0]], [0.0, 0.5, 0.0])
    clf = Classifier(model, ["a", "b", "c"], "softmax", PRE, name="soft")
    assert clf.predict_proba([_bright()]).argmax() == 1
    default = explain(clf, _bright(), method)
    first = explain(clf, _bright(), method, target=0)
    assert (default.target, first.target) == ("b", "a")
    assert _bottom_right_mass(default.array) > 0.9
    assert quadrant_mass(first.array)[0] > 0.9


def test_ordinal_explains_the_expected_grade_or_a_threshold():
    backbone = region_model([TOP_LEFT], [[1.0]])
    clf = Classifier(CoralModel(backbone, 3), ["none", "mild", "severe"], "ordinal", PRE)
    grade = explain(clf, _bright(), "saliency")
    severe = explain(clf, _bright(), "saliency", target=2)
    assert (grade.target, severe.target) == ("expected grade", "severe or higher")
    # CORAL logits share one backbone: every target has the direction of its gradient
    np.testing.assert_allclose(grade.array, severe.array, atol=1e-6)
    assert quadrant_mass(grade.array)[0] > 0.9
    with pytest.raises(ConfigError, match="1..2"):
        explain(clf, _bright(), "saliency", target=0)


def _snapshot(model: nn.Module) -> dict:
    return {"state": {k: v.clone() for k, v in model.state_dict().items()},
            "modes": [m.training for m in model.modules()],
            "requires_grad": [p.requires_grad for p in model.parameters()],
            "hooks": [(len(m._forward_hooks), len(m._forward_pre_hooks), len(m._backward_hooks))
                      for m in model.modules()]}


def _assert_unchanged(model: nn.Module, before: dict) -> None:
    after = _snapshot(model)
    assert after["state"].keys() == before["state"].keys()
    for key, value in before["state"].items():
        assert torch.equal(after["state"][key], value), key     # bit-identical
    assert after["modes"] == before["modes"]
    assert after["requires_grad"] == before["requires_grad"]
    assert after["hooks"] == before["hooks"]
    assert all(p.grad is None for p in model.parameters())


@pytest.mark.parametrize("grad_enabled", [True, False])
@pytest.mark.parametrize("method", METHODS)
def test_the_model_is_left_exactly_as_it_was(method, grad_enabled):
    clf = binary_classifier(TOP_LEFT, extras=True)        # with BatchNorm and Dropout
    model = clf.model
    model.train()
    model[1].eval()                                        # mixed modes: BN frozen
    model[0].weight.requires_grad_(False)                  # a frozen layer
    calls = []
    model[2].register_forward_hook(lambda *_: calls.append(1))   # the caller's own hook
    before = _snapshot(model)
    with torch.set_grad_enabled(grad_enabled):
        heat = explain(clf, _bright(), method, **FAST[method])
        assert torch.is_grad_enabled() is grad_enabled
    assert clf.model is model and calls
    _assert_unchanged(model, before)
    assert quadrant_mass(heat.array)[0] > 0.9             # dropout was off while explaining


def test_state_is_restored_when_a_method_fails_half_way():
    clf = binary_classifier(TOP_LEFT, extras=True)
    clf.model.train()
    before = _snapshot(clf.model)
    with pytest.raises(ConfigError, match="baseline"):
        explain(clf, _bright(), "ig", baseline="purple")
    _assert_unchanged(clf.model, before)
    with pytest.raises(RuntimeError, match="boom"), preserved_state(clf.model) as model:
        model[2].register_forward_hook(lambda *_: None)   # e.g. a hook a library forgot
        assert not model.training and not any(p.requires_grad for p in model.parameters())
        raise RuntimeError("boom")
    _assert_unchanged(clf.model, before)


def test_explain_works_inside_inference_mode():
    clf = binary_classifier(TOP_LEFT)
    with torch.inference_mode():
        heat = explain(clf, _bright(), "ig", steps=8)
        assert torch.is_inference_mode_enabled() and not torch.is_grad_enabled()
    assert quadrant_mass(heat.array)[0] > 0.9


def test_gradcam_finds_the_last_feature_map_of_a_timm_resnet():
    torch.manual_seed(0)
    model = create_classifier("resnet10t", 2, head="binary")
    clf = Classifier(model, ["normal", "abnormal"], "binary", Preprocess(64), name="r10t")
    x = torch.zeros(1, 1, 64, 64)
    name, layer = find_target_layer(clf.model, x)
    assert name == "layer4" and layer is clf.model.layer4
    before = _snapshot(clf.model)
    image = np.random.default_rng(0).random((50, 70), dtype=np.float32)
    heat = explain(clf, image, "gradcam")
    assert heat.array.shape == (50, 70) and heat.array.dtype == np.float32
    assert np.isfinite(heat.array).all() and 0.0 <= heat.array.min() <= heat.array.max() <= 1.0
    _assert_unchanged(clf.model, before)


def test_gradcam_without_a_feature_map_asks_for_a_layer():
    model = nn.Sequential(nn.Flatten(), nn.Linear(32 * 32, 1))
    clf = Classifier(model, ["normal", "abnormal"], "binary", PRE)
    with pytest.raises(ConfigError, match="layer="):
        explain(clf, _bright(), "gradcam")


class _Unusable(nn.Module):
    def forward(self, x):
        raise AssertionError("a member of weight 0 must not be run")


def test_ensemble_map_is_the_weighted_mean_of_member_maps():
    a = binary_classifier(TOP_LEFT, name="a")
    b = Classifier(region_model([BOTTOM_RIGHT], [[0.0], [1.0]]), ["normal", "abnormal"],
                   "softmax", PRE, name="b")                  # a 2-class softmax member
    c = Classifier(_Unusable(), ["normal", "abnormal"], "binary", PRE, name="c")
    ensemble = TriageEnsemble({"a": a, "b": b, "c": c}, {"a": 0.75, "b": 0.25, "c": 0.0})
    heat = explain_ensemble(ensemble, _bright(), "gradcam")
    expected = (0.75 * explain(a, _bright(), "gradcam").array
                + 0.25 * explain(b, _bright(), "gradcam").array)
    assert (heat.model, heat.target, heat.method) == ("ensemble", "abnormal", "gradcam")
    np.testing.assert_allclose(heat.array, expected, atol=1e-6)
    assert heat.array.dtype == np.float32 and heat.array.max() <= 1.0
    assert quadrant_mass(heat.array)[0] > 0.7 and _bottom_right_mass(heat.array) > 0.2
    with pytest.raises(ConfigError, match="unknown explanation method"):
        explain_ensemble(ensemble, _bright(), "occlusion")
