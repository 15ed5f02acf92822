"""What every dataset layout shares: the loaded result, problem collection, image headers, groups.

Readers never drop a bad row silently: each one becomes a problem ``"path:line: reason"`` in a
:class:`ProblemLog`; :func:`finish` then raises :class:`~spinexr.errors.DatasetError` listing all
of them (``strict=True``) or logs each as a warning on logger ``spinexr.data`` and keeps the good
samples (``strict=False``). A sample with any problem of its own is left out as a whole: a
half-annotated image would teach a detector that the dropped lesion is background.
"""
from __future__ import annotations

import csv
import io
import logging
import math
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Sequence

from spinexr.errors import ConfigError, DatasetError
from spinexr.types import Box, Sample

logger = logging.getLogger("spinexr.data")

#: File suffixes read as images by the YOLO and class-per-folder readers (lower case).
IMAGE_SUFFIXES: frozenset[str] = frozenset(
    {".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".webp", ".dcm", ".dicom"})
DICOM_SUFFIXES: frozenset[str] = frozenset({".dcm", ".dicom"})
#: Name of the optional ``image_id,group`` table beside YOLO / class-per-folder datasets.
GROUPS_FILE = "groups.csv"

# Roboflow exports rename "11.jpg" to "11_jpg.rf.<32 hex>.jpg"; every copy of one original
# (augmentations, re-exports) must share a group.
_ROBOFLOW = re.compile(r"^(?P<orig>.+)_(?P<ext>[A-Za-z0-9]+)\.rf\.[0-9a-fA-F]{32}$")


@dataclass(frozen=True)
class LoadedDataset:
    """A dataset read from disk.

    Attributes:
        format: ``"vindr"``, ``"coco"``, ``"yolo"`` or ``"folders"``.
        root: the dataset root directory.
        classes: box class names (detection layouts) or image classes (``folders``), in index order.
        samples: the good samples, in file order.
        problems: every problem found, each ``"path:line: reason"``; empty for a clean dataset.
    """

    format: str
    root: Path
    classes: tuple[str, ...]
    samples: tuple[Sample, ...]
    problems: tuple[str, ...] = ()

    def __len__(self) -> int:
        return len(self.samples)

    @property
    def splits(self) -> tuple[str, ...]:
        """The split names present, in first-seen order."""
        return tuple(dict.fromkeys(s.split for s in self.samples if s.split is not None))

    def split(self, name: str) -> tuple[Sample, ...]:
        """The samples of split ``name``."""
        return tuple(s for s in self.samples if s.split == name)


@dataclass
class ProblemLog:
    """Problems found while reading, and the sample keys they disqualify.

    :attr:`problems` lists them by file (in the order files were first named) and line.
    """

    entries: list[tuple[str, int, str]] = field(default_factory=list)
    bad_keys: set[str] = field(default_factory=set)

    def add(self, path: Path | str, line: int, reason: str, key: str | None = None) -> None:
        """Record ``reason`` at ``path:line``; ``key`` names the sample it disqualifies, if any."""
        self.entries.append((str(path), int(line), reason))
        if key is not None:
            self.bad_keys.add(key)

    @property
    def problems(self) -> list[str]:
        rank: dict[str, int] = {}
        for path, _, _ in self.entries:
            rank.setdefault(path, len(rank))
        ordered = sorted(self.entries, key=lambda e: (rank[e[0]], e[1]))  # stable within a line
        return [f"{path}:{line}: {reason}" for path, line, reason in ordered]

    def __bool__(self) -> bool:
        return bool(self.entries)


def finish(fmt: str, root: Path, classes: Sequence[str], samples: Iterable[Sample],
           log: ProblemLog, *, strict: bool, source: Path | str) -> LoadedDataset:
    """Drop samples with problems, then raise (strict) or warn (lenient) about every problem.

    Args:
        source: the annotation file (or directory) named in the error message.
    """
    problems = tuple(log.problems)
    if problems and strict:
        raise DatasetError(
            f"{len(problems)} problem(s) in the {fmt} dataset; fix them or load with "
            "strict=False to skip the affected images", str(source), problems=problems)
    for problem in problems:
        logger.warning("%s", problem)
    good = tuple(s for s in samples if s.image_id not in log.bad_keys)
    return LoadedDataset(fmt, Path(root), tuple(classes), good, problems)


def parse_float(text: str) -> float | None:
    """``float(text)`` when it is a finite number, else ``None``."""
    try:
        value = float(text)
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None


def box_problem(box: Box, width: int | None, height: int | None) -> str | None:
    """Why ``box`` is invalid (empty, or outside a known ``width`` x ``height`` image), or None."""
    if not box.x1 < box.x2:
        return f"empty box: x1={box.x1:g} >= x2={box.x2:g}"
    if not box.y1 < box.y2:
        return f"empty box: y1={box.y1:g} >= y2={box.y2:g}"
    if box.x1 < 0 or box.y1 < 0:
        return f"box {_fmt_box(box)} outside the image (negative coordinate)"
    if width is not None and height is not None and not box.is_valid(width, height):
        return f"box {_fmt_box(box)} outside the {width}x{height} image"
    return None


def _fmt_box(box: Box) -> str:
    return "[" + ", ".join(f"{v:g}" for v in box.as_list()) + "]"


def derive_group(stem: str) -> str:
    """The group of an image named ``stem`` when no table gives one.

    Roboflow names ``11_jpg.rf.fe6c...`` map to their original stem ``11`` so that copies of
    one original never land in different folds; other names are their own group.
    """
    match = _ROBOFLOW.match(stem)
    return match.group("orig") if match else stem


def read_groups(path: Path, log: ProblemLog) -> dict[str, str]:
    """Read an optional ``image_id,group`` CSV; ``{}`` when ``path`` does not exist."""
    if not path.is_file():
        return {}
    groups: dict[str, str] = {}
    with path.open(newline="", encoding="utf-8") as f:
        reader = csv.reader(f)
        for row in reader:
            if reader.line_num == 1 and [c.strip() for c in row] == ["image_id", "group"]:
                continue
            if not row or all(not c.strip() for c in row):
                continue
            if len(row) != 2 or not row[0].strip() or not row[1].strip():
                log.add(path, reader.line_num, f"expected 'image_id,group', found {row!r}")
                continue
            image_id, group = row[0].strip(), row[1].strip()
            if image_id in groups and groups[image_id] != group:
                log.add(path, reader.line_num,
                        f"image {image_id!r} given two groups: {groups[image_id]!r} and {group!r}")
                continue
            groups[image_id] = group
    return groups


def merge_groups_file(path: Path, new: dict[str, str]) -> None:
    """Write ``new`` into the ``image_id,group`` CSV at ``path``, keeping rows already there."""
    log = ProblemLog()
    groups = read_groups(path, log)
    if log:
        raise DatasetError("cannot merge into a malformed groups table", str(path),
                           problems=tuple(log.problems))
    for image_id, group in new.items():
        if groups.get(image_id, group) != group:
            raise DatasetError(f"image {image_id!r} already has group {groups[image_id]!r}, "
                               f"not {group!r}; write into an empty directory", str(path))
        groups[image_id] = group
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["image_id", "group"])
    writer.writerows(sorted(groups.items()))
    write_text_atomic(path, buf.getvalue())


def merge_class_list(path: Path, classes: Sequence[str], read: Callable[[Path], Sequence[str]],
                     write: Callable[[Path, Sequence[str]], None]) -> None:
    """Create the class list at ``path`` or check that the one there equals ``classes``."""
    if path.exists():
        found = tuple(read(path))
        if found != tuple(classes):
            raise DatasetError(f"holds classes {list(found)}, the writer was given "
                               f"{list(classes)}; use the same classes or an empty directory",
                               str(path))
        return
    write(path, classes)


def write_text_atomic(path: Path, text: str) -> None:
    """Write ``text`` (UTF-8, ``\\n`` line ends) so that readers never see half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".part")
    with tmp.open("w", encoding="utf-8", newline="\n") as f:
        f.write(text)
    os.replace(tmp, path)


def image_size_of_file(path: Path) -> tuple[int, int]:
    """``(width, height)`` from the file header, without decoding pixels.

    Raises:
        DatasetError: the file is neither a raster image Pillow reads nor a DICOM file.
    """
    if path.suffix.lower() in DICOM_SUFFIXES:
        return _dicom_size(path)
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            return int(im.size[0]), int(im.size[1])
    except (UnidentifiedImageError, OSError):
        return _dicom_size(path)


def image_size_of_bytes(data: bytes, suffix: str) -> tuple[int, int]:
    """``(width, height)`` of an encoded image (raster or DICOM) held in memory."""
    if suffix.lower() not in DICOM_SUFFIXES:
        from PIL import Image, UnidentifiedImageError

        try:
            with Image.open(io.BytesIO(data)) as im:
                return int(im.size[0]), int(im.size[1])
        except (UnidentifiedImageError, OSError):
            pass
    return _dicom_size(io.BytesIO(data), name=f"image bytes ({suffix})")


def _dicom_size(source: Path | io.BytesIO, name: str | None = None) -> tuple[int, int]:
    import pydicom
    from pydicom.errors import InvalidDicomError

    label = name or str(source)
    try:
        ds = pydicom.dcmread(source, stop_before_pixels=True,
                             specific_tags=["Rows", "Columns"])
    except (InvalidDicomError, OSError, ValueError, EOFError) as exc:
        raise DatasetError(f"cannot read the image header: {exc}", label) from exc
    rows, cols = ds.get("Rows"), ds.get("Columns")
    if not rows or not cols:
        raise DatasetError("DICOM header lacks (0028,0010) Rows / (0028,0011) Columns", label)
    return int(cols), int(rows)


def check_image_id(image_id: str) -> None:
    """Refuse ids that cannot be a file name (writers use the id as the file stem)."""
    if (not image_id or image_id.strip() != image_id or image_id in (".", "..")
            or any(c in image_id for c in '/\\:*?"<>|\n\r\t,')):
        raise ConfigError(f"image_id {image_id!r} cannot be used as a file name; use letters, "
                          "digits, '.', '-' and '_'", "sample.image_id")


def check_suffix(suffix: str) -> str:
    """Validate a file suffix such as ``".png"`` and return it."""
    if not re.fullmatch(r"\.[A-Za-z0-9]{1,8}", suffix or ""):
        raise ConfigError(f"suffix {suffix!r} is not a file suffix like '.png' or '.dicom'",
                          "suffix")
    return suffix
