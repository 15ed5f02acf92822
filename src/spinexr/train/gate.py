"""The ``gate`` recipe: train the spine-vs-other classifier, fit the gate's fusion and
thresholds on validation data, measure the test split once, and write the gate into the
vertebra pack.

Steps of :func:`train_gate`:

1. Images of each role (:mod:`spinexr.train.gate_data`): real films and real non-spine
   images, generated positives and hard negatives for train and val; real images only in test.
2. The classifier (one timm model, binary head) trains on ``train`` with class-balanced
   sampling and strong augmentation; the epoch with the best validation AUROC is kept. Its
   input contract (letterbox size, histogram equalisation) is stored with it.
3. On ``val`` only: the classifier's logits and the vertebra detector's evidence
   (:mod:`spinexr.gate.evidence`) are fused by a logistic regression; its out-of-fold P(spine)
   over 5 folds of ``val`` sets the two thresholds (:func:`spinexr.gate.decision.pick_thresholds`).
4. The frozen gate runs once on ``test``; figures per source go into the pack's metrics.
"""
from __future__ import annotations

import json
import logging
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import numpy as np

from spinexr.errors import ConfigError
from spinexr.gate.decision import GateModel, decide, pick_thresholds
from spinexr.gate.evidence import chain_evidence, features
from spinexr.models.pack import load_pack, save_pack, save_weights
from spinexr.train.config import read_recipe, recipe_path, relative_to_cwd
from spinexr.train.curves import classifier_curve, with_curves
from spinexr.train.gate_data import (GateItem, film_items, radiograph_items, radiograph_splits,
                                     read_manifest)
from spinexr.train.vertebra_set import phantom_images, read_yolo_folder

log = logging.getLogger("spinexr.train")
LABELS = ("other", "spine")


@dataclass(frozen=True)
class GateRecipe:
    """A parsed ``task: gate`` recipe (paths resolved against the recipe file)."""

    name: str
    vertebrae: Path
    radiographs: Path
    detector_pack: Path
    sources: Mapping[str, Any]
    model: Mapping[str, Any]
    train: Mapping[str, Any]
    thresholds: Mapping[str, float]
    card: Mapping[str, Any]
    source: Path


def load_gate_recipe(path: Path | str, overrides: Sequence[str] = ()) -> GateRecipe:
    """Parse a ``task: gate`` recipe after applying ``overrides`` (``--set KEY=VALUE``)."""
    path = Path(path)
    raw = read_recipe(path, overrides)
    if raw.get("task") != "gate":
        raise ConfigError("not a gate recipe (task: gate)", str(path))
    data = dict(raw.get("data") or {})
    for key in ("vertebrae", "radiographs", "detector_pack"):
        if key not in data:
            raise ConfigError(f"data.{key} is required", str(path))
    return GateRecipe(name=str(raw.get("name", "gate")),
                      vertebrae=recipe_path(path, data["vertebrae"]),
                      radiographs=recipe_path(path, data["radiographs"]),
                      detector_pack=recipe_path(path, data["detector_pack"]),
                      sources=dict(data.get("sources") or {}), model=dict(raw["model"]),
                      train=dict(raw.get("train") or {}),
                      thresholds=dict(raw.get("thresholds") or {}),
                      card=dict(raw.get("card") or {}), source=path.resolve())


# --------------------------------------------------------------------------- data
def _films(root: Path, split: str):
    return list(read_yolo_folder(root / split, "vertebrae"))


def _as_items(films, label: int = 1) -> list[GateItem]:
    return [GateItem(f.name, f.pixels, label, f.source, "AP spine film") for f in films]


def _drr_items(folders: Iterable[Path]) -> list[GateItem]:
    """DRR images of lateral and oblique views (AP DRRs of the chest CT look like chest
    films, which the gate must refuse: they are left out)."""
    out = []
    for folder in folders:
        views = _drr_views(folder)
        for f in read_yolo_folder(folder, "drr"):
            view = views.get(f.name.split("drr-", 1)[-1], "")
            if view in ("lateral", "oblique"):
                out.append(GateItem(f.name, f.pixels, 1, "drr", view))
    return out


def _drr_views(folder: Path) -> dict[str, str]:
    """Image stem -> view of a folder written by :func:`spinexr.phantom.drr.write_drr_yolo`,
    which cycles through its ``VIEWS`` in image order (``drr_00000`` lateral, ...)."""
    import re

    from spinexr.phantom.drr import VIEWS

    out = {}
    for p in (folder / "images").glob("*.png"):
        found = re.fullmatch(r"drr_(\d+)", p.stem)
        out[p.stem] = VIEWS[int(found.group(1)) % len(VIEWS)] if found else ""
    return out


