"""generate_mri: determinism, region boxes, and grades that narrow the region."""
from __future__ import annotations

import numpy as np
import pytest
from phantom_helpers import box_pixels

from spinexr.errors import ConfigError
from spinexr.labels import STENOSIS_REGIONS
from spinexr.phantom import MriConfig, generate_mri, render_display


def _all(grade: int) -> dict[str, int]:
    return {r: grade for r in STENOSIS_REGIONS}


def test_same_seed_identical_different_seed_differs():
    a, b, c = (generate_mri(s, MriConfig(size=256)) for s in (5, 5, 6))
    np.testing.assert_array_equal(a.stored, b.stored)
    assert a.grades == b.grades and a.regions == b.regions
    assert not np.array_equal(a.stored, c.stored)


def test_image_contract_and_labels():
    for seed in range(12):
        ph = generate_mri(seed, MriConfig(size=None if seed < 2 else 256))
        n = ph.stored.shape[0]
        assert ph.stored.dtype == np.uint16 and ph.stored.shape == (n, n)
        assert 320 <= n <= 512 or n == 256
        assert int(ph.stored.max()) <= 4095 and ph.photometric == "MONOCHROME2"
        assert [b.label for b in ph.regions] == list(STENOSIS_REGIONS)
        assert all(b.is_valid(n, n) and b.level == ph.level for b in ph.regions)
        assert set(ph.grades) == set(STENOSIS_REGIONS)
        assert all(g in range(4) for g in ph.grades.values())
        assert ph.abnormal == any(ph.grades.values())
        assert 0.25 < ph.spacing_mm[0] < 0.9


def test_left_is_on_the_image_right():
    ph = generate_mri(1, MriConfig(size=256))
    box = {b.label: b for b in ph.regions}
    assert box["left neural foramen"].center[0] > box["central canal"].center[0]
    assert box["right neural foramen"].center[0] < box["central canal"].center[0]
    assert box["left lateral recess"].center[0] > box["central canal"].center[0]


def test_boxes_do_not_depend_on_grade():
    a = generate_mri(2, MriConfig(size=256, grades=_all(0)))
    b = generate_mri(2, MriConfig(size=256, grades=_all(3)))
    assert a.regions == b.regions


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_central_canal_csf_shrinks_with_grade(seed):
    areas = []
    for g in range(4):
        ph = generate_mri(seed, MriConfig(size=384, grades={"central canal": g}, noise=0.0))
        box = next(b for b in ph.regions if b.label == "central canal")
        disp = render_display(ph)
        if g == 0:
            thr = 0.88 * float(box_pixels(disp, box).max())
        areas.append(int((box_pixels(disp, box) > thr).sum()))
    assert all(a > b for a, b in zip(areas, areas[1:])), areas
    assert areas[3] < 0.35 * areas[0], areas


@pytest.mark.parametrize("region", ["left lateral recess", "right neural foramen"])
def test_bright_space_shrinks_with_grade(region):
    areas = []
    for g in range(4):
        ph = generate_mri(3, MriConfig(size=384, grades={region: g}, noise=0.0))
        box = next(b for b in ph.regions if b.label == region)
        disp = render_display(ph)
        if g == 0:
            thr = 0.8 * float(np.percentile(box_pixels(disp, box), 98))
        areas.append(int((box_pixels(disp, box) > thr).sum()))
    assert all(a > b for a, b in zip(areas, areas[1:])), areas


def test_abnormal_rate_zero_is_all_normal():
    for seed in range(5):
        assert not generate_mri(seed, MriConfig(size=256, abnormal_rate=0.0)).abnormal


@pytest.mark.parametrize("kw,match", [({"size": 10}, "size"), ({"grades": {"canal": 1}}, "grades"),
                                      ({"grades": {"central canal": 4}}, "grades"),
                                      ({"level": "L6-S1"}, "level")])
def test_bad_config_is_refused(kw, match):
    with pytest.raises(ConfigError, match=match):
        MriConfig(**kw)


def test_vindr_layout_writes_mr_dicoms_with_plain_ground_truth(tmp_path):
    """``spinexr phantom --task mri --layout vindr``: MR Image Storage files the MRI reader
    takes, and one CSV row per region with its level, grade and box."""
    import csv

    from spinexr.io import read_radiograph
    from spinexr.io.policy import MRI_POLICY
    from spinexr.labels import STENOSIS_GRADES
    from spinexr.phantom.dataset import PhantomSet, image_seed, write_phantom_dataset

    spec = PhantomSet(n=2, seed=4, layout="vindr", task="mri", size=(224, 224), split="test",
                      transfer_syntax="rle")
    assert write_phantom_dataset(tmp_path, spec, progress=False) == 2
    rows = list(csv.DictReader((tmp_path / "annotations" / "test.csv").open()))
    for i in range(2):
        path = tmp_path / "test_images" / f"phantom-mri-4-{i:05d}.dicom"
        image = read_radiograph(path, policy=MRI_POLICY)
        ph = generate_mri(image_seed(4, i), MriConfig(size=224))
        assert image.meta["modality"] == "MR" and image.meta["sop_class_name"] == "MR Image Storage"
        assert image.source.sop_class_uid == "1.2.840.10008.5.1.4.1.1.4"
        assert image.spacing_mm == pytest.approx(ph.spacing_mm, rel=1e-5)
        assert image.meta["series_description"] == f"AX T2 FSE {ph.level}"
        assert image.meta["body_part_examined"] == "LSPINE"
        mine = [r for r in rows if r["image_id"] == path.stem]
        assert [r["region"] for r in mine] == list(STENOSIS_REGIONS)
        for r, box in zip(mine, ph.regions):
            assert r["study_id"] == image.source.study_instance_uid and r["level"] == ph.level
            assert r["grade"] == STENOSIS_GRADES[ph.grades[box.label]]
            assert [float(r[k]) for k in ("xmin", "ymin", "xmax", "ymax")] == pytest.approx(
                box.as_list(), abs=0.006)


def test_vindr_mri_writer_needs_a_grade_per_region(tmp_path):
    from pathlib import Path

    from spinexr.data.vindr import VindrMriWriter
    from spinexr.labels import STENOSIS_GRADES
    from spinexr.types import Box, Sample

    box = Box(1.0, 1.0, 5.0, 5.0, "central canal")
    sample = Sample("s0", Path("s0"), "study", boxes=(box,), grades={"left neural foramen": 1})
    with VindrMriWriter(tmp_path, classes=STENOSIS_REGIONS, grades=STENOSIS_GRADES) as w:
        with pytest.raises(ConfigError, match="region 'central canal' has grade None"):
            w.add(sample, b"DICM", ".dicom")
