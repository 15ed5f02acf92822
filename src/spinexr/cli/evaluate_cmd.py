"""``spinexr evaluate --pack DIR --data DIR --out DIR``: measure a model pack on a labelled dataset.

One pass over the images (each read once through :mod:`spinexr.io`) feeds every model of the
pack that fits the data:

- each detector whose labels cover the dataset's box classes (names matched exactly, through the
  pack's ``class_map``, VinDr aliases, or ignoring case and singular/plural: ``Vertebrae`` ->
  ``Vertebra``): COCO mAP by pycocotools;
- the triage ensemble (``pack.triage()``): AUROC with a patient-grouped bootstrap CI, metrics at
  each operating point of ``manifest["ensemble"]["operating_points"]``, calibration;
- each other classifier (``pack.classifier(key)``): grade metrics (accuracy, balanced accuracy,
  QWK, macro F1, confusion), plus binary metrics and calibration for two classes.

Writes ``OUT/metrics.json`` (flat headline keys plus nested detail; undefined values are
``null``) and the plots next to it.
"""
from __future__ import annotations

import argparse
import json
import math
import re
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from spinexr.cli._json import jsonable
from spinexr.cli.evaluate_gate import run_gate
from spinexr.data import load_dataset
from spinexr.errors import ConfigError, DatasetError, FileAccessError, SpinexrError
from spinexr.evaluate import (auroc, auroc_ci, calibration_metrics, coco_map, grade_metrics,
                              operating_point_metrics, roc_band)
from spinexr.evaluate import plots as P
from spinexr.io import read_radiograph
from spinexr.labels import TRIAGE_CLASSES, VERTEBRA_CLASS, canonical_lesion
from spinexr.models.grading import GRADING_TASKS
from spinexr.models.pack import load_pack
from spinexr.train.detector import vertebra_targets

_SPLIT_ALIASES = {"val": "valid", "valid": "val"}


def add_parser(sub) -> argparse.ArgumentParser:
    p = sub.add_parser("evaluate", help="measure a model pack on a labelled dataset",
                       description="Run every model of a pack that fits the dataset and write "
                                   "OUT/metrics.json and plots (ROC, PR, confusion, reliability, "
                                   "AP per class). --task gate measures the input gate instead: "
                                   "DATA holds manifest.json or manifest.csv (file,label[,view,"
                                   "near_case]), or spine/ and other/ (and near/) folders, or a "
                                   "YOLO images/ folder (all spine).")
    p.add_argument("data_arg", nargs="?", type=Path, default=None, metavar="DATA",
                   help="dataset root (or --data)")
    p.add_argument("--task", choices=("models", "gate"), default="models",
                   help="models: every model of --pack that fits the dataset (default); gate: "
                        "the input gate's accepted / uncertain / refused against spine / other")
    p.add_argument("--pack", type=Path, default=None,
                   help="model pack directory (pack.json); required for --task models, for "
                        "--task gate found as by `spinexr analyze`")
    p.add_argument("--data", type=Path, default=None, metavar="DIR", help="dataset root")
    p.add_argument("--vertebrae", type=Path, default=None, metavar="DIR",
                   help="--task gate: vertebra detector pack (default as `spinexr analyze`)")
    p.add_argument("--split-file", type=Path, default=None, metavar="FILE.json",
                   help="--task gate: JSON {file: split} (or {split: [files]}) for --split")
    p.add_argument("--format", choices=("vindr", "coco", "yolo", "folders"), default=None,
                   help="dataset layout (default: detected)")
    p.add_argument("--split", default=None,
                   help="split to evaluate (default: the pack's test_set split, else 'test' when "
                        "present, else every image; --task gate: every image)")
    p.add_argument("--out", type=Path, required=True, help="output directory")
    p.add_argument("--boxes", choices=("lesions", "vertebrae"), default="lesions",
                   help="ground-truth boxes: the lesion boxes (default), or the vertebral "
                        "bodies a coco dataset also holds, to measure a vertebra detector")
    p.add_argument("--conf", type=float, default=0.001,
                   help="detector score threshold for mAP (default 0.001, as COCO)")
    p.add_argument("--n-boot", type=int, default=1000, help="bootstrap replicates for CIs")
    p.add_argument("--seed", type=int, default=0, help="bootstrap seed")
    p.add_argument("--bins", type=int, default=10, help="calibration bins (equal width)")
    p.add_argument("--batch", type=int, default=8, help="images per inference batch")
    p.add_argument("--device", default="cpu", help="torch device for the models, e.g. cuda:0")
    p.set_defaults(run=run)
    return p


