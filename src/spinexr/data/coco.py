"""COCO detection JSON: ``annotations/instances_<split>.json`` + ``images/<split>/<file_name>``.

``bbox`` is ``[x, y, w, h]`` in pixels and becomes ``[x1, y1, x2, y2]``. Optional keys of an
image record that spinexr reads and writes (other tools ignore them): ``study_id`` or
``patient_id`` (the group; else the image itself), ``label`` (else 1 when the image has any
annotation), ``vertebrae`` (``[{"bbox": [x, y, w, h], "level": "L4"}, ...]``) and ``grades``
(``{"degeneration": 2}``). An annotation may carry ``level`` and ``score``.

Problems are reported with the line of the JSON object they are about.
"""
from __future__ import annotations

import bisect
import json
import json.decoder
import json.scanner
from pathlib import Path
from typing import Any

from spinexr.errors import DatasetError
from spinexr.labels import VERTEBRA_CLASS, canonical_lesion
from spinexr.types import Box, Sample

from spinexr.data.base import (LoadedDataset, ProblemLog, box_problem, finish, image_size_of_file,
                               write_text_atomic)
from spinexr.data.writer import DatasetWriter, size_of


class _Obj(dict):
    """A JSON object that remembers the line of its opening brace."""

    line = 1


def _load_json(path: Path, log: ProblemLog) -> Any:
    """Parse ``path`` with every object an :class:`_Obj`; ``None`` (and a problem) if invalid."""
    text = path.read_text(encoding="utf-8-sig")
    newlines = [i for i, c in enumerate(text) if c == "\n"]

    def parse_object(s_and_end, strict, scan_once, object_hook, object_pairs_hook, memo=None):
        obj, end = json.decoder.JSONObject(s_and_end, strict, scan_once, None, None, memo)
        out = _Obj(obj)
        out.line = bisect.bisect_left(newlines, s_and_end[1] - 1) + 1
        return out, end

    decoder = json.JSONDecoder()
    decoder.parse_object = parse_object
    decoder.scan_once = json.scanner.py_make_scanner(decoder)
    try:
        return decoder.decode(text)
    except json.JSONDecodeError as exc:
        log.add(path, exc.lineno, f"invalid JSON: {exc.msg} (column {exc.colno})")
        return None


def _line(obj: Any, default: int = 1) -> int:
    return obj.line if isinstance(obj, _Obj) else default


def coco_files(root: Path, split: str | None) -> list[tuple[str, Path]]:
    """``(split, json path)`` pairs: ``instances_<split>.json`` alone, or all of them."""
    ann = root / "annotations"
    if split is not None:
        path = ann / f"instances_{split}.json"
        if not path.is_file():
            raise DatasetError(f"no COCO annotation file for split {split!r}; expected "
                               "annotations/instances_<split>.json", str(path))
        return [(split, path)]
    paths = sorted(ann.glob("instances_*.json")) if ann.is_dir() else []
    if not paths:
        raise DatasetError("no annotations/instances_*.json: not a COCO layout", str(ann))
    return [(p.stem[len("instances_"):], p) for p in paths]


def load_coco(root: Path | str, *, split: str | None = None, strict: bool = True,
              check_files: bool = True) -> LoadedDataset:
    """Read a COCO detection dataset.

    Args:
        root: the directory holding ``annotations/`` and ``images/``.
        split: read ``annotations/instances_<split>.json`` only; ``None`` reads every split.
        strict: raise on any problem, else skip affected images and list the problems.
        check_files: check that every image exists; read sizes missing from the JSON from the
            image headers.

    Returns:
        classes are the category names in id order (lesion aliases canonicalized); the sample
        id is ``file_name`` without its suffix.
    """
    root = Path(root)
    log = ProblemLog()
    samples: list[Sample] = []
    classes: dict[str, None] = {}
    seen: dict[str, str] = {}
    files = coco_files(root, split)
    for name, path in files:
        doc = _load_json(path, log)
        if doc is None:
            continue
        if not isinstance(doc, dict) or not all(
                isinstance(doc.get(k), list) for k in ("images", "annotations", "categories")):
            log.add(path, 1, "expected an object with lists 'images', 'annotations', 'categories'")
            continue
        cats = _categories(doc["categories"], path, log)
        classes.update(dict.fromkeys(cats.values()))
        reader = _SplitReader(root, name, path, cats, log, check_files)
        samples.extend(reader.read(doc, seen))
    return finish("coco", root, tuple(classes), samples, log, strict=strict,
                  source=files[0][1] if len(files) == 1 else root / "annotations")


