"""VinDr-SpineXR as published: ``annotations/<split>.csv`` + ``<split>_images/<image_id>.dicom``.

One CSV row per box (or one ``No finding`` row with empty coordinates for a normal image)::

    study_id,series_id,image_id,rad_id,lesion_type,xmin,ymin,xmax,ymax

Rows are grouped into one :class:`~spinexr.types.Sample` per ``image_id``; the group is the
``study_id``. Boxes from several radiologists (``rad_id``) on one image are all kept.

The MRI variant (axial lumbar MR slices, :data:`MRI_COLUMNS`) has ``region,level,grade`` in
place of ``lesion_type``: one row per stenosis region, read into region boxes and
``Sample.grades[region]``.
"""
from __future__ import annotations

import csv
import hashlib
import io
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Sequence

from spinexr.errors import ConfigError, DatasetError
from spinexr.labels import (LESION_CLASSES, NO_FINDING, STENOSIS_GRADES, STENOSIS_REGIONS,
                            canonical_lesion, vindr_name)
from spinexr.types import Box, Sample

from spinexr.data.base import (DICOM_SUFFIXES, LoadedDataset, ProblemLog, box_problem, finish,
                               image_size_of_file, parse_float, write_text_atomic)
from spinexr.data.writer import DatasetWriter

COLUMNS: tuple[str, ...] = ("study_id", "series_id", "image_id", "rad_id", "lesion_type",
                            "xmin", "ymin", "xmax", "ymax")
_REQUIRED = ("study_id", "image_id", "lesion_type", "xmin", "ymin", "xmax", "ymax")
_MRI_REQUIRED = ("study_id", "image_id", "region", "grade", "xmin", "ymin", "xmax", "ymax")
_COORDS = ("xmin", "ymin", "xmax", "ymax")
_SPLIT_ORDER = ("train", "val", "valid", "test")


@dataclass
class _Image:
    """The rows of one image_id in one CSV."""

    line: int
    study_id: str
    boxes: list[tuple[int, Box]] = field(default_factory=list)
    no_finding: list[int] = field(default_factory=list)
    grades: dict[str, int] | None = None     # MRI variant: region -> grade index


def vindr_csvs(root: Path, split: str | None) -> list[tuple[str, Path]]:
    """``(split, csv path)`` pairs to read: ``split`` alone, or every ``annotations/*.csv``."""
    ann = root / "annotations"
    if split is not None:
        path = ann / f"{split}.csv"
        if not path.is_file():
            found = sorted(p.name for p in ann.glob("*.csv")) if ann.is_dir() else []
            raise DatasetError(f"no VinDr annotation file for split {split!r} (found {found}); "
                               "expected annotations/<split>.csv", str(path))
        return [(split, path)]
    paths = sorted(ann.glob("*.csv")) if ann.is_dir() else []
    if not paths:
        raise DatasetError("no annotations/*.csv: not a VinDr-SpineXR layout", str(ann))
    order = {name: i for i, name in enumerate(_SPLIT_ORDER)}
    paths.sort(key=lambda p: (order.get(p.stem, len(order)), p.stem))
    return [(p.stem, p) for p in paths]


def load_vindr(root: Path | str, *, split: str | None = None, strict: bool = True,
               check_files: bool = True) -> LoadedDataset:
    """Read VinDr-SpineXR annotations into one sample per image.

    Args:
        root: the directory holding ``annotations/`` and ``<split>_images/``.
        split: ``"train"`` or ``"test"`` (any ``annotations/<split>.csv``); ``None`` reads all.
        strict: raise :class:`~spinexr.errors.DatasetError` on any problem, else skip the
            affected images and report the problems in ``LoadedDataset.problems``.
        check_files: check that each image exists and read its size from the DICOM header
            (``stop_before_pixels``) to check the boxes against it.

    Returns:
        samples with ``label`` 0 (only ``No finding``) or 1, canonical lesion class names
        (``Spondylolysthesis`` -> ``Spondylolisthesis``, the 6 rare classes -> ``Other lesions``).
        From an MRI-variant CSV: ``label`` ``None`` (no triage label), region boxes (``level``
        set when given) and ``grades`` {region: index into ``STENOSIS_GRADES``}; the classes
        are then ``STENOSIS_REGIONS`` (after the lesion classes when both kinds are read).
    """
    root = Path(root)
    log = ProblemLog()
    samples: list[Sample] = []
    seen: dict[str, str] = {}
    files = vindr_csvs(root, split)
    kinds = set()
    for name, path in files:
        images, mri = _read_csv(path, log)
        kinds.add(mri)
        for image_id, rec in images.items():
            where = f"{path}:{rec.line}"
            if image_id in seen:
                log.add(path, rec.line, f"duplicate image id {image_id!r}, also at "
                                        f"{seen[image_id]}", key=image_id)
                continue
            seen[image_id] = where
            samples.append(_to_sample(root, name, path, image_id, rec, log, check_files))
    classes = (LESION_CLASSES if False in kinds else ()) + (STENOSIS_REGIONS if True in kinds
                                                            else ())
    return finish("vindr", root, classes, samples, log, strict=strict,
                  source=files[0][1] if len(files) == 1 else root / "annotations")


