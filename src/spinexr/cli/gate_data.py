"""The labelled sets ``spinexr evaluate --task gate`` reads: which files are spine radiographs.

Layouts of DATA, tried in this order:

- ``manifest.json``: a list of objects with ``file`` (a path under DATA) and ``label``
  (``spine`` or ``other``; also ``positive`` / ``negative``), optional ``view``, ``near_case``
  (bool) and ``split``; other keys are ignored;
- ``manifest.csv``: columns ``file,label`` and optional ``view,near_case,split``;
- ``spine/`` and ``other/`` folders, searched recursively, and optionally ``near/`` (near cases,
  labelled other); the view is the subfolder;
- a YOLO detection set: ``images/`` or ``<split>/images/``, every image a spine radiograph.

A near case is a non-spine radiograph that shows part of a spine (an AP pelvis with L4-L5, a
lateral cephalogram with C1-C3): the likeliest image to slip through the gate. In a manifest it is
decided from the ``view`` text (:data:`NEAR_VIEW_WORDS`) of a radiograph (a row whose
``modality`` is absent or an X-ray one, so an axial CT of the pelvis is not a near case); a
``near_case`` key overrides that.

A split file (``--split-file``) is JSON, ``{file: split}`` or ``{split: [files]}``, with files
relative to DATA (or to the split file's folder); it replaces any split the layout gave.
"""
from __future__ import annotations

import csv
import json
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Mapping

from spinexr.cli.analyze_cmd import expand
from spinexr.errors import DatasetError, FileAccessError

#: Words of a manifest ``view`` that make a non-spine image a near case (case-insensitive).
NEAR_VIEW_WORDS: tuple[str, ...] = ("pelvis", "cephalogram")
#: ``modality`` values of a manifest row that count as radiographs (compared without case, "-").
_XRAY_MODALITIES = frozenset({"xray", "radiograph", "cr", "dx", "rf"})
_LABELS = {"spine": True, "positive": True, "other": False, "negative": False}
_BOOLS = {"true": True, "yes": True, "1": True, "false": False, "no": False, "0": False}
_FOLDERS = {"spine": True, "other": False, "near": False}


@dataclass(frozen=True)
class GateItem:
    """One labelled file. ``file`` is its path under DATA as listed (posix), ``view`` the
    manifest's view text or the subfolder, ``split`` ``None`` when unknown."""

    path: Path
    file: str
    spine: bool
    view: str
    near_case: bool = False
    split: str | None = None

    @property
    def label(self) -> str:
        return "spine" if self.spine else "other"


@dataclass(frozen=True)
class GateSet:
    """The files to evaluate. ``layout``: ``manifest.json``, ``manifest.csv``, ``folders`` or
    ``yolo``; ``split_file_unmatched``: split-file entries that name no file of DATA."""

    root: Path
    layout: str
    items: tuple[GateItem, ...]
    split: str | None = None
    split_file_unmatched: int = 0


def load_gate_set(root: Path, *, split_file: Path | None = None,
                  split: str | None = None) -> GateSet:
    """Read the labelled files of ``root`` (see the module docstring for the layouts).

    Raises:
        DatasetError: no known layout, a bad manifest row (every problem is listed), a listed
            file that is missing, an unusable split file, or no file left in ``split``.
    """
    root = Path(root)
    if not root.is_dir():
        raise DatasetError("dataset directory not found" if not root.exists()
                           else "not a directory", str(root))
    layout, items = _read_layout(root)
    unmatched = 0
    if split_file is not None:
        items, unmatched = _apply_split_file(root, items, Path(split_file))
    if split is not None:
        items = _only_split(root, items, split)
    if not items:
        raise DatasetError(f"no image files found ({layout} layout)", str(root))
    return GateSet(root, layout, tuple(items), split, unmatched)


def _read_layout(root: Path) -> tuple[str, list[GateItem]]:
    if (root / "manifest.json").is_file():
        return "manifest.json", _from_json(root, root / "manifest.json")
    if (root / "manifest.csv").is_file():
        return "manifest.csv", _from_csv(root, root / "manifest.csv")
    if any((root / name).is_dir() for name in _FOLDERS):
        return "folders", _from_folders(root)
    yolo = [root / "images"] if (root / "images").is_dir() else sorted(
        d for d in root.glob("*/images") if d.is_dir())
    if yolo:
        return "yolo", _from_yolo(root, yolo)
    raise DatasetError("no manifest.json, manifest.csv, spine/ + other/ folders or YOLO images/ "
                       "folder: see `spinexr evaluate --help` for the layouts", str(root))


# -- manifests -------------------------------------------------------------------------------------
def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise FileAccessError(f"cannot read it: {exc}", str(path)) from exc


def _from_json(root: Path, path: Path) -> list[GateItem]:
    try:
        rows = json.loads(_read_text(path))
    except json.JSONDecodeError as exc:
        raise DatasetError(f"not valid JSON: {exc}", str(path)) from exc
    if not isinstance(rows, list):
        raise DatasetError(f"expected a list of objects with 'file' and 'label', found a "
                           f"{type(rows).__name__}", str(path))
    problems: list[str] = []
    items = [_entry(root, row, f"{path.name}: entry {i}", problems, strings=False)
             for i, row in enumerate(rows)]
    return _finish(path, items, problems)


def _from_csv(root: Path, path: Path) -> list[GateItem]:
    reader = csv.DictReader(_read_text(path).splitlines())
    missing = {"file", "label"} - set(reader.fieldnames or ())
    if missing:
        raise DatasetError(f"columns {sorted(missing)} missing; the header is "
                           f"{reader.fieldnames}, need file,label[,view,near_case,split]",
                           str(path))
    problems: list[str] = []
    items = [_entry(root, row, f"{path.name}:{reader.line_num}", problems, strings=True)
             for row in reader]
    return _finish(path, items, problems)


