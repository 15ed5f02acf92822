"""The joint training set of the vertebra detector: real films, coned crops of them, phantoms
of every view and region, and digitally reconstructed radiographs, in one YOLO layout.

Why joint: the real set (``../shared/data/vertebrae``) is mostly AP whole-spine films; phantoms
alone do not transfer to real films. Trained together, the detector keeps what the real set
teaches and also sees lateral, cervical, coned and MONOCHROME1 views. Every image is written
through the detector's input contract (:func:`spinexr.io.contrast.apply_preprocess`), so the
contrast the model learns on is the contrast it gets at inference.

Sources (a recipe's ``data.joint`` mapping; each optional):

* ``crops: {n, seed, min_bodies, max_bodies}``: coned views cut from the real *train* images:
  a run of 2-6 adjacent labelled bodies with random margins (an L5-S1 spot film shows two).
* ``phantoms: {n, seed, coned}``: synthetic films (lateral/AP, cervical/lumbar, MONOCHROME1,
  implants, exposure and noise as :mod:`spinexr.phantom` draws them), a fraction ``coned``
  cut down to a few bodies.
* ``yolo: [DIR, ...]``: extra YOLO folders (``images/``, ``labels/``), e.g. DRRs written by
  :func:`spinexr.phantom.drr.write_drr_yolo`.

Validation mixes the real ``valid`` split with held-out phantoms (``val_phantoms``) and
DRRs (``val_yolo``), so model selection watches every source. The real ``test`` split is
never written here: the recipe evaluates it through the packed detector.
"""
from __future__ import annotations

import sys
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Iterator, Mapping, Sequence

import numpy as np

from spinexr.io import read_radiograph
from spinexr.io.contrast import apply_preprocess
from spinexr.labels import VERTEBRA_CLASS
from spinexr.types import Box

#: A box cut by a crop keeps its label when at least this fraction of its area stays inside.
MIN_VISIBLE = 0.6
#: Longest side of written phantom images (ultralytics resizes to the model input anyway).
PHANTOM_SIDE = (560, 900)


@dataclass(frozen=True)
class LabelledImage:
    """One training image in memory: float32 (H, W) in [0, 1], bone bright, and its bodies."""

    name: str
    pixels: np.ndarray
    boxes: tuple[Box, ...]
    source: str


def crop_boxes(boxes: Sequence[Box], x0: int, y0: int, x1: int, y1: int,
               min_visible: float = MIN_VISIBLE) -> tuple[Box, ...]:
    """Boxes shifted into the crop ``[x0, x1) x [y0, y1)`` and clipped to it; boxes with less
    than ``min_visible`` of their area inside are dropped."""
    out = []
    for b in boxes:
        cx1, cy1, cx2, cy2 = max(b.x1, x0), max(b.y1, y0), min(b.x2, x1), min(b.y2, y1)
        if cx2 <= cx1 or cy2 <= cy1:
            continue
        if (cx2 - cx1) * (cy2 - cy1) < min_visible * b.width * b.height:
            continue
        out.append(replace(b, x1=cx1 - x0, y1=cy1 - y0, x2=cx2 - x0, y2=cy2 - y0))
    return tuple(out)