def _categories(items: list, path: Path, log: ProblemLog) -> dict[int, str]:
    cats: dict[int, str] = {}
    for item in items:
        cid, name = (item.get("id"), item.get("name")) if isinstance(item, dict) else (None, None)
        if not isinstance(cid, int) or not isinstance(name, str) or not name.strip():
            shown = dict(item) if isinstance(item, dict) else item
            log.add(path, _line(item), f"malformed category {shown!r}: needs an integer 'id' "
                                       "and a 'name'")
        elif cid in cats:
            log.add(path, _line(item), f"duplicate category id {cid}")
        else:
            cats[cid] = canonical_lesion(name) or name.strip()
    return cats


class _SplitReader:
    """Reads one instances_<split>.json document into samples."""

    def __init__(self, root: Path, split: str, path: Path, cats: dict[int, str],
                 log: ProblemLog, check_files: bool) -> None:
        self.root, self.split, self.path, self.cats = root, split, path, cats
        self.log, self.check_files = log, check_files

    def read(self, doc: dict, seen: dict[str, str]) -> list[Sample]:
        keys: dict[int, str] = {}
        records: list[tuple[str, dict]] = []
        for rec in doc["images"]:
            key = self._image_key(rec, keys, seen)
            if key is not None:
                records.append((key, rec))
        boxes = self._annotations(doc["annotations"], keys, dict(records))
        return [self._sample(key, rec, boxes.get(rec["id"], [])) for key, rec in records]

    def _image_key(self, rec: Any, keys: dict[int, str], seen: dict[str, str]) -> str | None:
        line = _line(rec)
        if not isinstance(rec, dict) or not isinstance(rec.get("id"), int) or not isinstance(
                rec.get("file_name"), str) or not rec["file_name"].strip():
            self.log.add(self.path, line, "malformed image record: needs an integer 'id' and a "
                                          "'file_name'")
            return None
        key = Path(rec["file_name"]).with_suffix("").as_posix()
        if rec["id"] in keys:
            self.log.add(self.path, line, f"duplicate image id {rec['id']}", key=keys[rec["id"]])
            self.log.bad_keys.add(key)
            return None
        keys[rec["id"]] = key
        if key in seen:
            self.log.add(self.path, line, f"duplicate image {key!r}, also at {seen[key]}", key=key)
        seen[key] = f"{self.path}:{line}"
        return key

    def _annotations(self, items: list, keys: dict[int, str],
                     records: dict[str, dict]) -> dict[int, list[tuple[int, Box]]]:
        out: dict[int, list[tuple[int, Box]]] = {}
        ann_ids: set[Any] = set()
        for ann in items:
            line = _line(ann)
            if not isinstance(ann, dict) or ann.get("image_id") not in keys:
                image_id = ann.get("image_id") if isinstance(ann, dict) else None
                self.log.add(self.path, line, f"annotation refers to unknown image id {image_id!r}")
                continue
            key = keys[ann["image_id"]]
            if ann.get("id") in ann_ids:
                self.log.add(self.path, line, f"duplicate annotation id {ann.get('id')!r}", key=key)
            ann_ids.add(ann.get("id"))
            label = self.cats.get(ann.get("category_id"))
            if label is None:
                self.log.add(self.path, line, f"unknown class: category_id "
                                              f"{ann.get('category_id')!r} is not in categories",
                             key=key)
                continue
            box = self._box(ann, label, line, key)
            if box is not None:
                out.setdefault(ann["image_id"], []).append((line, box))
        return out

    def _box(self, obj: dict, label: str, line: int, key: str) -> Box | None:
        bbox = obj.get("bbox")
        if not isinstance(bbox, list) or len(bbox) != 4:
            self.log.add(self.path, line, f"malformed bbox {bbox!r}: expected [x, y, w, h]",
                         key=key)
            return None
        if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in bbox):
            self.log.add(self.path, line, f"non-numeric coordinate in bbox {bbox!r}", key=key)
            return None
        x, y, w, h = (float(v) for v in bbox)
        level, score = obj.get("level"), obj.get("score")
        box = Box(x, y, round(x + w, 6), round(y + h, 6), label=label,
                  score=float(score) if isinstance(score, (int, float)) else None,
                  level=level if isinstance(level, str) else None)
        problem = box_problem(box, None, None)
        if problem:
            self.log.add(self.path, line, problem, key=key)
            return None
        return box

    def _sample(self, key: str, rec: dict, boxes: list[tuple[int, Box]]) -> Sample:
        image_path = self._resolve(rec["file_name"], key, _line(rec))
        width, height = self._size(rec, image_path, key)
        for line, box in boxes:
            problem = box_problem(box, width, height)
            if problem:
                self.log.add(self.path, line, f"image {key!r}: {problem}", key=key)
        vertebrae = [b for v in rec.get("vertebrae") or [] if isinstance(v, dict) and (
            b := self._box(v, str(v.get("label") or VERTEBRA_CLASS), _line(v), key))]
        grades = rec.get("grades") if isinstance(rec.get("grades"), dict) else {}
        group = rec.get("study_id") or rec.get("patient_id") or key
        label = rec.get("label")
        if not isinstance(label, int) or isinstance(label, bool):
            label = int(bool(boxes))
        return Sample(image_id=key, image_path=image_path, group=str(group),
                      boxes=tuple(b for _, b in boxes), label=label, width=width, height=height,
                      vertebrae=tuple(vertebrae), grades=dict(grades), split=self.split)

    def _resolve(self, file_name: str, key: str, line: int) -> Path:
        candidates = [self.root / "images" / self.split / file_name, self.path.parent / file_name,
                      self.root / "images" / file_name, self.root / file_name]
        if not self.check_files:
            return candidates[0]
        for path in candidates:
            if path.is_file():
                return path
        self.log.add(self.path, line, f"missing image file {file_name!r} (looked in images/"
                                      f"{self.split}/, images/ and beside the JSON)", key=key)
        return candidates[0]

    def _size(self, rec: dict, image_path: Path, key: str) -> tuple[int | None, int | None]:
        width, height = rec.get("width"), rec.get("height")
        if width is None and height is None:
            if self.check_files and image_path.is_file():
                try:
                    return image_size_of_file(image_path)
                except DatasetError as exc:
                    self.log.add(self.path, _line(rec), exc.reason, key=key)
            return None, None
        if not all(isinstance(v, int) and not isinstance(v, bool) and v > 0
                   for v in (width, height)):
            self.log.add(self.path, _line(rec), f"width/height must be positive integers, found "
                                                f"{width!r}/{height!r}", key=key)
            return None, None
        return width, height


