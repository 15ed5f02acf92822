"""``spinexr train CONFIG.yaml [--out DIR] [--resume] [--set KEY=VALUE ...]``: run a recipe."""
from __future__ import annotations

import argparse
from pathlib import Path

from spinexr.train.compose import load_pack_recipe, recipe_task, train_pack_recipe
from spinexr.train.config import load_config, materialize_data
from spinexr.train.detector import train_detector
from spinexr.train.gate import load_gate_recipe, train_gate


def add_parser(sub) -> None:
    p = sub.add_parser("train", help="train models from a recipe (configs/*.yaml)",
                       description="Train from a YAML recipe; writes checkpoints, metrics and a "
                                   "model pack under --out.")
    p.add_argument("config", type=Path, help="training recipe, e.g. configs/vertebrae.yaml")
    p.add_argument("--out", type=Path, default=None, help="output directory (default runs/<name>)")
    p.add_argument("--resume", action="store_true", help="continue from the last checkpoint in --out")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="change the recipe before it is validated, without editing it (repeat "
                        "for more): KEY is dotted into the YAML document (train.epochs, "
                        "model.members.0.arch), VALUE is YAML (1, yolo11n, null, [a, b]); "
                        "paths in values are relative to the recipe file. For a pack recipe "
                        "PART:KEY=VALUE changes that part only and KEY=VALUE every part. "
                        "Recorded in the pack's card. E.g. --set train.epochs=1 "
                        "--set model.arch=yolo11n --set model.imgsz=64")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    if recipe_task(args.config) == "pack":
        recipe = load_pack_recipe(args.config, args.overrides)
        pack = train_pack_recipe(recipe, args.out or Path("runs") / recipe.name,
                                 resume=args.resume)
        print(f"model pack written to {pack}")
        return 0
    if recipe_task(args.config) == "gate":
        recipe = load_gate_recipe(args.config, args.overrides)
        pack = train_gate(recipe, args.out or Path("runs") / recipe.name, resume=args.resume)
        print(f"model pack written to {pack}")
        return 0
    cfg = load_config(args.config, args.overrides)
    out = args.out or Path("runs") / cfg.name
    cfg = materialize_data(cfg, out)
    if cfg.task == "classify":
        from spinexr.train.classify import train_classifier_recipe

        pack = train_classifier_recipe(cfg, out, resume=args.resume)
    else:
        pack = train_detector(cfg, out, resume=args.resume)
    print(f"model pack written to {pack}")
    return 0
