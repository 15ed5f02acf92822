"""``task: pack`` recipes: train several recipes and merge their packs into one model pack.

A pack recipe names its parts, each an ordinary recipe (classify or detect)::

    name: demo
    task: pack
    parts: {triage: demo-triage.yaml, lesions: demo-lesions.yaml}   # relative to this file
    card: {version: "1.0.0", synthetic: true, intended_use: ...}

Overrides (``spinexr train --set``): ``PART:KEY=VALUE`` changes that part's recipe only,
``KEY=VALUE`` every part's (:func:`spinexr.train.config.part_overrides`).

Each part trains into ``<out>/<part>`` (so ``--resume`` resumes each), then the parts' packs
are merged into ``<out>/pack``: every model keeps its weights file and records its ``part``;
the triage part contributes the ``ensemble``; metrics are kept per part as ``<part>/<role>``.
"""
from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

from spinexr.errors import ConfigError
from spinexr.models.pack import load_pack, save_pack
from spinexr.train.config import (load_config, materialize_data, part_overrides,
                                  relative_to_cwd)
from spinexr.train.detector import train_detector


@dataclass(frozen=True)
class PackRecipe:
    name: str
    parts: Mapping[str, Path]
    card: Mapping[str, Any]
    source: Path
    overrides: Mapping[str, Sequence[str]] | None = None   # part -> its --set pairs


def recipe_task(path: Path) -> str | None:
    """The ``task`` of a recipe file, or ``None`` if it has none (load_config then explains)."""
    import yaml

    try:
        raw = yaml.safe_load(Path(path).read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"cannot read recipe: {exc}", str(path)) from exc
    return raw.get("task") if isinstance(raw, dict) else None


def load_pack_recipe(path: Path, overrides: Sequence[str] = ()) -> PackRecipe:
    """Parse a pack recipe; ``overrides`` (``[PART:]KEY=VALUE``) are checked against its parts
    here and applied when each part's recipe is loaded."""
    import yaml

    path = Path(path)
    raw = yaml.safe_load(path.read_text())
    parts = raw.get("parts")
    if not isinstance(parts, dict) or not parts:
        raise ConfigError("a pack recipe needs 'parts': {name: recipe.yaml, ...}", str(path))
    resolved = {str(k): (path.parent / str(v)).resolve() for k, v in parts.items()}
    missing = [str(p) for p in resolved.values() if not p.is_file()]
    if missing:
        raise ConfigError(f"part recipes not found: {missing}", str(path))
    card = dict(raw.get("card") or {})
    if overrides:
        card["overrides"] = list(overrides)
    return PackRecipe(name=str(raw.get("name", path.stem)), parts=resolved, card=card,
                      source=path.resolve(), overrides=part_overrides(overrides, list(resolved)))


def train_pack_recipe(recipe: PackRecipe, out: Path, *, resume: bool = False) -> Path:
    """Train every part (in order), then merge their packs into ``<out>/pack``."""
    from spinexr.train.classify import train_classifier_recipe

    packs = {}
    for part, path in recipe.parts.items():
        cfg = load_config(path, (recipe.overrides or {}).get(part, ()))
        part_out = out / part
        if resume and (part_out / "pack" / "pack.json").is_file():
            packs[part] = part_out / "pack"   # a part finished earlier is kept as it is
            continue
        started = part_out.is_dir()   # --resume trains a part not yet begun from the start
        cfg = materialize_data(cfg, part_out)
        train = train_classifier_recipe if cfg.task == "classify" else train_detector
        packs[part] = train(cfg, part_out, resume=resume and started)
    return merge_packs(packs, out / "pack", recipe)


