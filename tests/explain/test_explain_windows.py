"""explain_windows: the most suspicious window is explained, in place, and nowhere else."""
from __future__ import annotations

import numpy as np
from explain_models import binary_classifier

from spinexr.explain import explain_windows
from spinexr.labels import VERTEBRA_CLASS
from spinexr.models.ensemble import TriageEnsemble
from spinexr.models.spine_crops import CropSpec, WindowTriage
from spinexr.types import Box


class _Bodies:
    """Three 32 x 32 bodies down the middle of a 160 x 96 image (windows do not overlap)."""

    def predict(self, images, conf=0.25, **_):
        return [[Box(32, 8 + 50 * i, 64, 40 + 50 * i, VERTEBRA_CLASS, score=0.9)
                 for i in range(3)] for _ in images]


def test_heat_lies_in_the_window_that_drove_the_score():
    image = np.full((160, 96), 0.2, np.float32)
    image[60:90, 36:60] = 0.9                          # bright: inside window 1 only
    clf = binary_classifier(((0, 32), (0, 32)))        # logit grows with the crop's brightness
    ens = TriageEnsemble({"m": clf}, {"m": 1.0}, operating_points={"youden": 0.5})
    triage = WindowTriage(ens, _Bodies(), CropSpec(width=1.2, height=1.2, stretch=False))
    wins = triage.windows([image])[0]
    assert len(wins) == 3
    heat = explain_windows(triage, image, "saliency", top=1)
    assert heat.array.shape == image.shape and heat.model == "ensemble"
    w = wins[1]
    inside = np.zeros(image.shape, bool)
    inside[int(w.y1):int(np.ceil(w.y2)), int(w.x1):int(np.ceil(w.x2))] = True
    assert heat.array[inside].max() > 0.1
    assert not heat.array[~inside].any()               # the other windows were not explained
    both = explain_windows(triage, image, "saliency", top=3)
    assert both.array[~inside].any()                   # now they are, dimmer than window 1
    assert both.array[inside].max() >= both.array[~inside].max()
