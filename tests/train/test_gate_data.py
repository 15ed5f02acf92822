"""The gate's data split and generated images."""
from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from spinexr.train.gate_data import film_items, off_spine_crop, radiograph_splits, read_manifest
from spinexr.train.vertebra_set import LabelledImage
from spinexr.types import Box


def test_radiograph_splits_follow_the_vertebrae_copies_and_are_stable(shared_data):
    root = shared_data / "radiographs"
    manifest = read_manifest(root)
    splits = radiograph_splits(manifest, shared_data / "vertebrae")
    assert set(splits) == {e["file"] for e in manifest}
    counts = Counter((e["label"], splits[e["file"]]) for e in manifest)
    assert counts[("other", "train")] >= 70 and counts[("other", "test")] >= 20
    copies = {e["file"]: e for e in manifest if e["same_image_in_shared_vertebrae"]}
    # the 416-px copy of 01-July-2019-20 lies in vertebrae/test: so does the raw film
    assert splits["spine/spinalhealth__01-July-2019-20.jpg"] == "test" and len(copies) == 9
    assert splits["spine/wm_sma__normal-cervical-spine-odontoid.jpg"] == "test"
    assert radiograph_splits(list(reversed(manifest)), shared_data / "vertebrae") == splits


def test_off_spine_crops_stay_clear_of_every_body():
    pixels = np.zeros((400, 400), np.float32)
    boxes = [Box(180, 20 + 40 * i, 220, 50 + 40 * i, "Vertebra") for i in range(8)]
    rng = np.random.default_rng(0)
    for _ in range(10):
        crop = off_spine_crop(pixels, boxes, rng)
        assert crop is not None and crop.shape[1] <= 0.45 * 400
    assert off_spine_crop(pixels, [Box(0, 0, 400, 30, "Vertebra")], rng) is None


def test_film_items_label_coned_views_spine_and_off_spine_crops_other():
    rng = np.random.default_rng(0)
    film = LabelledImage("f", rng.random((400, 400), dtype=np.float32),
                         tuple(Box(180, 20 + 40 * i, 220, 50 + 40 * i, "Vertebra")
                               for i in range(8)), "test")
    items = list(film_items([film], n_coned=3, n_off=4, seed=0))
    assert Counter((it.label, it.source) for it in items) == {(1, "real-coned"): 3,
                                                              (0, "off-spine"): 4}


@pytest.fixture
def shared_data():
    from pathlib import Path

    root = Path(__file__).resolve().parents[2].parent / "shared" / "data"
    if not (root / "radiographs" / "manifest.json").is_file():
        pytest.skip("../shared/data/radiographs is absent (it holds the gate's real images)")
    return root


def test_fusion_weights_give_every_source_the_same_say():
    from spinexr.train.gate import source_weights
    from spinexr.train.gate_data import GateItem

    px = np.zeros((2, 2), np.float32)
    items = ([GateItem("a", px, 1, "films")] * 6 + [GateItem("b", px, 1, "coned")] * 2
             + [GateItem("c", px, 0, "chest")] * 4)
    w = source_weights(items)
    assert w[:6].sum() == pytest.approx(w[6:8].sum())           # films vs coned views
    assert w[:8].sum() == pytest.approx(w[8:].sum())            # spine vs other
    assert w.sum() == pytest.approx(len(items))
