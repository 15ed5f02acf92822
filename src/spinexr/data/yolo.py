"""YOLO txt (ultralytics layout): ``data.yaml`` + ``<split>/images/*`` + ``<split>/labels/*.txt``.

A label line is ``cls cx cy w h`` normalized to [0, 1], or a polygon ``cls x1 y1 x2 y2 ...``
(ultralytics segment format; its bounding box is used). An image without a label file has no
boxes. Pixel boxes need the image size, read from each image header (no decoding).

Groups come from an optional ``groups.csv`` (``image_id,group``) beside ``data.yaml``, else from
the file name (Roboflow ``11_jpg.rf.<hash>`` -> ``11``).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from spinexr.errors import DatasetError
from spinexr.types import Box, Sample

from spinexr.data.base import (GROUPS_FILE, IMAGE_SUFFIXES, LoadedDataset, ProblemLog, box_problem,
                               derive_group, finish, image_size_of_file, merge_groups_file,
                               parse_float, read_groups, write_text_atomic)
from spinexr.data.writer import DatasetWriter, size_of

_YAML_KEYS = ("train", "val", "test")
_DISK_SPLITS = ("train", "valid", "val", "test")
_ALIASES = {"val": "valid", "valid": "val"}
_EPS = 1e-6  # normalized coordinates this far outside [0, 1] are rounding, not errors


def _read_yaml(path: Path) -> dict[str, Any]:
    import yaml

    try:
        config = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else 1
        raise DatasetError("invalid YAML", str(path),
                           problems=(f"{path}:{line}: {exc}",)) from exc
    if not isinstance(config, dict):
        raise DatasetError("expected a mapping with 'names' and split paths", str(path))
    return config


def _names(config: dict[str, Any], path: Path) -> tuple[str, ...]:
    names = config.get("names")
    if isinstance(names, dict) and sorted(names) == list(range(len(names))):
        names = [names[i] for i in range(len(names))]
    if not isinstance(names, list) or not names or not all(isinstance(n, str) for n in names):
        raise DatasetError(f"'names' must be a list of class names (or {{0: name, ...}}), "
                           f"found {names!r}", str(path))
    return tuple(n.strip() for n in names)


def _resolve(yaml_dir: Path, config: dict[str, Any], value: str) -> Path | None:
    """Find the images directory a data.yaml split entry means, robustly."""
    base = config.get("path")
    candidates = []
    if isinstance(base, str) and base:
        base_dir = Path(base) if Path(base).is_absolute() else yaml_dir / base
        candidates.append(base_dir / value)
    candidates.append(yaml_dir / value)
    # Roboflow writes "../train/images", relative to a parent it never ships.
    stripped = [p for p in Path(value).parts if p not in ("..", ".")]
    if stripped:
        candidates.append(yaml_dir.joinpath(*stripped))
    return next((c for c in candidates if c.is_dir()), None)


def _split_name(images_dir: Path) -> str:
    return images_dir.parent.name if images_dir.name == "images" else images_dir.name


def yolo_split_dirs(root: Path, yaml_path: Path, config: dict[str, Any], log: ProblemLog,
                    wanted: set[str] | None = None) -> list[tuple[str, Path]]:
    """``(split, images dir)`` for each split named in data.yaml or present on disk.

    A data.yaml entry whose directory is nowhere is a problem when its split is ``wanted``
    (``None``: all).
    """
    found: dict[Path, str] = {}
    lines = yaml_path.read_text(encoding="utf-8").splitlines() if yaml_path.is_file() else []
    for key in _YAML_KEYS:
        values = config.get(key)
        for value in values if isinstance(values, list) else [values]:
            if not isinstance(value, str) or not value:
                continue
            images_dir = _resolve(yaml_path.parent, config, value)
            if images_dir is None and not (root / key / "images").is_dir() and not (
                    root / _ALIASES.get(key, key) / "images").is_dir():
                if wanted is not None and key not in wanted:
                    continue
                line = next((i for i, t in enumerate(lines, 1) if t.startswith(f"{key}:")), 1)
                log.add(yaml_path, line, f"{key} images directory {value!r} not found")
            elif images_dir is not None:
                found.setdefault(images_dir.resolve(), _split_name(images_dir))
    for name in _DISK_SPLITS:
        if (root / name / "images").is_dir():
            found.setdefault((root / name / "images").resolve(), name)
    return [(name, path) for path, name in found.items()]


def load_yolo(root: Path | str, *, split: str | None = None, strict: bool = True,
              check_files: bool = True) -> LoadedDataset:
    """Read a YOLO dataset; boxes are converted to pixels with each image's header size.

    Args:
        root: the directory holding ``data.yaml``, or the yaml file itself.
        split: ``"train"``, ``"valid"``/``"val"`` (either matches the other) or ``"test"``;
            ``None`` reads every split found.
        strict: raise on any problem, else skip affected images and list the problems.
        check_files: accepted for a uniform signature; image headers are always read since the
            sizes are needed to convert normalized boxes.

    Returns:
        samples with ``label`` 1 when the image has boxes, else 0; ``split`` is the on-disk
        split directory name (``"valid"`` for Roboflow exports).
    """
    root = Path(root)
    yaml_path = root if root.is_file() else root / "data.yaml"
    root = yaml_path.parent
    if not yaml_path.is_file():
        raise DatasetError("no data.yaml: a YOLO dataset needs one with the class 'names'",
                           str(yaml_path))
    config = _read_yaml(yaml_path)
    names = _names(config, yaml_path)
    log = ProblemLog()
    wanted = None if split is None else {split, _ALIASES.get(split, split)}
    dirs = yolo_split_dirs(root, yaml_path, config, log, wanted)
    if wanted is not None:
        dirs = [(n, d) for n, d in dirs if n in wanted]
        if not dirs:
            raise DatasetError(f"no images directory for split {split!r}", str(yaml_path))
    if not dirs:
        raise DatasetError("no split images directory found (data.yaml train/val/test or "
                           "<split>/images)", str(yaml_path))
    groups = read_groups(root / GROUPS_FILE, log)
    samples: list[Sample] = []
    seen: dict[str, Path] = {}
    for name, images_dir in dirs:
        samples.extend(_read_split(name, images_dir, names, groups, seen, log))
    return finish("yolo", root, names, samples, log, strict=strict, source=yaml_path)


def label_path(image: Path) -> Path:
    """The label file of ``image``: last ``images`` directory -> ``labels``, suffix -> ``.txt``."""
    parts = list(image.parts)
    idx = max((i for i, p in enumerate(parts[:-1]) if p == "images"), default=None)
    if idx is None:
        return image.with_suffix(".txt")
    parts[idx] = "labels"
    return Path(*parts).with_suffix(".txt")


def _read_split(name: str, images_dir: Path, names: tuple[str, ...], groups: dict[str, str],
                seen: dict[str, Path], log: ProblemLog) -> list[Sample]:
    samples = []
    images = sorted(p for p in images_dir.rglob("*") if p.is_file() and not p.name.startswith("."))
    used_labels: set[Path] = set()
    for image in images:
        if image.suffix.lower() not in IMAGE_SUFFIXES:
            log.add(image, 1, f"not an image file (suffix {image.suffix!r}); move it out of "
                              f"{images_dir}")
            continue
        key = image.stem
        if key in seen:
            log.add(image, 1, f"duplicate image id {key!r}, also {seen[key]}", key=key)
            continue
        seen[key] = image
        labels = label_path(image)
        used_labels.add(labels)
        samples.append(_read_sample(name, image, labels, names, groups, log))
    labels_dir = label_path(images_dir / "x").parent
    if labels_dir.is_dir() and labels_dir != images_dir:
        for orphan in sorted(set(labels_dir.rglob("*.txt")) - used_labels):
            log.add(orphan, 1, "label file without an image")
    return samples


def _read_sample(name: str, image: Path, labels: Path, names: tuple[str, ...],
                 groups: dict[str, str], log: ProblemLog) -> Sample:
    key = image.stem
    try:
        width, height = image_size_of_file(image)
    except DatasetError as exc:
        log.add(image, 1, exc.reason, key=key)
        width = height = None
    boxes: list[Box] = []
    if labels.is_file() and width is not None:
        boxes = _read_labels(labels, names, width, height, log, key)
    return Sample(image_id=key, image_path=image, group=groups.get(key) or derive_group(key),
                  boxes=tuple(boxes), label=1 if boxes else 0, width=width, height=height,
                  split=name)


def _read_labels(path: Path, names: tuple[str, ...], width: int, height: int, log: ProblemLog,
                 key: str) -> list[Box]:
    # Repeated lines are kept (as VinDr boxes from two readers are): identical boxes are valid.
    boxes: list[Box] = []
    for lineno, text in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        fields = tuple(text.split())
        if not fields:
            continue
        reason, box = _parse_line(fields, names, width, height)
        if reason:
            log.add(path, lineno, reason, key=key)
        else:
            boxes.append(box)
    return boxes


def _parse_line(fields: tuple[str, ...], names: tuple[str, ...], width: int,
                height: int) -> tuple[str | None, Box | None]:
    n = len(fields)
    if n != 5 and (n < 7 or n % 2 == 0):
        return (f"malformed line: {n} fields; expected 'class cx cy w h' or a polygon "
                "'class x1 y1 x2 y2 x3 y3 ...'"), None
    values = [parse_float(f) for f in fields]
    bad = [f for f, v in zip(fields, values) if v is None]
    if bad:
        return f"non-numeric value(s) {bad}", None
    cls = values[0]
    if not cls.is_integer() or not 0 <= cls < len(names):
        return f"class id {fields[0]} outside names (0..{len(names) - 1})", None
    coords = values[1:]
    if any(v < 0 or v > 1 for v in coords):
        return f"coordinates {list(fields[1:])} outside [0, 1] (not normalized?)", None
    if n == 5:
        cx, cy, w, h = coords
        edges = [cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2]
    else:
        xs, ys = coords[0::2], coords[1::2]
        edges = [min(xs), min(ys), max(xs), max(ys)]
    if any(e < -_EPS or e > 1 + _EPS for e in edges):
        return f"box edges {[round(e, 6) for e in edges]} outside the image", None
    x1, y1, x2, y2 = (min(max(e, 0.0), 1.0) for e in edges)
    box = Box(round(x1 * width, 6), round(y1 * height, 6), round(x2 * width, 6),
              round(y2 * height, 6), label=names[int(cls)])
    problem = box_problem(box, width, height)
    return (problem, None) if problem else (None, box)


class YoloWriter(DatasetWriter):
    """Writes ``<split>/images``, ``<split>/labels`` (6-decimal normalized ``cls cx cy w h``),
    ``data.yaml`` (names + split paths, merged across splits) and ``groups.csv``.

    Every image gets a label file, empty when it has no boxes. Image-level labels, vertebrae and
    grades are not part of the YOLO layout and are not written.
    """

    layout = "yolo"

    def __init__(self, root: Path | str, *, split: str = "train", classes=()) -> None:
        super().__init__(root, split=split, classes=classes)
        self._labels: list[tuple[str, list[str]]] = []
        self._groups: dict[str, str] = {}

    def _annotation_files(self) -> list[Path]:
        return [self.root / self.split / "labels"]

    def _refuse_existing(self) -> None:
        super()._refuse_existing()
        self._merged_yaml()  # fail before any image is written

    def _image_path(self, sample: Sample, suffix: str) -> Path:
        return self.root / self.split / "images" / f"{sample.image_id}{suffix}"

    def _record(self, sample: Sample, path: Path, image: bytes, suffix: str) -> None:
        width, height = size_of(sample, image, suffix)
        lines = []
        for b in sample.boxes:
            cx, cy = (b.x1 + b.x2) / 2 / width, (b.y1 + b.y2) / 2 / height
            lines.append(f"{self.classes.index(b.label)} {cx:.6f} {cy:.6f} "
                         f"{b.width / width:.6f} {b.height / height:.6f}")
        self._labels.append((sample.image_id, lines))
        self._groups[sample.image_id] = sample.group

    def _write_annotations(self) -> None:
        labels_dir = self.root / self.split / "labels"
        labels_dir.mkdir(parents=True, exist_ok=True)
        for stem, lines in self._labels:
            write_text_atomic(labels_dir / f"{stem}.txt", "".join(f"{t}\n" for t in lines))
        self._write_yaml()
        merge_groups_file(self.root / GROUPS_FILE, self._groups)

    def _write_yaml(self) -> None:
        import yaml

        config = self._merged_yaml()
        write_text_atomic(self.root / "data.yaml", yaml.safe_dump(
            config, sort_keys=True, default_flow_style=False, allow_unicode=True))

    def _merged_yaml(self) -> dict[str, Any]:
        """data.yaml with this split added; refuses other names or another path for the split."""
        path = self.root / "data.yaml"
        config = _read_yaml(path) if path.is_file() else {"names": list(self.classes)}
        if tuple(_names(config, path)) != self.classes:
            raise DatasetError(f"holds names {config.get('names')!r}, the writer was given "
                               f"{list(self.classes)}; use the same classes or an empty "
                               "directory", str(path))
        key = {"valid": "val"}.get(self.split, self.split)
        value = f"{self.split}/images"
        if config.get(key, value) != value:
            raise DatasetError(f"already maps {key!r} to {config[key]!r}, not {value!r}",
                               str(path))
        config.update({key: value, "nc": len(self.classes), "names": list(self.classes)})
        return config
