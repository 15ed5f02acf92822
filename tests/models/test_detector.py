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


def test_detections_do_not_depend_on_how_busy_the_machine_is(monkeypatch):
    """ultralytics' NMS stops after 2 s + 0.05 s/image and drops the rest; on a loaded machine
    (simulated: a clock that jumps 10 s on every reading) no box may be lost."""
    import time

    import torch

    from spinexr.models.yolo import build_detection_model, import_ultralytics

    import_ultralytics()
    torch.manual_seed(0)
    det = Detector(build_detection_model("yolo11n", ["Vertebra"]), ["Vertebra"], 96)
    images = [np.random.default_rng(i).random((96, 96), dtype=np.float32) for i in range(3)]
    calm = det.predict(images, conf=0.0, max_det=50)
    assert all(calm)
    clock = iter(range(0, 10**6, 10))
    monkeypatch.setattr(time, "time", lambda: float(next(clock)))
    busy = det.predict(images, conf=0.0, max_det=50)
    assert [[b.as_list() for b in x] for x in busy] == [[b.as_list() for b in x] for x in calm]


def test_tall_images_are_tiled_along_their_long_side():
    from spinexr.models.detector import tiles

    assert tiles((1000, 900), 2.0) == []                               # within the aspect
    assert tiles((2500, 900), 2.0) == [(0, 0, 900, 1800), (0, 700, 900, 2500)]
    wide = tiles((300, 1000), 2.0)
    assert wide[0] == (0, 0, 600, 300) and wide[-1][2] == 1000      # covers the long side


def test_tile_boxes_cut_by_an_inner_edge_are_dropped_and_merged_by_nms():
    from spinexr.models.detector import from_tile, merge_boxes
    from spinexr.types import Box

    tile = (0, 700, 900, 2500)
    inside = Box(10, 100, 60, 140, "V", score=0.9)
    cut = Box(10, 0.5, 60, 40, "V", score=0.9)                         # touches the top edge
    out = from_tile([inside, cut], tile, (2500, 900))
    assert [(b.y1, b.y2) for b in out] == [(800, 840)]
    twin = Box(11, 801, 61, 841, "V", score=0.8)
    assert merge_boxes(out + [twin], iou=0.6) == out                   # the weaker twin goes
    other = Box(11, 801, 61, 841, "W", score=0.8)
    assert len(merge_boxes(out + [other], iou=0.6)) == 2               # class-wise
