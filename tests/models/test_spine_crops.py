"""Vertebra windows: geometry, targets, max pooling, and WindowTriage / WindowGrader with
stand-in models."""
from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from spinexr.errors import ConfigError
from spinexr.labels import VERTEBRA_CLASS
from spinexr.models.ensemble import TriageEnsemble
from spinexr.models.spine_crops import (NO_WINDOW_LOGIT, CropSpec, WindowGrader,
                                        WindowTriage, crop, pool_logits, vertebra_windows,
                                        window_pixels, window_targets)
from spinexr.types import Box


def _body(x1, y1, x2, y2, level=None, score=0.9):
    return Box(x1, y1, x2, y2, VERTEBRA_CLASS, score=score, level=level)


def test_window_is_centred_scaled_and_clipped():
    spec = CropSpec(width=2.0, height=3.0)
    # a 40 x 20 body centred at (100, 50); the second one touches the image's top-left corner
    wins = vertebra_windows([_body(80, 40, 120, 60, "L3"), _body(0, 0, 20, 10, "L1")],
                            width=150, height=200, spec=spec)
    assert [w.level for w in wins] == ["L1", "L3"]          # sorted top to bottom
    top, mid = wins
    assert (mid.x1, mid.y1, mid.x2, mid.y2) == (60.0, 20.0, 140.0, 80.0)
    assert (top.x1, top.y1, top.x2, top.y2) == (0.0, 0.0, 30.0, 20.0)   # clipped at 0
    right = vertebra_windows([_body(130, 180, 150, 200)], 150, 200, spec)[0]
    assert (right.x2, right.y2) == (150.0, 200.0)            # clipped at the far edges


def test_crop_is_a_view_of_the_window():
    img = np.arange(100, dtype=np.float32).reshape(10, 10)
    got = crop(img, Box(2.5, 1.0, 5.0, 4.2, "window"))
    np.testing.assert_array_equal(got, img[1:5, 2:5])
    assert np.shares_memory(got, img)


def test_window_pixels_stretch_each_windows_contrast():
    img = np.full((20, 20), 0.4, np.float32)
    img[5:15, 5:15] = 0.6
    win = Box(0, 0, 20, 20, "window")
    got = window_pixels(img, win, CropSpec(stretch=True))
    assert got.min() == 0.0 and got.max() == 1.0 and got[10, 10] == 1.0
    np.testing.assert_array_equal(window_pixels(img, win, CropSpec(stretch=False)), img)
    flat = window_pixels(np.full((8, 8), 0.3, np.float32), Box(0, 0, 8, 8, "w"), CropSpec())
    assert not flat.any()


def test_window_targets_need_the_covered_fraction():
    wins = [Box(0, 0, 10, 10, "window"), Box(10, 0, 20, 10, "window")]
    lesion = Box(6, 2, 12, 4, "Osteophytes")   # 4/6 of its width in window 0, 2/6 in window 1
    assert window_targets(wins, [lesion], 0.5).tolist() == [1, 0]
    assert window_targets(wins, [lesion], 0.3).tolist() == [1, 1]
    assert window_targets(wins, [], 0.5).tolist() == [0, 0]


def test_grading_window_targets_carry_the_grade_of_their_lesion_kinds():
    wins = [Box(0, 0, 10, 10, "window"), Box(10, 0, 20, 10, "window"),
            Box(20, 0, 30, 10, "window")]
    lesions = [Box(2, 2, 6, 6, "Osteophytes"), Box(12, 2, 16, 6, "Surgical implant"),
               Box(22, 2, 26, 6, "Disc space narrowing")]
    kinds = {"Osteophytes", "Disc space narrowing"}
    assert window_targets(wins, lesions, value=3, kinds=kinds).tolist() == [3, 0, 3]
    assert window_targets(wins, lesions, value=2, kinds={"Surgical implant"}).tolist() == \
        [0, 2, 0]
    assert window_targets(wins, lesions, value=0, kinds=kinds).tolist() == [0, 0, 0]
    assert window_targets(wins, lesions, value=4).tolist() == [4, 4, 4]   # any class


