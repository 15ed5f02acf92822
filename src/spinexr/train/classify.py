"""The ``classify`` recipe: k-fold image classifiers, an out-of-fold-fitted ensemble, a pack.

Steps of :func:`train_classifier_recipe`, in this order:

1. Read the ``train`` split only; cache its images at each member's input size.
2. Split it into k patient-grouped, label-stratified folds (:func:`spinexr.data.kfold_splits`).
3. For each member (backbone) and fold: train on k-1 folds with early stopping on the held-out
   fold, keep the held-out fold's logits at the best epoch. Together: out-of-fold (OOF) logits
   for every training image, each from a model that never saw it.
4. :func:`fit_on_oof` (whose only input is the OOF logits) fits per-member temperatures, the
   ensemble weights (max OOF AUROC) and the operating points (Youden, high sensitivity).
5. Final member per backbone: **one model retrained on all training images** with the same
   schedule, stopped after the fold models' mean best epoch count (one model per backbone
   keeps the pack small; averaging independently initialised fold weights would not work,
   keeping all k fold models would multiply pack size and latency by k). The OOF-fitted
   temperatures and thresholds are then applied to it, as scikit-learn's
   ``CalibratedClassifierCV(ensemble=False)`` does.
6. Write the pack (fp16 safetensors + manifest) and ``metrics.json``.
7. Only now, when a ``test`` split is configured: read it, run the **packed** models through the
   inference path (``ModelPack.triage`` / ``ModelPack.classifier``) once, with the frozen
   thresholds, and add the test metrics to the pack and ``metrics.json``.

Binary heads with several members make a triage ensemble; softmax / ordinal heads (grading:
degeneration 0-4, cervical normal/fracture/dislocation) train a single member the same way.
"""
from __future__ import annotations

import json
import logging
import shlex
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from spinexr.data import kfold_splits, load_dataset
from spinexr.errors import ConfigError, DatasetError
from spinexr.evaluate.classification import auroc, threshold_metrics
from spinexr.io import read_radiograph
from spinexr.models.classifier import Preprocess, create_classifier, normalize, output_width
from spinexr.models.ensemble import (TriageScores, fit_temperature, fit_weights,
                                     positive_probability, threshold_for_sensitivity,
                                     weighted_vote, youden_threshold)
from spinexr.models.pack import load_pack, save_pack, save_weights
from spinexr.train.augment import AugmentConfig, augment_batch
from spinexr.train.config import (ClassifyRecipe, Member, TrainConfig, engine_config,
                                  parse_recipe, relative_to_cwd)
from spinexr.train.curves import classifier_curve, with_curves
from spinexr.train.engine import Dist, EngineConfig, derived_seed, fit, init_distributed
from spinexr.train.images import ArrayData, load_images
from spinexr.train.losses import class_balanced_weights, make_loss
from spinexr.train.oof import OutOfFold, head_metrics
from spinexr.train.windows import (add_window_detector, load_windows, parse_windows, pooled_oof,
                                   train_windows, window_folds)
from spinexr.types import Sample

log = logging.getLogger("spinexr.train")
__all__ = ["ClassifyRecipe", "Member", "OofFit", "cross_validate", "engine_config",
           "evaluate_test_once", "fit_on_oof", "parse_recipe", "train_classifier_recipe"]


@dataclass(frozen=True)
class OofFit:
    """Everything fitted on out-of-fold predictions (never on test)."""

    temperatures: Mapping[str, float]
    weights: Mapping[str, float]
    operating_points: Mapping[str, float]
    metrics: Mapping[str, Any]


# --------------------------------------------------------------------------- data
def target_of(sample: Sample, target: str) -> int | None:
    """The class index a recipe trains on: ``label`` or ``grades.<name>`` of a sample."""
    if target == "label":
        return sample.label
    if target.startswith("grades."):
        return sample.grades.get(target[7:])
    raise ConfigError(f"data.target {target!r}: use 'label' or 'grades.<name>'", "data.target")


