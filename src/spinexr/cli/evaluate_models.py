"""Each model of a pack alone: one pass over the images (each read once through
:mod:`spinexr.io`) feeds every planned model, then each gets its metrics.

- detectors: COCO mAP by pycocotools at the ``--conf`` score threshold;
- the triage ensemble: AUROC with a patient-grouped bootstrap CI, metrics at each operating
  point of the pack's ensemble, calibration, each member's AUROC;
- other classifiers: grade metrics, plus binary metrics and calibration for two classes.
"""
from __future__ import annotations

import sys
from dataclasses import dataclass, field, replace
from typing import Any, Mapping

import numpy as np

from spinexr.cli.evaluate_plan import Plan, default_operating_point, positive_index
from spinexr.errors import ConfigError
from spinexr.evaluate import (auroc, auroc_ci, calibration_metrics, coco_map, grade_metrics,
                              operating_point_metrics)
from spinexr.io import read_radiograph
from spinexr.io.policy import RADIOGRAPH_OR_MRI_POLICY
from spinexr.models.ensemble import TriageScores


@dataclass
class ModelOutputs:
    """Every planned model's raw output, in sample order. ``sizes``: (width, height) per image;
    ``boxes``: detector key -> boxes per image; ``triage``: the ensemble's scores (or ``None``);
    ``classifiers``: key -> (N, K) class probabilities."""

    sizes: list[tuple[int, int]] = field(default_factory=list)
    boxes: dict[str, list] = field(default_factory=dict)
    triage: TriageScores | None = None
    classifiers: dict[str, np.ndarray] = field(default_factory=dict)


def infer_models(pack, plan: Plan, samples, *, conf: float, batch: int,
                 device: str) -> ModelOutputs:
    """One pass: read each image once, run every planned model on it."""
    from tqdm import tqdm

    detectors = {k: pack.image_detector(k, device=device) for k in plan.detectors}
    out = ModelOutputs(boxes={k: [] for k in detectors})
    triage: list[TriageScores] = []
    probs: dict[str, list[np.ndarray]] = {k: [] for k in plan.classifiers}
    with tqdm(total=len(samples), desc="evaluate models", unit="img", file=sys.stderr,
              disable=None) as bar:
        for start in range(0, len(samples), batch):
            pixels = []
            for s in samples[start:start + batch]:
                # MR slices too: a region detector is measured on them like any detector
                image = read_radiograph(s.image_path, policy=RADIOGRAPH_OR_MRI_POLICY)
                pixels.append(image.pixels)
                out.sizes.append((image.width, image.height))
            for key, det in detectors.items():
                out.boxes[key] += det.predict(pixels, conf=conf, max_det=300)
            if plan.triage is not None:
                triage.append(plan.triage.predict(pixels))
            for key, (model, _, _) in plan.classifiers.items():
                probs[key].append(np.asarray(model.predict_proba(pixels), float))
            bar.update(len(pixels))
    out.triage = TriageScores.concatenate(triage) if triage else None
    out.classifiers = {k: np.concatenate(v, axis=0) for k, v in probs.items()}
    return out


def detection_metrics(plan: Plan, samples, out: ModelOutputs, conf: float) -> dict:
    result = {}
    for key, (mapping, labels) in plan.detectors.items():
        truth = [[replace(b, label=mapping[b.label]) for b in s.boxes] for s in samples]
        result[key] = {**coco_map(truth, out.boxes[key], out.sizes, labels),
                       "class_map": mapping, "conf": conf}
    return result


def binary_block(y: np.ndarray, p: np.ndarray, groups: np.ndarray,
                 points: Mapping[str, float], args) -> dict:
    ops = operating_point_metrics(y, p, points, n_boot=args.n_boot, seed=args.seed, groups=groups)
    first = next(iter(ops.values()))
    return {"n": first["n"], "n_pos": first["n_pos"], "auroc": first["auroc"],
            "auroc_ci": first["auroc_ci"], "operating_points": ops,
            "calibration": calibration_metrics(y, p, args.bins)}


def triage_metrics(pack, plan: Plan, samples, out: ModelOutputs, args) -> dict:
    """The ensemble's metrics on the labelled samples (the raw ``y``, ``prob`` and ``groups``
    are kept for the plots)."""
    points = dict(pack.manifest.ensemble.operating_points)
    if not points:
        raise ConfigError("the pack's ensemble has no operating_points {name: threshold}",
                          str(pack.root / "pack.json"))
    keep = ~np.isnan(plan.triage_y)
    y, p = plan.triage_y[keep].astype(int), out.triage.probability[keep]
    groups = np.array([s.group for s in samples], dtype=object)[keep]
    block = binary_block(y, p, groups, points, args)
    per_model = {}
    for name, scores in out.triage.per_model.items():
        q = np.asarray(scores, float)[keep]
        per_model[name] = {"auroc": auroc(y, q), "auroc_ci": auroc_ci(
            y, q, n_boot=args.n_boot, seed=args.seed, groups=groups)["ci"], "prob": q}
    return {**block, "default_operating_point": default_operating_point(
                points, args.operating_point),
            "per_model": per_model, "excluded_unlabelled": int((~keep).sum()), "y": y, "prob": p,
            "groups": groups}


def classifier_metrics(plan: Plan, samples, out: ModelOutputs, args) -> dict:
    result: dict[str, Any] = {}
    for key, (_, labels, y_all) in plan.classifiers.items():
        prob = out.classifiers[key]
        if prob.ndim != 2 or prob.shape != (len(samples), len(labels)):
            raise ConfigError(f"classifier {key!r} returned shape {prob.shape}, expected "
                              f"({len(samples)}, {len(labels)})", key)
        keep = ~np.isnan(y_all)
        y = y_all[keep].astype(int)
        try:
            graded = grade_metrics(y_all[keep], prob[keep], labels)
        except ConfigError as exc:
            raise ConfigError(f"classifier {key!r}: {exc.reason}", str(args.data)) from exc
        entry = {**graded, "labels": labels, "excluded_unlabelled": int((~keep).sum())}
        if len(labels) == 2:
            pos = positive_index(labels)
            yb, pb = (y == pos).astype(int), prob[keep, pos]
            groups = np.array([s.group for s in samples], dtype=object)[keep]
            entry["binary"] = binary_block(yb, pb, groups, {"default": 0.5}, args)
            entry["binary"].update(default_operating_point="default", positive=labels[pos],
                                   y=yb, prob=pb, groups=groups)
        result[key] = entry
    return result
