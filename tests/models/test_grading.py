"""Grading heads per task, region crops, and the two-stage RegionGrader."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from spinexr.errors import ConfigError
from spinexr.labels import CERVICAL_CLASSES, DEGENERATION_GRADES
from spinexr.models.classifier import Classifier, Preprocess
from spinexr.models.manifest import parse_manifest
from spinexr.models.grading import (GradedBox, RegionGrader, create_grader, crop_region,
                                    grading_head)
from spinexr.types import Box



def test_grading_tasks_pick_their_heads():
    assert grading_head("degeneration") == (DEGENERATION_GRADES, "ordinal")
    assert grading_head("degeneration", "softmax") == (DEGENERATION_GRADES, "softmax")
    assert grading_head("cervical") == (CERVICAL_CLASSES, "softmax")
    with pytest.raises(ConfigError, match="cervical grading allows heads"):
        grading_head("cervical", "ordinal")  # fracture / dislocation are not ordered
    with pytest.raises(ConfigError, match="not one of"):
        grading_head("knee")


def test_create_grader_outputs():
    torch.manual_seed(0)
    model, labels, head = create_grader("test_efficientnet", "degeneration")
    with torch.no_grad():
        assert model.eval()(torch.rand(1, 1, 32, 32)).shape == (1, 4)  # CORAL: C-1 logits
    assert head == "ordinal" and len(labels) == 5


def test_crop_region_size_by_hand():
    image = np.zeros((200, 200), np.float32)
    crop = crop_region(image, Box(90, 95, 110, 105, "r"), margin=0.5)  # side 20 * 2 = 40
    assert crop.shape == (40, 40)
    with pytest.raises(ConfigError, match="outside"):
        crop_region(image, Box(300, 300, 310, 310, "r"))


class _Detector:
    def __init__(self, boxes):
        self.boxes, self.calls = boxes, []

    def predict(self, images, conf=0.25):
        self.calls.append(conf)
        return [list(self.boxes[i]) for i in range(len(images))]


def _grader_classifier():
    from spinexr.models.classifier import create_classifier

    torch.manual_seed(0)
    model = create_classifier("test_efficientnet", 5, head="ordinal").eval()
    return Classifier(model, DEGENERATION_GRADES, "ordinal", Preprocess(32))


def test_region_grader_grades_every_kept_box():
    boxes = [[Box(10, 10, 30, 30, "L4-L5", score=0.9), Box(40, 40, 60, 70, "other", 0.8)], []]
    det = _Detector(boxes)
    grader = RegionGrader(det, _grader_classifier(), margin=0.5, regions=["L4-L5"], conf=0.3)
    images = [np.random.default_rng(i).random((100, 80), dtype=np.float32) for i in range(2)]
    out = grader.predict(images)
    assert det.calls == [0.3]
    assert [len(x) for x in out] == [1, 0]
    graded = out[0][0]
    assert isinstance(graded, GradedBox) and graded.box == boxes[0][0]
    assert len(graded.probabilities) == 5
    assert sum(graded.probabilities) == pytest.approx(1.0)
    assert graded.grade == int(np.argmax(graded.probabilities))
    assert graded.grade_name == DEGENERATION_GRADES[graded.grade]
    assert graded.expected_grade == pytest.approx(
        sum(k * p for k, p in enumerate(graded.probabilities)))


def test_region_grader_crops_like_the_classifier_would_see_them():
    clf = _grader_classifier()
    box = Box(20, 30, 44, 50, "r")
    image = np.random.default_rng(3).random((90, 70), dtype=np.float32)
    graded = RegionGrader(_Detector([[box]]), clf, margin=0.25).predict([image])[0][0]
    direct = clf.predict_proba([crop_region(image, box, 0.25)])[0]
    np.testing.assert_allclose(graded.probabilities, direct, atol=1e-6)


def test_region_grader_from_pack_reads_crop_and_threshold():
    clf = _grader_classifier()

    manifest = parse_manifest({
        "format": "spinexr-pack", "format_version": 2, "name": "p", "version": "1", "models": {
            "grader": {"kind": "classifier", "role": "mri_region_grader", "arch": "a",
                       "head": "ordinal", "labels": ["normal", "mild"], "weights": "g",
                       "input": {"size": 32},
                       "crop": {"margin": 0.3, "regions": ["central canal"]}},
            "det": {"kind": "detector", "role": "mri_region_detector", "arch": "a",
                    "labels": ["central canal"], "weights": "d", "input": {"size": 64},
                    "thresholds": {"conf": 0.4}}}})

    class _Pack:
        def model_spec(self, key):
            return manifest.models[key]

        def detector(self, key, device="cpu"):
            return _Detector([[Box(5, 5, 20, 20, "central canal")]])

        def classifier(self, key, device="cpu"):
            return clf

    grader = RegionGrader.from_pack(_Pack(), "det", "grader")
    assert (grader.margin, grader.regions, grader.conf) == (0.3, frozenset({"central canal"}),
                                                            0.4)
    assert len(grader.predict([np.zeros((40, 40), np.float32)])[0]) == 1
