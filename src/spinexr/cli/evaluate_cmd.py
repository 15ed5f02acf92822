"""``spinexr evaluate --pack DIR --data DIR --out DIR``: measure a model pack on a labelled dataset.

Two measurements over the same samples:

- **each model alone** (:mod:`spinexr.cli.evaluate_models`, planned by
  :mod:`spinexr.cli.evaluate_plan`): every detector whose labels cover the dataset's box
  classes (COCO mAP at ``--conf``), the triage ensemble (AUROC with a patient-grouped bootstrap
  CI, metrics at each operating point, calibration) and each other classifier with labels in
  the dataset (grade metrics; binary metrics and calibration for two classes);
- **end to end** (:mod:`spinexr.cli.evaluate_end_to_end`, unless ``--no-end-to-end``): the
  whole analyzer as ``spinexr analyze`` runs it, i.e. what a user gets: input gate verdicts,
  triage where a refused image is not flagged, lesion boxes after ``--gating`` and the pack's
  thresholds, the grades given; on MR slices (analysed as ``spinexr analyze`` does, by the
  MRI stenosis path) the stenosis grade of each ground-truth region instead.

Writes ``OUT/metrics.json`` (flat headline keys of the per-model figures, the nested detail and
the ``end_to_end`` block; undefined values are ``null``) and the plots next to it.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import time
from pathlib import Path
from typing import Any

from spinexr.cli._json import jsonable
from spinexr.cli.evaluate_end_to_end import build_analyzer, end_to_end
from spinexr.cli.evaluate_gate import run_gate
from spinexr.cli.evaluate_models import (classifier_metrics, detection_metrics, infer_models,
                                         triage_metrics)
from spinexr.cli.evaluate_plan import plan_evaluation
from spinexr.cli.evaluate_report import draw_all, headline, public, summary
from spinexr.data import load_dataset
from spinexr.errors import ConfigError, DatasetError, FileAccessError
from spinexr.labels import VERTEBRA_CLASS
from spinexr.models.card import learning_curves
from spinexr.models.pack import resolve_packs
from spinexr.train.detector import vertebra_targets

_SPLIT_ALIASES = {"val": "valid", "valid": "val"}


def add_parser(sub) -> argparse.ArgumentParser:
    p = sub.add_parser("evaluate", help="measure a model pack on a labelled dataset",
                       description="Run every model of a pack that fits the dataset, and the "
                                   "whole analyzer end to end (gate, gated triage and lesions, "
                                   "grades), and write OUT/metrics.json and plots (ROC, PR, "
                                   "confusion, reliability, AP per class). --task gate "
                                   "measures the input gate instead: DATA holds manifest.json "
                                   "or manifest.csv (file,label[,view,near_case]), or spine/ "
                                   "and other/ (and near/) folders, or a YOLO images/ folder "
                                   "(all spine).")
    p.add_argument("data_arg", nargs="?", type=Path, default=None, metavar="DATA",
                   help="dataset root (or --data)")
    p.add_argument("--task", choices=("models", "gate"), default="models",
                   help="models: every model of --pack that fits the dataset, and the analyzer "
                        "end to end (default); gate: the input gate's accepted / uncertain / "
                        "refused against spine / other")
    p.add_argument("--pack", type=Path, default=None,
                   help="model pack directory (pack.json); required for --task models, for "
                        "--task gate found as by `spinexr analyze`")
    p.add_argument("--data", type=Path, default=None, metavar="DIR", help="dataset root")
    p.add_argument("--vertebrae", type=Path, default=None, metavar="DIR",
                   help="vertebra detector pack of the input gate (default as `spinexr "
                        "analyze`: <models>/vertebrae)")
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
                   help="detector score threshold for the per-model mAP (default 0.001, as "
                        "COCO; end to end uses the pack's thresholds)")
    p.add_argument("--gating", choices=("dernet", "vindr"), default="vindr",
                   help="end to end: dernet detects lesions only when triage is abnormal; vindr "
                        "keeps confident boxes when it is normal (default, as `spinexr analyze`)")
    p.add_argument("--operating-point", default=None,
                   help="triage operating point of the analyzer and of the headline figures "
                        "(default: youden when the pack has it, else its first)")
    p.add_argument("--no-end-to-end", dest="end_to_end", action="store_false",
                   help="measure each model alone only")
    p.add_argument("--n-boot", type=int, default=1000, help="bootstrap replicates for CIs")
    p.add_argument("--seed", type=int, default=0, help="bootstrap seed")
    p.add_argument("--bins", type=int, default=10, help="calibration bins (equal width)")
    p.add_argument("--batch", type=int, default=8, help="images per inference batch")
    p.add_argument("--decode-workers", type=int, default=2,
                   help="end to end: processes reading the next batch (0: read in this one)")
    p.add_argument("--device", default="cpu", help="torch device for the models, e.g. cuda:0")
    p.set_defaults(run=run)
    return p


def _check_args(args) -> None:
    if args.n_boot < 0:
        raise ConfigError(f"--n-boot must be >= 0, got {args.n_boot}", "--n-boot")
    if args.batch < 1:
        raise ConfigError(f"--batch must be >= 1, got {args.batch}", "--batch")
    if args.bins < 1:
        raise ConfigError(f"--bins must be >= 1, got {args.bins}", "--bins")
    if args.decode_workers < 0:
        raise ConfigError(f"--decode-workers must be >= 0, got {args.decode_workers}",
                          "--decode-workers")
    if not 0 <= args.conf <= 1:
        raise ConfigError(f"--conf must be in [0, 1], got {args.conf}", "--conf")


def _check_operating_point(pack, asked: str | None) -> None:
    points = pack.manifest.ensemble.operating_points if pack.manifest.ensemble else {}
    if asked is not None and asked not in points:
        raise ConfigError(f"operating point {asked!r} is not in the pack (has "
                          f"{sorted(points)})", "--operating-point")


def _select(args, pack) -> tuple[Any, tuple, str | None]:
    """The dataset and the samples to evaluate, and the split they come from."""
    dataset = load_dataset(args.data, args.format, split=args.split)
    split = args.split
    if split is None:
        wanted = (pack.manifest.test_set or {}).get("split"), "test"
        present = dataset.splits
        split = next((c for w in wanted if w for c in (w, _SPLIT_ALIASES.get(w)) if c in present),
                     None)
    samples = dataset.split(split) if split is not None and args.split is None else dataset.samples
    if not samples:
        raise DatasetError(f"no images to evaluate (split {split!r}; the dataset has splits "
                           f"{list(dataset.splits)})", str(args.data))
    if args.boxes == "vertebrae":
        samples = vertebra_targets({"eval": samples}, args.data,
                                   "--boxes vertebrae was given")["eval"]
        dataset = dataclasses.replace(dataset, classes=(VERTEBRA_CLASS,))
    return dataset, tuple(samples), split


def _data_dir(args) -> Path:
    """DATA or ``--data`` (one of them, or both the same)."""
    given = [d for d in (args.data_arg, args.data) if d is not None]
    if not given:
        raise ConfigError("give the dataset folder: DATA or --data DIR", "DATA")
    if len(given) == 2 and given[0] != given[1]:
        raise ConfigError(f"DATA {given[0]} and --data {given[1]} differ; give one", "DATA")
    return given[0]


def _out_dir(out: Path) -> None:
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise FileAccessError(f"cannot create the output folder: {exc}", str(out)) from exc


def run(args: argparse.Namespace) -> int:
    args.data = _data_dir(args)
    if args.task == "gate":
        return run_gate(args)
    if args.split_file is not None:
        raise ConfigError("--split-file applies to --task gate only", "--split-file")
    if args.pack is None:
        raise ConfigError("--pack DIR is required: the model pack to evaluate", "--pack")
    _check_args(args)
    pack, vertebrae = resolve_packs(args.pack, args.vertebrae)
    _check_operating_point(pack, args.operating_point)
    dataset, samples, split = _select(args, pack)
    plan = plan_evaluation(pack, dataset, samples, args.device)
    if plan.empty:
        reasons = "; ".join(f"{k}: {v}" for k, v in plan.skipped.items()) or "the pack is empty"
        raise ConfigError(f"nothing in the pack fits this dataset ({reasons})", str(args.pack))
    analyzer = build_analyzer(pack, vertebrae, args) if args.end_to_end else None
    _out_dir(args.out)
    t0 = time.perf_counter()
    out = infer_models(pack, plan, samples, conf=args.conf, batch=args.batch, device=args.device)
    t1 = time.perf_counter()
    detection = detection_metrics(plan, samples, out, args.conf)
    triage = triage_metrics(pack, plan, samples, out, args) if plan.triage is not None else None
    classifiers = classifier_metrics(plan, samples, out, args)
    t2 = time.perf_counter()
    e2e = end_to_end(analyzer, plan, dataset, samples, args) if analyzer is not None else None
    t3 = time.perf_counter()
    plots = draw_all(args.out, detection, triage, classifiers, args,
                     curves=learning_curves(pack.manifest.card),
                     stenosis=(e2e or {}).get("stenosis"))
    metrics = {
        **headline(detection, triage, classifiers),
        "detection": detection, "triage": public(triage), "classifiers": public(classifiers),
        "end_to_end": e2e, "skipped": plan.skipped, "plots": plots.files,
        "plot_notes": plots.notes,
        "pack": {"name": pack.name, "version": pack.version, "synthetic": pack.synthetic,
                 "root": str(pack.root)},
        "data": {"root": str(args.data), "format": dataset.format, "split": split,
                 "n_images": len(samples)},
        "settings": {"conf": args.conf, "n_boot": args.n_boot, "seed": args.seed,
                     "bins": args.bins},
        "timing_s": {"inference": t1 - t0, "metrics": t2 - t1, "end_to_end": t3 - t2,
                     "plots": time.perf_counter() - t3,
                     "images_per_s": len(samples) / max(t1 - t0, 1e-9)},
    }
    path = args.out / "metrics.json"
    path.write_text(json.dumps(jsonable(metrics), indent=2, sort_keys=True, allow_nan=False) + "\n")
    summary(metrics, path)
    return 0