def gate_items(recipe: GateRecipe, role: str, splits: Mapping[str, str]) -> list[GateItem]:
    """Every image of one role (see the module docstring)."""
    src = recipe.sources
    split = {"train": "train", "val": "valid", "test": "test"}[role]
    films = _films(recipe.vertebrae, split)
    items = _as_items(films) + list(radiograph_items(recipe.radiographs, splits, role))
    if role == "test":
        return items
    share = 1.0 if role == "train" else 0.25
    items += list(film_items(films, int(src.get("coned", 0) * share),
                             int(src.get("off_spine", 0) * share),
                             seed=int(src.get("seed", 0)) + (role == "val")))
    ph = src.get("phantoms") or {}
    if ph:
        n = int(ph["n"] * share)
        items += [GateItem(p.name, p.pixels, 1, "phantom", p.name.split("-")[1])
                  for p in phantom_images(n, int(ph.get("seed", 0)) + (role == "val"),
                                          float(ph.get("coned", 0.3)))]
    drr = src.get("drr" if role == "train" else "drr_val") or []
    items += _drr_items(recipe_path(recipe.source, d) for d in drr if
                        recipe_path(recipe.source, d).is_dir())
    return items


# --------------------------------------------------------------------------- training
def _array_data(items: Sequence[GateItem], pre):
    from spinexr.models.classifier import resize_to_input
    from spinexr.train.images import ArrayData, to_uint16

    pixels = np.stack([to_uint16(resize_to_input(it.pixels, pre)) for it in items])
    return ArrayData(pixels=pixels, targets=np.asarray([it.label for it in items], np.int64),
                     ids=tuple(it.name for it in items), groups=tuple(it.name for it in items))


def train_classifier(recipe: GateRecipe, train: Sequence[GateItem], val: Sequence[GateItem],
                     out: Path, resume: bool = False):
    """Train the spine-vs-other classifier; returns (state_dict, Preprocess, history)."""
    import torch

    from spinexr.models.classifier import Preprocess, create_classifier
    from spinexr.train.classify import _transforms
    from spinexr.train.engine import EngineConfig, fit
    from spinexr.train.losses import class_balanced_weights, make_loss
    from spinexr.train.oof import head_metrics

    m, t = recipe.model, recipe.train
    pre = Preprocess(input_size=int(m.get("size", 160)), contrast=str(m.get("contrast", "none")),
                     mean=float(m.get("mean", 0.5)), std=float(m.get("std", 0.25)))
    cfg = EngineConfig(epochs=int(t.get("epochs", 20)), batch_size=int(t.get("batch", 32)),
                       lr=float(t.get("lr", 1e-3)), weight_decay=float(t.get("weight_decay", 0.05)),
                       warmup_epochs=float(t.get("warmup_epochs", 1.0)), balanced=True,
                       monitor="auroc", mode="max", patience=t.get("patience"),
                       seed=int(t.get("seed", 0)), device="cpu", amp=False, tensorboard=False)
    torch.manual_seed(cfg.seed)
    model = create_classifier(str(m["arch"]), 2, head="binary",
                              drop_rate=float(m.get("drop_rate", 0.1)))
    train_tf, eval_tf = _transforms(pre, t.get("augment"))
    data_train, data_val = _array_data(train, pre), _array_data(val, pre)
    result = fit(model, data_train, data_val, loss_fn=make_loss("binary", t.get("loss")),
                 cfg=cfg, run_dir=out / "classifier", train_transform=train_tf,
                 eval_transform=eval_tf, metric_fn=lambda z, y: head_metrics(z, y, "binary"),
                 sample_weights=class_balanced_weights(data_train.targets, 2), resume=resume,
                 desc="gate classifier")
    return result.state_dict, pre, result.history


def evidence(items: Sequence[GateItem], classifier, detector, conf: float, strong: float,
             batch: int = 16):
    """(features (N, F), [ChainEvidence]) of ``items`` through the packed models."""
    from tqdm import tqdm

    feats, evs = [], []
    for start in tqdm(range(0, len(items), batch), desc="gate evidence", unit="batch",
                      file=sys.stderr, disable=None, leave=False):
        chunk = [it.pixels for it in items[start:start + batch]]
        logits = classifier.predict_logits(chunk)[:, 0]
        for z, boxes in zip(logits, detector.predict(chunk, conf=conf)):
            ev, _ = chain_evidence(boxes, strong)
            feats.append(features(float(z), ev))
            evs.append(ev)
    return np.stack(feats), evs


