"""Write a synthetic dataset in any spinexr layout: the library behind ``spinexr phantom``.

Image ``i`` of a set uses the seed derived from ``(seed, i)``, so the same spec always writes
byte-identical files and image ``i`` does not depend on ``n``. Training recipes use it to make
their phantom train/test sets from disjoint seeds.
"""
from __future__ import annotations

import io
import sys
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Iterator

import numpy as np

from spinexr.errors import ConfigError
from spinexr.labels import (CERVICAL_CLASSES, DEGENERATION_GRADES, LESION_CLASSES,
                            STENOSIS_GRADES, STENOSIS_REGIONS, TRIAGE_CLASSES)
from spinexr.types import Sample

LAYOUTS = ("vindr", "coco", "yolo", "folders")
TASKS = ("xray", "mri")
#: Image-level classes for the folders layout of radiographs: name -> (classes, grade key).
XRAY_CLASSES = {"triage": (TRIAGE_CLASSES, "triage"),
                "degeneration": (DEGENERATION_GRADES, "degeneration"),
                "cervical": (CERVICAL_CLASSES, "cervical")}


@dataclass(frozen=True)
class PhantomSet:
    """What to write. ``size`` is (H, W) (MRI uses H); ``None`` draws realistic sizes."""

    n: int
    seed: int = 0
    layout: str = "vindr"
    task: str = "xray"
    split: str = "train"
    size: tuple[int, int] | None = None
    view: str | None = None
    region: str | None = None
    abnormal_rate: float = 0.5
    cervical_injury_rate: float | None = None
    classes: str = "triage"
    #: DICOM encoding: vindr writes DICOMs always (default explicit VR), coco writes DICOMs
    #: instead of PNGs when one is given (its JSON keeps grades and vertebrae); None: PNG
    transfer_syntax: str | None = None
    bits: int = 8

    def __post_init__(self) -> None:
        checks = [(self.n >= 1, "n", "give at least 1"),
                  (self.seed >= 0, "seed", "give an int >= 0"),
                  (self.layout in LAYOUTS, "layout", f"use one of {LAYOUTS}"),
                  (self.task in TASKS, "task", f"use one of {TASKS}"),
                  (self.classes in XRAY_CLASSES, "classes", f"use one of {tuple(XRAY_CLASSES)}"),
                  (self.bits in (8, 16), "bits", "use 8 or 16")]
        for ok, name, fix in checks:
            if not ok:
                raise ConfigError(f"{name} = {getattr(self, name)!r}: {fix}", name)
        if self.transfer_syntax is not None and self.layout not in ("vindr", "coco"):
            raise ConfigError(f"transfer_syntax {self.transfer_syntax!r}: DICOM images are "
                              "written in the vindr and coco layouts only", "transfer_syntax")
        if self.classes == "cervical" and self.region == "lumbar":
            raise ConfigError("classes 'cervical' needs cervical images; drop region lumbar",
                              "classes")


def image_seed(base: int, index: int) -> int:
    """The seed of image ``index`` of a dataset made with seed ``base`` (uint32)."""
    return int(np.random.SeedSequence([base, index]).generate_state(1, dtype=np.uint32)[0])


def png_bytes(display: np.ndarray, bits: int = 8) -> bytes:
    """Encode a float image in [0, 1] as a grayscale PNG (8 or 16 bit), deterministically."""
    from PIL import Image

    if bits == 16:
        img = Image.fromarray(np.rint(display * 65535).astype(np.uint16))
    else:
        img = Image.fromarray(np.rint(display * 255).astype(np.uint8))
    buf = io.BytesIO()
    img.save(buf, format="PNG", compress_level=6)
    return buf.getvalue()


def dataset_classes(spec: PhantomSet) -> tuple[str, ...]:
    """The class vocabulary the writer is opened with."""
    if spec.task == "mri":
        return STENOSIS_GRADES if spec.layout == "folders" else STENOSIS_REGIONS
    return XRAY_CLASSES[spec.classes][0] if spec.layout == "folders" else LESION_CLASSES


