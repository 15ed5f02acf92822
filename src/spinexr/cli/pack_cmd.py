"""``spinexr pack replace SRC DEST [--note TEXT]``: install a trained pack over an installed one;
``spinexr pack split PACK OUT``: its parts as part packs, to retrain some of them;
``spinexr pack record PACK METRICS --as NAME --command CMD``: keep measured figures in it.

The replaced pack's version, install date and metrics move into the new card's history table
(:func:`spinexr.models.replace.replace_pack`); the new pack is stamped with today's date. A
replaced pack whose card has no date gets the date its pack.json was last committed to git,
when it is in a git checkout, else "not recorded".
"""
from __future__ import annotations

import argparse
import subprocess
from pathlib import Path

from spinexr.models.replace import replace_pack


def add_parser(sub) -> None:
    p = sub.add_parser("pack", help="manage model packs (replace one, keeping its history)",
                       description="Model pack folders (pack.json, weights, README card).")
    actions = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    rep = actions.add_parser(
        "replace", help="install SRC over DEST; DEST's figures move into the history table",
        description="Copy the pack SRC (e.g. runs/demo/pack) into DEST (e.g. models/demo). "
                    "DEST's version, date and metrics become the first row of the new card's "
                    "history; files in DEST that are no weights (evaluation/, onnx/) stay.")
    rep.add_argument("src", type=Path, help="the newly trained pack folder")
    rep.add_argument("dest", type=Path, help="the installed pack folder to replace")
    rep.add_argument("--note", default="", help="what the new version changes (kept in the card)")
    split = actions.add_parser(
        "split", help="write each part of a merged pack as OUT/<part>/pack",
        description="The inverse of a pack recipe's merge: each part of PACK (e.g. "
                    "models/demo) becomes OUT/<part>/pack with its models, metrics and "
                    "command. Retrain some parts into OUT/<part>, then `spinexr train "
                    "<pack recipe> --out OUT --resume` merges them with the parts kept.")
    split.add_argument("pack", type=Path, help="a pack made by a pack recipe")
    split.add_argument("out", type=Path, help="folder for the parts (each must not exist)")
    rec = actions.add_parser(
        "record", help="store the end-to-end figures of a `spinexr evaluate` run in a pack",
        description="Copy the figures of the end_to_end block of METRICS (the metrics.json "
                    "`spinexr evaluate --pack PACK` wrote) into PACK's manifest as metrics[NAME] "
                    "with the command that measured them; tests re-measure recorded figures.")
    rec.add_argument("pack", type=Path, help="the pack that was evaluated")
    rec.add_argument("metrics", type=Path, help="metrics.json of `spinexr evaluate`")
    rec.add_argument("--as", dest="name", required=True, help="name, e.g. aims/xray")
    rec.add_argument("--command", required=True,
                     help="the commands that made the set and measured it (kept in the card)")
    p.set_defaults(run=run)


def _committed_date(dest: Path) -> str | None:
    """The date (YYYY-MM-DD) DEST/pack.json was last committed, or None outside git."""
    if not (dest / "pack.json").is_file():
        return None
    try:
        done = subprocess.run(["git", "log", "-1", "--format=%cs", "--", "pack.json"], cwd=dest,
                              capture_output=True, text=True, timeout=30, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    return (done.stdout.strip() or None) if done.returncode == 0 else None


def run(args: argparse.Namespace) -> int:
    if args.action == "record":
        return _record(args)
    if args.action == "split":
        from spinexr.train.compose import split_pack

        for part, path in split_pack(args.pack, args.out).items():
            print(f"{part}: {path}")
        return 0
    had = (args.dest / "pack.json").is_file()
    out = replace_pack(args.src, args.dest, note=args.note,
                       previous_date=_committed_date(args.dest))
    print(f"model pack {args.src} installed in {out}"
          + ("; the replaced pack's figures are the first row of its history" if had else ""))
    return 0


def _record(args: argparse.Namespace) -> int:
    import json

    from spinexr.errors import ConfigError
    from spinexr.evaluate.end_to_end import headline_figures
    from spinexr.models.replace import record_metrics

    try:
        doc = json.loads(args.metrics.read_text())
    except (OSError, ValueError) as exc:
        raise ConfigError(f"cannot read metrics: {exc}", str(args.metrics)) from exc
    block = doc.get("end_to_end") if isinstance(doc, dict) else None
    if not isinstance(block, dict):
        raise ConfigError("no end_to_end block (run `spinexr evaluate` without "
                          "--no-end-to-end)", str(args.metrics))
    from spinexr.models.pack import load_pack

    evaluated, pack = doc.get("pack") or {}, load_pack(args.pack)
    if (evaluated.get("name"), evaluated.get("version")) != (pack.name, pack.version):
        raise ConfigError(f"these figures are of pack {evaluated.get('name')!r} "
                          f"{evaluated.get('version')!r}, not {pack.name!r} {pack.version!r}",
                          str(args.metrics))
    figures = headline_figures(block)
    out = record_metrics(args.pack, args.name, figures, command=args.command)
    print(f"{len(figures)} figures of {pack.name} recorded as {args.name} in {out}")
    return 0
