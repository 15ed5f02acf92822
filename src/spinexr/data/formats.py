"""One entry point per direction: :func:`load_dataset` / :func:`detect_format` to read any layout,
:func:`open_writer` to write one."""
from __future__ import annotations

from pathlib import Path
from typing import Callable, Sequence

from spinexr.errors import ConfigError, DatasetError

from spinexr.data.base import IMAGE_SUFFIXES, LoadedDataset
from spinexr.data.coco import CocoWriter, load_coco
from spinexr.data.folders import FoldersWriter, load_folders
from spinexr.data.vindr import VindrWriter, load_vindr
from spinexr.data.writer import DatasetWriter
from spinexr.data.yolo import YoloWriter, load_yolo

#: The layouts spinexr reads and writes.
FORMATS: tuple[str, ...] = ("vindr", "coco", "yolo", "folders")

_LOADERS: dict[str, Callable[..., LoadedDataset]] = {
    "vindr": load_vindr, "coco": load_coco, "yolo": load_yolo, "folders": load_folders}
_WRITERS: dict[str, type[DatasetWriter]] = {
    "vindr": VindrWriter, "coco": CocoWriter, "yolo": YoloWriter, "folders": FoldersWriter}


def _is_vindr(root: Path) -> bool:
    for path in sorted((root / "annotations").glob("*.csv")):
        with path.open(encoding="utf-8-sig") as f:
            header = {h.strip() for h in f.readline().split(",")}
        if {"image_id", "lesion_type", "xmin"} <= header or {"image_id", "region", "grade",
                                                               "xmin"} <= header:
            return True
    return False


def _is_coco(root: Path) -> bool:
    return any((root / "annotations").glob("instances_*.json"))


def _is_yolo(root: Path) -> bool:
    return (root / "data.yaml").is_file() or any(
        (root / s / "labels").is_dir() and (root / s / "images").is_dir()
        for s in ("train", "valid", "val", "test"))


def _is_folders(root: Path) -> bool:
    # an image at depth 2 (<class>/<image>) or 3 (<split>/<class>/<image>)
    return any(p.suffix.lower() in IMAGE_SUFFIXES and not p.name.startswith(".")
               for pattern in ("*/*", "*/*/*") for p in root.glob(pattern))


def detect_format(root: Path | str) -> str:
    """Which of ``vindr``, ``coco``, ``yolo``, ``folders`` the directory ``root`` holds.

    Checked in that order (the class-per-folder tree is the fallback): ``annotations/*.csv``
    with VinDr columns (or those of its MRI variant); ``annotations/instances_*.json``;
    ``data.yaml`` or ``<split>/{images,labels}``; images two or three directories deep.

    Raises:
        DatasetError: ``root`` is missing or none of the layouts fits.
    """
    root = Path(root)
    if root.is_file() and root.suffix in (".yaml", ".yml"):
        return "yolo"
    if not root.is_dir():
        raise DatasetError("dataset directory not found", str(root))
    for name, test in (("vindr", _is_vindr), ("coco", _is_coco), ("yolo", _is_yolo),
                       ("folders", _is_folders)):
        if test(root):
            return name
    raise DatasetError(
        "no known dataset layout: expected annotations/<split>.csv (vindr), "
        "annotations/instances_<split>.json (coco), data.yaml + <split>/labels (yolo) or "
        "<split>/<class>/<image> (folders)", str(root))


def load_dataset(root: Path | str, format: str | None = None, *, split: str | None = None,
                 strict: bool = True, check_files: bool = True) -> LoadedDataset:
    """Read a dataset in any supported layout into :class:`LoadedDataset`.

    Args:
        root: the dataset root (for YOLO also the ``data.yaml`` path).
        format: ``vindr``, ``coco``, ``yolo`` or ``folders``; ``None`` detects it.
        split: read one split only; ``None`` reads all.
        strict: raise :class:`~spinexr.errors.DatasetError` listing every problem; with
            ``False`` skip the affected images, return the problems and log each as a warning.
        check_files: check that images exist and read their sizes from the headers.
    """
    fmt = detect_format(root) if format is None else format
    if fmt not in _LOADERS:
        raise ConfigError(f"format {format!r} is not one of {list(FORMATS)}", "format")
    return _LOADERS[fmt](root, split=split, strict=strict, check_files=check_files)


def open_writer(root: Path | str, layout: str, *, split: str = "train",
                classes: Sequence[str]) -> DatasetWriter:
    """A context manager that writes samples in ``layout`` under ``root``.

    Use as ``with open_writer(root, "coco", classes=LESION_CLASSES) as w: w.add(sample, png,
    ".png")``; ``add`` returns the path where the image went, and the annotation files are
    written when the block ends without an exception. An existing annotation file of the same
    layout and split is never overwritten (:class:`~spinexr.errors.DatasetError`).

    Args:
        root: the dataset root, created if needed.
        layout: ``vindr`` (DICOM bytes, suffix ``.dicom``), ``coco``, ``yolo`` or ``folders``.
        split: the split written, e.g. ``"train"`` or ``"test"``.
        classes: box classes (``vindr``: canonical lesion classes; ``coco``/``yolo``: category
            names in index order) or image classes for ``folders`` (``sample.label`` indexes it).
    """
    if layout not in _WRITERS:
        raise ConfigError(f"layout {layout!r} is not one of {list(FORMATS)}", "layout")
    return _WRITERS[layout](root, split=split, classes=classes)
