"""COCO mAP on toy inputs whose AP can be derived by hand."""
from __future__ import annotations

import math

import pytest

from spinexr.evaluate import coco_map
from spinexr.types import Box

CLASSES = ("A", "B")
SIZE = [(100, 100)]


def _b(x1, y1, x2, y2, label="A", score=None):
    return Box(x1, y1, x2, y2, label=label, score=score)


def test_perfect_predictions_give_ap_one():
    truth = [[_b(10, 10, 30, 30), _b(50, 50, 90, 80, "B")]]
    preds = [[_b(10, 10, 30, 30, score=0.9), _b(50, 50, 90, 80, "B", score=0.8)]]
    m = coco_map(truth, preds, SIZE, CLASSES)
    assert m["map50"] == pytest.approx(1.0)
    assert m["map50_95"] == pytest.approx(1.0)


def test_half_recall_gives_ap_about_half():
    # two true boxes of A, one found: precision 1 up to recall 0.5, nothing after.
    # COCO's 101-point interpolation: points 0.00..0.50 (51 of 101) have precision 1.
    truth = [[_b(0, 0, 20, 20), _b(50, 50, 70, 70)]]
    preds = [[_b(0, 0, 20, 20, score=0.9)]]
    m = coco_map(truth, preds, SIZE, ("A",))
    assert m["map50"] == pytest.approx(51 / 101)


def test_false_positive_ranked_first_halves_precision():
    # ranked FP then TP: precision at recall 1 is 1/2 -> AP = 0.5 over all 101 points
    truth = [[_b(0, 0, 20, 20)]]
    preds = [[_b(60, 60, 80, 80, score=0.9), _b(0, 0, 20, 20, score=0.5)]]
    m = coco_map(truth, preds, SIZE, ("A",))
    assert m["map50"] == pytest.approx(0.5)


def test_iou_between_thresholds_counts_only_at_low_iou():
    # prediction shifted so IoU = 15*20 / (2*400 - 300) = 0.6: a hit at 0.50, 0.55, 0.60 only
    truth = [[_b(0, 0, 20, 20)]]
    preds = [[_b(5, 0, 25, 20, score=0.9)]]
    m = coco_map(truth, preds, SIZE, ("A",))
    assert m["map50"] == pytest.approx(1.0)
    assert m["map50_95"] == pytest.approx(3 / 10)


def test_class_without_truth_is_left_out_of_the_mean():
    truth = [[_b(0, 0, 20, 20)]]
    preds = [[_b(0, 0, 20, 20, score=0.9)]]
    m = coco_map(truth, preds, SIZE, CLASSES)
    assert math.isnan(m["per_class"]["B"]["ap50"])
    assert m["map50"] == pytest.approx(1.0)


def test_no_predictions_score_zero():
    m = coco_map([[_b(0, 0, 20, 20)]], [[]], SIZE, ("A",))
    assert m["map50"] == 0.0 and m["per_class"]["A"]["n_true"] == 1