def source_weights(items: Sequence[GateItem]) -> np.ndarray:
    """Sample weights giving every (label, source) group the same total within its label, and
    both labels the same total: 262 AP films of one collection must not outvote 40 coned
    views or 25 chest films."""
    keys = [(it.label, it.source) for it in items]
    groups = {k: keys.count(k) for k in set(keys)}
    per_label = {lab: sum(1 for k in groups if k[0] == lab) for lab in (0, 1)}
    w = np.array([1.0 / (groups[k] * per_label[k[0]]) for k in keys])
    return w * len(w) / w.sum()


def fit_fusion(x: np.ndarray, y: np.ndarray, weights: np.ndarray | None = None, seed: int = 0,
               c: float = 1.0) -> tuple[np.ndarray, float, np.ndarray]:
    """Logistic fusion on validation features: (weights, bias, out-of-fold P(spine))."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold

    w = np.ones(len(y)) if weights is None else np.asarray(weights, np.float64)

    def model():
        return LogisticRegression(C=c, max_iter=5000)

    oof = np.zeros(len(y))
    for tr, te in StratifiedKFold(5, shuffle=True, random_state=seed).split(x, y):
        oof[te] = model().fit(x[tr], y[tr], sample_weight=w[tr]).predict_proba(x[te])[:, 1]
    final = model().fit(x, y, sample_weight=w)
    return final.coef_[0], float(final.intercept_[0]), oof


def outcome_table(p: np.ndarray, evs: Sequence[Any], items: Sequence[GateItem], gate
                  ) -> dict[str, Any]:
    """Accepted / uncertain / refused counts per label and per source, as the gate decides
    them from P(spine) and the detector evidence (no header: the images are rasters)."""
    outcomes = np.asarray([decide(float(p_i), ev, gate, None)[0] for p_i, ev in zip(p, evs)])
    out: dict[str, Any] = {}
    for key in sorted({(it.label, it.source) for it in items}):
        o = outcomes[[i for i, it in enumerate(items) if (it.label, it.source) == key]]
        out[f"{LABELS[key[0]]}/{key[1]}"] = {
            "n": len(o), **{k: int((o == k).sum()) for k in ("accepted", "uncertain", "refused")}}
    y = np.asarray([it.label for it in items])
    through = outcomes != "refused"
    out["sensitivity"] = float(through[y == 1].mean()) if (y == 1).any() else None
    out["specificity"] = float((~through[y == 0]).mean()) if (y == 0).any() else None
    return out


# --------------------------------------------------------------------------- the recipe
def train_gate(recipe: GateRecipe, out: Path, *, resume: bool = False) -> Path:
    """Run the recipe; returns ``<out>/pack``: the detector pack plus the gate."""
    from spinexr.models.classifier import Classifier, create_classifier

    out.mkdir(parents=True, exist_ok=True)
    splits = radiograph_splits(read_manifest(recipe.radiographs), recipe.vertebrae)
    (out / "splits.json").write_text(json.dumps(splits, indent=1, sort_keys=True) + "\n")
    items = {role: gate_items(recipe, role, splits) for role in ("train", "val")}
    log.info("gate items: %s", {r: len(v) for r, v in items.items()})
    state, pre, history = train_classifier(recipe, items["train"], items["val"], out, resume)
    del items["train"]
    det_pack = load_pack(recipe.detector_pack)
    det_spec = det_pack.manifest.first("vertebra_detector")
    if det_spec is None:
        raise ConfigError("detector_pack has no vertebra detector", str(recipe.detector_pack))
    det_key = det_spec.key
    detector = det_pack.detector(det_key, engine="torch")
    key = str(recipe.model.get("key", "spine_classifier"))
    model = create_classifier(str(recipe.model["arch"]), 2, head="binary")
    # the pack stores fp16 weights: fit and measure the gate with exactly those
    state = {k: (v.half().float() if v.is_floating_point() else v) for k, v in state.items()}
    model.load_state_dict(state)
    clf = Classifier(model, LABELS, "binary", pre, name=key)
    conf, strong = float(recipe.thresholds.get("conf", 0.25)), 0.5
    x_val, ev_val = evidence(items["val"], clf, detector, conf, strong)
    y_val = np.asarray([it.label for it in items["val"]])
    w, b, oof = fit_fusion(x_val, y_val, source_weights(items["val"]),
                           c=float(recipe.thresholds.get("c", 1.0)))
    negatives: dict[str, list[float]] = {}
    for p_i, it in zip(oof, items["val"]):
        if it.label == 0:
            negatives.setdefault(it.source, []).append(float(p_i))
    unc, acc = pick_thresholds(negatives,
                               max_uncertain_fp=float(recipe.thresholds.get("uncertain_fp", 0.02)),
                               max_accept_fp=float(recipe.thresholds.get("accept_fp", 0.0)),
                               margin=float(recipe.thresholds.get("margin", 0.02)))
    gate = GateModel(classifier=key, detector=det_key, weights=tuple(float(v) for v in w),
                     bias=b, accept=acc, uncertain=unc, conf=conf, strong_conf=strong)
    val_report = outcome_table(oof, ev_val, items["val"], gate)
    _write_scores(out / "val_oof.csv", oof, items["val"])
    del items["val"]
    test = gate_items(recipe, "test", splits)
    x_test, ev_test = evidence(test, clf, detector, conf, strong)
    p_test = gate.p_spine(x_test)
    test_report = outcome_table(p_test, ev_test, test, gate)
    _write_scores(out / "test_p_spine.csv", p_test, test)
    return _write_pack(recipe, out, det_pack, key, state, pre, gate, history,
                       {"val (out-of-fold)": val_report, "test": test_report})


def _write_scores(path: Path, p: np.ndarray, items: Sequence[GateItem]) -> None:
    """One row per image: name, label, source, view, P(spine) (for plots and threshold review)."""
    import csv

    with open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["name", "label", "source", "view", "p_spine"])
        for p_i, it in sorted(zip(p, items), key=lambda t: t[0]):
            w.writerow([it.name, LABELS[it.label], it.source, it.view, f"{p_i:.6f}"])


def _write_pack(recipe, out, det_pack, key, state, pre, gate, history, reports) -> Path:
    pack_dir = out / "pack"
    if pack_dir.exists():
        shutil.rmtree(pack_dir)
    pack_dir.mkdir(parents=True)
    manifest = json.loads(json.dumps(det_pack.manifest.raw))
    for spec in manifest["models"].values():
        shutil.copy2(det_pack.root / spec["weights"], pack_dir / spec["weights"])
    weights = f"{key}.safetensors"
    manifest["models"][key] = {
        "kind": "classifier", "arch": str(recipe.model["arch"]), "head": "binary",
        "labels": list(LABELS), "input": pre.to_dict(), "weights": weights, "dtype": "float16",
        "part": "gate", "role": "spine_classifier", "sha256": save_weights(state, pack_dir / weights, fp16=True)}
    manifest["gate"] = gate.to_dict()
    shutil.copy2(out / "splits.json", pack_dir / "gate_splits.json")
    manifest["gate_test_set"] = {
        "radiographs": relative_to_cwd(recipe.radiographs), "split_file": "gate_splits.json",
        "split": "test", "vertebrae": relative_to_cwd(recipe.vertebrae / "test")}
    manifest["gate_report"] = {**reports, "history": [dict(h) for h in history]}
    for role, rep in (("gate_val", reports["val (out-of-fold)"]), ("gate_test", reports["test"])):
        manifest.setdefault("metrics", {})[role] = {
            "sensitivity": rep["sensitivity"], "specificity": rep["specificity"],
            "n_spine": sum(v["n"] for k, v in rep.items() if k.startswith("spine/")),
            "n_other": sum(v["n"] for k, v in rep.items() if k.startswith("other/"))}
    card = dict(manifest.get("card", {}))
    card["gate_command"] = recipe.card.get("command") or (
        "spinexr train " + relative_to_cwd(recipe.source))
    if recipe.card.get("gate_data"):
        card["gate_data"] = recipe.card["gate_data"]
    manifest["card"] = card
    manifest.pop("format", None), manifest.pop("format_version", None)
    curve = classifier_curve([out / "classifier"], monitor="auroc", mode="max",
                             planned_epochs=int(recipe.train.get("epochs", 20)))
    save_pack(pack_dir, with_curves(manifest, {key: curve}))
    (out / "metrics.json").write_text(json.dumps(reports, indent=2, sort_keys=True) + "\n")
    return pack_dir