def test_pool_logits_takes_each_images_max_and_marks_empty_images():
    z = np.array([[0.5], [2.0], [-1.0], [3.0]], np.float32)
    owner = np.array([0, 0, 2, 2])
    got = pool_logits(z, owner, 3)
    np.testing.assert_allclose(got[:, 0], [2.0, NO_WINDOW_LOGIT, 3.0])
    # two-class softmax logits: the row with the largest abnormal margin is kept whole
    z2 = np.array([[0.0, 1.0], [2.0, 2.5], [0.0, -1.0]], np.float32)
    got2 = pool_logits(z2, np.array([0, 0, 1]), 2)
    np.testing.assert_allclose(got2, [[0.0, 1.0], [0.0, -1.0]])
    with pytest.raises(ConfigError):
        pool_logits(z, owner, 3, "mean")


def test_pool_logits_for_grading_heads():
    # softmax over 3 classes: the row whose best abnormal class beats "normal" by most
    z = np.array([[2.0, 0.0, 1.0], [0.0, 3.0, -1.0], [1.0, 0.5, 0.2]], np.float32)
    got = pool_logits(z, np.array([0, 0, 1]), 3, head="softmax")
    np.testing.assert_allclose(got[:2], [[0.0, 3.0, -1.0], [1.0, 0.5, 0.2]])
    assert got[2, 0] == 0.0 and (got[2, 1:] == NO_WINDOW_LOGIT).all()   # no window: normal
    # ordinal (CORAL: cumulative logits share one score): the row with the largest sum
    zo = np.array([[-1.0, -2.0, -3.0], [1.0, 0.0, -1.0], [3.0, -5.0, -6.0]], np.float32)
    got_o = pool_logits(zo, np.array([0, 0, 0]), 2, head="ordinal")
    np.testing.assert_allclose(got_o[0], [1.0, 0.0, -1.0])
    assert (got_o[1] == NO_WINDOW_LOGIT).all()
    with pytest.raises(ConfigError, match="head"):
        pool_logits(zo, np.array([0, 0, 0]), 1, head="regression")


def test_crop_spec_round_trip_and_refusals():
    spec = CropSpec(width=1.5, conf=0.3)
    assert CropSpec.from_dict(spec.to_dict()) == spec
    with pytest.raises(ConfigError, match="unknown"):
        CropSpec.from_dict({"widht": 2})
    with pytest.raises(ConfigError):
        CropSpec(height=0)


class _Det:
    def __init__(self, boxes):
        self.boxes, self.calls = boxes, 0

    def predict(self, images, conf=0.25, **_):
        self.calls += len(images)
        return [[b for b in self.boxes if (b.score or 0) >= conf] for _ in images]


class _BrightWindow:
    """Logit = 10 * (mean of the crop - 0.5): a bright window reads as abnormal."""
    head, labels = "binary", ("normal", "abnormal")

    def __init__(self):
        self.sizes = []

    def predict_logits(self, images):
        self.sizes += [im.shape for im in images]
        return np.array([[10 * (float(im.mean()) - 0.5)] for im in images], np.float32)


def _column():
    return [_body(40, 20 + 40 * i, 80, 45 + 40 * i, score=0.9) for i in range(6)]


def test_window_triage_pools_the_brightest_window():
    img = np.full((300, 120), 0.4, np.float32)
    img[180:205, 45:75] = 1.0                 # a "lesion" inside the 5th body's window only
    member = _BrightWindow()
    ens = TriageEnsemble({"m": member}, {"m": 1.0}, operating_points={"youden": 0.5})
    det = _Det(_column())
    tri = WindowTriage(ens, det, CropSpec(width=1.5, height=1.6, stretch=False))
    out = tri.predict([img, np.full((300, 120), 0.4, np.float32)])
    assert det.calls == 2
    assert len(out.windows[0]) == 6 and len(member.sizes) == 12
    p_lesion, p_plain = out.probability
    assert p_lesion > 0.5 > p_plain
    assert out.decisions["youden"].tolist() == [True, False]
    # the bodies the gate already found are used as given: the detector does not run again
    again = tri.predict([img], vertebrae=[_column()[:2]])
    assert det.calls == 2 and len(again.windows[0]) == 2
    assert again.probability[0] < 0.5      # the lesion's window is not among them


