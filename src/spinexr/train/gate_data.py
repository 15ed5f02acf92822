"""The input gate's data: real spine and non-spine images, generated positives and hard
negatives, split once into train / val / test.

Real sources (read from ``../shared/data``, never copied):

* ``radiographs/`` (133 real images labelled spine / other, manifest.json): split by
  :func:`radiograph_splits`: the 9 spine films that are the same images as 416-px copies in
  ``vertebrae/`` follow their copy's split (no leak between the two sets); the 4 other spine
  films are assigned by view, decided before any result was seen (lateral cervical and lateral
  lumbar train, AP cervical val, odontoid test); the 120 others go round-robin by sha256
  within each source collection, 3 : 1 : 1.
* ``vertebrae/`` (real AP spine films): its own train / valid / test split, all positives.

Generated (training and validation only; the test split holds real images alone):

* coned views cut from real training films (2-6 bodies): positives;
* "off-spine" crops of real training films that hold no vertebral body (ribs, iliac wing,
  soft tissue beside the spine): hard negatives with the same film texture;
* phantoms of every view and region: positives; DRRs (lateral and oblique): positives.
"""
from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Mapping, Sequence

import numpy as np

from spinexr.errors import SpinexrError
from spinexr.io import read_radiograph
from spinexr.train.vertebra_set import coned_crop
from spinexr.types import Box

ROLES = ("train", "val", "test")
#: Round-robin pattern of the non-spine images within each source collection: 3 : 1 : 1.
_CYCLE = ("train", "val", "train", "test", "train")
#: Spine films of ``radiographs/`` with no copy in ``vertebrae/``: split by view, a priori.
UNIQUE_SPINE_SPLIT = {"cervical spine lateral": "train", "lumbar spine lateral": "train",
                      "cervical spine ap": "val", "cervical spine odontoid": "test"}
_VERTEBRAE_SPLIT = {"train": "train", "valid": "val", "test": "test"}


@dataclass(frozen=True)
class GateItem:
    """One image for the gate: float32 (H, W) in [0, 1], label 1 spine / 0 other."""

    name: str
    pixels: np.ndarray
    label: int
    source: str
    view: str = ""


def _collection(entry: Mapping[str, Any]) -> str:
    return str(entry["file"]).split("/")[-1].split("__")[0]


def _copy_split(entry: Mapping[str, Any], vertebrae_root: Path | None) -> str | None:
    """The vertebrae split holding the 416-px copy of a radiographs/ spine film, if any."""
    import re

    if not entry.get("same_image_in_shared_vertebrae") or vertebrae_root is None:
        return None
    found = re.search(r"there: ([^ )]+)", str(entry.get("note", "")))
    if not found:
        return None
    prefix = found.group(1).rstrip("*")
    for split, role in _VERTEBRAE_SPLIT.items():
        folder = vertebrae_root / split / "images"
        if folder.is_dir() and any(p.name.startswith(prefix) for p in folder.iterdir()):
            return role
    return None


def radiograph_splits(manifest: Sequence[Mapping[str, Any]],
                      vertebrae_root: Path | None = None) -> dict[str, str]:
    """file -> ``train`` / ``val`` / ``test`` for the entries of radiographs/manifest.json."""
    out: dict[str, str] = {}
    groups: dict[str, list[Mapping[str, Any]]] = defaultdict(list)
    for e in manifest:
        if e["label"] == "spine":
            copy = _copy_split(e, vertebrae_root)
            view = str(e.get("view", "")).lower()
            unique = next((r for k, r in UNIQUE_SPINE_SPLIT.items() if view.startswith(k)),
                          None)
            out[e["file"]] = copy or unique or "train"
        else:
            groups[_collection(e)].append(e)
    for members in groups.values():
        for i, e in enumerate(sorted(members, key=lambda m: str(m.get("sha256", m["file"])))):
            out[e["file"]] = _CYCLE[i % len(_CYCLE)]
    return out


def read_manifest(root: Path) -> list[dict[str, Any]]:
    return json.loads((root / "manifest.json").read_text())


def radiograph_items(root: Path, splits: Mapping[str, str], role: str) -> Iterator[GateItem]:
    """The real images of ``radiographs/`` in split ``role`` that the reader can read (the
    others are refused before the gate and cannot train it)."""
    for e in read_manifest(root):
        if splits.get(e["file"]) != role:
            continue
        try:
            pixels = read_radiograph(root / e["file"]).pixels
        except SpinexrError:
            continue
        yield GateItem(f"radiographs/{e['file']}", pixels, int(e["label"] == "spine"),
                       "radiographs", str(e.get("view", "")))


def off_spine_crop(pixels: np.ndarray, boxes: Sequence[Box], rng: np.random.Generator,
                   tries: int = 30) -> np.ndarray | None:
    """A crop 20-45 % of the film wide and 25-60 % high that holds no vertebral body (its
    columns stay half a body width clear of every box); ``None`` when none fits."""
    h, w = pixels.shape
    if not boxes:
        return None
    bw = float(np.median([b.width for b in boxes]))
    blocked = [(b.x1 - bw / 2, b.x2 + bw / 2) for b in boxes]
    for _ in range(tries):
        cw, ch = int(w * rng.uniform(0.2, 0.45)), int(h * rng.uniform(0.25, 0.6))
        if cw < 16 or ch < 16:
            return None
        x0, y0 = int(rng.integers(0, w - cw + 1)), int(rng.integers(0, h - ch + 1))
        if all(x0 + cw <= a or x0 >= b for a, b in blocked):
            return np.array(pixels[y0:y0 + ch, x0:x0 + cw])
    return None


def film_items(films: Sequence[Any], n_coned: int, n_off: int, seed: int) -> Iterator[GateItem]:
    """Coned-view positives and off-spine negatives cut from labelled films
    (:class:`~spinexr.train.vertebra_set.LabelledImage`)."""
    rng = np.random.default_rng(seed)
    usable = [f for f in films if len(f.boxes) >= 3]
    for i in range(n_coned if usable else 0):
        f = usable[int(rng.integers(len(usable)))]
        pixels, _ = coned_crop(f.pixels, f.boxes, rng, 2, 6)
        yield GateItem(f"coned-{i:05d}", pixels, 1, "real-coned", "coned")
    made = 0
    for _ in range(4 * n_off if usable else 0):
        if made >= n_off:
            break
        f = usable[int(rng.integers(len(usable)))]
        crop = off_spine_crop(f.pixels, f.boxes, rng)
        if crop is not None:
            yield GateItem(f"off-spine-{made:05d}", crop, 0, "off-spine", "off-spine")
            made += 1