def _read_csv(path: Path, log: ProblemLog) -> tuple[dict[str, _Image], bool]:
    """The images of one CSV, and whether it is the MRI variant (a ``region`` column)."""
    images: dict[str, _Image] = {}
    with path.open(newline="", encoding="utf-8-sig") as f:
        reader = csv.reader(f)
        header = [h.strip() for h in next(reader, [])]
        mri = "region" in header and "lesion_type" not in header
        required, expected = (_MRI_REQUIRED, MRI_COLUMNS) if mri else (_REQUIRED, COLUMNS)
        missing = [c for c in required if c not in header]
        if missing:
            log.add(path, 1, f"missing column(s) {missing}; expected {list(expected)}")
            return images, mri
        col = {name: header.index(name) for name in header}
        add = _add_mri_row if mri else _add_row
        for row in reader:
            if not row or all(not c.strip() for c in row):
                continue
            line = reader.line_num
            if len(row) != len(header):
                log.add(path, line, f"malformed line: {len(row)} fields, the header has "
                                    f"{len(header)}")
                continue
            fields = {k: row[i].strip() for k, i in col.items()}
            rec = _image_of(fields, path, line, images, log)
            if rec is not None:
                add(fields, rec, path, line, log)
    return images, mri


def _image_of(row: dict[str, str], path: Path, line: int, images: dict[str, _Image],
              log: ProblemLog) -> _Image | None:
    """The record of the row's image (created on its first row), its study id checked."""
    image_id = row["image_id"]
    if not image_id:
        log.add(path, line, "empty image_id")
        return None
    rec = images.setdefault(image_id, _Image(line, row["study_id"]))
    if not row["study_id"]:
        log.add(path, line, f"empty study_id for image {image_id!r}", key=image_id)
    elif rec.study_id != row["study_id"]:
        log.add(path, line, f"image {image_id!r} has study_id {row['study_id']!r} here and "
                            f"{rec.study_id!r} at line {rec.line}", key=image_id)
    return rec


def _add_row(row: dict[str, str], rec: _Image, path: Path, line: int, log: ProblemLog) -> None:
    """One lesion (or ``No finding``) row of image record ``rec``."""
    image_id = row["image_id"]
    lesion = row["lesion_type"]
    if lesion == NO_FINDING:
        if any(row[c] for c in _COORDS):
            log.add(path, line, f"'{NO_FINDING}' row with coordinates", key=image_id)
        rec.no_finding.append(line)
        return
    box = _parse_box(row, path, line, log)
    if box is not None:
        rec.boxes.append((line, box))
    else:
        log.bad_keys.add(image_id)


def _grade_index(text: str) -> int | None:
    """A grade of :data:`STENOSIS_GRADES` given by name (any case) or index, as its index."""
    grade = text.strip().casefold()
    if grade in STENOSIS_GRADES:
        return STENOSIS_GRADES.index(grade)
    return int(grade) if grade.isdigit() and int(grade) < len(STENOSIS_GRADES) else None


