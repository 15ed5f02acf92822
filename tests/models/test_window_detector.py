"""Window lesion detection with stand-in detectors: the tiles that are cut, the views that are
run, and the boxes mapped back to the image (inner-edge cuts dropped, views merged by NMS)."""
from __future__ import annotations

import numpy as np
import pytest

from spinexr.labels import VERTEBRA_CLASS
from spinexr.models.spine_crops import CropSpec, crop, window_pixels
from spinexr.models.window_detector import WindowDetector, image_views, window_tile
from spinexr.types import Box

FLAT = CropSpec(width=2.0, height=2.0, stretch=False)


def _body(x1, y1, x2, y2):
    return Box(x1, y1, x2, y2, VERTEBRA_CLASS, score=0.9)


def _coords(boxes):
    return sorted((b.label, round(b.x1, 2), round(b.y1, 2), round(b.x2, 2), round(b.y2, 2))
                  for b in boxes)


class _Vertebrae:
    """Stand-in vertebra detector: the same bodies in every image; counts images and confs."""

    def __init__(self, bodies):
        self.bodies, self.calls, self.confs = bodies, 0, []

    def predict(self, images, conf=0.25, **_):
        self.calls += len(images)
        self.confs.append(conf)
        return [list(self.bodies) for _ in images]


class _Inner:
    """Stand-in inner detector with the Detector interface; records the views it is given.
    ``find(view)`` gives the boxes of one view in view pixels."""

    names, imgsz, backend = ("mid", "edge", "lesion"), 64, "torch"

    def __init__(self, find):
        self.find, self.views, self.kwargs = find, [], []
        self.model = object()

    def predict(self, images, conf=0.25, iou=0.6, max_det=300):
        self.views += [np.array(im) for im in images]
        self.kwargs.append({"conf": conf, "iou": iou, "max_det": max_det})
        return [self.find(im) for im in images]


def _mid_and_right_edge(view):
    """A box in the middle of every view, and one touching the view's right edge."""
    h, w = view.shape[:2]
    return [Box(w / 4, h / 4, 3 * w / 4, 3 * h / 4, "mid", score=0.9),
            Box(w - 6, h / 2 - 3, w, h / 2 + 3, "edge", score=0.8)]


def _bright(view):
    """The bounds of the view's bright pixels (one "lesion"), if any."""
    ys, xs = np.nonzero(view > 0.5)
    if not len(ys):
        return []
    return [Box(float(xs.min()), float(ys.min()), float(xs.max() + 1), float(ys.max() + 1),
                "lesion", score=0.9)]


@pytest.mark.parametrize("window", [
    Box(3.2, 4.7, 20.1, 30.9, "window"),       # fractional: floor / ceil
    Box(0.0, 0.0, 40.0, 50.0, "window"),       # the whole image
    Box(-2.5, -1.5, 10.5, 12.5, "window"),     # over the top-left corner
    Box(30.4, 40.6, 45.0, 55.0, "window"),     # over the bottom-right corner
])
def test_window_tile_is_what_crop_cuts(window):
    pixels = np.arange(50 * 40, dtype=np.float32).reshape(50, 40)
    x0, y0, x1, y1 = window_tile(window, pixels.shape)
    assert 0 <= x0 < x1 <= 40 and 0 <= y0 < y1 <= 50
    cut = crop(pixels, window)
    assert cut.shape == (y1 - y0, x1 - x0)
    np.testing.assert_array_equal(cut, pixels[y0:y1, x0:x1])


def test_image_views_add_the_whole_image_only_when_asked_or_without_windows():
    wins = [Box(10.5, 20.2, 40.7, 60.0, "window"), Box(5.0, 50.0, 35.0, 90.0, "window")]
    tiles = [(10, 20, 41, 60), (5, 50, 35, 90)]
    assert image_views((100, 80), wins, whole=False) == tiles
    assert image_views((100, 80), wins, whole=True) == tiles + [(0, 0, 80, 100)]
    assert image_views((100, 80), [], whole=False) == [(0, 0, 80, 100)]
    sliver = Box(10.0, 10.0, 11.0, 30.0, "window")          # one pixel wide: no view
    assert image_views((100, 80), [sliver], whole=False) == [(0, 0, 80, 100)]
    assert image_views((100, 80), [sliver] + wins[:1], whole=False) == tiles[:1]