def coned_crop(pixels: np.ndarray, boxes: Sequence[Box], rng: np.random.Generator,
               min_bodies: int = 2, max_bodies: int = 6) -> tuple[np.ndarray, tuple[Box, ...]]:
    """A coned view: a run of ``min_bodies``..``max_bodies`` adjacent bodies (head to tail)
    with random margins of 0.3-3 body widths sideways and 0.2-1.2 body heights above and
    below. Returns the crop (a copy) and its boxes, or the input unchanged when it has fewer
    than ``min_bodies`` bodies."""
    ordered = sorted(boxes, key=lambda b: b.center[1])
    if len(ordered) < min_bodies:
        return np.array(pixels), tuple(ordered)
    k = int(rng.integers(min_bodies, min(max_bodies, len(ordered)) + 1))
    start = int(rng.integers(0, len(ordered) - k + 1))
    run = ordered[start:start + k]
    w = float(np.median([b.width for b in run]))
    h = float(np.median([b.height for b in run]))
    h_img, w_img = pixels.shape
    x0 = int(max(0, min(b.x1 for b in run) - w * rng.uniform(0.3, 3.0)))
    x1 = int(min(w_img, max(b.x2 for b in run) + w * rng.uniform(0.3, 3.0)))
    y0 = int(max(0, run[0].y1 - h * rng.uniform(0.2, 1.2)))
    y1 = int(min(h_img, run[-1].y2 + h * rng.uniform(0.2, 1.2)))
    if x1 - x0 < 16 or y1 - y0 < 16:
        return np.array(pixels), tuple(ordered)
    return np.array(pixels[y0:y1, x0:x1]), crop_boxes(boxes, x0, y0, x1, y1)


def _yolo_boxes(label_file: Path, width: int, height: int) -> tuple[Box, ...]:
    out = []
    text = label_file.read_text() if label_file.is_file() else ""
    for line in text.splitlines():
        parts = line.split()
        if len(parts) != 5:
            continue
        cx, cy, bw, bh = (float(v) for v in parts[1:])
        out.append(Box((cx - bw / 2) * width, (cy - bh / 2) * height, (cx + bw / 2) * width,
                       (cy + bh / 2) * height, VERTEBRA_CLASS))
    return tuple(out)


def read_yolo_folder(root: Path, source: str) -> Iterator[LabelledImage]:
    """Images and boxes of a YOLO folder (``images/``, ``labels/``), every class a body."""
    for path in sorted((root / "images").iterdir()):
        if path.suffix.lower() not in (".png", ".jpg", ".jpeg"):
            continue
        image = read_radiograph(path)
        boxes = _yolo_boxes(root / "labels" / f"{path.stem}.txt", image.width, image.height)
        yield LabelledImage(f"{source}-{path.stem}", image.pixels, boxes, source)


def real_crops(images: Sequence[LabelledImage], n: int, seed: int, min_bodies: int = 2,
               max_bodies: int = 6) -> Iterator[LabelledImage]:
    """``n`` coned views cut from ``images`` (drawn with replacement)."""
    rng = np.random.default_rng(seed)
    usable = [im for im in images if len(im.boxes) >= min_bodies]
    for i in range(n if usable else 0):
        base = usable[int(rng.integers(len(usable)))]
        pixels, boxes = coned_crop(base.pixels, base.boxes, rng, min_bodies, max_bodies)
        yield LabelledImage(f"coned-{i:05d}", pixels, boxes, "real-coned")


