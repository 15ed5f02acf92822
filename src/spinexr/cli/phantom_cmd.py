"""``spinexr phantom``: write a synthetic dataset (radiographs or lumbar MRI slices).

Image ``i`` uses the seed derived from ``(--seed, i)``, so the same arguments always write
byte-identical files, and image ``i`` does not depend on ``--n``.
"""
from __future__ import annotations

import argparse
import io
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
from PIL import Image

from spinexr.errors import ConfigError
from spinexr.labels import (
    CERVICAL_CLASSES, DEGENERATION_GRADES, LESION_CLASSES, STENOSIS_GRADES, STENOSIS_REGIONS,
    TRIAGE_CLASSES,
)
from spinexr.types import Sample

LAYOUTS = ("vindr", "coco", "yolo", "folders")
#: Image-level classes for the folders layout of radiographs: name -> (classes, grade key).
XRAY_CLASSES = {"triage": (TRIAGE_CLASSES, "triage"),
                "degeneration": (DEGENERATION_GRADES, "degeneration"),
                "cervical": (CERVICAL_CLASSES, "cervical")}


def add_parser(subparsers) -> argparse.ArgumentParser:
    from spinexr.phantom.dicom import TRANSFER_SYNTAXES

    p = subparsers.add_parser(
        "phantom", help="write a synthetic dataset with exact labels",
        description="Write N synthetic spine radiographs (or axial lumbar MRI slices) with "
                    "exact labels in a dataset layout. Deterministic: the same arguments "
                    "give byte-identical files.")
    p.add_argument("--n", type=int, required=True, help="number of images")
    p.add_argument("--seed", type=int, default=0, help="base seed (default 0)")
    p.add_argument("--out", type=Path, required=True, help="dataset root to write")
    p.add_argument("--layout", choices=LAYOUTS, default="vindr",
                   help="vindr (DICOM + CSV, default), coco, yolo or folders")
    p.add_argument("--task", choices=("xray", "mri"), default="xray")
    p.add_argument("--size", type=int, nargs=2, metavar=("H", "W"),
                   help="image size in pixels (default: realistic random; mri uses H)")
    p.add_argument("--transfer-syntax", choices=list(TRANSFER_SYNTAXES), default="explicit",
                   help="DICOM encoding for the vindr layout (default explicit)")
    p.add_argument("--split", default="train", help="split name (default train)")
    p.add_argument("--classes", choices=list(XRAY_CLASSES), default="triage",
                   help="folders layout of radiographs: image classes (default triage; "
                        "cervical draws cervical images only)")
    p.add_argument("--view", choices=("lateral", "ap"), help="radiograph view (default random)")
    p.add_argument("--region", choices=("cervical", "lumbar"),
                   help="radiograph region (default random)")
    p.add_argument("--abnormal-rate", type=float, default=0.5,
                   help="probability of an abnormal image (default 0.5)")
    p.add_argument("--bits", type=int, choices=(8, 16), default=8,
                   help="PNG bit depth for coco/yolo/folders (default 8)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(run=run)
    return p


def image_seed(base: int, index: int) -> int:
    """The seed of image ``index`` of a dataset made with seed ``base`` (uint32)."""
    return int(np.random.SeedSequence([base, index]).generate_state(1, dtype=np.uint32)[0])


def png_bytes(display: np.ndarray, bits: int = 8) -> bytes:
    """Encode a float image in [0, 1] as a grayscale PNG (8 or 16 bit), deterministically."""
    if bits == 16:
        img = Image.fromarray(np.rint(display * 65535).astype(np.uint16))
    else:
        img = Image.fromarray(np.rint(display * 255).astype(np.uint8))
    buf = io.BytesIO()
    img.save(buf, format="PNG", compress_level=6)
    return buf.getvalue()


def _check(args: argparse.Namespace) -> None:
    if args.n < 1:
        raise ConfigError(f"--n is {args.n}; give at least 1", "--n")
    if args.seed < 0:
        raise ConfigError(f"--seed is {args.seed}; give an int >= 0", "--seed")
    if args.task == "mri" and args.layout == "vindr":
        raise ConfigError("the vindr layout holds radiograph lesions; write MRI phantoms with "
                          "--layout coco, yolo or folders", "--layout")
    if args.classes == "cervical" and args.region == "lumbar":
        raise ConfigError("--classes cervical needs cervical images; drop --region lumbar",
                          "--classes")


def run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from spinexr.data import open_writer

    _check(args)
    make, classes = (_xray_items, _xray_classes(args)) if args.task == "xray" else (
        _mri_items, STENOSIS_GRADES if args.layout == "folders" else STENOSIS_REGIONS)
    count = 0
    with open_writer(args.out, args.layout, split=args.split, classes=classes) as writer:
        for i in tqdm(range(args.n), desc="phantom", unit="img", file=sys.stderr,
                      disable=args.quiet):
            for sample, data, suffix in make(args, i):
                writer.add(sample, data, suffix)
                count += 1
    print(f"wrote {count} {args.task} image(s) to {args.out} ({args.layout}, split "
          f"{args.split})")
    return 0


def _xray_classes(args: argparse.Namespace) -> tuple[str, ...]:
    return XRAY_CLASSES[args.classes][0] if args.layout == "folders" else LESION_CLASSES


def _xray_items(args: argparse.Namespace, i: int):
    from spinexr.phantom import XrayConfig, generate_xray, render_display, xray_to_dicom
    from spinexr.phantom.dicom import TRANSFER_SYNTAXES, to_bytes

    region = "cervical" if args.layout == "folders" and args.classes == "cervical" else (
        args.region)
    cfg = XrayConfig(view=args.view, region=region, abnormal_rate=args.abnormal_rate,
                     size=tuple(args.size) if args.size else None)
    ph = generate_xray(image_seed(args.seed, i), cfg)
    image_id = f"phantom-{args.seed}-{i:05d}"
    sample = Sample(image_id=image_id, image_path=Path(image_id), group=ph.uids.study,
                    boxes=ph.lesions, label=int(ph.abnormal), width=ph.width,
                    height=ph.height, vertebrae=ph.vertebrae, grades=dict(ph.grades),
                    split=args.split)
    if args.layout == "vindr":
        ds = xray_to_dicom(ph, transfer_syntax=TRANSFER_SYNTAXES[args.transfer_syntax])
        return [(sample, to_bytes(ds), ".dicom")]
    if args.layout == "folders":
        sample = replace(sample, label=int(ph.grades[XRAY_CLASSES[args.classes][1]]))
    return [(sample, png_bytes(render_display(ph), args.bits), ".png")]


def _mri_items(args: argparse.Namespace, i: int):
    from spinexr.phantom import MriConfig, generate_mri, render_display

    cfg = MriConfig(size=args.size[0] if args.size else None, abnormal_rate=args.abnormal_rate)
    ph = generate_mri(image_seed(args.seed, i), cfg)
    image_id = f"phantom-mri-{args.seed}-{i:05d}"
    display = render_display(ph)
    if args.layout != "folders":
        sample = Sample(image_id=image_id, image_path=Path(image_id), group=ph.uids.study,
                        boxes=ph.regions, label=int(ph.abnormal), width=ph.stored.shape[1],
                        height=ph.stored.shape[0], grades=dict(ph.grades), split=args.split)
        return [(sample, png_bytes(display, args.bits), ".png")]
    out = []
    for box in ph.regions:
        crop = region_crop(display, box)
        name = box.label.replace(" ", "_")
        sample = Sample(image_id=f"{image_id}-{name}", image_path=Path(image_id),
                        group=ph.uids.study, label=int(ph.grades[box.label]),
                        width=crop.shape[1], height=crop.shape[0],
                        grades={box.label: int(ph.grades[box.label])}, split=args.split)
        out.append((sample, png_bytes(crop, args.bits), ".png"))
    return out


def region_crop(display: np.ndarray, box, margin: float = 0.5) -> np.ndarray:
    """A square crop around a region box with ``margin`` (fraction of its larger side)."""
    h, w = display.shape
    cx, cy = box.center
    half = max(box.width, box.height) * (0.5 + margin)
    x0, x1 = int(max(np.floor(cx - half), 0)), int(min(np.ceil(cx + half), w))
    y0, y1 = int(max(np.floor(cy - half), 0)), int(min(np.ceil(cy + half), h))
    return display[y0:y1, x0:x1]
