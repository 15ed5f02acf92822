"""Letterboxing maps boxes back exactly; a YOLO11 detector built offline runs end to end."""
from __future__ import annotations

import numpy as np
import pytest

from spinexr.models.detector import Detector, letterbox, unletterbox


@pytest.mark.parametrize("shape", [(300, 200), (200, 300), (640, 640), (50, 400)])
def test_letterbox_round_trip(shape):
    rng = np.random.default_rng(0)
    img = rng.random(shape, dtype=np.float32)
    out, lb = letterbox(img, 320)
    assert out.shape == (320, 320) and out.dtype == np.float32
    h, w = shape
    boxes = np.array([[0, 0, w, h], [w * 0.25, h * 0.5, w * 0.5, h * 0.75]])
    model_space = np.empty_like(boxes)
    model_space[:, [0, 2]] = boxes[:, [0, 2]] * lb.scale + lb.pad_x
    model_space[:, [1, 3]] = boxes[:, [1, 3]] * lb.scale + lb.pad_y
    np.testing.assert_allclose(unletterbox(model_space, lb), boxes, atol=1e-9)
    # the padding is ultralytics' grey, the image part is the image
    assert out[0, 0] == pytest.approx(114 / 255) or lb.pad_x == lb.pad_y == 0


def test_unletterbox_clips_to_the_image():
    _, lb = letterbox(np.zeros((100, 200), np.float32), 64)
    out = unletterbox(np.array([[-10.0, -10.0, 100.0, 100.0]]), lb)
    assert out[0, 0] == 0 and out[0, 1] == 0 and out[0, 2] == 200 and out[0, 3] == 100


def test_untrained_yolo11n_predicts_boxes_in_source_pixels(tmp_path, monkeypatch):
    monkeypatch.setenv("SPINEXR_CACHE", str(tmp_path))
    import torch

    from spinexr.models.yolo import build_detection_model

    torch.manual_seed(0)
    model = build_detection_model("yolo11n", ["Vertebra"])
    det = Detector(model, ["Vertebra"], 96)
    images = [np.random.default_rng(1).random((120, 80), dtype=np.float32),
              np.zeros((50, 70), np.float32)]
    out = det.predict(images, conf=0.0, max_det=20)
    assert len(out) == 2
    for boxes, img in zip(out, images):
        assert len(boxes) <= 20
        for b in boxes:
            assert b.label == "Vertebra" and 0 <= b.score <= 1
            assert b.is_valid(img.shape[1], img.shape[0])