def phantom_images(n: int, seed: int, coned: float = 0.3) -> Iterator[LabelledImage]:
    """``n`` phantom films of every view and region (read back through the DICOM reader, so
    MONOCHROME1 and the window are applied as for a real file); a fraction ``coned`` cut to a
    few bodies."""
    from spinexr.phantom import XrayConfig, generate_xray, xray_to_dicom
    from spinexr.phantom.dicom import to_bytes

    rng = np.random.default_rng(seed)
    for i in range(n):
        view, region = ("lateral", "ap")[i % 2], ("cervical", "lumbar")[(i // 2) % 2]
        side = int(rng.integers(*PHANTOM_SIDE))
        aspect = float(rng.uniform(0.7, 1.0))
        size = (side, max(128, int(side * aspect)))
        ph = generate_xray(seed=int(seed * 100003 + i), config=XrayConfig(
            view=view, region=region, size=size, abnormal_rate=0.4))
        pixels = read_radiograph(to_bytes(xray_to_dicom(ph))).pixels
        boxes = tuple(replace(b, label=VERTEBRA_CLASS) for b in ph.vertebrae)
        if rng.random() < coned:
            pixels, boxes = coned_crop(pixels, boxes, rng)
        yield LabelledImage(f"phantom-{view}-{region}-{i:05d}", pixels, boxes, "phantom")


def write_image(item: LabelledImage, folder: Path, preprocess: str | None) -> None:
    """Write ``item`` as 8-bit PNG (after the input contract) and its YOLO label file."""
    from PIL import Image

    pixels = apply_preprocess(item.pixels, preprocess)
    h, w = pixels.shape
    (folder / "images").mkdir(parents=True, exist_ok=True)
    (folder / "labels").mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.round(np.clip(pixels, 0, 1) * 255).astype(np.uint8)).save(
        folder / "images" / f"{item.name}.png")
    lines = [f"0 {(b.x1 + b.x2) / 2 / w:.6f} {(b.y1 + b.y2) / 2 / h:.6f} "
             f"{b.width / w:.6f} {b.height / h:.6f}" for b in item.boxes
             if b.width > 1 and b.height > 1]
    (folder / "labels" / f"{item.name}.txt").write_text("\n".join(lines) + ("\n" if lines else ""))


def _sources(real_root: Path, splits: Mapping[str, str], joint: Mapping[str, Any],
             resolve) -> dict[str, tuple[str, Any]]:
    """Folder name -> (role, a callable giving the images) for every source of the recipe."""
    def real(split):
        return lambda: read_yolo_folder(real_root / split, "real")

    out: dict[str, tuple[str, Any]] = {"train-real": ("train", real(splits["train"])),
                                       "val-real": ("val", real(splits["val"]))}
    if joint.get("crops"):
        c = joint["crops"]
        out["train-coned"] = ("train", lambda: real_crops(
            list(read_yolo_folder(real_root / splits["train"], "real")), int(c["n"]),
            int(c.get("seed", 0)), int(c.get("min_bodies", 2)), int(c.get("max_bodies", 6))))
    for key, role in (("phantoms", "train"), ("val_phantoms", "val")):
        if joint.get(key):
            p = joint[key]
            out[f"{role}-phantom"] = (role, lambda p=p: phantom_images(
                int(p["n"]), int(p.get("seed", 0)), float(p.get("coned", 0.3))))
    for key, role in (("yolo", "train"), ("val_yolo", "val")):
        for folder in joint.get(key) or ():
            name = Path(folder).name
            out[f"{role}-{name}"] = (role, lambda f=folder, n=name: read_yolo_folder(
                resolve(f), f"yolo-{n}"))
    return out


def build_joint_set(real_root: Path, splits: Mapping[str, str], joint: Mapping[str, Any],
                    out: Path, preprocess: str | None, resolve=lambda p: Path(p)) -> Path:
    """Write the joint set under ``out``: one folder per source (``train-real``,
    ``train-coned``, ``train-phantom``, ``train-<yolo folder>``, ``val-...``), each written
    once (a folder is complete when its ``.done`` marker exists, so an interrupted build
    resumes and a source added later is written alone), and ``data.yaml`` listing them."""
    import shutil

    import yaml
    from tqdm import tqdm

    roles: dict[str, list[str]] = {"train": [], "val": []}
    for name, (role, images) in _sources(real_root, splits, joint, resolve).items():
        folder = out / name
        roles[role].append(f"{name}/images")
        if (folder / ".done").is_file():
            continue
        shutil.rmtree(folder, ignore_errors=True)
        for item in tqdm(images(), desc=f"joint set {name}", unit="img", file=sys.stderr,
                         disable=None, leave=False):
            write_image(item, folder, preprocess)
        (folder / ".done").write_text("")
    data_yaml = out / "data.yaml"
    data_yaml.write_text(yaml.safe_dump(
        {"path": str(out.resolve()), "names": {0: VERTEBRA_CLASS}, **roles}, sort_keys=True))
    return data_yaml