def write_phantom_dataset(root: Path, spec: PhantomSet, *, progress: bool = True) -> int:
    """Write ``spec.n`` phantoms under ``root``; returns the number of files written."""
    from tqdm import tqdm

    from spinexr.data import open_writer

    make = _xray_items if spec.task == "xray" else _mri_items
    count = 0
    if spec.task == "mri" and spec.layout == "vindr":   # MR DICOMs, regions and grades
        from spinexr.data.vindr import VindrMriWriter

        opened = VindrMriWriter(Path(root), split=spec.split, classes=STENOSIS_REGIONS,
                                grades=STENOSIS_GRADES)
    else:
        opened = open_writer(Path(root), spec.layout, split=spec.split,
                             classes=dataset_classes(spec))
    with opened as writer:
        for i in tqdm(range(spec.n), desc="phantom", unit="img", file=sys.stderr,
                      disable=not progress):
            for sample, data, suffix in make(spec, i):
                writer.add(sample, data, suffix)
                count += 1
    return count


def _xray_items(spec: PhantomSet, i: int) -> Iterator[tuple[Sample, bytes, str]]:
    from spinexr.phantom import XrayConfig, generate_xray, render_display, xray_to_dicom
    from spinexr.phantom.dicom import TRANSFER_SYNTAXES, to_bytes

    cervical_only = spec.layout == "folders" and spec.classes == "cervical"
    extra = ({} if spec.cervical_injury_rate is None
             else {"cervical_injury_rate": spec.cervical_injury_rate})
    cfg = XrayConfig(view=spec.view, region="cervical" if cervical_only else spec.region,
                     abnormal_rate=spec.abnormal_rate, size=spec.size, **extra)
    ph = generate_xray(image_seed(spec.seed, i), cfg)
    image_id = f"phantom-{spec.seed}-{i:05d}"
    sample = Sample(image_id=image_id, image_path=Path(image_id), group=ph.uids.study,
                    boxes=ph.lesions, label=int(ph.abnormal), width=ph.width,
                    height=ph.height, vertebrae=ph.vertebrae, grades=dict(ph.grades),
                    split=spec.split)
    if spec.layout == "vindr" or (spec.layout == "coco" and spec.transfer_syntax):
        yield sample, to_bytes(xray_to_dicom(ph, transfer_syntax=TRANSFER_SYNTAXES[
            spec.transfer_syntax or "explicit"])), ".dicom"
        return
    if spec.layout == "folders":
        sample = replace(sample, label=int(ph.grades[XRAY_CLASSES[spec.classes][1]]))
    yield sample, png_bytes(render_display(ph), spec.bits), ".png"


def _mri_items(spec: PhantomSet, i: int) -> Iterator[tuple[Sample, bytes, str]]:
    from spinexr.geometry import crop_region
    from spinexr.phantom import MriConfig, generate_mri, mri_to_dicom, render_display
    from spinexr.phantom.dicom import TRANSFER_SYNTAXES, to_bytes

    ph = generate_mri(image_seed(spec.seed, i),
                      MriConfig(size=spec.size[0] if spec.size else None,
                                abnormal_rate=spec.abnormal_rate))
    image_id = f"phantom-mri-{spec.seed}-{i:05d}"
    if spec.layout != "folders":
        sample = Sample(image_id=image_id, image_path=Path(image_id), group=ph.uids.study,
                        boxes=ph.regions, label=int(ph.abnormal), width=ph.stored.shape[1],
                        height=ph.stored.shape[0], grades=dict(ph.grades), split=spec.split)
        if spec.layout == "vindr":
            yield sample, to_bytes(mri_to_dicom(ph, transfer_syntax=TRANSFER_SYNTAXES[
                spec.transfer_syntax or "explicit"])), ".dicom"
        else:
            yield sample, png_bytes(render_display(ph), spec.bits), ".png"
        return
    display = render_display(ph)
    for box in ph.regions:  # one crop per region, filed by grade, as the region grader sees it
        crop = crop_region(display, box)
        yield (Sample(image_id=f"{image_id}-{box.label.replace(' ', '_')}",
                      image_path=Path(image_id), group=ph.uids.study,
                      label=int(ph.grades[box.label]), width=crop.shape[1], height=crop.shape[0],
                      grades={box.label: int(ph.grades[box.label])}, split=spec.split),
               png_bytes(crop, spec.bits), ".png")
