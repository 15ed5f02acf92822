"""spinexr phantom: deterministic dataset trees in every layout."""
from __future__ import annotations

import csv
from pathlib import Path

import pydicom
import pytest

from spinexr.cli import main
from spinexr.phantom.dataset import image_seed


def _tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file()}


def _run(out: Path, *extra: str) -> int:
    return main(["phantom", "--n", "3", "--seed", "5", "--out", str(out), "--size", "256", "224",
                 "--quiet", *extra])


@pytest.mark.parametrize("extra", [
    (), ("--transfer-syntax", "rle"), ("--layout", "coco"), ("--layout", "yolo"),
    ("--layout", "folders", "--classes", "degeneration"),
    ("--task", "mri", "--layout", "folders"), ("--task", "mri", "--layout", "coco"),
    ("--task", "mri", "--layout", "vindr"),
])
def test_same_arguments_give_byte_identical_trees(tmp_path, extra):
    assert _run(tmp_path / "a", *extra) == 0
    assert _run(tmp_path / "b", *extra) == 0
    a, b = _tree(tmp_path / "a"), _tree(tmp_path / "b")
    assert a and a == b


def test_vindr_layout_reads_back(tmp_path, capsys):
    assert _run(tmp_path / "ds", "--transfer-syntax", "jpegls", "--abnormal-rate", "1") == 0
    assert "wrote 3 xray image(s)" in capsys.readouterr().out
    files = sorted((tmp_path / "ds" / "train_images").glob("*.dicom"))
    assert [f.stem for f in files] == [f"phantom-5-{i:05d}" for i in range(3)]
    rows = list(csv.DictReader((tmp_path / "ds" / "annotations" / "train.csv").open()))
    assert {r["image_id"] for r in rows} == {f.stem for f in files}
    assert all(r["lesion_type"] != "No finding" for r in rows)
    ds = pydicom.dcmread(files[0])
    assert ds.file_meta.TransferSyntaxUID == pydicom.uid.JPEGLSLossless
    assert (ds.Rows, ds.Columns) == (256, 224) and ds.pixel_array.shape == (256, 224)
    assert {r["study_id"] for r in rows if r["image_id"] == files[0].stem} == {
        ds.StudyInstanceUID}


def test_image_i_does_not_depend_on_n(tmp_path):
    main(["phantom", "--n", "1", "--seed", "5", "--out", str(tmp_path / "one"), "--size", "256",
          "224", "--quiet"])
    _run(tmp_path / "three")
    name = "train_images/phantom-5-00000.dicom"
    assert _tree(tmp_path / "one")[name] == _tree(tmp_path / "three")[name]


def test_image_seeds_are_distinct_and_stable():
    seeds = [image_seed(5, i) for i in range(100)]
    assert len(set(seeds)) == 100 and seeds == [image_seed(5, i) for i in range(100)]
    assert image_seed(5, 0) != image_seed(6, 0)


def test_mri_folders_has_one_crop_per_region(tmp_path):
    assert main(["phantom", "--n", "2", "--seed", "1", "--out", str(tmp_path), "--task", "mri",
                 "--layout", "folders", "--quiet"]) == 0
    crops = list(tmp_path.rglob("*.png"))
    assert len(crops) == 10
    assert {p.parent.name for p in crops} <= {"normal", "mild", "moderate", "severe"}


def test_mri_folder_crops_are_the_region_graders_crops(tmp_path):
    """Training crops must be made exactly as RegionGrader makes them at inference."""
    import numpy as np
    from PIL import Image

    from spinexr.models.grading import crop_region
    from spinexr.phantom import MriConfig, generate_mri, render_display

    assert main(["phantom", "--n", "1", "--seed", "3", "--out", str(tmp_path), "--task", "mri",
                 "--layout", "folders", "--quiet"]) == 0
    ph = generate_mri(image_seed(3, 0), MriConfig())
    display = render_display(ph)
    for box in ph.regions:
        name = box.label.replace(" ", "_")
        (path,) = tmp_path.rglob(f"phantom-mri-3-00000-{name}.png")
        expected = np.rint(crop_region(display, box) * 255).astype(np.uint8)
        np.testing.assert_array_equal(np.asarray(Image.open(path)), expected)


@pytest.mark.parametrize("args,msg", [
    (["--n", "0"], "n = 0: give at least 1"),
    (["--classes", "cervical", "--layout", "folders", "--region", "lumbar"], "cervical"),
])
def test_bad_arguments_exit_2(tmp_path, capsys, args, msg):
    argv = ["phantom", "--n", "1", "--out", str(tmp_path / "x"), "--quiet"] + args
    if "--n" in args:
        argv = ["phantom", "--out", str(tmp_path / "x"), "--quiet"] + args
    assert main(argv) == 2
    assert msg in capsys.readouterr().err


def test_coco_layout_with_a_transfer_syntax_writes_dicoms_that_keep_grades(tmp_path):
    from spinexr.data import load_dataset

    assert _run(tmp_path / "ds", "--layout", "coco", "--transfer-syntax", "j2k",
                "--abnormal-rate", "1") == 0
    samples = load_dataset(tmp_path / "ds", "coco", split="train").samples
    assert [s.image_path.suffix for s in samples] == [".dicom"] * 3
    ds = pydicom.dcmread(samples[0].image_path)
    assert ds.file_meta.TransferSyntaxUID == pydicom.uid.JPEG2000Lossless
    assert ds.pixel_array.shape == (256, 224)
    assert all(s.vertebrae and set(s.grades) >= {"degeneration", "cervical"} for s in samples)
    assert any(s.boxes for s in samples)
    # without a transfer syntax the coco layout stays PNG
    assert _run(tmp_path / "png", "--layout", "coco") == 0
    assert {p.suffix for p in (tmp_path / "png" / "images" / "train").iterdir()} == {".png"}


def test_a_transfer_syntax_for_a_png_layout_is_one_error_line(tmp_path, capsys):
    assert _run(tmp_path / "ds", "--layout", "yolo", "--transfer-syntax", "j2k") == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "vindr and coco layouts only" in err[0]
    assert not (tmp_path / "ds").exists()


def test_cervical_injury_rate_sets_how_often_cervical_images_are_injured(tmp_path):
    from spinexr.data import load_dataset

    def injured(rate: str) -> int:
        out = tmp_path / rate
        assert main(["phantom", "--n", "12", "--seed", "3", "--out", str(out), "--size", "256",
                     "224", "--layout", "coco", "--region", "cervical", "--abnormal-rate", "1",
                     "--cervical-injury-rate", rate, "--quiet"]) == 0
        return sum(s.grades["cervical"] > 0 for s in load_dataset(out, "coco").samples)

    assert injured("1") == 12 and injured("0") == 0
