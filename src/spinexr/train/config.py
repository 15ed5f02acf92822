"""Training recipes: a YAML file -> a validated, frozen :class:`TrainConfig`.

Relative data paths in a recipe are resolved against the recipe's own directory, so
``configs/vertebrae.yaml`` can name ``../../shared/data/vertebrae`` from any working directory.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from spinexr.errors import ConfigError

TASKS = ("detect",)


@dataclass(frozen=True)
class DataConfig:
    root: Path
    format: str | None = None
    splits: Mapping[str, str] = field(default_factory=lambda: {"train": "train", "val": "val"})
    class_map: Mapping[str, str] = field(default_factory=dict)


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


def _require(raw: Mapping[str, Any], key: str, where: Path) -> Any:
    if key not in raw:
        raise ConfigError(f"missing required key {key!r}", str(where))
    return raw[key]


def load_config(path: Path | str) -> TrainConfig:
    """Parse and validate a training recipe."""
    import yaml

    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"cannot read recipe: {exc}", str(path)) from exc
    if not isinstance(raw, dict):
        raise ConfigError("a recipe is a YAML mapping", str(path))
    task = _require(raw, "task", path)
    if task not in TASKS:
        raise ConfigError(f"task {task!r} is not one of {TASKS}", str(path))
    data = dict(_require(raw, "data", path))
    root = Path(str(_require(data, "root", path)))
    data_cfg = DataConfig(root=(path.parent / root).resolve() if not root.is_absolute() else root,
                          format=data.get("format"),
                          splits=dict(data.get("splits") or {"train": "train", "val": "val"}),
                          class_map=dict(data.get("class_map") or {}))
    if "train" not in data_cfg.splits or "val" not in data_cfg.splits:
        raise ConfigError("data.splits needs 'train' and 'val' (model selection never uses test)",
                          str(path))
    return TrainConfig(name=str(raw.get("name", path.stem)), task=task, data=data_cfg,
                       model=dict(_require(raw, "model", path)), train=dict(raw.get("train") or {}),
                       card=dict(raw.get("card") or {}), source=path.resolve())
