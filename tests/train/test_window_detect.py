"""Window lesion detection training data (``model.windows`` of a detect recipe): labels clipped
to each view, the views kept, the exported dataset against the ground truth, and a detect recipe
end to end (stand-in vertebra detector, a real yolo11n lesion detector)."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import yaml
from test_windows import _Column, _vertebra_pack   # the sibling module's stand-ins

from spinexr.models.spine_crops import CropSpec, find_windows
from spinexr.models.window_detector import image_views
from spinexr.train.window_detect import chosen_views, clip_to_tile, tile_labels
from spinexr.types import Box

TILE = (20, 30, 100, 100)


def test_clip_to_tile_shifts_clips_or_drops():
    inside = clip_to_tile(Box(30, 40, 50, 60, "Osteophytes", level="L3"), TILE, 0.5)
    assert inside == Box(10, 10, 30, 30, "Osteophytes", level="L3")
    half = Box(10, 40, 30, 60, "Osteophytes")                 # half of it left of x = 20
    assert clip_to_tile(half, TILE, 0.5) == Box(0, 10, 10, 30, "Osteophytes")
    assert clip_to_tile(half, TILE, 0.6) is None
    assert clip_to_tile(Box(0, 40, 30, 60, "Osteophytes"), TILE, 0.5) is None   # a third
    assert clip_to_tile(Box(0, 0, 10, 10, "Osteophytes"), TILE, 0.1) is None    # disjoint
    assert clip_to_tile(Box(100, 40, 120, 60, "Osteophytes"), TILE, 0.1) is None  # touching
    boxes = [Box(30, 40, 50, 60, "a"), Box(0, 0, 10, 10, "b"), Box(90, 90, 110, 110, "c")]
    assert [b.label for b in tile_labels(boxes, TILE, 0.25)] == ["a", "c"]


def _views():
    """Five windows (the second labelled) and the whole image (last)."""
    tiles = [(0, 10 * k, 50, 10 * k + 20) for k in range(5)] + [(0, 0, 50, 70)]
    labels = [[], [Box(1, 1, 5, 5, "a")], [], [], [], [Box(1, 11, 5, 15, "a")]]
    return tiles, labels, tiles[-1]


def test_chosen_views_keep_whole_labelled_and_n_negatives():
    tiles, labels, whole = _views()
    picks = [chosen_views(tiles, labels, whole, 2, np.random.default_rng(seed))
             for seed in range(8)]
    for kept in picks:
        assert kept == sorted(kept) and {1, 5} <= set(kept)
        assert len(set(kept) - {1, 5}) == 2 and set(kept) <= set(range(6))
    assert len({tuple(k) for k in picks}) > 1               # the empty windows are drawn ...
    assert chosen_views(tiles, labels, whole, 2, np.random.default_rng(3)) == picks[3]  # seeded
    assert chosen_views(tiles, labels, whole, 0, np.random.default_rng(0)) == [1, 5]
    assert chosen_views(tiles, labels, whole, 4, np.random.default_rng(0)) == list(range(6))
    assert chosen_views(tiles, labels, whole, None, np.random.default_rng(0)) == list(range(6))


def _phantoms(root: Path, sets, **extra) -> None:
    from spinexr.cli import main

    for split, n, seed in sets:
        args = ["phantom", "--n", str(n), "--seed", str(seed), "--out", str(root), "--split",
                split, "--size", "320", "256", "--quiet"]
        for key, value in extra.items():
            args += [f"--{key.replace('_', '-')}", str(value)]
        assert main(args) == 0


def _stand_in_vertebrae(pack_dir: Path, monkeypatch) -> str:
    """A vertebra pack whose ``vertebra_detector`` is the stand-in column; other detectors
    (the lesion detector being trained) load for real."""
    from spinexr.models.pack import ModelPack

    real = ModelPack.detector
    sha = _vertebra_pack(pack_dir, monkeypatch)
    monkeypatch.setattr(ModelPack, "detector", lambda self, key, **kw: _Column()
                        if key == "vertebra_detector" else real(self, key, **kw))
    return sha


def _read_labels(path: Path, names, tile) -> list[tuple[str, float, float, float, float]]:
    """A view's label lines as boxes in the image's pixels."""
    x0, y0, x1, y1 = tile
    w, h = x1 - x0, y1 - y0
    out = []
    for line in path.read_text().splitlines():
        k, cx, cy, bw, bh = line.split()
        cx, cy, bw, bh = float(cx) * w, float(cy) * h, float(bw) * w, float(bh) * h
        out.append((names[int(k)], x0 + cx - bw / 2, y0 + cy - bh / 2,
                    x0 + cx + bw / 2, y0 + cy + bh / 2))
    return sorted(out)


def _truth_in(boxes, tile, min_cover):
    """The ground-truth boxes with at least ``min_cover`` of their area in ``tile``, clipped
    to it (computed here, not by clip_to_tile)."""
    x0, y0, x1, y1 = tile
    out = []
    for b in boxes:
        ix1, iy1, ix2, iy2 = max(b.x1, x0), max(b.y1, y0), min(b.x2, x1), min(b.y2, y1)
        inter = max(0.0, ix2 - ix1) * max(0.0, iy2 - iy1)
        if inter > 0 and inter >= min_cover * b.width * b.height:
            out.append((b.label, ix1, iy1, ix2, iy2))
    return sorted(out)


def test_export_window_yolo_labels_follow_the_ground_truth(tmp_path, monkeypatch):
    from PIL import Image

    from spinexr.data.formats import load_dataset
    from spinexr.io import read_radiograph
    from spinexr.train.window_detect import export_window_yolo
    from spinexr.train.windows import parse_windows

    _stand_in_vertebrae(tmp_path / "vert", monkeypatch)
    _phantoms(tmp_path / "data", [("train", 4, 0), ("val", 3, 1)], abnormal_rate=1.0)
    splits, classes = {}, ()
    for split in ("train", "val"):
        loaded = load_dataset(tmp_path / "data", "vindr", split=split)
        splits[split], classes = loaded.samples, loaded.classes
    recipe = parse_windows({"pack": str(tmp_path / "vert"), "whole": True, "negatives": 1,
                            "min_cover": 0.6}, tmp_path / "r.yaml")
    imgsz, names = 64, list(classes)
    data_yaml = export_window_yolo(splits, names, {}, tmp_path / "out", recipe, imgsz=imgsz,
                                   seed=0, progress=False)
    doc = yaml.safe_load(data_yaml.read_text())
    assert doc["names"] == dict(enumerate(names)) and doc["train"] == "train/images"
    spec = recipe.spec
    dropped, n_labels, counts = 0, 0, {}
    for split, samples in splits.items():
        folder = tmp_path / "out" / split
        counts[split] = len(list((folder / "images").glob("*.png")))
        for s in samples:
            px = read_radiograph(s.image_path).pixels
            h, w = px.shape
            tiles = image_views((h, w), find_windows(_Column(), spec, [px])[0], spec.whole)
            assert tiles[-1] == (0, 0, w, h) and len(tiles) == 7        # six windows + whole
            kept = {int(p.stem.rsplit("_v", 1)[1]) for p in folder.glob(f"labels/{s.image_id}_v*")}
            labelled = {k for k, t in enumerate(tiles) if _truth_in(s.boxes, t, spec.min_cover)}
            empty = set(range(6)) - labelled
            assert labelled | {6} <= kept                               # whole + every lesion
            if split == "train":                                        # + `negatives` empty
                assert len(kept & empty) == min(recipe.negatives, len(empty))
            else:
                assert kept == set(range(7))
            dropped += len(tiles) - len(kept)
            for k in kept:
                got = _read_labels(folder / "labels" / f"{s.image_id}_v{k:02d}.txt", names,
                                   tiles[k])
                want = _truth_in(s.boxes, tiles[k], spec.min_cover)
                assert [g[0] for g in got] == [t[0] for t in want]
                np.testing.assert_allclose([g[1:] for g in got], [t[1:] for t in want],
                                           atol=1.0)
                n_labels += len(got)
                size = Image.open(folder / "images" / f"{s.image_id}_v{k:02d}.png").size
                if k == 6:
                    assert max(size) <= 2 * imgsz                       # the whole image shrunk
                else:
                    x0, y0, x1, y1 = tiles[k]
                    assert size == (x1 - x0, y1 - y0)                   # windows keep pixels
    assert dropped > 0 and n_labels > 0
    assert yaml.safe_load((tmp_path / "out" / "counts.json").read_text()) == counts


@pytest.mark.slow
def test_window_detect_recipe_end_to_end(tmp_path, monkeypatch):
    from spinexr.cli import main
    from spinexr.models.pack import load_pack
    from spinexr.models.window_detector import WindowDetector

    sha = _stand_in_vertebrae(tmp_path / "runs" / "vertebrae" / "pack", monkeypatch)
    _phantoms(tmp_path / "data", [("train", 4, 0), ("val", 2, 1), ("test", 2, 2)],
              abnormal_rate=1.0)
    doc = {"name": "wd", "task": "detect",
           "data": {"root": "data", "format": "vindr",
                    "splits": {"train": "train", "val": "val", "test": "test"}},
           "model": {"key": "lesion_detector", "arch": "yolo11n", "imgsz": 64,
                     "windows": {"pack": "part:vertebrae", "whole": True, "negatives": 1}},
           "train": {"epochs": 1, "batch": 8, "patience": 1, "workers": 0, "device": "cpu",
                     "seed": 0},
           "card": {"synthetic": True}}
    cfg = tmp_path / "d.yaml"
    cfg.write_text(yaml.safe_dump(doc))
    out = tmp_path / "runs" / "lesions"
    assert main(["train", str(cfg), "--out", str(out)]) == 0
    pack = load_pack(out / "pack")
    spec = pack.model_spec("lesion_detector")
    assert spec.windows == CropSpec(whole=True)
    assert pack.model_spec("vertebra_detector").sha256 == sha      # copied into the pack
    assert isinstance(pack.image_detector("lesion_detector"), WindowDetector)
    assert not isinstance(pack.image_detector("vertebra_detector"), WindowDetector)
    assert (out / "window-data" / "train" / "labels").is_dir()
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["test"]["n_images"] == 2 and metrics["val"]["n_images"] == 2
    assert 0.0 <= metrics["test"]["map50"] <= 1.0
