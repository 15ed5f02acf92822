"""Radiograph augmentations: never a vertical flip, pure, seeded, in range."""
from __future__ import annotations

import pytest
import torch

from spinexr.errors import ConfigError
from spinexr.train.augment import AugmentConfig, affine_matrices, augment_batch

STRONG = AugmentConfig(hflip=0.5, degrees=30, scale=0.3, translate=0.1, brightness=0.1,
                       contrast=0.3, gamma=0.3, noise=0.05)


def test_sampling_matrices_never_reverse_the_vertical_axis():
    theta = affine_matrices(20000, STRONG, torch.Generator().manual_seed(0))
    assert (theta[:, 1, 1] > 0).all()           # output "down" samples input "down"
    assert (theta[:, 0, 0] < 0).any() and (theta[:, 0, 0] > 0).any()  # mirrors do happen


def test_head_end_stays_up_in_every_augmented_image():
    x = torch.zeros(256, 1, 32, 32)
    x[:, :, :12] = 1.0                           # bright top (the head end)
    out = augment_batch(x, torch.Generator().manual_seed(1), STRONG)
    top, bottom = out[:, 0, :12].mean(dim=(1, 2)), out[:, 0, -12:].mean(dim=(1, 2))
    assert (top - bottom > 0.15).all()           # a vertical flip would give top - bottom = -1


def test_horizontal_flip_alone_is_an_exact_mirror():
    from dataclasses import replace

    cfg = replace(AugmentConfig.off(), hflip=1.0)
    x = torch.rand(3, 1, 16, 16)
    out = augment_batch(x, torch.Generator().manual_seed(0), cfg)
    torch.testing.assert_close(out, x.flip(-1), rtol=0, atol=1e-5)


def test_no_augmentation_is_the_identity():
    x = torch.rand(2, 1, 16, 16)
    torch.testing.assert_close(augment_batch(x, torch.Generator(), AugmentConfig.off()), x,
                               rtol=0, atol=1e-5)


def test_pure_seeded_and_in_range():
    x = torch.rand(4, 1, 24, 24)
    before = x.clone()
    a = augment_batch(x, torch.Generator().manual_seed(5), STRONG)
    b = augment_batch(x, torch.Generator().manual_seed(5), STRONG)
    torch.testing.assert_close(a, b, rtol=0, atol=0)
    torch.testing.assert_close(x, before, rtol=0, atol=0)
    assert a.min() >= 0 and a.max() <= 1 and not torch.equal(a, x)


@pytest.mark.parametrize("raw, match", [({"vflip": 0.5}, "vertical flips"),
                                        ({"flipud": 0.5}, "vertical flips"),
                                        ({"rotate": 5}, "unknown keys"),
                                        ({"degrees": 90}, "degrees")])
def test_recipe_keys_are_checked(raw, match):
    with pytest.raises(ConfigError, match=match):
        AugmentConfig.from_mapping(raw)