# -- class names -----------------------------------------------------------------------------------
def _norm(name: str) -> str:
    """Case-, spacing- and number-insensitive key: ``"Vertebrae"`` and ``"vertebra"`` agree."""
    s = re.sub(r"[\s_\-]+", " ", name.strip().casefold())
    if s.endswith("ae"):
        return s[:-1]
    if s.endswith("ies"):
        return s[:-3] + "y"
    if s.endswith(("ses", "xes", "ches", "shes")):
        return s[:-2]
    return s[:-1] if s.endswith("s") and not s.endswith(("ss", "is", "us")) else s


def match_classes(source: Sequence[str], target: Sequence[str],
                  explicit: Mapping[str, str] | None = None) -> tuple[dict[str, str], list[str]]:
    """Map each ``source`` class (the dataset's) to a ``target`` class (the model's).

    Tried in order: the ``explicit`` map, the exact name, the canonical VinDr lesion name, and a
    case- and singular/plural-insensitive match (unambiguous only).

    Returns:
        (``{source: target}`` for the matched classes, the unmatched source classes).
    """
    explicit = dict(explicit or {})
    by_key: dict[str, list[str]] = {}
    for t in target:
        by_key.setdefault(_norm(t), []).append(t)
    mapping, missing = {}, []
    for s in source:
        candidates = [explicit.get(s), s, canonical_lesion(s)]
        hit = next((c for c in candidates if c is not None and c in target), None)
        if hit is None and len(by_key.get(_norm(s), [])) == 1:
            hit = by_key[_norm(s)][0]
        if hit is None:
            missing.append(s)
        else:
            mapping[s] = hit
    return mapping, missing


# -- what to evaluate ------------------------------------------------------------------------------
@dataclass
class _Plan:
    detectors: dict[str, tuple[dict[str, str], list[str]]] = field(default_factory=dict)
    triage: Any = None
    triage_y: np.ndarray | None = None                                    # (N,) float, nan = none
    classifiers: dict[str, tuple[Any, list[str], np.ndarray]] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)


def _binary_labels(dataset, samples) -> np.ndarray:
    """Image-level abnormal (1) / normal (0) labels, ``nan`` where unknown."""
    if dataset.format == "folders":
        mapping, _ = match_classes(dataset.classes, TRIAGE_CLASSES)
        index = {c: TRIAGE_CLASSES.index(t) for c, t in mapping.items()}
        return np.array([index.get(dataset.classes[s.label], np.nan) if s.label is not None
                         else np.nan for s in samples], dtype=float)
    return np.array([s.label if s.label in (0, 1) else np.nan for s in samples], dtype=float)


def _grade_target(spec: Mapping, labels: Sequence[str]) -> str | None:
    """The ``Sample.grades`` key a classifier predicts: its spec's ``target`` (``grades.<name>``
    or ``<name>``), else the grading task whose class vocabulary equals its labels."""
    target = str(spec.get("target") or "")
    if target:
        return target[len("grades."):] if target.startswith("grades.") else target
    return next((task for task, (names, *_) in GRADING_TASKS.items()
                 if list(names) == list(labels)), None)


def _classifier_labels(spec: Mapping, dataset, samples) -> tuple[np.ndarray | None, str]:
    """(labels as model class indices with nan where unknown, or None; why not)."""
    labels = [str(n) for n in spec.get("labels", [])]
    target = _grade_target(spec, labels)
    if target and any(target in s.grades for s in samples):
        y = [s.grades.get(target, np.nan) for s in samples]
        return np.array([v if v is not None else np.nan for v in y], dtype=float), ""
    if dataset.format == "folders":
        mapping, missing = match_classes(dataset.classes, labels)
        if not missing:
            return np.array([labels.index(mapping[dataset.classes[s.label]])
                             if s.label is not None else np.nan for s in samples], float), ""
        return None, f"dataset classes {missing} are not among the model's labels {labels}"
    if len(labels) == 2:
        return _binary_labels(dataset, samples), ""
    return None, (f"no labels for it: samples have no grades[{target!r}] and the dataset is "
                  f"not a class-per-folder tree of {labels}")


