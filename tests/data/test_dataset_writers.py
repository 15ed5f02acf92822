"""open_writer for every layout: round trips, determinism, refusing to overwrite, bad input."""
from __future__ import annotations

import struct
import tempfile
import zlib
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from spinexr.data import detect_format, load_dataset, open_writer
from spinexr.errors import ConfigError, DatasetError
from spinexr.labels import LESION_CLASSES
from spinexr.types import Box, Sample

W, H = 40, 30


def _samples() -> list[Sample]:
    """Four images in three studies; one normal, one with the misspelt-in-VinDr class."""
    def s(image_id, group, boxes, label):
        return Sample(image_id=image_id, image_path=Path("ignored"), group=group,
                      boxes=tuple(boxes), label=label, width=W, height=H)

    return [
        s("img1", "studyA", [Box(1.25, 2.5, 10.75, 12.0, "Osteophytes"),
                             Box(0.0, 0.0, 40.0, 30.0, "Spondylolisthesis")], 1),
        s("img2", "studyA", [], 0),
        s("1.2.840.99", "studyB", [Box(5.333, 6.667, 7.111, 8.999, "Other lesions")], 1),
        s("img4", "studyC", [Box(3.0, 4.0, 20.0, 25.0, "Osteophytes")], 1),
    ]


def _write(root: Path, layout: str, samples, png_bytes, dicom_bytes, split="train",
           classes=LESION_CLASSES) -> list[Path]:
    paths = []
    with open_writer(root, layout, split=split, classes=classes) as w:
        for i, sample in enumerate(samples):
            if layout == "vindr":
                paths.append(w.add(sample, dicom_bytes(W, H, i + 1), ".dicom"))
            else:
                paths.append(w.add(sample, png_bytes(W, H), ".png"))
    return paths


def _assert_same_boxes(got, want, atol):
    assert [b.label for b in got] == [b.label for b in want]
    np.testing.assert_allclose([b.as_list() for b in got], [b.as_list() for b in want],
                               atol=atol) if want else None


@pytest.mark.parametrize("layout,atol", [("vindr", 0.005), ("coco", 0.01), ("yolo", 1e-4)])
def test_detection_round_trip(tmp_path, layout, atol, png_bytes, dicom_bytes):
    want = _samples()
    paths = _write(tmp_path, layout, want, png_bytes, dicom_bytes)
    assert all(p.is_file() and p.is_relative_to(tmp_path) for p in paths)
    ds = load_dataset(tmp_path)
    assert ds.format == layout and ds.problems == ()
    assert set(LESION_CLASSES) <= set(ds.classes)
    got = {s.image_id: s for s in ds.samples}
    assert sorted(got) == sorted(s.image_id for s in want)
    for w in want:
        g = got[w.image_id]
        assert (g.group, g.label, g.split) == (w.group, w.label, "train")
        assert (g.width, g.height) == (W, H)
        assert g.image_path == paths[want.index(w)]
        _assert_same_boxes(g.boxes, w.boxes, atol)


def test_folders_round_trip(tmp_path, png_bytes):
    classes = ("normal", "abnormal")
    want = _samples()
    paths = _write(tmp_path, "folders", want, png_bytes, None, classes=classes)
    assert paths[0] == tmp_path / "train" / "abnormal" / "img1.png"
    ds = load_dataset(tmp_path)
    assert ds.format == "folders" and ds.classes == classes and ds.problems == ()
    got = {s.image_id: (s.group, s.label, s.split) for s in ds.samples}
    assert got == {s.image_id: (s.group, s.label, "train") for s in want}


def test_coco_round_trips_vertebrae_grades_and_levels(tmp_path, png_bytes):
    sample = Sample("v1", Path("x"), "p1", boxes=(Box(1, 2, 3, 4, "Osteophytes", level="L4"),),
                    label=1, vertebrae=(Box(0, 0, 10, 5, "Vertebra", level="L3"),),
                    grades={"degeneration": 2})
    with open_writer(tmp_path, "coco", classes=LESION_CLASSES) as w:
        w.add(sample, png_bytes(W, H), ".png")
    (got,) = load_dataset(tmp_path, "coco").samples
    assert got.boxes == sample.boxes and got.vertebrae == sample.vertebrae
    assert got.grades == {"degeneration": 2} and (got.width, got.height) == (W, H)