def _finish(path: Path, items: list, problems: list[str]) -> list[GateItem]:
    seen: set[str] = set()
    for item in items:
        if item is not None and item.file in seen:
            problems.append(f"{path.name}: {item.file} is listed twice")
        elif item is not None:
            seen.add(item.file)
    if problems:
        raise DatasetError(f"{len(problems)} problem(s) in the manifest", str(path),
                           tuple(problems))
    return items


def _entry(root: Path, row: Any, where: str, problems: list[str], *,
           strings: bool) -> GateItem | None:
    """One manifest row as a :class:`GateItem`, or ``None`` with its problems noted."""
    if not isinstance(row, Mapping):
        problems.append(f"{where}: expected an object, found {type(row).__name__}")
        return None
    file, label = row.get("file"), row.get("label")
    spine = _LABELS.get(str(label).strip().lower()) if label is not None else None
    before = len(problems)
    if not isinstance(file, str) or not file.strip():
        problems.append(f"{where}: no 'file' (a path under the dataset folder)")
    elif not (root / file).is_file():
        problems.append(f"{where}: file {file} not found under {root}")
    if spine is None:
        problems.append(f"{where}: label {label!r}; use spine or other (positive, negative)")
    near = _flag(row.get("near_case"), where, problems, strings)
    if len(problems) > before:
        return None
    view = str(row.get("view") or "").strip() or _folder_of(Path(file), spine)
    if near is None:
        modality = str(row.get("modality") or "x-ray").strip().lower().replace("-", "")
        near = (not spine and modality in _XRAY_MODALITIES
                and any(w in view.lower() for w in NEAR_VIEW_WORDS))
    split = str(row.get("split") or "").strip() or None
    return GateItem(root / file, Path(file).as_posix(), spine, view, near, split)


def _flag(value: Any, where: str, problems: list[str], strings: bool) -> bool | None:
    """A ``near_case`` value: bool (or, in a CSV, true/false/yes/no/1/0); ``None``: not given."""
    if value is None or (strings and str(value).strip() == ""):
        return None
    if isinstance(value, bool):
        return value
    if strings and str(value).strip().lower() in _BOOLS:
        return _BOOLS[str(value).strip().lower()]
    problems.append(f"{where}: near_case {value!r}; use true or false")
    return None


def _folder_of(file: Path, spine: bool) -> str:
    parent = file.parent.as_posix()
    return parent if parent not in ("", ".") else ("spine" if spine else "other")


# -- folders ---------------------------------------------------------------------------------------
def _image_files(folder: Path) -> list[Path]:
    """Image and DICOM files under ``folder`` (suffixes as ``spinexr analyze``), no hidden ones."""
    return [p for p in expand([str(folder)])[0]
            if not any(part.startswith(".") for part in p.relative_to(folder).parts)]


def _item_from_file(root: Path, path: Path, spine: bool, near: bool = False,
                    split: str | None = None) -> GateItem:
    file = path.relative_to(root).as_posix()
    return GateItem(path, file, spine, path.parent.relative_to(root).as_posix(), near, split)


def _from_folders(root: Path) -> list[GateItem]:
    return [_item_from_file(root, f, spine, near=name == "near")
            for name, spine in _FOLDERS.items() if (root / name).is_dir()
            for f in _image_files(root / name)]


def _from_yolo(root: Path, folders: list[Path]) -> list[GateItem]:
    return [_item_from_file(root, f, True, split=None if d == root / "images" else d.parent.name)
            for d in folders for f in _image_files(d)]


# -- splits ----------------------------------------------------------------------------------------
def _split_mapping(raw: Any, path: Path) -> dict[str, str]:
    """``{file: split}`` from either accepted shape of a split file."""
    if isinstance(raw, Mapping) and all(isinstance(v, str) for v in raw.values()):
        return {str(k): v for k, v in raw.items()}
    if isinstance(raw, Mapping) and all(isinstance(v, list) for v in raw.values()):
        mapping: dict[str, str] = {}
        for name, files in raw.items():
            for f in files:
                if str(f) in mapping and mapping[str(f)] != name:
                    raise DatasetError(f"{f} is in splits {mapping[str(f)]!r} and {name!r}",
                                       str(path))
                mapping[str(f)] = str(name)
        return mapping
    raise DatasetError("expected a JSON object {file: split} or {split: [files]}", str(path))


def _apply_split_file(root: Path, items: list[GateItem], path: Path
                      ) -> tuple[list[GateItem], int]:
    if not path.is_file():
        raise DatasetError("split file not found", str(path))
    try:
        mapping = _split_mapping(json.loads(_read_text(path)), path)
    except json.JSONDecodeError as exc:
        raise DatasetError(f"not valid JSON: {exc}", str(path)) from exc
    beside = {(path.parent / k).resolve(): k for k in mapping}
    used, out = set(), []
    for item in items:
        key = item.file if item.file in mapping else beside.get(item.path.resolve())
        if key is not None:
            used.add(key)
        out.append(replace(item, split=None if key is None else mapping[key]))
    if mapping and not used:
        raise DatasetError(f"none of the {len(mapping)} files it lists is in {root} (give "
                           "paths relative to the dataset folder)", str(path))
    return out, len(mapping) - len(used)


def _only_split(root: Path, items: list[GateItem], split: str) -> list[GateItem]:
    present = sorted({i.split for i in items if i.split is not None})
    if not present:
        raise DatasetError(f"--split {split} given but no file has a split: pass "
                           "--split-file FILE.json", str(root))
    kept = [i for i in items if i.split == split]
    if not kept:
        raise DatasetError(f"no file in split {split!r}; splits present: {present}", str(root))
    return kept
