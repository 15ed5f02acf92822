"""Class-per-folder trees: ``<root>/<split>/<class>/<image>`` or ``<root>/<class>/<image>``.

Classes are the lines of an optional ``classes.txt`` at the root (fixing the order, and keeping
classes without images), else the class directory names sorted. The label is the class index.
Groups come from an optional ``groups.csv`` (``image_id,group``), else from the file name.
"""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

from spinexr.errors import ConfigError, DatasetError
from spinexr.types import Sample

from spinexr.data.base import (GROUPS_FILE, IMAGE_SUFFIXES, LoadedDataset, ProblemLog,
                               derive_group, finish, merge_class_list, merge_groups_file,
                               read_groups, write_text_atomic)
from spinexr.data.writer import DatasetWriter

CLASSES_FILE = "classes.txt"
_ALIASES = {"val": "valid", "valid": "val"}


def read_class_list(path: Path, log: ProblemLog | None = None) -> list[str]:
    """Class names, one per line (blank lines skipped); duplicates are problems."""
    names: list[str] = []
    for lineno, text in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        name = text.strip()
        if not name:
            continue
        if name in names:
            if log is not None:
                log.add(path, lineno, f"duplicate class {name!r}")
            continue
        names.append(name)
    return names


def _write_class_list(path: Path, classes: Sequence[str]) -> None:
    write_text_atomic(path, "".join(f"{c}\n" for c in classes))


def _subdirs(path: Path) -> list[Path]:
    return sorted(d for d in path.iterdir() if d.is_dir() and not d.name.startswith("."))


def _files(path: Path) -> list[Path]:
    return sorted(f for f in path.iterdir() if f.is_file() and not f.name.startswith("."))


def _is_split_dir(path: Path) -> bool:
    """Holds class directories and no images of its own."""
    return bool(_subdirs(path)) and not any(
        f.suffix.lower() in IMAGE_SUFFIXES for f in _files(path))


def folder_splits(root: Path, listed: Sequence[str] | None) -> list[tuple[str | None, Path]]:
    """``(split, dir)`` pairs; ``split`` is ``None`` for a tree without a split level."""
    if not root.is_dir():
        raise DatasetError("not a directory", str(root))
    subdirs = _subdirs(root)
    if not subdirs:
        raise DatasetError("no class directories: expected <root>/<split>/<class>/<image> or "
                           "<root>/<class>/<image>", str(root))
    if listed is not None and all(d.name in listed for d in subdirs):
        return [(None, root)]
    non_empty = [d for d in subdirs if any(d.iterdir())]
    if non_empty and all(_is_split_dir(d) for d in non_empty):
        return [(d.name, d) for d in non_empty]
    return [(None, root)]


def load_folders(root: Path | str, *, split: str | None = None, strict: bool = True,
                 check_files: bool = True) -> LoadedDataset:
    """Read a class-per-folder tree; ``label`` is the index of the image's class.

    Args:
        root: the tree's root.
        split: read ``<root>/<split>`` only (``val`` and ``valid`` match each other).
        strict: raise on any problem, else skip affected images and list the problems.
        check_files: accepted for a uniform signature (the images are the tree itself).
    """
    root = Path(root)
    log = ProblemLog()
    class_file = root / CLASSES_FILE
    listed = read_class_list(class_file, log) if class_file.is_file() else None
    splits = folder_splits(root, listed)
    if split is not None:
        wanted = {split, _ALIASES.get(split, split)}
        splits = [(n, d) for n, d in splits if n in wanted]
        if not splits:
            raise DatasetError(f"no split directory {split!r}", str(root))
    class_dirs = [(name, d) for name, base in splits for d in _subdirs(base)]
    classes = tuple(listed if listed is not None else sorted({d.name for _, d in class_dirs}))
    groups = read_groups(root / GROUPS_FILE, log)
    samples: list[Sample] = []
    seen: dict[str, Path] = {}
    for name, class_dir in class_dirs:
        if class_dir.name not in classes:
            log.add(class_dir, 1, f"class directory {class_dir.name!r} is not in {class_file}")
            continue
        label = classes.index(class_dir.name)
        for image in _files(class_dir):
            sample = _sample(image, label, name, groups, seen, log)
            if sample is not None:
                samples.append(sample)
    return finish("folders", root, classes, samples, log, strict=strict, source=root)


def _sample(image: Path, label: int, split: str | None, groups: dict[str, str],
            seen: dict[str, Path], log: ProblemLog) -> Sample | None:
    if image.suffix.lower() not in IMAGE_SUFFIXES:
        log.add(image, 1, f"not an image file (suffix {image.suffix!r}); move it out of "
                          f"{image.parent}")
        return None
    key = image.stem
    if key in seen:
        log.add(image, 1, f"duplicate image id {key!r}, also {seen[key]}", key=key)
        return None
    seen[key] = image
    return Sample(image_id=key, image_path=image, group=groups.get(key) or derive_group(key),
                  label=label, split=split)


class FoldersWriter(DatasetWriter):
    """Writes ``<split>/<classes[label]>/<image_id><suffix>``, ``classes.txt`` and ``groups.csv``.

    Only the image-level ``label`` (a class index) is stored; boxes are not part of this layout.
    """

    layout = "folders"

    def __init__(self, root: Path | str, *, split: str = "train", classes=()) -> None:
        bad = [c for c in classes if c in (".", "..") or any(ch in c for ch in '/\\:*?"<>|')]
        if bad:
            raise ConfigError(f"classes {bad} cannot be directory names", "classes")
        super().__init__(root, split=split, classes=classes)
        self._groups: dict[str, str] = {}

    def _annotation_files(self) -> list[Path]:
        return [self.root / self.split]

    def _refuse_existing(self) -> None:
        super()._refuse_existing()
        path = self.root / CLASSES_FILE
        if path.is_file() and tuple(read_class_list(path)) != self.classes:
            raise DatasetError(f"holds classes {read_class_list(path)}, the writer was given "
                               f"{list(self.classes)}; use the same classes or an empty "
                               "directory", str(path))

    def _check_sample(self, sample: Sample) -> None:
        label = sample.label
        if isinstance(label, bool) or not isinstance(label, int) or not (
                0 <= label < len(self.classes)):
            raise ConfigError(f"image {sample.image_id!r} has label {label!r}; the folders "
                              f"layout needs a class index 0..{len(self.classes) - 1}",
                              "sample.label")

    def _image_path(self, sample: Sample, suffix: str) -> Path:
        return self.root / self.split / self.classes[sample.label] / f"{sample.image_id}{suffix}"

    def _record(self, sample: Sample, path: Path, image: bytes, suffix: str) -> None:
        self._groups[sample.image_id] = sample.group

    def _write_annotations(self) -> None:
        merge_class_list(self.root / CLASSES_FILE, self.classes, read_class_list,
                         _write_class_list)
        merge_groups_file(self.root / GROUPS_FILE, self._groups)