@pytest.mark.parametrize("layout", ["vindr", "coco", "yolo", "folders"])
def test_output_is_byte_identical(tmp_path, layout, png_bytes, dicom_bytes):
    classes = ("normal", "abnormal") if layout == "folders" else LESION_CLASSES
    trees = []
    for name in ("a", "b"):
        _write(tmp_path / name, layout, _samples(), png_bytes, dicom_bytes, classes=classes)
        root = tmp_path / name
        trees.append({p.relative_to(root): p.read_bytes()
                      for p in sorted(root.rglob("*")) if p.is_file()})
    assert trees[0] == trees[1]
    assert not any(p.name.endswith(".part") for p in trees[0])


@pytest.mark.parametrize("layout", ["vindr", "coco", "yolo", "folders"])
def test_refuses_to_overwrite_a_split_but_adds_another(tmp_path, layout, png_bytes, dicom_bytes):
    classes = ("normal", "abnormal") if layout == "folders" else LESION_CLASSES
    samples = _samples()
    _write(tmp_path, layout, samples[:2], png_bytes, dicom_bytes, classes=classes)
    with pytest.raises(DatasetError, match="already exists"):
        open_writer(tmp_path, layout, split="train", classes=classes)
    _write(tmp_path, layout, samples[2:], png_bytes, dicom_bytes, split="test", classes=classes)
    ds = load_dataset(tmp_path, layout)
    assert {s.image_id: s.split for s in ds.samples} == {
        "img1": "train", "img2": "train", "1.2.840.99": "test", "img4": "test"}


def test_yolo_data_yaml_lists_every_split(tmp_path, png_bytes):
    _write(tmp_path, "yolo", _samples()[:2], png_bytes, None)
    _write(tmp_path, "yolo", _samples()[2:], png_bytes, None, split="valid")
    text = (tmp_path / "data.yaml").read_text()
    assert "train: train/images" in text and "val: valid/images" in text and "nc: 7" in text
    assert (tmp_path / "groups.csv").read_text().splitlines() == [
        "image_id,group", "1.2.840.99,studyB", "img1,studyA", "img2,studyA", "img4,studyC"]
    assert load_dataset(tmp_path, split="val").split("valid")[0].image_id == "1.2.840.99"


def test_writing_other_classes_into_an_existing_tree_is_refused(tmp_path, png_bytes):
    _write(tmp_path, "yolo", _samples()[:1], png_bytes, None)
    with pytest.raises(DatasetError, match="holds names"):
        open_writer(tmp_path, "yolo", split="test", classes=LESION_CLASSES[:6] + ("X",))
    _write(tmp_path / "f", "folders", _samples()[:1], png_bytes, None, classes=("n", "a"))
    with pytest.raises(DatasetError, match="holds classes"):
        open_writer(tmp_path / "f", "folders", split="test", classes=("a", "n"))
    assert not (tmp_path / "test").exists() and not (tmp_path / "f" / "test").exists()


def test_vindr_csv_uses_published_spelling_and_no_finding_rows(tmp_path, png_bytes, dicom_bytes):
    _write(tmp_path, "vindr", _samples(), png_bytes, dicom_bytes)
    lines = (tmp_path / "annotations" / "train.csv").read_text().splitlines()
    assert lines[0] == "study_id,series_id,image_id,rad_id,lesion_type,xmin,ymin,xmax,ymax"
    assert lines[1].startswith("studyA,")
    assert lines[1].endswith(",img1,R1,Osteophytes,1.25,2.50,10.75,12.00")
    assert lines[2].endswith(",Spondylolysthesis,0.00,0.00,40.00,30.00")
    assert lines[3].endswith(",img2,R1,No finding,,,,")
    assert (tmp_path / "train_images" / "img2.dicom").is_file()


def test_an_exception_leaves_no_annotation_file(tmp_path, png_bytes):
    with pytest.raises(RuntimeError):
        with open_writer(tmp_path, "coco", classes=LESION_CLASSES) as w:
            w.add(_samples()[0], png_bytes(W, H), ".png")
            raise RuntimeError("boom")
    assert not (tmp_path / "annotations").exists()
    with pytest.raises(ConfigError, match="closed"):
        w.add(_samples()[1], png_bytes(W, H), ".png")


def test_size_comes_from_the_image_bytes_when_the_sample_has_none(tmp_path, png_bytes):
    sample = Sample("s", Path("x"), "g", boxes=(Box(1, 1, 5, 5, "Osteophytes"),), label=1)
    with open_writer(tmp_path, "yolo", classes=LESION_CLASSES) as w:
        w.add(sample, png_bytes(50, 20), ".png")
    assert (tmp_path / "train" / "labels" / "s.txt").read_text() == \
        "0 0.060000 0.150000 0.080000 0.200000\n"


