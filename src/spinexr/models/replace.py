"""Install a newly trained pack over an installed one, keeping the old one's figures.

A retrain replaces the weights; the model card keeps the previous figures in its history table.
:func:`replace_pack` copies the new pack's files into the destination folder and writes its
manifest with ``card.history`` = the replaced pack's version, date and metrics (a
:class:`~spinexr.models.card.HistoryEntry`), then that pack's own history, newest first.
``spinexr pack replace SRC DEST`` (:mod:`spinexr.cli.pack_cmd`) is the command for it.

:func:`record_metrics` stores figures measured on a pack after training (e.g. the end-to-end
figures of ``spinexr evaluate`` on a fixed set) in its manifest under a name, with the command
that measured them, so that a test can measure them again.
"""
from __future__ import annotations

import json
import shutil
from datetime import date as Date
from pathlib import Path
from typing import Mapping

from spinexr.models.card import history_entry
from spinexr.models.manifest import ModelPackError
from spinexr.models.pack import MANIFEST, load_pack, save_pack

__all__ = ["record_metrics", "replace_pack"]


def replace_pack(src: Path | str, dest: Path | str, *, note: str = "",
                 today: Date | None = None, previous_date: str | None = None) -> Path:
    """Copy the pack at ``src`` into ``dest``; the pack found there moves into the history.

    Args:
        src: the new pack (e.g. ``runs/demo/pack``); it must load and verify.
        dest: the installed pack's folder (e.g. ``models/demo``); created when missing. Files
            there that are no model's weights (``evaluation/``, ``onnx/``) are left alone;
            weights files only the replaced pack used are removed.
        note: what this version changes, kept as ``card.note`` (replacing one the new pack's
            recipe gave) and, when this pack is replaced in turn, as its history row's note.
        today: the install date written as ``card.date`` (default: today).
        previous_date: the replaced pack's install date when its card has none (e.g. the date
            its pack.json was committed); ``None``: "not recorded".

    Raises:
        ModelPackError: ``src`` is not a valid pack, is ``dest`` itself, or holds exactly the
            weights ``dest`` already holds (nothing would be replaced).
    """
    src, dest = Path(src), Path(dest)
    new = load_pack(src)
    if dest.resolve() == src.resolve():
        raise ModelPackError("source and destination are the same folder", str(dest))
    old = load_pack(dest) if (dest / MANIFEST).is_file() else None
    manifest = json.loads(json.dumps(new.manifest.raw))       # a deep copy
    card = manifest.setdefault("card", {})
    history = list(card.get("history") or [])
    if old is not None:
        if _same_weights(old.manifest.raw, manifest):
            raise ModelPackError("the destination already holds these weights (same sha256 for "
                                 f"every model of {src}); nothing to replace", str(dest))
        previous = list(old.manifest.card.get("history") or [])
        entry = history_entry(old.manifest.raw, previous_date).to_dict()
        history = [entry] + previous + [h for h in history if h not in previous]
    card.update(history=history, date=(today or Date.today()).isoformat())
    if note:
        card["note"] = note
    _copy_files(src, dest, manifest, old)
    return save_pack(dest, manifest)


def _same_weights(old: dict, new: dict) -> bool:
    shas = {k: s.get("sha256") for k, s in new.get("models", {}).items()}
    return shas == {k: s.get("sha256") for k, s in old.get("models", {}).items()}


def _copy_files(src: Path, dest: Path, manifest: dict, old) -> None:
    """The new pack's top-level files except pack.json and README.md (written last, from the
    manifest); the replaced pack's weights files that the new one does not use are removed."""
    dest.mkdir(parents=True, exist_ok=True)
    for path in sorted(src.iterdir()):
        if path.is_file() and path.name not in (MANIFEST, "README.md"):
            shutil.copy2(path, dest / path.name)
    kept = {s["weights"] for s in manifest.get("models", {}).values()}
    if old is not None:
        for spec in old.manifest.models.values():
            if spec.weights not in kept and (dest / spec.weights).is_file():
                (dest / spec.weights).unlink()


def record_metrics(root: Path | str, name: str, figures: Mapping[str, float], *,
                   command: str) -> Path:
    """Store ``figures`` in the pack at ``root`` as ``metrics[name]`` and the ``command`` that
    measured them as ``card.measured[name]`` (replacing earlier ones of that name); the card is
    re-rendered. The weights are not touched.

    Raises:
        ModelPackError: ``root`` is not a valid pack, or ``figures`` is empty.
    """
    if not figures:
        raise ModelPackError(f"no figures to record as {name!r}", str(root))
    pack = load_pack(root)
    manifest = json.loads(json.dumps(pack.manifest.raw))
    manifest.setdefault("metrics", {})[name] = {k: float(v) for k, v in sorted(figures.items())}
    card = manifest.setdefault("card", {})
    card["measured"] = {**dict(card.get("measured") or {}), name: command}
    return save_pack(pack.root, manifest)
