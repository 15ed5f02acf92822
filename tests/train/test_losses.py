"""Focal, CORAL and class-balancing numbers against the formulas, by hand."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from spinexr.errors import ConfigError
from spinexr.train.losses import (binary_focal_loss, class_balanced_weights, coral_loss,
                                  coral_targets, make_loss, softmax_focal_loss)

LN2 = math.log(2)


@pytest.mark.parametrize("logit, y, expected", [
    (0.0, 1, 0.25 * 0.5**2 * LN2),                              # p_t = 1/2, alpha_t = 0.25
    (0.0, 0, 0.75 * 0.5**2 * LN2),                              # alpha_t = 1 - alpha
    (math.log(3), 1, 0.25 * 0.25**2 * -math.log(0.75)),         # p = 3/4
    (math.log(3), 0, 0.75 * 0.75**2 * -math.log(0.25)),         # p_t = 1/4
])
def test_binary_focal_loss_by_hand(logit, y, expected):
    loss = binary_focal_loss(torch.tensor([[logit]]), torch.tensor([y]), alpha=0.25, gamma=2.0)
    assert float(loss) == pytest.approx(expected, rel=1e-6)


def test_binary_focal_without_focus_is_cross_entropy():
    z, y = torch.randn(16), torch.randint(0, 2, (16,))
    torch.testing.assert_close(binary_focal_loss(z, y, alpha=None, gamma=0.0),
                               F.binary_cross_entropy_with_logits(z, y.float()))


def test_binary_focal_loss_is_stable_for_huge_logits():
    z = torch.tensor([80.0, -80.0], requires_grad=True)
    loss = binary_focal_loss(z, torch.tensor([0, 1]))
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(z.grad).all()


def test_softmax_focal_loss_by_hand():
    z = torch.tensor([[0.0, math.log(3)]])            # p = [1/4, 3/4]
    y = torch.tensor([1])
    fl = 0.25**2 * -math.log(0.75)
    assert float(softmax_focal_loss(z, y, gamma=2.0)) == pytest.approx(fl, rel=1e-6)
    assert float(softmax_focal_loss(z, y, alpha=[0.4, 0.6], gamma=2.0)) == pytest.approx(
        0.6 * fl, rel=1e-6)
    zz, yy = torch.randn(8, 4), torch.randint(0, 4, (8,))
    torch.testing.assert_close(softmax_focal_loss(zz, yy, gamma=0.0), F.cross_entropy(zz, yy))


def test_coral_targets_and_loss_by_hand():
    np.testing.assert_array_equal(coral_targets(torch.tensor([0, 2, 4]), 5).numpy(),
                                  [[0, 0, 0, 0], [1, 1, 0, 0], [1, 1, 1, 1]])
    # C = 3, logits 0 for both tasks, y = 1 -> levels [1, 0]: ln 2 + ln 2
    assert float(coral_loss(torch.zeros(1, 2), torch.tensor([1]))) == pytest.approx(2 * LN2)
    # task weights scale each term
    assert float(coral_loss(torch.zeros(1, 2), torch.tensor([1]), weights=[1.0, 0.5])) == \
        pytest.approx(1.5 * LN2)


def test_make_loss_picks_and_refuses():
    z, y = torch.zeros(2, 1), torch.tensor([0, 1])
    assert float(make_loss("binary")(z, y)) == pytest.approx(0.5 * 0.25 * LN2)  # alpha .25/.75
    assert float(make_loss("binary", {"name": "ce"})(z, y)) == pytest.approx(LN2)
    assert float(make_loss("ordinal")(torch.zeros(1, 2), torch.tensor([1]))) == \
        pytest.approx(2 * LN2)
    with pytest.raises(ConfigError, match="does not fit"):
        make_loss("binary", {"name": "coral"})
    with pytest.raises(ConfigError, match="not one of"):
        make_loss("softmax", {"name": "hinge"})


def test_class_balanced_weights_by_hand():
    w = class_balanced_weights([0, 0, 0, 1], 2)
    np.testing.assert_allclose(w, [1 / 6, 1 / 6, 1 / 6, 1 / 2])
    assert w[:3].sum() == pytest.approx(w[3:].sum())      # each class drawn equally often
    np.testing.assert_allclose(class_balanced_weights([0, 0, 1], 2, power=0.0), [1 / 3] * 3)
    with pytest.raises(ConfigError, match="0..1"):
        class_balanced_weights([0, 2], 2)