@pytest.mark.parametrize("whole", [False, True])
def test_boxes_come_back_in_image_pixels_without_inner_edge_cuts(whole):
    img = np.full((300, 120), 0.3, np.float32)
    # windows (spec 1.5 x 1.6): (30, 92.5, 90, 132.5) inside the image, and
    # (82.5, 194, 120, 226) clipped by the image's right edge
    bodies = [_body(40, 100, 80, 125), _body(90, 200, 120, 220)]
    inner = _Inner(_mid_and_right_edge)
    det = WindowDetector(inner, _Vertebrae([]), CropSpec(width=1.5, height=1.6, whole=whole))
    (out,) = det.predict([img], conf=0.3, iou=0.5, max_det=50, vertebrae=[bodies])
    assert inner.kwargs == [{"conf": 0.3, "iou": 0.5, "max_det": 50}]
    assert [v.shape for v in inner.views] == [(41, 60), (32, 38)] + [(300, 120)] * whole
    want = [("mid", 45.0, 102.25, 75.0, 122.75),     # tile (30, 92, 90, 133); its "edge" box
            ("mid", 91.5, 202.0, 110.5, 218.0),      # touches the inner edge x = 90: dropped
            ("edge", 114.0, 207.0, 120.0, 213.0)]    # tile (82, 194, 120, 226): image edge
    if whole:
        want += [("mid", 30.0, 75.0, 90.0, 225.0), ("edge", 114.0, 147.0, 120.0, 153.0)]
    assert _coords(out) == sorted(want)


def test_a_lesion_seen_by_two_windows_is_one_box_and_an_inner_cut_is_dropped():
    bodies = [_body(35, 60, 55, 80), _body(35, 80, 55, 100)]   # windows (25, 50, 65, 90)
    both = np.zeros((200, 100), np.float32)                      # and (25, 70, 65, 110)
    both[75:85, 40:50] = 1.0                                     # inside both windows
    cut = np.zeros((200, 100), np.float32)
    cut[86:96, 40:50] = 1.0                   # cut by the first window's bottom edge (y = 90)
    inner = _Inner(_bright)
    det = WindowDetector(inner, _Vertebrae([]), FLAT)
    seen_twice, seen_once = det.predict([both, cut], vertebrae=[bodies, bodies])
    assert len(inner.views) == 4                                 # two windows per image
    assert _coords(seen_twice) == [("lesion", 40.0, 75.0, 50.0, 85.0)]
    assert _coords(seen_once) == [("lesion", 40.0, 86.0, 50.0, 96.0)]
    # the first window alone sees the cut lesion only at its edge: nothing is kept ...
    assert det.predict([cut], vertebrae=[bodies[:1]]) == [[]]
    # ... unless the whole image is a view too
    whole = WindowDetector(_Inner(_bright), _Vertebrae([]), CropSpec(width=2, height=2,
                                                                     stretch=False, whole=True))
    assert _coords(whole.predict([cut], vertebrae=[bodies[:1]])[0]) == \
        [("lesion", 40.0, 86.0, 50.0, 96.0)]


def test_given_vertebrae_skip_the_vertebra_detector():
    img = np.zeros((200, 100), np.float32)
    img[75:85, 40:50] = 1.0
    column = [_body(35, 20 + 20 * i, 55, 40 + 20 * i) for i in range(6)]
    vert = _Vertebrae(column)
    det = WindowDetector(_Inner(_bright), vert, CropSpec(width=2, height=2, conf=0.4,
                                                         stretch=False))
    given = det.predict([img, img], conf=0.1, vertebrae=[column, column])
    assert vert.calls == 0
    found = det.predict([img, img], conf=0.1)
    assert vert.calls == 2 and vert.confs == [0.4]       # at the windows' conf, not the lesions'
    assert _coords(found[0]) == _coords(given[0]) == [("lesion", 40.0, 75.0, 50.0, 85.0)]


def test_no_images_and_no_windows():
    inner, vert = _Inner(_bright), _Vertebrae([_body(35, 60, 55, 80)])
    det = WindowDetector(inner, vert, FLAT)
    assert det.predict([]) == []
    assert inner.views == [] and vert.calls == 0
    img = np.zeros((120, 90), np.float32)
    img[0:10, 80:90] = 1.0                               # in the corner, outside every window
    assert _coords(det.predict([img], vertebrae=[[]])[0]) == [("lesion", 80.0, 0.0, 90.0, 10.0)]
    assert [v.shape for v in inner.views] == [(120, 90)]  # no window: the whole image


@pytest.mark.parametrize("stretch", [False, True])
def test_views_are_stretched_like_windows(stretch):
    rng = np.random.default_rng(0)
    img = (0.2 + 0.3 * rng.random((160, 100))).astype(np.float32)
    bodies = [_body(30, 40, 60, 60)]
    spec = CropSpec(width=2.0, height=2.0, stretch=stretch, whole=True)
    inner = _Inner(lambda view: [])
    WindowDetector(inner, _Vertebrae([]), spec).predict([img], vertebrae=[bodies])
    window, full = inner.views
    np.testing.assert_array_equal(window, window_pixels(img, Box(15, 30, 75, 70, "w"), spec))
    if stretch:
        assert window.dtype == np.float32 and full.dtype == np.float32
        for view in (window, full):
            assert view.min() == 0.0 and view.max() == 1.0
    else:
        np.testing.assert_array_equal(window, img[30:70, 15:75])
        np.testing.assert_array_equal(full, img)


def test_it_looks_like_its_inner_detector():
    inner = _Inner(_bright)
    det = WindowDetector(inner, _Vertebrae([]), FLAT)
    assert (det.names, det.imgsz, det.backend, det.model) == \
        (inner.names, inner.imgsz, inner.backend, inner.model)