@pytest.mark.parametrize("layout,kwargs,sample,suffix,match", [
    ("coco", {}, Sample("a/b", Path("x"), "g"), ".png", "file name"),
    ("coco", {}, Sample("a", Path("x"), "g", boxes=(Box(0, 0, 1, 1, "Nope"),)), ".png",
     "not in the writer's classes"),
    ("coco", {}, Sample("a", Path("x"), "g"), "png", "suffix"),
    ("vindr", {}, Sample("a", Path("x"), "g"), ".png", "DICOM"),
    ("vindr", {}, Sample("a", Path("x"), "g", label=1), ".dicom", "derives the label"),
    ("folders", {"classes": ("n", "a")}, Sample("a", Path("x"), "g", label=2), ".png",
     "class index"),
    ("folders", {"classes": ("n", "a")}, Sample("a", Path("x"), "g"), ".png", "class index"),
])
def test_writer_refuses_what_the_layout_cannot_hold(tmp_path, layout, kwargs, sample, suffix,
                                                    match, png_bytes):
    classes = kwargs.get("classes", LESION_CLASSES)
    with open_writer(tmp_path, layout, classes=classes) as w:
        with pytest.raises(ConfigError, match=match):
            w.add(sample, png_bytes(W, H), suffix)


def test_duplicate_ids_and_bad_arguments(tmp_path, png_bytes):
    with open_writer(tmp_path, "coco", classes=LESION_CLASSES) as w:
        w.add(_samples()[1], png_bytes(W, H), ".png")
        with pytest.raises(ConfigError, match="already added"):
            w.add(_samples()[1], png_bytes(W, H), ".png")
    with pytest.raises(ConfigError, match="layout 'voc'"):
        open_writer(tmp_path, "voc", classes=LESION_CLASSES)
    with pytest.raises(ConfigError, match="split"):
        open_writer(tmp_path, "coco", split="../x", classes=LESION_CLASSES)
    with pytest.raises(ConfigError, match="distinct"):
        open_writer(tmp_path, "coco", split="t", classes=("a", "a"))
    with pytest.raises(ConfigError, match="lesion classes only"):
        open_writer(tmp_path, "vindr", classes=("Vertebra",))


def test_detect_format_after_each_writer(tmp_path, png_bytes, dicom_bytes):
    for layout in ("vindr", "coco", "yolo", "folders"):
        classes = ("normal", "abnormal") if layout == "folders" else LESION_CLASSES
        _write(tmp_path / layout, layout, _samples(), png_bytes, dicom_bytes, classes=classes)
        assert detect_format(tmp_path / layout) == layout


def _png_header(width: int, height: int) -> bytes:
    """A PNG with IHDR and an empty IDAT: enough for a header read, no pixels to decode."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(
            ">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", b"")


_sizes = st.tuples(st.integers(1, 5000), st.integers(1, 5000))


@st.composite
def _image_with_boxes(draw):
    width, height = draw(_sizes)
    boxes = []
    for _ in range(draw(st.integers(0, 4))):
        x1 = draw(st.floats(0, width - 0.05, allow_nan=False))
        y1 = draw(st.floats(0, height - 0.05, allow_nan=False))
        x2 = draw(st.floats(x1 + 0.05, width, allow_nan=False))
        y2 = draw(st.floats(y1 + 0.05, height, allow_nan=False))
        boxes.append(Box(x1, y1, x2, y2, draw(st.sampled_from(LESION_CLASSES))))
    return width, height, tuple(boxes)


@settings(max_examples=40, deadline=None)
@given(image=_image_with_boxes(), layout=st.sampled_from(["vindr", "coco", "yolo"]))
def test_any_valid_box_survives_a_round_trip(image, layout):
    width, height, boxes = image
    sample = Sample("x", Path("ignored"), "g", boxes=boxes, label=int(bool(boxes)),
                    width=width, height=height)
    # the YOLO reader takes the size from the image header: give it a header-only PNG
    image, suffix = (b"", ".dicom") if layout == "vindr" else (_png_header(width, height), ".png")
    with tempfile.TemporaryDirectory() as tmp:
        with open_writer(tmp, layout, classes=LESION_CLASSES) as w:
            w.add(sample, image, suffix)
        (got,) = load_dataset(tmp, layout, check_files=False).samples
    tol = {"vindr": 0.005, "coco": 0.0051, "yolo": 1e-6 * max(width, height)}[layout]
    _assert_same_boxes(got.boxes, boxes, tol + 1e-9)
    assert all(b.x1 < b.x2 and b.y1 < b.y2 for b in got.boxes)
