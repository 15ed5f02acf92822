"""The real Roboflow vertebrae set (../shared/data/vertebrae) read through load_yolo."""
from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from spinexr.data import detect_format, kfold_splits, load_dataset, load_yolo


@pytest.fixture(scope="module")
def vertebrae(vertebrae_dir):
    return load_yolo(vertebrae_dir)


def test_counts_match_the_dataset_readme(vertebrae, vertebrae_dir):
    assert detect_format(vertebrae_dir) == "yolo"
    assert vertebrae.problems == () and vertebrae.classes == ("Vertebrae",)
    assert Counter(s.split for s in vertebrae.samples) == {"train": 926, "valid": 262, "test": 141}
    # README.dataset.txt: 1329 images; data/README.md: 21,187 boxes (one of them a polygon line)
    assert len(vertebrae.samples) == 1329
    assert sum(len(s.boxes) for s in vertebrae.samples) == 21187


def test_all_boxes_inside_their_images(vertebrae):
    for s in vertebrae.samples:
        assert 400 <= max(s.width, s.height) <= 416  # Roboflow "fit within 416x416"
        assert s.boxes and s.label == 1
        assert all(b.is_valid(s.width, s.height) for b in s.boxes), s.image_id


def test_polygon_line_becomes_its_bounding_box(vertebrae):
    (s,) = [s for s in vertebrae.samples if s.image_id.startswith("N73--Lt-LAIS--F--14-Yrs_jpg")]
    box = s.boxes[12]  # line 13 of its label file is a closed 4-point polygon
    np.testing.assert_allclose(
        [box.x1 / s.width, box.y1 / s.height, box.x2 / s.width, box.y2 / s.height],
        [0.5565129469026548, 0.5190029783653846, 0.7095570398230089, 0.5667719086538462],
        atol=1e-6)


def test_groups_from_roboflow_names_keep_re_exports_together(vertebrae):
    by_id = {s.image_id: s for s in vertebrae.samples}
    assert by_id["11_jpg.rf.fe6c90a8cef7cb614c56b1d1388969ea"].group == "11"
    # "Image_032.jpg" was exported twice (train and valid: a near-duplicate radiograph)
    copies = [s for s in vertebrae.samples if s.group == "Image_032"]
    assert sorted(s.split for s in copies) == ["train", "valid"]
    groups = Counter(s.group for s in vertebrae.samples)
    assert len(groups) == 1329 - 8 and max(groups.values()) == 2
    for _, val in kfold_splits(vertebrae.samples, 5, seed=0):
        val_ids = set(val.tolist())
        assert sum(vertebrae.samples.index(c) in val_ids for c in copies) in (0, 2)


def test_one_split_through_load_dataset(vertebrae_dir):
    ds = load_dataset(vertebrae_dir, split="val")
    assert ds.splits == ("valid",) and len(ds) == 262
