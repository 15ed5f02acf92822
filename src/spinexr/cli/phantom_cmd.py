"""``spinexr phantom``: write a synthetic dataset (radiographs or lumbar MRI slices).

Image ``i`` uses the seed derived from ``(--seed, i)``, so the same arguments always write
byte-identical files, and image ``i`` does not depend on ``--n``.
"""
from __future__ import annotations

import argparse
from pathlib import Path

from spinexr.phantom.dataset import LAYOUTS, XRAY_CLASSES
from spinexr.phantom.dicom import TRANSFER_SYNTAXES


def add_parser(subparsers) -> argparse.ArgumentParser:
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
    p.add_argument("--transfer-syntax", choices=list(TRANSFER_SYNTAXES), default=None,
                   help="DICOM encoding: the vindr layout's (default explicit); the coco "
                        "layout writes DICOMs instead of PNGs when given (grades and vertebrae "
                        "stay in its JSON)")
    p.add_argument("--split", default="train", help="split name (default train)")
    p.add_argument("--classes", choices=list(XRAY_CLASSES), default="triage",
                   help="folders layout of radiographs: image classes (default triage; "
                        "cervical draws cervical images only)")
    p.add_argument("--view", choices=("lateral", "ap"), help="radiograph view (default random)")
    p.add_argument("--region", choices=("cervical", "lumbar"),
                   help="radiograph region (default random)")
    p.add_argument("--abnormal-rate", type=float, default=0.5,
                   help="probability of an abnormal image (default 0.5)")
    p.add_argument("--cervical-injury-rate", type=float, default=None,
                   help="probability that an abnormal cervical image has a fracture or "
                        "dislocation (default: the generator's, 0.25)")
    p.add_argument("--bits", type=int, choices=(8, 16), default=8,
                   help="PNG bit depth for coco/yolo/folders (default 8)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(run=run)
    return p


def run(args: argparse.Namespace) -> int:
    from spinexr.phantom.dataset import PhantomSet, write_phantom_dataset

    spec = PhantomSet(n=args.n, seed=args.seed, layout=args.layout, task=args.task,
                      split=args.split, size=tuple(args.size) if args.size else None,
                      view=args.view, region=args.region, abnormal_rate=args.abnormal_rate,
                      classes=args.classes, transfer_syntax=args.transfer_syntax,
                      cervical_injury_rate=args.cervical_injury_rate,
                      bits=args.bits)
    count = write_phantom_dataset(args.out, spec, progress=not args.quiet)
    print(f"wrote {count} {args.task} image(s) to {args.out} ({args.layout}, split "
          f"{args.split})")
    return 0