def _add_mri_row(row: dict[str, str], rec: _Image, path: Path, line: int,
                 log: ProblemLog) -> None:
    """One region row of the MRI variant: its box (level from ``level``) and its grade."""
    image_id = row["image_id"]
    grades = rec.grades = {} if rec.grades is None else rec.grades
    region, index = row["region"], _grade_index(row["grade"])
    if region not in STENOSIS_REGIONS:
        log.add(path, line, f"unknown region {region!r}; expected one of "
                            f"{list(STENOSIS_REGIONS)}", key=image_id)
    elif index is None:
        log.add(path, line, f"unknown grade {row['grade']!r}; expected one of "
                            f"{list(STENOSIS_GRADES)} or 0..{len(STENOSIS_GRADES) - 1}",
                key=image_id)
    elif region in grades:
        log.add(path, line, f"region {region!r} twice on image {image_id!r}; give one row "
                            "per region", key=image_id)
    else:
        box = _coords_box(row, region, path, line, log)
        if box is None:
            log.bad_keys.add(image_id)
            return
        rec.boxes.append((line, replace(box, level=row.get("level") or None)))
        grades[region] = index


def _parse_box(row: dict[str, str], path: Path, line: int, log: ProblemLog) -> Box | None:
    lesion = row["lesion_type"]
    name = canonical_lesion(lesion)
    if name is None:
        log.add(path, line, f"unknown class {lesion!r}; expected one of {list(LESION_CLASSES)}, "
                            f"an alias or '{NO_FINDING}'")
        return None
    return _coords_box(row, name, path, line, log, shown=lesion)


def _coords_box(row: dict[str, str], name: str, path: Path, line: int, log: ProblemLog,
                shown: str | None = None) -> Box | None:
    """The row's box labelled ``name``, or ``None`` with a problem logged."""
    values = []
    for c in _COORDS:
        value = parse_float(row[c])
        if value is None:
            reason = "missing coordinate" if not row[c] else "non-numeric coordinate"
            log.add(path, line, f"{reason} {c}={row[c]!r} for {shown or name!r}")
            return None
        values.append(value)
    box = Box(*values, label=name)
    problem = box_problem(box, None, None)
    if problem:
        log.add(path, line, problem)
        return None
    return box


def _to_sample(root: Path, split: str, path: Path, image_id: str, rec: _Image, log: ProblemLog,
               check_files: bool) -> Sample:
    if rec.no_finding and rec.boxes:
        log.add(path, rec.no_finding[0], f"image {image_id!r} has a '{NO_FINDING}' row and "
                                         f"lesion rows (line {rec.boxes[0][0]})", key=image_id)
    image_path = root / f"{split}_images" / f"{image_id}.dicom"
    width = height = None
    if check_files:
        image_path = _find_image(image_path)
        if not image_path.is_file():
            log.add(path, rec.line, f"missing image file {image_path}", key=image_id)
        else:
            try:
                width, height = image_size_of_file(image_path)
            except DatasetError as exc:
                log.add(path, rec.line, f"image {image_path}: {exc.reason}", key=image_id)
        for line, box in rec.boxes:
            problem = box_problem(box, width, height)
            if problem:
                log.add(path, line, f"image {image_id!r}: {problem}", key=image_id)
    boxes = tuple(box for _, box in rec.boxes)
    sample = Sample(image_id=image_id, image_path=image_path, group=rec.study_id or image_id,
                    boxes=boxes, label=1 if boxes else 0, width=width, height=height,
                    split=split)
    # an MR slice's truth is its region grades; triage (normal/abnormal) is not run on it
    return sample if rec.grades is None else replace(sample, label=None,
                                                     grades=dict(rec.grades))


def _find_image(path: Path) -> Path:
    if path.is_file():
        return path
    alt = path.with_suffix(".dcm")
    return alt if alt.is_file() else path