def merge_packs(parts: Mapping[str, Path], out: Path, recipe: PackRecipe) -> Path:
    """One pack from several: models by key (keys must be unique), one ensemble at most."""
    models: dict[str, Any] = {}
    metrics: dict[str, Any] = {}
    info: dict[str, Any] = {}
    curves: dict[str, Any] = {}   # model key -> learning curve, from the part that trained it
    ensemble = None
    out.mkdir(parents=True, exist_ok=True)
    for part, root in parts.items():
        pack = load_pack(root)
        for key, typed in pack.manifest.models.items():
            spec = typed.raw
            if key in models and models[key].get("sha256") == typed.sha256:
                continue  # the same weights shared by two parts (e.g. a window detector)
            if key in models:
                raise ConfigError(f"model key {key!r} appears in two parts; rename it in one "
                                  "recipe", str(recipe.source))
            shutil.copyfile(root / typed.weights, out / typed.weights)
            models[key] = {**spec, "part": part}
        if pack.manifest.ensemble is not None:
            if ensemble is not None:
                raise ConfigError("two parts define a triage ensemble", str(recipe.source))
            ensemble = pack.manifest.raw["ensemble"]
        metrics.update({f"{part}/{role}": values
                        for role, values in pack.manifest.metrics.items()})
        for key, curve in dict(pack.manifest.card.get("learning_curves") or {}).items():
            curves.setdefault(key, curve)
        info[part] = {"name": pack.name, "version": pack.version,
                      "command": pack.manifest.card.get("command"),
                      "test_set": pack.manifest.test_set}
    card = {**recipe.card}
    card.setdefault("command", f"spinexr train {relative_to_cwd(recipe.source)}")
    if curves:
        card["learning_curves"] = curves
    manifest = {"name": recipe.name, "version": str(recipe.card.get("version", "1.0.0")),
                "synthetic": bool(recipe.card.get("synthetic", False)), "card": card,
                "models": models, "metrics": metrics, "parts": info}
    if ensemble is not None:
        manifest["ensemble"] = ensemble
    save_pack(out, manifest)
    return out



def split_pack(root: Path | str, out: Path | str) -> dict[str, Path]:
    """The parts of a merged pack as part packs ``<out>/<part>/pack``, the inverse of
    :func:`merge_packs`: each part's models (by their ``part``), its ``<part>/<role>`` metrics
    as ``<role>``, its name, version, command and test set, the ensemble for the part that has
    it, and the vertebra detector for parts whose models run on its windows. A pack recipe
    run with ``--resume`` over ``<out>`` then keeps these parts and retrains only the parts
    whose folder was removed, e.g. after ``spinexr pack split models/demo runs/demo``.
    Figures measured on the whole pack (``card.measured``, e.g. ``aims/xray``) belong to no
    part and are not carried: measure the merged pack again.

    Raises:
        ConfigError: the pack records no parts (it was not made by a pack recipe), or a part
            folder exists already.
    """
    pack = load_pack(root)
    raw = pack.manifest.raw
    parts = dict(raw.get("parts") or {})
    if not parts:
        raise ConfigError("the pack records no parts; only packs merged by a pack recipe split",
                          str(pack.root))
    made = {}
    for part, info in parts.items():
        target = Path(out) / part / "pack"
        if target.exists():
            raise ConfigError(f"{target} exists; split into a new folder", str(target))
        keys = [k for k, s in pack.manifest.models.items() if s.part == part]
        ensemble = raw.get("ensemble") if raw.get("ensemble") and set(
            raw["ensemble"]["members"]) <= set(keys) else None
        windows = [raw["models"][k].get("windows") for k in keys]
        windows += [ensemble.get("windows")] if ensemble else []
        keys += sorted({w["detector"] for w in windows if w} - set(keys))
        target.mkdir(parents=True)
        for key in keys:
            shutil.copyfile(pack.root / pack.model_spec(key).weights,
                            target / pack.model_spec(key).weights)
        curves = dict(pack.manifest.card.get("learning_curves") or {})
        card = {**dict(raw.get("card") or {}), "command": info.get("command")}
        for whole_pack in ("history", "measured", "date", "note"):   # of the merged pack
            card.pop(whole_pack, None)
        card["learning_curves"] = {k: curves[k] for k in keys if k in curves}
        doc = {"name": info.get("name", part), "version": info.get("version", pack.version),
               "synthetic": pack.synthetic, "card": card,
               "models": {k: {x: v for x, v in raw["models"][k].items() if x != "part"}
                          for k in keys},
               "metrics": {name.split("/", 1)[1]: values
                           for name, values in pack.manifest.metrics.items()
                           if name.startswith(f"{part}/")},
               "test_set": info.get("test_set")}
        if ensemble is not None:
            doc["ensemble"] = ensemble
        made[part] = save_pack(target, doc)
    return made