def _ensemble_members(ensemble: Mapping) -> set[str]:
    names: set[str] = set()
    for key in ("members", "models", "weights"):
        value = ensemble.get(key)
        if isinstance(value, Mapping):
            names |= set(value)
        elif isinstance(value, (list, tuple)):
            names |= {str(v) for v in value}
    return names


def plan_evaluation(pack, dataset, samples, device: str = "cpu") -> _Plan:
    """Decide which models of ``pack`` can be measured on ``samples`` and with which labels."""
    plan = _Plan()
    manifest = pack.manifest
    ensemble = manifest.get("ensemble") or {}
    explicit = dict((manifest.get("test_set") or {}).get("class_map") or {})
    for key, spec in manifest.get("models", {}).items():
        kind = spec.get("kind")
        if kind == "detector":
            if dataset.format == "folders":
                plan.skipped[key] = "a class-per-folder dataset has no boxes"
                continue
            mapping, missing = match_classes(dataset.classes, list(spec.get("labels", [])),
                                             {**explicit, **(spec.get("class_map") or {})})
            if missing:
                plan.skipped[key] = (f"dataset classes {missing} match none of the detector's "
                                     f"labels {list(spec.get('labels', []))}")
            else:
                plan.detectors[key] = (mapping, [str(n) for n in spec["labels"]])
        elif kind == "classifier" and key not in _ensemble_members(ensemble):
            _plan_classifier(plan, pack, key, spec, dataset, samples, device)
    if ensemble:
        plan.triage_y = _binary_labels(dataset, samples)
        if np.isnan(plan.triage_y).all():
            plan.skipped["ensemble"] = "no sample has a normal/abnormal label"
        else:
            plan.triage = pack.triage(device=device)
    return plan


def _plan_classifier(plan: _Plan, pack, key: str, spec: Mapping, dataset, samples,
                     device: str) -> None:
    y, why = _classifier_labels(spec, dataset, samples)
    if y is None or np.isnan(y).all():
        plan.skipped[key] = why or "no sample has a label for it"
    else:
        plan.classifiers[key] = (pack.grader(key, device=device),
                                 [str(n) for n in spec["labels"]], y)


# -- inference -------------------------------------------------------------------------------------
def _infer(pack, plan: _Plan, samples, *, conf: float, batch: int, device: str) -> dict:
    """One pass: read each image once, run every planned model on it."""
    from tqdm import tqdm

    detectors = {k: pack.detector(k, device=device) for k in plan.detectors}
    out: dict[str, Any] = {"sizes": [], "boxes": {k: [] for k in detectors}, "triage": [],
                           "classifiers": {k: [] for k in plan.classifiers}}
    with tqdm(total=len(samples), desc="evaluate", unit="img", file=sys.stderr,
              disable=None) as bar:
        for start in range(0, len(samples), batch):
            chunk = samples[start:start + batch]
            pixels = []
            for s in chunk:
                image = read_radiograph(s.image_path)
                pixels.append(image.pixels)
                out["sizes"].append((image.width, image.height))
            for key, det in detectors.items():
                out["boxes"][key] += det.predict(pixels, conf=conf, max_det=300)
            if plan.triage is not None:
                out["triage"].append(plan.triage.predict(pixels))
            for key, (model, _, _) in plan.classifiers.items():
                out["classifiers"][key].append(np.asarray(model.predict_proba(pixels), float))
            bar.update(len(chunk))
    return out


# -- metrics ---------------------------------------------------------------------------------------
def _detection(plan: _Plan, samples, out: dict, conf: float) -> dict:
    from dataclasses import replace

    result = {}
    for key, (mapping, labels) in plan.detectors.items():
        truth = [[replace(b, label=mapping[b.label]) for b in s.boxes] for s in samples]
        result[key] = {**coco_map(truth, out["boxes"][key], out["sizes"], labels),
                       "class_map": mapping, "conf": conf}
    return result


