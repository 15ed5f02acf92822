"""COCO-style detection metrics computed by pycocotools, from in-memory boxes."""
from __future__ import annotations

import contextlib
import io
from typing import Sequence

import numpy as np

from spinexr.types import Box


def _coco_dicts(truth: Sequence[Sequence[Box]], sizes: Sequence[tuple[int, int]],
                classes: Sequence[str]) -> dict:
    cat = {name: i + 1 for i, name in enumerate(classes)}
    images = [{"id": i + 1, "width": int(w), "height": int(h)} for i, (w, h) in enumerate(sizes)]
    anns = [{"id": n + 1, "image_id": i + 1, "category_id": cat[b.label], "iscrowd": 0,
             "bbox": [b.x1, b.y1, b.width, b.height], "area": b.width * b.height}
            for n, (i, b) in enumerate((i, b) for i, boxes in enumerate(truth) for b in boxes)]
    return {"images": images, "annotations": anns,
            "categories": [{"id": v, "name": k} for k, v in cat.items()]}


def coco_map(truth: Sequence[Sequence[Box]], predictions: Sequence[Sequence[Box]],
             sizes: Sequence[tuple[int, int]], classes: Sequence[str]) -> dict:
    """mAP@0.5 and mAP@0.5:0.95 (COCO 101-point interpolation) and per-class AP.

    Args:
        truth: ground-truth boxes per image.
        predictions: predicted boxes per image, each with ``score``.
        sizes: (width, height) of each image.
        classes: the class names; boxes with other labels raise ``KeyError``.

    Returns:
        ``{"map50", "map50_95", "per_class": {name: {"ap50", "ap50_95", "n_true"}}, "n_images"}``;
        a class without ground truth has AP ``nan`` and is left out of the means.
    """
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    gt = COCO()
    gt.dataset = _coco_dicts(truth, sizes, classes)
    with contextlib.redirect_stdout(io.StringIO()):
        gt.createIndex()
    cat = {name: i + 1 for i, name in enumerate(classes)}
    dets = [[i + 1, b.x1, b.y1, b.width, b.height, float(b.score or 0.0), cat[b.label]]
            for i, boxes in enumerate(predictions) for b in boxes]
    n_true = {c: sum(b.label == c for boxes in truth for b in boxes) for c in classes}
    if not dets:
        per = {c: {"ap50": 0.0 if n_true[c] else float("nan"),
                   "ap50_95": 0.0 if n_true[c] else float("nan"), "n_true": n_true[c]}
               for c in classes}
        return {"map50": 0.0, "map50_95": 0.0, "per_class": per, "n_images": len(truth)}
    with contextlib.redirect_stdout(io.StringIO()):
        dt = gt.loadRes(np.asarray(dets, dtype=np.float64))
        ev = COCOeval(gt, dt, "bbox")
        ev.params.maxDets = [1, 10, 1000]
        ev.evaluate()
        ev.accumulate()
    precision = ev.eval["precision"][:, :, :, 0, -1]  # (iou, recall, class) at area=all, maxDets
    per = {}
    for k, name in enumerate(classes):
        p = precision[:, :, k]
        valid = p > -1
        ap = [float(p[t][valid[t]].mean()) if valid[t].any() else float("nan")
              for t in range(p.shape[0])]
        per[name] = {"ap50": ap[0], "ap50_95": float(np.nanmean(ap)) if n_true[name] else float("nan"),
                     "n_true": n_true[name]}
    present = [c for c in classes if n_true[c]]
    return {"map50": float(np.mean([per[c]["ap50"] for c in present])) if present else float("nan"),
            "map50_95": float(np.mean([per[c]["ap50_95"] for c in present])) if present else float("nan"),
            "per_class": per, "n_images": len(truth)}