def test_window_triage_members_share_the_crops_and_give_their_own_probabilities():
    import torch

    from spinexr.models.classifier import Classifier, Preprocess, create_classifier
    from spinexr.models.ensemble import positive_probability
    from spinexr.models.spine_crops import _window_logits

    pre = Preprocess(32, interpolation="area")
    members = {}
    for seed, name in enumerate(("a", "b")):
        torch.manual_seed(seed)
        members[name] = Classifier(create_classifier("test_efficientnet", 2, head="binary"),
                                   ["normal", "abnormal"], "binary", pre)
    ens = TriageEnsemble(members, {"a": 0.5, "b": 0.5}, operating_points={"youden": 0.5})
    spec = CropSpec(width=1.5, height=1.6, stretch=True)
    tri = WindowTriage(ens, _Det(_column()), spec)
    rng = np.random.default_rng(1)
    images = [rng.random((300, 120), dtype=np.float32) for _ in range(2)]
    out = tri.predict(images)
    wins = tri.windows(images)
    for name, clf in members.items():      # each member alone, cutting its own crops
        alone = positive_probability(_window_logits(clf, images, wins, spec), "binary")
        np.testing.assert_array_equal(out.per_model[name], alone)


def test_window_triage_without_vertebrae_reads_normal():
    ens = TriageEnsemble({"m": _BrightWindow()}, {"m": 1.0}, operating_points={"youden": 0.5})
    tri = WindowTriage(ens, _Det([]), CropSpec(stretch=False))
    out = tri.predict([np.ones((100, 100), np.float32)])
    assert out.windows == ((),)
    assert out.probability[0] < 1e-6


class _GradeByBrightness:
    """3-class softmax stand-in: bright windows read as class 2, mid-grey as 1, dark as 0."""
    head, labels, temperature = "softmax", ("normal", "fracture", "dislocation"), 1.0

    def __init__(self):
        self.calls = 0

    def predict_logits(self, images):
        self.calls += 1
        m = np.array([float(im.mean()) for im in images], np.float32).reshape(-1, 1)
        centres = np.array([[0.3, 0.6, 0.9]], np.float32)
        return (-200.0 * (m - centres) ** 2).astype(np.float32)


def test_window_grader_takes_the_most_abnormal_windows_class():
    img = np.full((300, 120), 0.3, np.float32)
    img[140:210, 30:90] = 0.6                   # one "fractured" window, the rest normal
    det = _Det(_column())
    grader = WindowGrader(_GradeByBrightness(), det, CropSpec(width=1.5, height=1.6,
                                                              stretch=False))
    plain = np.full((300, 120), 0.3, np.float32)
    probs = grader.predict_proba([img, plain])
    assert probs.shape == (2, 3) and np.allclose(probs.sum(axis=1), 1.0)
    assert probs[0].argmax() == 1 and probs[1].argmax() == 0
    assert det.calls == 2 and grader.labels[1] == "fracture" and grader.head == "softmax"
    # given bodies are used as they are (here: none, so the image reads as normal)
    none = grader.predict_proba([img], vertebrae=[[]])
    assert det.calls == 2 and none[0, 0] > 0.999


def test_window_grader_says_which_window_gave_the_grade():
    """The grade's location: the window (with its vertebra's level) that drove the image."""
    img = np.full((300, 120), 0.3, np.float32)
    img[180:205, 45:75] = 0.9                   # inside the 5th body's window only
    bodies = [replace(b, level=f"L{i + 1}") for i, b in enumerate(_column())]
    grader = WindowGrader(_GradeByBrightness(), _Det([]), CropSpec(width=1.5, height=1.6,
                                                                   stretch=False))
    probs, where = grader.predict_located([img, img], vertebrae=[bodies, []])
    assert probs[0].argmax() > 0 and where[0].level == "L5"
    assert where[0].y1 <= 180 and where[0].y2 >= 205
    assert where[1] is None and probs[1].argmax() == 0
    np.testing.assert_allclose(probs, grader.predict_proba([img, img], vertebrae=[bodies, []]))
