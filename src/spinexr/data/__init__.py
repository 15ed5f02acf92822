"""Dataset layouts (VinDr-SpineXR CSV, COCO JSON, YOLO txt, class-per-folder) to one
:class:`~spinexr.types.Sample` type, writers for each layout, and grouped stratified splits.

Reading::

    ds = load_dataset(root)                    # format detected; strict: raise on any bad row
    ds = load_dataset(root, "vindr", split="train", strict=False)   # skip bad images, see .problems

Writing::

    with open_writer(root, "coco", split="train", classes=LESION_CLASSES) as w:
        path = w.add(sample, png_bytes, ".png")

Splitting::

    for train_idx, val_idx in kfold_splits(ds.samples, k=5, seed=0): ...
"""
from __future__ import annotations

from spinexr.data.base import IMAGE_SUFFIXES, LoadedDataset, derive_group
from spinexr.data.coco import CocoWriter, load_coco
from spinexr.data.folders import FoldersWriter, load_folders
from spinexr.data.formats import FORMATS, detect_format, load_dataset, open_writer
from spinexr.data.splits import default_stratum, kfold_splits, train_val_split
from spinexr.data.vindr import VindrWriter, load_vindr
from spinexr.data.writer import DatasetWriter
from spinexr.data.yolo import YoloWriter, load_yolo

__all__ = [
    "FORMATS",
    "IMAGE_SUFFIXES",
    "CocoWriter",
    "DatasetWriter",
    "FoldersWriter",
    "LoadedDataset",
    "VindrWriter",
    "YoloWriter",
    "default_stratum",
    "derive_group",
    "detect_format",
    "kfold_splits",
    "load_coco",
    "load_dataset",
    "load_folders",
    "load_vindr",
    "load_yolo",
    "open_writer",
    "train_val_split",
]