def _xywh(box: Box) -> list[float]:
    x1, y1, x2, y2 = (round(v, 2) for v in box.as_list())
    return [x1, y1, round(x2 - x1, 2), round(y2 - y1, 2)]


class CocoWriter(DatasetWriter):
    """Writes ``images/<split>/<image_id><suffix>`` and ``annotations/instances_<split>.json``.

    Image ids and annotation ids count from 1 in the order added; category ids are
    ``classes`` positions + 1. Coordinates are rounded to 2 decimals.
    """

    layout = "coco"

    def __init__(self, root: Path | str, *, split: str = "train", classes=()) -> None:
        super().__init__(root, split=split, classes=classes)
        self._images: list[dict] = []
        self._anns: list[dict] = []

    def _annotation_files(self) -> list[Path]:
        return [self.root / "annotations" / f"instances_{self.split}.json"]

    def _image_path(self, sample: Sample, suffix: str) -> Path:
        return self.root / "images" / self.split / f"{sample.image_id}{suffix}"

    def _record(self, sample: Sample, path: Path, image: bytes, suffix: str) -> None:
        width, height = size_of(sample, image, suffix)
        image_id = len(self._images) + 1
        rec: dict[str, Any] = {"id": image_id, "file_name": path.name, "width": width,
                               "height": height, "study_id": sample.group}
        if sample.label is not None:
            rec["label"] = int(sample.label)
        if sample.vertebrae:
            rec["vertebrae"] = [_with_level({"bbox": _xywh(b), "label": b.label}, b)
                                for b in sample.vertebrae]
        if sample.grades:
            rec["grades"] = {str(k): int(v) for k, v in sample.grades.items()}
        self._images.append(rec)
        for box in sample.boxes:
            xywh = _xywh(box)
            ann = {"id": len(self._anns) + 1, "image_id": image_id, "bbox": xywh,
                   "category_id": self.classes.index(box.label) + 1, "iscrowd": 0,
                   "area": round(xywh[2] * xywh[3], 2)}
            if box.score is not None:
                ann["score"] = float(box.score)
            self._anns.append(_with_level(ann, box))

    def _write_annotations(self) -> None:
        cats = [{"id": i + 1, "name": c,
                 "supercategory": "lesion" if canonical_lesion(c) else "none"}
                for i, c in enumerate(self.classes)]
        doc = {"info": {"description": "written by spinexr"}, "licenses": [],
               "categories": cats, "images": self._images, "annotations": self._anns}
        text = json.dumps(doc, indent=1, sort_keys=True) + "\n"
        write_text_atomic(self._annotation_files()[0], text)


def _with_level(obj: dict, box: Box) -> dict:
    if box.level is not None:
        obj["level"] = box.level
    return obj