def load_role(cfg: TrainConfig, role: str) -> tuple[tuple[Sample, ...], tuple[str, ...]]:
    """Samples of one split role (``train`` or ``test``), and the image classes when the
    layout has them (class-per-folder; other layouts list box classes: ``()``)."""
    loaded = load_dataset(cfg.data.root, cfg.data.format, split=cfg.data.splits[role])
    if not loaded.samples:
        raise DatasetError(f"split {cfg.data.splits[role]!r} is empty", str(cfg.data.root))
    return loaded.samples, loaded.classes if loaded.format == "folders" else ()


def targets_of(samples: Sequence[Sample], target: str, num_classes: int,
               source: str = "data") -> np.ndarray:
    """int64 (N,) class indices; every image must have one in 0..num_classes-1."""
    values = [target_of(s, target) for s in samples]
    bad = tuple(f"{s.image_id}: {target} = {v!r}" for s, v in zip(samples, values)
                if v is None or not 0 <= int(v) < num_classes)
    if bad:
        raise DatasetError(f"{len(bad)} image(s) without a {target!r} in 0..{num_classes - 1}",
                           source, problems=bad)
    return np.asarray(values, dtype=np.int64)


# --------------------------------------------------------------------------- metrics
def _flat(metrics: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in metrics.items():
        if isinstance(v, Mapping):
            out.update(_flat(v, f"{prefix}{k}."))
        elif not isinstance(v, (list, tuple)):
            out[f"{prefix}{k}"] = v
    return out


# --------------------------------------------------------------------------- training
def _transforms(pre: Preprocess, augment: Mapping[str, Any] | None):
    aug = AugmentConfig.from_mapping(augment, fill=pre.pad_value)
    return (lambda x, g: normalize(augment_batch(x, g, aug), pre),
            lambda x: normalize(x, pre))


def _fit_member(member: Member, recipe: ClassifyRecipe, train: ArrayData, val: ArrayData | None,
                cfg: EngineConfig, run_dir: Path, resume: bool, dist: Dist, desc: str):
    import torch

    torch.manual_seed(cfg.seed)  # the same initial weights on every rank and every resume
    model = create_classifier(member.arch, len(recipe.labels), head=recipe.head,
                              drop_rate=member.drop_rate, init_file=member.init_file)
    train_tf, eval_tf = _transforms(member.pre, member.train.get("augment"))
    return fit(model, train, val, loss_fn=make_loss(recipe.head, member.train.get("loss")),
               cfg=cfg, run_dir=run_dir, train_transform=train_tf, eval_transform=eval_tf,
               metric_fn=lambda z, y: head_metrics(z, y, recipe.head),
               sample_weights=class_balanced_weights(train.targets, len(recipe.labels)),
               resume=resume, dist=dist, desc=desc)


def cross_validate(member: Member, index: int, recipe: ClassifyRecipe, data: ArrayData,
                   folds: Sequence[tuple[np.ndarray, np.ndarray]], out: Path, *, resume: bool,
                   dist: Dist) -> OutOfFold:
    """Train one model per fold with early stopping on that fold; collect OOF logits."""
    k = output_width(recipe.head, len(recipe.labels))
    logits = np.full((len(data), k), np.nan, dtype=np.float32)
    fold_of = np.full(len(data), -1, dtype=np.int64)
    best, metric = [], []
    for f, (tr, va) in enumerate(folds):
        cfg = engine_config(member, recipe.head, derived_seed(recipe.seed, index, f) % 2**31)
        res = _fit_member(member, recipe, data.subset(tr), data.subset(va), cfg,
                          out / f"fold{f}", resume, dist, f"{member.key} fold {f + 1}/{len(folds)}")
        logits[va], fold_of[va] = res.val_logits, f
        best.append(res.best_epoch)
        metric.append(res.best_metric)
    if (fold_of < 0).any() or np.isnan(logits).any():
        raise RuntimeError("folds do not cover every training image exactly once")
    return OutOfFold(logits, data.targets.copy(), fold_of, tuple(best), tuple(metric))


def save_oof(path: Path, oof: Mapping[str, OutOfFold], samples: Sequence[Sample]) -> None:
    """Keep the out-of-fold logits (``<key>.logits``, ``targets``, ``fold``, ``image_id``)."""
    first = next(iter(oof.values()))
    arrays = {f"{k}.logits": o.logits for k, o in oof.items()}
    np.savez(path, targets=first.targets, fold=first.fold_of,
             image_id=np.asarray([s.image_id for s in samples]), **arrays)


def load_oof(path: Path) -> dict[str, OutOfFold]:
    """Read :func:`save_oof`'s file back (fold best epochs are not kept there)."""
    with np.load(path, allow_pickle=False) as z:
        return {name[:-7]: OutOfFold(z[name], z["targets"], z["fold"], (), ())
                for name in z.files if name.endswith(".logits")}


def final_epochs(oof: OutOfFold) -> int:
    """Epochs for the final model: the fold models' mean best epoch count, rounded, >= 1."""
    return max(1, int(round(float(np.mean([b + 1 for b in oof.best_epochs])))))


def _fold_mean_auroc(p: np.ndarray, y: np.ndarray, fold_of: np.ndarray) -> float:
    values = [auroc(y[fold_of == f], p[fold_of == f]) for f in np.unique(fold_of)]
    finite = [v for v in values if np.isfinite(v)]  # a fold with one class has no AUROC
    return float(np.mean(finite)) if finite else float("nan")


def fit_on_oof(oof: Mapping[str, OutOfFold], recipe: ClassifyRecipe) -> OofFit:
    """Temperatures, ensemble weights, operating points and OOF metrics, from OOF logits only."""
    names = list(oof)
    y = oof[names[0]].targets
    temps = {k: fit_temperature(o.logits, y, recipe.head) if recipe.calibrate else 1.0
             for k, o in oof.items()}
    if recipe.head != "binary":
        (key,) = names
        return OofFit(temps, {key: 1.0}, {},
                      {"n": int(len(y)), **head_metrics(oof[key].logits, y, recipe.head,
                                                         temps[key])})
    probs = np.stack([positive_probability(oof[k].logits, "binary", temps[k]) for k in names])
    w = fit_weights(probs, y, step=recipe.weight_step)
    p = weighted_vote(probs, w)
    ops = {"youden": youden_threshold(p, y)}
    ops.update({op: threshold_for_sensitivity(p, y, target)
                for op, target in recipe.operating_points.items()})
    metrics: dict[str, Any] = {"n": int(len(y)), "n_positive": int(y.sum()), "auroc": auroc(y, p)}
    metrics.update({f"auroc_{k}": auroc(y, probs[i]) for i, k in enumerate(names)})
    # pooled OOF AUROC also pays for score-scale differences between the fold models; the
    # per-fold mean does not: a large gap means the fold models are calibrated differently
    metrics.update({f"auroc_{k}_fold_mean": _fold_mean_auroc(probs[i], y, oof[k].fold_of)
                    for i, k in enumerate(names)})
    metrics.update({op: threshold_metrics(y, p, t) for op, t in ops.items()})
    return OofFit(temps, dict(zip(names, map(float, w))), ops, metrics)


# --------------------------------------------------------------------------- pack and test
def _model_spec(member: Member, recipe: ClassifyRecipe, weights: str, sha: str,
                oof: OutOfFold, epochs: int, temperature: float | None, target: str) -> dict:
    spec = {"kind": "classifier", "arch": member.arch, "head": recipe.head,
            "labels": list(recipe.labels), "target": target, "weights": weights,
            "dtype": "float16", "sha256": sha,
            "input": member.pre.to_dict(),
            "training": {"fold_best_epochs": [int(b) + 1 for b in oof.best_epochs],
                         "final_epochs": epochs, "final": "retrain"}}
    if temperature is not None:
        spec["temperature"] = float(temperature)
    if recipe.crop:
        spec["crop"] = dict(recipe.crop)
    if recipe.regions:
        spec["regions"] = list(recipe.regions)
    return spec


def _manifest(cfg: TrainConfig, recipe: ClassifyRecipe, models: dict, fitted: OofFit,
              metrics: Mapping[str, Any]) -> dict:
    card = dict(cfg.card)
    card.setdefault("command", "spinexr train " + shlex.quote(relative_to_cwd(cfg.source)))
    manifest = {"name": cfg.name, "version": str(cfg.card.get("version", "1.0.0")),
                "synthetic": bool(cfg.card.get("synthetic", False)), "card": card,
                "models": models, "task": "triage" if recipe.head == "binary" else "grading",
                "metrics": {role: _flat(m) for role, m in metrics.items()},
                "fitted_on": "out-of-fold predictions of the train split "
                             f"({recipe.folds} patient-grouped folds); test never used",
                "test_set": {"format": cfg.data.format, "split": cfg.data.splits.get("test"),
                             "root": relative_to_cwd(cfg.data.root)}}
    if recipe.head == "binary":
        manifest["ensemble"] = {"members": list(models), "weights": dict(fitted.weights),
                                "temperatures": dict(fitted.temperatures),
                                "operating_points": dict(fitted.operating_points)}
    return manifest


def evaluate_test_once(pack, cfg: TrainConfig, recipe: ClassifyRecipe, *, batch: int = 16,
                       device: str = "cpu") -> dict[str, Any]:
    """Metrics of the frozen pack on the test split, through the inference path (read once)."""
    samples, _ = load_role(cfg, "test")
    y = targets_of(samples, cfg.data.target, len(recipe.labels), str(cfg.data.root))
    triage = pack.triage(device=device) if recipe.head == "binary" else None
    key = recipe.members[0].key
    chunks = []
    for start in range(0, len(samples), batch):
        images = [read_radiograph(s.image_path).pixels for s in samples[start:start + batch]]
        chunks.append(triage.predict(images) if triage else
                      pack.grader(key, device=device).predict_proba(images))  # + its T
    if triage is None:  # log-probabilities are softmax logits of the same probabilities
        probs = np.concatenate(chunks)
        return {"n": int(len(y)), **head_metrics(np.log(np.clip(probs, 1e-300, 1)), y,
                                                 "softmax")}
    scores = TriageScores.concatenate(chunks)
    p = scores.probability
    out: dict[str, Any] = {"n": int(len(y)), "n_positive": int(y.sum()), "auroc": auroc(y, p)}
    for name in triage.members:
        out[f"auroc_{name}"] = auroc(y, scores.per_model[name])
    out.update({op: threshold_metrics(y, p, t) for op, t in triage.operating_points.items()})
    return out


def _write_pack(pack_dir: Path, cfg, recipe, states, oof, epochs, fitted, metrics) -> dict:
    models = {}
    for m in recipe.members:
        weights = f"{m.key}.safetensors"
        sha = save_weights(states[m.key], pack_dir / weights, fp16=True)
        temp = None if recipe.head == "binary" else fitted.temperatures[m.key]
        models[m.key] = _model_spec(m, recipe, weights, sha, oof[m.key], epochs[m.key], temp,
                                    cfg.data.target)
    manifest = _manifest(cfg, recipe, models, fitted, metrics)
    save_pack(pack_dir, manifest)
    return manifest


def check_test_groups(cfg: TrainConfig, train: Sequence[Sample]) -> None:
    """Refuse a test split sharing patients/studies with train (reads test group ids only,
    no images and no labels, so it can fail in seconds instead of after training)."""
    if "test" not in cfg.data.splits:
        return
    test, _ = load_role(cfg, "test")
    shared = sorted({str(s.group) for s in test} & {str(s.group) for s in train})
    if shared:
        raise DatasetError(f"{len(shared)} patient/study group(s) are in both train and test "
                           f"(e.g. {shared[:3]}): test metrics would be optimistic",
                           str(cfg.data.root))


def train_members(cfg: TrainConfig, recipe: ClassifyRecipe, samples: Sequence[Sample],
                  y: np.ndarray, out: Path, *, resume: bool, dist: Dist):
    """Cross-validate and retrain every member; returns (OOF, final state dicts, epochs)."""
    folds = kfold_splits(samples, recipe.folds, seed=recipe.seed,
                         stratify=lambda s: target_of(s, cfg.data.target))
    cache_dir = recipe.cache_dir or out / "cache"
    data_by_pre: dict[Preprocess, ArrayData] = {}
    oof, states, epochs = {}, {}, {}
    for i, m in enumerate(recipe.members):
        if m.pre not in data_by_pre:
            data_by_pre[m.pre] = load_images(samples, y, m.pre, cache_dir)
        data = data_by_pre[m.pre]
        oof[m.key] = cross_validate(m, i, recipe, data, folds, out / "cv" / m.key,
                                    resume=resume, dist=dist)
        epochs[m.key] = final_epochs(oof[m.key])
        log.info("%s: fold best epochs %s, retraining on all %d images for %d epochs", m.key,
                 [b + 1 for b in oof[m.key].best_epochs], len(samples), epochs[m.key])
        cfg_final = replace(engine_config(m, recipe.head, derived_seed(recipe.seed, i, 99)
                                          % 2**31), stop_after=epochs[m.key], patience=None)
        states[m.key] = _fit_member(m, recipe, data, None, cfg_final, out / "final" / m.key,
                                    resume, dist, f"{m.key} final").state_dict
    return oof, states, epochs


def train_window_members(cfg: TrainConfig, recipe: ClassifyRecipe, windows,
                         samples: Sequence[Sample], y: np.ndarray, out: Path, *, resume: bool,
                         dist: Dist):
    """:func:`train_members` on vertebra windows (``model.windows``); the returned OOF logits
    are pooled to one row per image, the most abnormal window's (see
    :mod:`spinexr.train.windows`)."""
    if recipe.head != "binary" and not windows.lesions:
        raise ConfigError("model.windows of a grader needs 'lesions': the lesion classes whose "
                          "windows carry the image's grade", str(cfg.source))
    detector = load_pack(windows.pack).detector(windows.spec.detector)
    folds = kfold_splits(samples, recipe.folds, seed=recipe.seed,
                         stratify=lambda s: target_of(s, cfg.data.target))
    sets = load_windows(samples, list(dict.fromkeys(m.pre for m in recipe.members)), detector,
                        windows, y)
    oof, states, epochs = {}, {}, {}
    for i, m in enumerate(recipe.members):
        ws = sets[m.pre]
        wfolds = window_folds(folds, ws.owner, ws.data.targets, windows.negatives, recipe.seed)
        window_oof = cross_validate(m, i, recipe, ws.data, wfolds, out / "cv" / m.key,
                                    resume=resume, dist=dist)
        oof[m.key] = pooled_oof(window_oof, ws.owner, y, folds, windows.spec.aggregate,
                                recipe.head)
        epochs[m.key] = final_epochs(window_oof)
        everything = train_windows(np.ones(len(ws.owner), bool), ws.owner, ws.data.targets,
                                   windows.negatives, recipe.seed + 99)
        log.info("%s: %d windows from %d images (%d abnormal); fold best epochs %s, retraining "
                 "on %d windows for %d epochs", m.key, len(ws.owner), len(samples),
                 int((ws.data.targets > 0).sum()), [b + 1 for b in window_oof.best_epochs],
                 len(everything), epochs[m.key])
        cfg_final = replace(engine_config(m, recipe.head, derived_seed(recipe.seed, i, 99)
                                          % 2**31), stop_after=epochs[m.key], patience=None)
        states[m.key] = _fit_member(m, recipe, ws.data.subset(everything), None, cfg_final,
                                    out / "final" / m.key, resume, dist,
                                    f"{m.key} final").state_dict
    return oof, states, epochs


def fold_curves(recipe: ClassifyRecipe, out: Path, epochs: Mapping[str, int],
                windows: bool) -> dict:
    """Each member's learning curve: the mean of its fold runs' ``metrics.csv`` (``None``
    for a member none of whose fold runs left one); ``epochs``: the final retrain's length."""
    curves = {}
    unit = "windows" if windows else "images"
    for m in recipe.members:
        cfg = engine_config(m, recipe.head, 0)
        curve = classifier_curve(sorted((out / "cv" / m.key).glob("fold*")),
                                 monitor=cfg.monitor, mode=cfg.mode, unit=unit,
                                 planned_epochs=cfg.epochs)
        curves[m.key] = curve and replace(curve, source=(
            f"{curve.source}; the packed model was then trained on all training {unit} for "
            f"{epochs[m.key]} epoch(s)"))
    return curves


def _publish(cfg: TrainConfig, recipe: ClassifyRecipe, samples, oof, states, epochs,
             fitted: OofFit, out: Path, device: str, windows=None) -> Path:
    """Pack, then (only then) the one test evaluation, then metrics.json."""
    save_oof(out / "oof.npz", oof, samples)
    metrics: dict[str, Any] = {"oof": fitted.metrics}
    pack_dir = out / "pack"
    manifest = _write_pack(pack_dir, cfg, recipe, states, oof, epochs, fitted, metrics)
    manifest = with_curves(manifest, fold_curves(recipe, out, epochs, windows is not None))
    save_pack(pack_dir, manifest)
    if windows is not None:
        manifest = add_window_detector(pack_dir, manifest, windows)
    if "test" in cfg.data.splits:
        metrics["test"] = evaluate_test_once(load_pack(pack_dir), cfg, recipe, device=device)
        manifest["metrics"] = {role: _flat(v) for role, v in metrics.items()}
        save_pack(pack_dir, manifest)
    folds_info = {m.key: {"best_epochs": [b + 1 for b in oof[m.key].best_epochs],
                          "best_metric": list(oof[m.key].fold_metrics),
                          "final_epochs": epochs[m.key]} for m in recipe.members}
    doc = {**metrics, "folds": folds_info, "ensemble": manifest.get("ensemble")}
    (out / "metrics.json").write_text(json.dumps(doc, indent=2, sort_keys=True,
                                                 default=float) + "\n")
    return pack_dir


def train_classifier_recipe(cfg: TrainConfig, out: Path, resume: bool = False) -> Path:
    """Run a ``task: classify`` recipe; returns the pack directory ``<out>/pack``."""
    import torch

    out = Path(out)
    if cfg.train.get("threads"):
        torch.set_num_threads(int(cfg.train["threads"]))
    samples, classes = load_role(cfg, "train")
    recipe = parse_recipe(cfg, classes)
    y = targets_of(samples, cfg.data.target, len(recipe.labels), str(cfg.data.root))
    check_test_groups(cfg, samples)
    device = engine_config(recipe.members[0], recipe.head, 0).device
    dist = init_distributed(device)
    windows = parse_windows(cfg.model.get("windows"), cfg.source, out, recipe.labels)
    if windows is None:
        oof, states, epochs = train_members(cfg, recipe, samples, y, out, resume=resume,
                                            dist=dist)
    else:
        oof, states, epochs = train_window_members(cfg, recipe, windows, samples, y, out,
                                                   resume=resume, dist=dist)
    fitted = fit_on_oof(oof, recipe)  # <- the only place anything is fitted after training
    log.info("fitted on out-of-fold predictions: weights %s, temperatures %s, thresholds %s",
             fitted.weights, fitted.temperatures, fitted.operating_points)
    if not dist.is_main:
        return out / "pack"
    return _publish(cfg, recipe, samples, oof, states, epochs, fitted, out, device, windows)