def _binary_block(y: np.ndarray, p: np.ndarray, groups: np.ndarray,
                  points: Mapping[str, float], args) -> dict:
    ops = operating_point_metrics(y, p, points, n_boot=args.n_boot, seed=args.seed, groups=groups)
    first = next(iter(ops.values()))
    return {"n": first["n"], "n_pos": first["n_pos"], "auroc": first["auroc"],
            "auroc_ci": first["auroc_ci"], "operating_points": ops,
            "calibration": calibration_metrics(y, p, args.bins)}


def _default_point(ensemble: Mapping, points: Mapping[str, float]) -> str:
    for name in (ensemble.get("default_operating_point"), ensemble.get("default"), "youden"):
        if name in points:
            return str(name)
    return next(iter(points))


def _triage_metrics(pack, plan: _Plan, samples, out: dict, args) -> dict:
    ensemble = pack.manifest.get("ensemble") or {}
    points = {str(k): float(v) for k, v in (ensemble.get("operating_points") or {}).items()}
    if not points:
        raise ConfigError("manifest 'ensemble' has no operating_points {name: threshold}",
                          str(pack.root / "pack.json"))
    prob = np.concatenate([np.asarray(r["probability"], float).ravel() for r in out["triage"]])
    keep = ~np.isnan(plan.triage_y)
    y, p = plan.triage_y[keep].astype(int), prob[keep]
    groups = np.array([s.group for s in samples], dtype=object)[keep]
    block = _binary_block(y, p, groups, points, args)
    per_model = {}
    for name in (out["triage"][0].get("per_model") or {}):
        q = np.concatenate([np.asarray(r["per_model"][name], float).ravel()
                            for r in out["triage"]])[keep]
        per_model[name] = {"auroc": auroc(y, q), "auroc_ci": auroc_ci(
            y, q, n_boot=args.n_boot, seed=args.seed, groups=groups)["ci"], "prob": q}
    return {**block, "default_operating_point": _default_point(ensemble, points),
            "per_model": per_model, "excluded_unlabelled": int((~keep).sum()), "y": y, "prob": p,
            "groups": groups}


def _classifier_metrics(plan: _Plan, samples, out: dict, args) -> dict:
    result = {}
    for key, (_, labels, y_all) in plan.classifiers.items():
        prob = np.concatenate(out["classifiers"][key], axis=0)
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
            pos = _positive_index(labels)
            yb, pb = (y == pos).astype(int), prob[keep, pos]
            groups = np.array([s.group for s in samples], dtype=object)[keep]
            entry["binary"] = _binary_block(yb, pb, groups, {"default": 0.5}, args)
            entry["binary"].update(default_operating_point="default", positive=labels[pos],
                                   y=yb, prob=pb, groups=groups)
        result[key] = entry
    return result


def _positive_index(labels: Sequence[str]) -> int:
    """The positive class of a two-class model: the one named "abnormal" (any case), else 1."""
    mapping, missing = match_classes(labels, TRIAGE_CLASSES)
    if not missing and sorted(mapping.values()) == sorted(TRIAGE_CLASSES):
        return [mapping[n] for n in labels].index("abnormal")
    return 1


_FLAT_BINARY = ("auroc", "auroc_ci", "sensitivity", "specificity", "f1", "ppv", "npv",
                "accuracy", "balanced_accuracy", "threshold")


def headline(detection: Mapping, triage: Mapping | None, classifiers: Mapping) -> dict:
    """The flat keys of metrics.json, each from the first model it applies to."""
    flat: dict[str, Any] = {}
    binary = triage or next((c["binary"] for c in classifiers.values() if "binary" in c), None)
    grades = next((c for c in classifiers.values() if len(c["labels"]) > 2),
                  next(iter(classifiers.values()), None))
    if binary is not None:
        op = binary["default_operating_point"]
        flat.update({k: binary["operating_points"][op][k] for k in _FLAT_BINARY},
                    operating_point=op, operating_points=binary["operating_points"],
                    calibration=_public(binary["calibration"]))
    if grades is not None:
        flat.update({k: grades[k] for k in ("accuracy", "balanced_accuracy", "qwk", "macro_f1")},
                    per_class=grades["per_class"])
    if detection:
        first = next(iter(detection.values()))
        flat.update(map50=first["map50"], map50_95=first["map50_95"], per_class=first["per_class"])
    return flat