class VindrWriter(DatasetWriter):
    """Writes the published VinDr-SpineXR layout (see the module docstring).

    Boxes must use canonical lesion classes; they are written with the published spelling
    (:func:`~spinexr.labels.vindr_name`) and 2-decimal coordinates. An image without boxes
    gets a ``No finding`` row. ``study_id`` is the sample's group; ``series_id`` is derived from
    the image id; ``rad_id`` is ``"R1"``. Image sizes come from the DICOM files when read back;
    vertebrae and grades are not part of this layout and are not written (``coco`` keeps them).
    """

    layout = "vindr"
    rad_id = "R1"
    columns: tuple[str, ...] = COLUMNS

    def __init__(self, root: Path | str, *, split: str = "train",
                 classes: Sequence[str] = LESION_CLASSES) -> None:
        unknown = [c for c in classes if canonical_lesion(c) != c]
        if unknown:
            raise ConfigError(f"VinDr layout holds lesion classes only; {unknown} are not in "
                              f"{list(LESION_CLASSES)}", "classes")
        super().__init__(root, split=split, classes=classes)
        self._rows: list[list[str]] = []

    def _annotation_files(self) -> list[Path]:
        return [self.root / "annotations" / f"{self.split}.csv"]

    def _check_sample(self, sample: Sample) -> None:
        super()._check_sample(sample)
        derived = 1 if sample.boxes else 0
        if sample.label is not None and sample.label != derived:
            raise ConfigError(f"image {sample.image_id!r} has label {sample.label} but "
                              f"{len(sample.boxes)} box(es); the VinDr CSV derives the label from "
                              "the boxes (0 = none, 1 = any)", "sample.label")
        if not sample.group or "," in sample.group:
            raise ConfigError(f"group {sample.group!r} of image {sample.image_id!r} cannot be "
                              "a study_id", "sample.group")

    def _image_path(self, sample: Sample, suffix: str) -> Path:
        if suffix.lower() not in DICOM_SUFFIXES:
            raise ConfigError(f"suffix {suffix!r}: the VinDr layout stores DICOM files "
                              "('.dicom')", "suffix")
        return self.root / f"{self.split}_images" / f"{sample.image_id}{suffix}"

    def _head(self, sample: Sample) -> list[str]:
        """The first four columns of a row: study, series (derived from the image id), image
        and reader ids."""
        series = hashlib.sha256(f"series:{sample.image_id}".encode()).hexdigest()[:32]
        return [sample.group, series, sample.image_id, self.rad_id]

    def _record(self, sample: Sample, path: Path, image: bytes, suffix: str) -> None:
        head = self._head(sample)
        if not sample.boxes:
            self._rows.append(head + [NO_FINDING, "", "", "", ""])
        for box in sample.boxes:
            self._rows.append(head + [vindr_name(box.label)]
                              + [f"{v:.2f}" for v in box.as_list()])

    def _write_annotations(self) -> None:
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        writer.writerow(self.columns)
        writer.writerows(self._rows)
        write_text_atomic(self._annotation_files()[0], buf.getvalue())


#: Columns of the MRI variant: one row per stenosis region, its disc level and its grade name.
MRI_COLUMNS: tuple[str, ...] = ("study_id", "series_id", "image_id", "rad_id", "region", "level",
                                "grade", "xmin", "ymin", "xmax", "ymax")


class VindrMriWriter(VindrWriter):
    """The VinDr layout for axial lumbar MR slices (``spinexr phantom --task mri --layout
    vindr``): ``<split>_images/<image_id>.dicom`` and ``annotations/<split>.csv`` with
    :data:`MRI_COLUMNS`, one row per region box: the region name (a class of the writer, e.g.
    ``STENOSIS_REGIONS``), the box's ``level`` (e.g. ``L4-L5``, empty when unknown), the grade
    name ``grades[sample.grades[region]]`` and the box to 2 decimals. Every box needs a grade.
    """

    columns = MRI_COLUMNS

    def __init__(self, root: Path | str, *, split: str = "train", classes: Sequence[str],
                 grades: Sequence[str]) -> None:
        DatasetWriter.__init__(self, root, split=split, classes=classes)
        self.grades = tuple(grades)
        self._rows: list[list[str]] = []

    def _check_sample(self, sample: Sample) -> None:
        DatasetWriter._check_sample(self, sample)
        for box in sample.boxes:
            index = sample.grades.get(box.label)
            if not isinstance(index, int) or not 0 <= index < len(self.grades):
                raise ConfigError(f"image {sample.image_id!r}: region {box.label!r} has grade "
                                  f"{index!r}; need an index into {list(self.grades)}",
                                  "sample.grades")
        if not sample.group or "," in sample.group:
            raise ConfigError(f"group {sample.group!r} of image {sample.image_id!r} cannot be "
                              "a study_id", "sample.group")

    def _record(self, sample: Sample, path: Path, image: bytes, suffix: str) -> None:
        head = self._head(sample)
        for box in sample.boxes:
            self._rows.append(head + [box.label, box.level or "",
                                      self.grades[sample.grades[box.label]]]
                              + [f"{v:.2f}" for v in box.as_list()])
