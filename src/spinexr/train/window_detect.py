"""Training data for lesion detection on vertebra windows (``model.windows`` of a detect recipe).

Each image of the ``train`` and ``val`` splits is read once through the inference reader, the
packed vertebra detector finds its bodies exactly as at inference
(:class:`~spinexr.models.window_detector.WindowDetector`), and every view the detector will run
on becomes one ultralytics training image: each window (a lesion keeps about its size in source
pixels) and, with ``whole``, the whole image (shrunk to at most twice the training side, since
ultralytics resizes it to that side anyway). A window's labels are the lesion boxes clipped to
it, kept when at least ``min_cover`` of a box's area lies inside; boxes cut further are left out.

Training keeps every window holding a lesion and ``negatives`` empty windows per image (empty
windows outnumber the others and are much alike); ``val`` keeps every view, so that model
selection sees what inference sees. Test images are never cut here: the test evaluation runs
the packed window detector on whole images.
"""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from spinexr.io import save_png
from spinexr.models.pack import load_pack
from spinexr.models.window_detector import Tile, image_views, view_pixels
from spinexr.train.windows import WindowRecipe, read_windows
from spinexr.train.yolo_labels import mapped, yolo_line
from spinexr.types import Box, Sample


def clip_to_tile(box: Box, tile: Tile, min_cover: float) -> Box | None:
    """``box`` in the coordinates of ``tile`` (``x0, y0, x1, y1``), clipped to it, or ``None``
    when less than ``min_cover`` of its area lies inside."""
    x0, y0, x1, y1 = tile
    cx1, cy1 = max(box.x1, x0), max(box.y1, y0)
    cx2, cy2 = min(box.x2, x1), min(box.y2, y1)
    area = box.width * box.height
    if cx2 <= cx1 or cy2 <= cy1 or area <= 0:
        return None
    if (cx2 - cx1) * (cy2 - cy1) < min_cover * area:
        return None
    return replace(box, x1=cx1 - x0, y1=cy1 - y0, x2=cx2 - x0, y2=cy2 - y0)


def tile_labels(boxes: Sequence[Box], tile: Tile, min_cover: float) -> list[Box]:
    """The boxes a view of ``tile`` is trained with (see :func:`clip_to_tile`)."""
    return [c for c in (clip_to_tile(b, tile, min_cover) for b in boxes) if c is not None]


def chosen_views(tiles: Sequence[Tile], labels: Sequence[Sequence[Box]], whole: Tile,
                 negatives: int | None, rng: np.random.Generator) -> list[int]:
    """Indices of the views kept for training: the whole image, every view with a label and
    ``negatives`` random empty windows (``None``: every view, as for validation)."""
    if negatives is None:
        return list(range(len(tiles)))
    empty = [k for k, t in enumerate(tiles) if not labels[k] and t != whole]
    drop = set()
    if len(empty) > negatives:
        drop = set(empty) - set(rng.choice(empty, size=negatives, replace=False).tolist())
    return [k for k in range(len(tiles)) if k not in drop]


def export_window_yolo(splits: Mapping[str, Sequence[Sample]], names: Sequence[str],
                       class_map: Mapping[str, str], out: Path, recipe: WindowRecipe, *,
                       imgsz: int, seed: int = 0, progress: bool = True) -> Path:
    """Write an ultralytics dataset of window views (PNG + label txt) and return its data.yaml.

    Args:
        splits: ``train`` (and ``val``) samples with their lesion boxes.
        names: the model's classes; ``class_map`` maps dataset classes to them.
        out: the dataset folder.
        recipe: ``model.windows`` (vertebra detector pack, window geometry, ``negatives``).
        imgsz: the training side; whole views are stored at most twice that.
        seed: draws the empty training windows that are kept.
    """
    import yaml

    spec = recipe.spec
    detector = load_pack(recipe.pack).detector(spec.detector)
    index = {name: i for i, name in enumerate(names)}
    rng = np.random.default_rng(seed)
    counts = {}
    for split, samples in splits.items():
        (out / split / "images").mkdir(parents=True, exist_ok=True)
        (out / split / "labels").mkdir(parents=True, exist_ok=True)
        negatives = recipe.negatives if split == "train" else None
        n = 0
        for i, px, windows in read_windows(samples, detector, spec, progress=progress):
            s = samples[i]
            h, w = px.shape[:2]
            tiles = image_views((h, w), windows, spec.whole)
            labels = [tile_labels(s.boxes, t, spec.min_cover) for t in tiles]
            for k in chosen_views(tiles, labels, (0, 0, w, h), negatives, rng):
                x0, y0, x1, y1 = tiles[k]
                stem = f"{s.image_id}_v{k:02d}"
                whole = tiles[k] == (0, 0, w, h)
                save_png(view_pixels(px, tiles[k], spec), out / split / "images" / f"{stem}.png",
                         max_side=2 * imgsz if whole else None)
                lines = [yolo_line(b, index[mapped(b.label, class_map)], x1 - x0, y1 - y0)
                         for b in labels[k]]
                (out / split / "labels" / f"{stem}.txt").write_text(
                    "\n".join(lines) + "\n" if lines else "")
                n += 1
        counts[split] = n
    data_yaml = out / "data.yaml"
    doc = {"path": str(out.resolve()), "names": dict(enumerate(names)),
           **{k: f"{k}/images" for k in splits}}
    data_yaml.write_text(yaml.safe_dump(doc, sort_keys=True))
    (out / "counts.json").write_text(yaml.safe_dump(counts))
    return data_yaml
