"""Tiny hand-built classifiers whose outputs depend on known canvas regions only (helpers
imported by the tests of this folder).

Geometry used throughout (S = 32, letterbox): a landscape 48 x 96 source is scaled by 1/3 to
16 x 32 and centred, so it occupies canvas rows 8..24 and all columns; its top-left quadrant
(source rows 0..24, cols 0..48) is canvas rows 8..16, cols 0..16. A portrait 96 x 48 source
occupies columns 8..24; its top-left quadrant is canvas rows 0..16, cols 8..16.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
from torch import nn

from spinexr.models.classifier import Classifier, Preprocess

S = 32
PRE = Preprocess(S, mean=0.5, std=0.25, interpolation="area")
# source shape -> canvas (rows, cols) of the source's top-left quadrant
QUADRANT_ON_CANVAS = {(48, 96): ((8, 16), (0, 16)), (96, 48): ((0, 16), (8, 16))}


class KeepRegion(nn.Module):
    """Zeros channel c of its input outside region c: ``((r0, r1), (c0, c1))`` on the canvas."""

    def __init__(self, regions: Sequence[tuple[tuple[int, int], tuple[int, int]]],
                 size: int = S) -> None:
        super().__init__()
        mask = torch.zeros(1, len(regions), size, size)
        for c, ((r0, r1), (c0, c1)) in enumerate(regions):
            mask[0, c, r0:r1, c0:c1] = 1.0
        self.register_buffer("mask", mask)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.mask


def region_model(regions, weight, bias=None, *, extras: bool = False) -> nn.Sequential:
    """1x1 conv (weight 2 to every channel) -> KeepRegion -> global mean -> linear.

    ``weight`` (K, len(regions)) and ``bias`` (K,) of the final linear layer are given by
    hand; logit k = sum_c weight[k, c] * 2 * (sum of x over region c) / S^2 + bias[k].
    ``extras`` adds a BatchNorm2d (default statistics: identity up to eps) and a Dropout,
    to give the model state that must survive an explanation.
    """
    c = len(regions)
    conv = nn.Conv2d(1, c, 1, bias=False)
    w = torch.as_tensor(np.asarray(weight, np.float32))
    linear = nn.Linear(c, w.shape[0])
    with torch.no_grad():
        conv.weight.fill_(2.0)
        linear.weight.copy_(w)
        linear.bias.copy_(torch.zeros(w.shape[0]) if bias is None else torch.as_tensor(
            np.asarray(bias, np.float32)))
    layers = [conv] + ([nn.BatchNorm2d(c)] if extras else []) + [
        KeepRegion(regions), nn.AdaptiveAvgPool2d(1), nn.Flatten()]
    return nn.Sequential(*layers, *([nn.Dropout(0.5)] if extras else []), linear)


def binary_classifier(region, *, extras: bool = False, name: str = "tiny") -> Classifier:
    """Binary head whose abnormal logit is 2 * sum of the (normalised) input over ``region``
    divided by S^2."""
    return Classifier(region_model([region], [[1.0]], extras=extras), ["normal", "abnormal"],
                      "binary", PRE, name=name)


def quadrant_mass(array: np.ndarray) -> tuple[float, float, float]:
    """(share of the map's mass in the source's top-left quadrant, share of that quadrant
    above 0.5, share of the rest above 0.5)."""
    h, w = array.shape
    inside = np.zeros(array.shape, bool)
    inside[:h // 2, :w // 2] = True
    return (float(array[inside].sum() / array.sum()), float((array[inside] > 0.5).mean()),
            float((array[~inside] > 0.5).mean()))
