"""Training recipes: a YAML file -> a validated, frozen :class:`TrainConfig`.

``task: detect`` recipes are checked by :mod:`spinexr.train.detector`; ``task: classify``
recipes by :func:`parse_recipe` here (``model.head/labels/input/members[]/crop`` and the
``train`` keys in :data:`TRAIN_KEYS`; configs/dernet-vindr.yaml documents each one).

Relative data paths in a recipe are resolved against the recipe's own directory, so
``configs/vertebrae.yaml`` can name ``../../shared/data/vertebrae`` from any working directory.

``spinexr train RECIPE --set KEY=VALUE`` changes the recipe's YAML document before it is
validated (:func:`apply_overrides`), e.g. to shrink a real recipe for a smoke run.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping, Sequence

from spinexr.errors import ConfigError
from spinexr.labels import TRIAGE_CLASSES
from spinexr.levels import REGION_ANCHORS
from spinexr.models.grading import GRADING_TASKS
from spinexr.types import Sample

if TYPE_CHECKING:  # heavy (torch); imported where used
    from spinexr.models.classifier import Preprocess
    from spinexr.train.engine import EngineConfig

#: ``detect``: a YOLO detector (:mod:`spinexr.train.detector`); ``classify``: image classifiers,
#: a k-fold ensemble for triage or one grading model (:mod:`spinexr.train.classify`).
TASKS = ("detect", "classify")


@dataclass(frozen=True)
class HoldOut:
    """A validation split cut out of ``train`` (``data.splits.val: {holdout: 0.1, seed: 0}``),
    for datasets published with train and test only (VinDr-SpineXR): about ``fraction`` of the
    training studies, grouped by ``Sample.group`` and stratified by the rarest box class."""

    fraction: float
    seed: int = 0


@dataclass(frozen=True)
class DataConfig:
    """Where the data is. ``splits`` maps roles (train, val, test) to the dataset's split names.

    ``joint`` (detect only) adds sources to the training set: coned crops, phantoms, extra
    YOLO folders (see :mod:`spinexr.train.vertebra_set`).

    ``target`` (classify only) names the image-level class index: ``label`` (``Sample.label``,
    e.g. VinDr normal/abnormal or the class folder) or ``grades.<name>`` (``Sample.grades``).

    ``holdout`` (detect only): the ``val`` role is cut out of ``train`` (see :class:`HoldOut`);
    ``splits`` then names no ``val`` split.
    """

    root: Path
    format: str | None = None
    splits: Mapping[str, str] = field(default_factory=lambda: {"train": "train", "val": "val"})
    class_map: Mapping[str, str] = field(default_factory=dict)
    target: str = "label"
    phantom: Mapping[str, Any] | None = None
    boxes: str = "lesions"
    joint: Mapping[str, Any] | None = None
    holdout: HoldOut | None = None


@dataclass(frozen=True)
class TrainConfig:
    """A recipe. ``model``, ``train`` and ``card`` stay mappings: each engine checks its keys."""

    name: str
    task: str
    data: DataConfig
    model: Mapping[str, Any]
    train: Mapping[str, Any]
    card: Mapping[str, Any]
    source: Path


#: Which boxes of a sample a detect recipe trains on (``vertebrae`` needs a layout keeping them:
#: coco, or phantom sets written as coco).
BOX_SOURCES = ("lesions", "vertebrae")


def _require(raw: Mapping[str, Any], key: str, where: Path) -> Any:
    if key not in raw:
        raise ConfigError(f"missing required key {key!r}", str(where))
    return raw[key]


def _parse_splits(raw: Mapping[str, Any], path: Path) -> tuple[dict[str, str], HoldOut | None]:
    """``data.splits`` -> (role -> split name, the held-out ``val``, if it is one)."""
    splits, holdout = {}, None
    for role, value in raw.items():
        if role == "val" and isinstance(value, Mapping):
            unknown = sorted(set(value) - {"holdout", "seed"})
            fraction = value.get("holdout")
            if unknown or not isinstance(fraction, (int, float)) or not 0 < fraction < 1:
                raise ConfigError(f"data.splits.val is {dict(value)}; give a split name or "
                                  "{holdout: FRACTION in (0, 1), seed: INT}", str(path))
            holdout = HoldOut(float(fraction), int(value.get("seed", 0)))
        elif isinstance(value, (str, int)) and not isinstance(value, bool):
            splits[str(role)] = str(value)
        else:
            raise ConfigError(f"data.splits.{role} is {value!r}; give a split name", str(path))
    return splits, holdout


def hold_out(splits: Mapping[str, Sequence[Sample]], holdout: HoldOut | None
             ) -> dict[str, tuple[Sample, ...]]:
    """The samples of each role, with ``val`` cut out of ``train`` when ``holdout`` is set
    (grouped by study, stratified; deterministic for a seed). Returns new tuples."""
    out = {role: tuple(samples) for role, samples in splits.items()}
    if holdout is None:
        return out
    from spinexr.data.splits import train_val_split

    train = out["train"]
    keep, val = train_val_split(train, holdout.fraction, seed=holdout.seed)
    return {**out, "train": tuple(train[i] for i in keep), "val": tuple(train[i] for i in val)}


def _check_splits(task: str, splits: Mapping[str, str], path: Path,
                  holdout: HoldOut | None = None) -> None:
    if holdout is not None and task != "detect":
        raise ConfigError("data.splits.val: {holdout: ...} is for detect recipes; classify "
                          "recipes validate on k folds of 'train'", str(path))
    if task == "detect" and ("train" not in splits or ("val" not in splits and not holdout)):
        raise ConfigError("data.splits needs 'train' and 'val' (model selection never uses test)",
                          str(path))
    if task == "classify":
        if "train" not in splits:
            raise ConfigError("data.splits needs 'train'", str(path))
        if "val" in splits:
            raise ConfigError("data.splits.val: the classify task validates on k folds of "
                              "'train' (out-of-fold); remove 'val' or merge it into train",
                              str(path))
        unknown = sorted(set(splits) - {"train", "test"})
        if unknown:
            raise ConfigError(f"data.splits roles {unknown}: use 'train' and optionally 'test'",
                              str(path))


def read_recipe(path: Path | str, overrides: Sequence[str] = ()) -> dict[str, Any]:
    """The YAML document of a recipe file with ``overrides`` applied (see
    :func:`apply_overrides`); not validated."""
    import yaml

    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"cannot read recipe: {exc}", str(path)) from exc
    if not isinstance(raw, dict):
        raise ConfigError("a recipe is a YAML mapping", str(path))
    if not overrides:
        return raw
    try:
        raw = apply_overrides(raw, overrides)
    except ConfigError as exc:
        raise ConfigError(exc.reason, f"{path}: --set") from exc
    card = dict(raw.get("card") or {})
    raw["card"] = {**card, "overrides": [*card.get("overrides", ()), *overrides]}
    return raw


def load_config(path: Path | str, overrides: Sequence[str] = ()) -> TrainConfig:
    """Parse and validate a training recipe, after applying ``overrides`` (``KEY=VALUE``
    strings, see :func:`apply_overrides`; they are recorded in ``card.overrides``)."""
    path = Path(path)
    raw = read_recipe(path, overrides)
    task = _require(raw, "task", path)
    if task not in TASKS:
        raise ConfigError(f"task {task!r} is not one of {TASKS}", str(path))
    data = dict(_require(raw, "data", path))
    phantom = data.get("phantom")
    if phantom is not None and not (isinstance(phantom, dict) and phantom.get("sets")):
        raise ConfigError("data.phantom needs 'sets': {split: {n, seed}, ...}", str(path))
    root = Path(str(data.get("root") or "phantom-data") if phantom else
                str(_require(data, "root", path)))
    default_splits = {"train": "train", "val": "val"} if task == "detect" else {"train": "train"}
    splits, holdout = _parse_splits(data.get("splits") or default_splits, path)
    data_cfg = DataConfig(root=recipe_path(path, root),
                          format=data.get("format"),
                          splits=splits, holdout=holdout,
                          class_map=dict(data.get("class_map") or {}),
                          target=str(data.get("target", "label")),
                          phantom=dict(phantom) if phantom else None,
                          boxes=str(data.get("boxes", "lesions")),
                          joint=dict(data["joint"]) if data.get("joint") else None)
    if data_cfg.boxes not in BOX_SOURCES:
        raise ConfigError(f"data.boxes is {data_cfg.boxes!r}; use one of {BOX_SOURCES}", str(path))
    _check_splits(task, data_cfg.splits, path, holdout)
    if holdout is not None and data_cfg.joint:
        raise ConfigError("data.joint needs a named 'val' split, not a holdout", str(path))
    return TrainConfig(name=str(raw.get("name", path.stem)), task=task, data=data_cfg,
                       model=dict(_require(raw, "model", path)), train=dict(raw.get("train") or {}),
                       card=dict(raw.get("card") or {}), source=path.resolve())


def recipe_path(recipe_file: Path, ref: str | Path) -> Path:
    """A path written in a recipe: absolute as is, else relative to the recipe file."""
    ref = Path(str(ref))
    return ref if ref.is_absolute() else (Path(recipe_file).parent / ref).resolve()


def relative_to_cwd(path: Path) -> str:
    """``path`` relative to the working directory (for commands recorded in model cards)."""
    import os

    try:
        return os.path.relpath(path, Path.cwd())
    except ValueError:  # another drive on Windows
        return str(path)


# --------------------------------------------------------------------------- --set
#: Top-level keys an override may add to a recipe that lacks them (a typo such as
#: ``trian.epochs`` is refused instead of silently ignored).
RECIPE_SECTIONS = ("name", "task", "data", "model", "train", "card", "thresholds")


def _parse_pair(pair: str) -> tuple[list[str], Any]:
    """``"a.b.c=VALUE"`` -> (``["a", "b", "c"]``, VALUE parsed as YAML)."""
    import yaml

    key, sep, text = pair.partition("=")
    parts = key.strip().split(".")
    if not sep or not all(p.strip() and ":" not in p for p in parts):
        raise ConfigError(f"{pair!r} is not KEY=VALUE with a dotted KEY such as "
                          "train.epochs=1 (PART:KEY=VALUE only for pack recipes)", "--set")
    try:
        value = yaml.safe_load(text) if text.strip() else None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{pair!r}: the value is not YAML ({exc})", "--set") from exc
    return [p.strip() for p in parts], value


def _child(node: Any, key: str, pair: str, path: str) -> tuple[Any, Any]:
    """(container, index) of ``key`` in ``node``: a mapping key or a list position."""
    if isinstance(node, dict):
        return node, key
    if isinstance(node, list) and key.lstrip("-").isdigit() and -len(node) <= int(key) < len(node):
        return node, int(key)
    what = f"a list of {len(node)}" if isinstance(node, list) else type(node).__name__
    raise ConfigError(f"{pair!r}: {path} is {what}, so it has no {key!r}", "--set")


def apply_overrides(doc: Mapping[str, Any], pairs: Sequence[str]) -> dict[str, Any]:
    """A copy of a recipe document with each ``KEY=VALUE`` of ``pairs`` set, in order.

    KEY is dotted (``train.epochs``, ``model.members.0.arch``: a number indexes a list); VALUE
    is YAML (``1``, ``yolo11n``, ``null``, ``[{key: a, arch: resnet10t}]``). Missing mappings
    on the way are created, except at the top level (see :data:`RECIPE_SECTIONS`). Paths in
    values are read like the recipe's own: relative to the recipe file.

    Raises:
        ConfigError: a pair that is not KEY=VALUE, a VALUE that is not YAML, or a KEY that
            runs into a scalar, past a list's end, or adds an unknown top-level section.
    """
    import copy

    out = copy.deepcopy(dict(doc))
    for pair in pairs:
        keys, value = _parse_pair(pair)
        if keys[0] not in out and keys[0] not in RECIPE_SECTIONS:
            raise ConfigError(f"{pair!r}: the recipe has no {keys[0]!r} section (has "
                              f"{sorted(out)})", "--set")
        node = out
        for depth, key in enumerate(keys[:-1]):
            container, index = _child(node, key, pair, ".".join(keys[:depth]) or "the recipe")
            if isinstance(container, dict) and container.get(index) is None:
                container[index] = {}
            node = container[index]
        container, index = _child(node, keys[-1], pair, ".".join(keys[:-1]) or "the recipe")
        container[index] = value
    return out


def part_overrides(pairs: Sequence[str], parts: Sequence[str]) -> dict[str, list[str]]:
    """Per part of a pack recipe, its overrides: ``PART:KEY=VALUE`` for that part only,
    ``KEY=VALUE`` for every part (in the order given).

    Raises:
        ConfigError: a ``PART:`` prefix naming no part.
    """
    out: dict[str, list[str]] = {part: [] for part in parts}
    for pair in pairs:
        prefix, colon, _ = pair.partition("=")[0].partition(":")
        if not colon:
            for part in parts:
                out[part].append(pair)
        elif prefix.strip() in out:
            out[prefix.strip()].append(pair.split(":", 1)[1])
        else:
            raise ConfigError(f"{pair!r}: no part {prefix!r} in this pack recipe (parts: "
                              f"{list(parts)})", "--set")
    return out


def materialize_data(cfg: TrainConfig, out: Path, *,
                     only: tuple[str, ...] | None = None) -> TrainConfig:
    """Write the recipe's phantom sets under ``<out>/data`` (once) and point the recipe there.

    ``data.phantom`` = ``{sets: {split: {n, seed, ...}}, <PhantomSet defaults>}``: each split is
    generated from its own seed, so a test set never shares an image with training. A recipe
    without ``data.phantom`` is returned unchanged. ``only``: write just these splits (e.g.
    ``("test",)`` to re-evaluate a trained pack).
    """
    import json
    from dataclasses import replace

    from spinexr.phantom.dataset import PhantomSet, write_phantom_dataset

    if not cfg.data.phantom:
        return cfg
    root = out / "data"
    common = {k: v for k, v in cfg.data.phantom.items() if k != "sets"}
    for split, fields in cfg.data.phantom["sets"].items():
        if only is not None and split not in only:
            continue
        merged = {**common, **dict(fields), "split": split}
        if "size" in merged and merged["size"] is not None:
            merged["size"] = tuple(merged["size"])
        try:
            spec = PhantomSet(**merged)
        except TypeError as exc:
            raise ConfigError(f"data.phantom.sets.{split}: {exc}", str(cfg.source)) from exc
        marker = root / f".phantom-{split}.json"
        wanted = json.dumps(merged, sort_keys=True, default=list)
        if marker.is_file() and marker.read_text() == wanted:
            continue  # already written by an earlier (or interrupted and resumed) run
        if marker.exists() or any(root.glob(f"*{split}*")):
            raise ConfigError(f"{root} holds a different '{split}' set; use a new --out",
                              str(cfg.source))
        write_phantom_dataset(root, spec)
        marker.write_text(wanted)
    return replace(cfg, data=replace(cfg.data, root=root))


# --------------------------------------------------------------------------- classify
#: ``train:`` keys of a classify recipe (members may override any of them under ``train:``).
TRAIN_KEYS = ("folds", "seed", "epochs", "patience", "batch", "lr", "weight_decay", "schedule",
              "warmup_epochs", "balanced", "monitor", "loss", "augment", "device", "amp",
              "grad_clip", "eval_batch", "final", "operating_points", "weight_step",
              "calibrate", "cache_dir", "progress", "tensorboard", "threads")
_MONITOR = {"binary": "auroc", "softmax": "balanced_accuracy", "ordinal": "qwk"}


@dataclass(frozen=True)
class Member:
    """One backbone of the recipe with its resolved settings."""

    key: str
    arch: str
    drop_rate: float
    pre: Preprocess
    train: Mapping[str, Any]
    init_file: Path | None = None


@dataclass(frozen=True)
class ClassifyRecipe:
    """The validated ``model`` / ``train`` sections of a classify recipe."""

    head: str
    labels: tuple[str, ...]
    members: tuple[Member, ...]
    folds: int
    seed: int
    operating_points: Mapping[str, float]
    weight_step: float
    calibrate: bool
    crop: Mapping[str, Any] | None
    cache_dir: Path | None
    regions: tuple[str, ...] | None = None   # graders: spine regions they apply to


def _labels(cfg: TrainConfig, classes: Sequence[str]) -> tuple[str, ...]:
    if cfg.model.get("labels"):
        return tuple(str(x) for x in cfg.model["labels"])
    target = cfg.data.target
    if target.startswith("grades.") and target[7:] in GRADING_TASKS:
        return GRADING_TASKS[target[7:]][0]
    if target == "label" and classes:
        return tuple(classes)
    if target == "label":
        return TRIAGE_CLASSES
    raise ConfigError(f"cannot tell the classes of target {target!r}; list them in model.labels",
                      str(cfg.source))


def _check_member(member: Member, head: str, num_classes: int) -> None:
    """Fail on a bad augment / loss / monitor setting now, not after hours of caching."""
    import numpy as np

    from spinexr.models.classifier import output_width
    from spinexr.train.augment import AugmentConfig
    from spinexr.train.losses import make_loss
    from spinexr.train.oof import head_metrics

    AugmentConfig.from_mapping(member.train.get("augment"))
    make_loss(head, member.train.get("loss"))
    monitor = engine_config(member, head, 0).monitor
    dummy = np.zeros((2, output_width(head, num_classes)), np.float32)
    known = {"val_loss", *head_metrics(dummy, np.array([0, 1]), head)}
    if monitor not in known:
        raise ConfigError(f"monitor {monitor!r} is not measured for the {head} head; use one "
                          f"of {sorted(known)}", f"model.members[{member.key}].train.monitor")


def parse_recipe(cfg: TrainConfig, classes: Sequence[str] = ()) -> ClassifyRecipe:
    """Validate ``model`` and ``train`` of a classify recipe (see configs/dernet-vindr.yaml).

    Args:
        cfg: a ``task: classify`` recipe.
        classes: the image classes of a class-per-folder dataset (``()`` for other layouts).
    """
    from spinexr.models.classifier import Preprocess, output_width

    src = str(cfg.source)
    unknown = sorted(set(cfg.train) - set(TRAIN_KEYS))
    if unknown:
        raise ConfigError(f"unknown train keys {unknown}; known: {list(TRAIN_KEYS)}", src)
    labels = _labels(cfg, classes)
    head = str(cfg.model.get("head") or ("binary" if len(labels) == 2 else "softmax"))
    output_width(head, len(labels))
    base_input = dict(cfg.model.get("input") or {})
    members = []
    for i, raw in enumerate(cfg.model.get("members") or []):
        if "arch" not in raw:
            raise ConfigError(f"model.members[{i}] needs 'arch'", src)
        pre = Preprocess.from_dict({"size": 224, **base_input, **(raw.get("input") or {})})
        over = dict(raw.get("train") or {})
        bad = sorted(set(over) - set(TRAIN_KEYS))
        if bad:
            raise ConfigError(f"model.members[{i}].train has unknown keys {bad}", src)
        init = raw.get("init")
        member = Member(key=str(raw.get("key", raw["arch"])), arch=str(raw["arch"]),
                        drop_rate=float(raw.get("drop_rate", 0.0)), pre=pre,
                        train={**cfg.train, **over},
                        init_file=None if not init else (cfg.source.parent / str(init)))
        _check_member(member, head, len(labels))
        members.append(member)
    if not members:
        raise ConfigError("model.members lists no backbone", src)
    if len({m.key for m in members}) != len(members):
        raise ConfigError(f"model.members keys repeat: {[m.key for m in members]}", src)
    if head != "binary" and len(members) > 1:
        raise ConfigError(f"{len(members)} members with a {head} head: ensembles are for binary "
                          "triage; grade with one member", src)
    t = cfg.train
    if t.get("final", "retrain") != "retrain":
        raise ConfigError(f"train.final {t.get('final')!r}: only 'retrain' is supported", src)
    ops = {str(k): float(v) for k, v in (t.get("operating_points") or
                                         {"high_sensitivity": 0.95}).items()}
    cache = t.get("cache_dir")
    regions = cfg.model.get("regions")
    if regions is not None:
        regions = tuple(str(r) for r in ([regions] if isinstance(regions, str) else regions))
        bad = sorted(set(regions) - set(REGION_ANCHORS))
        if bad or not regions:
            raise ConfigError(f"model.regions {list(regions)}: use some of "
                              f"{sorted(REGION_ANCHORS)}", src)
    return ClassifyRecipe(
        head=head, labels=labels, members=tuple(members), folds=int(t.get("folds", 5)),
        seed=int(t.get("seed", 0)), operating_points=ops,
        weight_step=float(t.get("weight_step", 0.02)), calibrate=bool(t.get("calibrate", True)),
        crop=dict(cfg.model["crop"]) if cfg.model.get("crop") else None,
        cache_dir=None if cache is None else Path(str(cache)), regions=regions)


def engine_config(member: Member, head: str, seed: int) -> EngineConfig:
    """The :class:`~spinexr.train.engine.EngineConfig` of a member from its ``train`` mapping."""
    import torch

    from spinexr.train.engine import EngineConfig

    t = member.train
    device = str(t.get("device", "auto"))
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    monitor = str(t.get("monitor", _MONITOR[head]))
    return EngineConfig(
        epochs=int(t.get("epochs", 30)), batch_size=int(t.get("batch", 32)),
        lr=float(t.get("lr", 3e-4)), weight_decay=float(t.get("weight_decay", 0.05)),
        schedule=str(t.get("schedule", "cosine")), warmup_epochs=float(t.get("warmup_epochs", 0)),
        patience=None if t.get("patience") is None else int(t["patience"]),
        monitor=monitor, mode="min" if monitor.endswith("loss") else "max", seed=seed,
        balanced=bool(t.get("balanced", False)), grad_clip=t.get("grad_clip"),
        amp=bool(t.get("amp", True)), device=device, eval_batch_size=int(t.get("eval_batch", 64)),
        progress=bool(t.get("progress", True)), tensorboard=bool(t.get("tensorboard", True)))
