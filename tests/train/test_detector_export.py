"""Detector training data: export to ultralytics' layout round-trips; copy-paste adds rare lesions."""
from __future__ import annotations

import io

import pytest

from spinexr.data import load_dataset, open_writer
from spinexr.labels import LESION_CLASSES
from spinexr.phantom import XrayConfig, generate_xray, xray_to_dicom
from spinexr.train.detector import copy_paste_samples, export_yolo
from spinexr.types import Sample


@pytest.fixture(scope="module")
def vindr_dir(tmp_path_factory):
    """Six small phantom DICOMs in the VinDr layout, two of them with a vertebral collapse."""
    root = tmp_path_factory.mktemp("vindr")
    with open_writer(root, "vindr", split="train", classes=LESION_CLASSES) as w:
        for seed in range(6):
            force = ("Vertebral collapse",) if seed < 2 else ("Osteophytes",)
            ph = generate_xray(seed, XrayConfig(size=(320, 256), region="lumbar", view="lateral",
                                                force_lesions=force))
            buf = io.BytesIO()
            xray_to_dicom(ph).save_as(buf, enforce_file_format=True)
            sample = Sample(image_id=f"img{seed}", image_path=root, group=f"p{seed}",
                            boxes=ph.lesions, label=int(bool(ph.lesions)))
            w.add(sample, buf.getvalue(), ".dicom")
    return root


def test_export_round_trips_through_the_yolo_reader(vindr_dir, tmp_path):
    samples = load_dataset(vindr_dir, "vindr", split="train").samples
    export_yolo({"train": samples[:4], "val": samples[4:]}, list(LESION_CLASSES), {}, tmp_path)
    back = load_dataset(tmp_path, "yolo", split="train")
    assert back.classes == LESION_CLASSES
    by_id = {s.image_id: s for s in back.samples}
    for s in samples[:4]:
        got = by_id[s.image_id]
        assert [b.label for b in got.boxes] == [b.label for b in s.boxes]
        for a, b in zip(got.boxes, s.boxes):   # 6-decimal normalized coordinates
            assert abs(a.x1 - b.x1) < 0.01 and abs(a.y2 - b.y2) < 0.01


def test_copy_paste_adds_rare_boxes_from_training_images_only(vindr_dir, tmp_path):
    samples = load_dataset(vindr_dir, "vindr", split="train").samples
    made = copy_paste_samples(samples, tmp_path, n_images=3, patches_per_image=2, ratio=0.9,
                              seed=0)
    assert len(made) == 3
    counts = {}
    for s in samples:
        for b in s.boxes:
            counts[b.label] = counts.get(b.label, 0) + 1
    rare = {c for c, n in counts.items() if n < 0.9 * max(counts.values())}
    for s in made:
        assert s.image_path.is_file() and s.label == 1
        assert any(b.label in rare for b in s.boxes)
        assert all(b.is_valid(s.width, s.height) for b in s.boxes)
    again = copy_paste_samples(samples, tmp_path / "again", n_images=3, patches_per_image=2,
                               ratio=0.9, seed=0)
    assert [s.boxes for s in again] == [s.boxes for s in made]