def _public(block: Any) -> Any:
    """Drop the raw arrays kept for plotting."""
    if isinstance(block, Mapping):
        return {k: _public(v) for k, v in block.items() if k not in ("y", "prob", "groups")}
    return block


# -- plots -----------------------------------------------------------------------------------------
class _Plots:
    """Plot file names: ``roc.png`` for the first model, ``roc-<key>.png`` after; failures noted."""

    def __init__(self, out: Path) -> None:
        self.out, self.files, self.notes = out, [], []

    def draw(self, base: str, key: str, fn, *args, **kwargs) -> None:
        name = f"{base}.png" if f"{base}.png" not in self.files else f"{base}-{key}.png"
        try:
            fn(*args, self.out / name, **kwargs)
        except SpinexrError as exc:
            self.notes.append(f"{name}: not drawn: {exc}")
            return
        self.files.append(name)


def _draw_binary(plots: _Plots, key: str, block: Mapping, args, title: str) -> None:
    y, p, groups = block["y"], block["prob"], block["groups"]
    ops = {k: v["threshold"] for k, v in block["operating_points"].items()}
    others = {k: v["prob"] for k, v in block.get("per_model", {}).items()}
    if y.min() != y.max():
        band = roc_band(y, p, n_boot=args.n_boot, seed=args.seed, groups=groups)
        plots.draw("roc", key, P.plot_roc, y, p, band=band, operating_points=ops, others=others,
                   auroc_ci=block["auroc_ci"], label=key, title=f"{title} ROC")
    plots.draw("pr", key, P.plot_pr, y, p, operating_points=ops, others=others, label=key,
               title=f"{title} precision-recall")
    plots.draw("reliability", key, P.plot_reliability, block["calibration"],
               title=f"{title} reliability")
    op = block["operating_points"][block["default_operating_point"]]
    cm = [[op["tn"], op["fp"]], [op["fn"], op["tp"]]]
    plots.draw("confusion", key, P.plot_confusion, cm, list(TRIAGE_CLASSES),
               title=f"{title} at {block['default_operating_point']}, "
                     f"threshold {op['threshold']:.3f}")


def _draw_all(out_dir: Path, detection, triage, classifiers, args) -> _Plots:
    plots = _Plots(out_dir)
    if triage is not None:
        _draw_binary(plots, "ensemble", triage, args, "Triage")
    for key, entry in classifiers.items():
        if "binary" in entry:
            _draw_binary(plots, key, entry["binary"], args, key)
        else:
            plots.draw("confusion", key, P.plot_confusion, entry["confusion"], entry["labels"],
                       title=f"{key} confusion")
    for key, entry in detection.items():
        plots.draw("ap_per_class", key, P.plot_ap_per_class, entry["per_class"],
                   title=f"{key} AP per class")
    return plots


# -- the command -----------------------------------------------------------------------------------
def _check_args(args) -> None:
    if args.n_boot < 0:
        raise ConfigError(f"--n-boot must be >= 0, got {args.n_boot}", "--n-boot")
    if args.batch < 1:
        raise ConfigError(f"--batch must be >= 1, got {args.batch}", "--batch")
    if args.bins < 1:
        raise ConfigError(f"--bins must be >= 1, got {args.bins}", "--bins")
    if not 0 <= args.conf <= 1:
        raise ConfigError(f"--conf must be in [0, 1], got {args.conf}", "--conf")


