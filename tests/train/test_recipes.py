"""Every committed recipe in configs/ parses and validates (a typo fails CI, not a GPU run)."""
from __future__ import annotations

from pathlib import Path

import pytest

from spinexr.train.compose import load_pack_recipe, recipe_task
from spinexr.train.config import load_config, parse_recipe
from spinexr.train.detector import AUGMENT_KEYS

CONFIGS = Path(__file__).resolve().parents[2] / "configs"
RECIPES = sorted(CONFIGS.rglob("*.yaml"))


def test_the_three_required_recipes_exist():
    assert {"dernet-vindr.yaml", "demo-phantom.yaml", "vertebrae.yaml"} <= {p.name for p in RECIPES}


@pytest.mark.parametrize("path", RECIPES, ids=lambda p: str(p.relative_to(CONFIGS)))
def test_recipe_validates(path):
    if recipe_task(path) == "pack":
        recipe = load_pack_recipe(path)
        for part in recipe.parts.values():
            assert part in RECIPES
        return
    if recipe_task(path) == "gate":
        from spinexr.train.augment import AugmentConfig
        from spinexr.train.gate import load_gate_recipe

        gate = load_gate_recipe(path)
        AugmentConfig.from_mapping(gate.train.get("augment"))     # known keys, sane ranges
        assert gate.model["contrast"] == "equalize" and gate.sources
        return
    cfg = load_config(path)
    if cfg.task == "classify":
        recipe = parse_recipe(cfg, cfg.model.get("labels", ()) if cfg.data.format == "folders"
                              else ())
        assert recipe.members and recipe.folds >= 2
    else:
        assert set(cfg.train.get("augment", {})) <= set(AUGMENT_KEYS)
        assert "train" in cfg.data.splits
        assert "val" in cfg.data.splits or cfg.data.holdout is not None   # VinDr: val held out