def _select(args, pack) -> tuple[Any, tuple, str | None]:
    """The dataset and the samples to evaluate, and the split they come from."""
    dataset = load_dataset(args.data, args.format, split=args.split)
    split = args.split
    if split is None:
        wanted = (pack.manifest.get("test_set") or {}).get("split"), "test"
        present = dataset.splits
        split = next((c for w in wanted if w for c in (w, _SPLIT_ALIASES.get(w)) if c in present),
                     None)
    samples = dataset.split(split) if split is not None and args.split is None else dataset.samples
    if not samples:
        raise DatasetError(f"no images to evaluate (split {split!r}; the dataset has splits "
                           f"{list(dataset.splits)})", str(args.data))
    if args.boxes == "vertebrae":
        from dataclasses import replace

        samples = vertebra_targets({"eval": samples}, args.data,
                                   "--boxes vertebrae was given")["eval"]
        dataset = replace(dataset, classes=(VERTEBRA_CLASS,))
    return dataset, tuple(samples), split


def _data_dir(args) -> Path:
    """DATA or ``--data`` (one of them, or both the same)."""
    given = [d for d in (args.data_arg, args.data) if d is not None]
    if not given:
        raise ConfigError("give the dataset folder: DATA or --data DIR", "DATA")
    if len(given) == 2 and given[0] != given[1]:
        raise ConfigError(f"DATA {given[0]} and --data {given[1]} differ; give one", "DATA")
    return given[0]


def run(args: argparse.Namespace) -> int:
    args.data = _data_dir(args)
    if args.task == "gate":
        return run_gate(args)
    for flag, value in (("--vertebrae", args.vertebrae), ("--split-file", args.split_file)):
        if value is not None:
            raise ConfigError(f"{flag} applies to --task gate only", flag)
    if args.pack is None:
        raise ConfigError("--pack DIR is required: the model pack to evaluate", "--pack")
    _check_args(args)
    pack = load_pack(args.pack)
    dataset, samples, split = _select(args, pack)
    plan = plan_evaluation(pack, dataset, samples, args.device)
    if not (plan.detectors or plan.triage is not None or plan.classifiers):
        reasons = "; ".join(f"{k}: {v}" for k, v in plan.skipped.items()) or "the pack is empty"
        raise ConfigError(f"nothing in the pack fits this dataset ({reasons})", str(args.pack))
    try:
        args.out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise FileAccessError(f"cannot create the output folder: {exc}", str(args.out)) from exc
    t0 = time.perf_counter()
    out = _infer(pack, plan, samples, conf=args.conf, batch=args.batch, device=args.device)
    t1 = time.perf_counter()
    detection = _detection(plan, samples, out, args.conf)
    triage = _triage_metrics(pack, plan, samples, out, args) if plan.triage is not None else None
    classifiers = _classifier_metrics(plan, samples, out, args)
    t2 = time.perf_counter()
    plots = _draw_all(args.out, detection, triage, classifiers, args)
    t3 = time.perf_counter()
    metrics = {
        **headline(detection, triage, classifiers),
        "detection": detection, "triage": _public(triage), "classifiers": _public(classifiers),
        "skipped": plan.skipped, "plots": plots.files, "plot_notes": plots.notes,
        "pack": {"name": pack.name, "version": pack.version, "synthetic": pack.synthetic,
                 "root": str(pack.root)},
        "data": {"root": str(args.data), "format": dataset.format, "split": split,
                 "n_images": len(samples)},
        "settings": {"conf": args.conf, "n_boot": args.n_boot, "seed": args.seed,
                     "bins": args.bins},
        "timing_s": {"inference": t1 - t0, "metrics": t2 - t1, "plots": t3 - t2,
                     "images_per_s": len(samples) / max(t1 - t0, 1e-9)},
    }
    path = args.out / "metrics.json"
    path.write_text(json.dumps(jsonable(metrics), indent=2, sort_keys=True, allow_nan=False) + "\n")
    _summary(metrics, path)
    return 0


def _summary(metrics: Mapping, path: Path) -> None:
    shown = [f"{k} {metrics[k]:.4f}" for k in ("auroc", "sensitivity", "specificity", "f1",
                                               "balanced_accuracy", "qwk", "map50", "map50_95")
             if isinstance(metrics.get(k), float) and math.isfinite(metrics[k])]
    print(f"{metrics['data']['n_images']} images: " + (", ".join(shown) or "no finite metric"))
    for key, why in metrics["skipped"].items():
        print(f"skipped {key}: {why}")
    print(f"metrics written to {path} ({len(metrics['plots'])} plots)")
