"""Three sections of a pack's model card, from the manifest: measured sets, learning curves and
history.

- ``card.measured``: name -> the commands that made a fixed set and measured the pack on it
  (``spinexr pack record``), the figures in ``metrics[name]``; ``card.aims`` (optional):
  name -> figure -> the value it should reach. The card shows per set its command and a table
  of the rates (AUROC, mAP, per-class AP, QWK, ...) with the aim and whether it is met.
- ``card.learning_curves``: model key -> :class:`~spinexr.evaluate.curves.LearningCurve` as
  JSON, written by the training recipes; the card shows a compact table per model (every epoch,
  or about 8 of them: the first, the last, the best and the early stops always among them).
- ``card.history``: the figures of the packs this one replaced, newest first, as
  :class:`HistoryEntry` documents (``{version, date, metrics, note}``), moved there by
  :func:`spinexr.models.replace.replace_pack`. Older packs stored free-text lines; they are read
  as entries with only a note. The card shows one row per pack, this one first, with the
  headline metric of each part (:func:`headline`).

Pure: manifest documents in, Markdown lines out.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

from spinexr.evaluate.curves import LearningCurve

#: Preferred split, then metric, for a part's headline figure.
_ROLES = ("test", "val", "oof")
_HEADLINE = ("auroc", "qwk", "map50", "map50_95", "balanced_accuracy", "accuracy",
             "sensitivity")
_SAMPLE_ROWS = 8
#: Figures of a measured set shown in the card (last part of their name); counts stay in pack.json.
_SHOWN = ("auroc", "auroc_analysed", "sensitivity", "specificity", "map50", "map50_95", "ap50",
          "qwk", "qwk_missed_as_normal", "balanced_accuracy", "accuracy")
__all__ = ["HistoryEntry", "curve_lines", "measured_lines", "curve_table", "headline", "history_entry",
           "history_lines", "learning_curves", "scalar_metrics"]


@dataclass(frozen=True)
class HistoryEntry:
    """The figures of a replaced pack. ``date``: when it was installed (``None``: not recorded);
    ``metrics``: its manifest's metrics, scalars only; ``note``: what that version changed."""

    version: str
    date: str | None
    metrics: Mapping[str, Mapping[str, float]] = field(default_factory=dict)
    note: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"version": self.version, "date": self.date,
                "metrics": {k: dict(v) for k, v in self.metrics.items()}, "note": self.note}

    @classmethod
    def from_json(cls, doc: Any) -> HistoryEntry:
        """An entry from its document, or from a free-text line of an older card."""
        if not isinstance(doc, Mapping):
            return cls(version="", date=None, note=str(doc))
        return cls(version=str(doc.get("version") or ""), date=doc.get("date"),
                   metrics=scalar_metrics(doc.get("metrics") or {}),
                   note=str(doc.get("note") or ""))


def scalar_metrics(metrics: Mapping[str, Any]) -> dict[str, dict[str, float]]:
    """``metrics`` (split -> name -> value) without nested blocks and non-numbers."""
    return {str(split): {str(k): float(v) for k, v in values.items()
                         if isinstance(v, (int, float)) and not isinstance(v, bool)}
            for split, values in metrics.items() if isinstance(values, Mapping)}


def history_entry(manifest: Mapping[str, Any], date: str | None, note: str = "") -> HistoryEntry:
    """What a pack leaves in the history of the pack replacing it."""
    card = manifest.get("card") or {}
    return HistoryEntry(version=str(manifest.get("version", "")), date=card.get("date") or date,
                        metrics=scalar_metrics(manifest.get("metrics") or {}),
                        note=note or str(card.get("note") or ""))


def _split_key(key: str) -> tuple[str, str]:
    """``lesions/test`` -> (``lesions``, ``test``); ``gate_test`` -> (``gate``, ``test``);
    ``test`` -> (``""``, ``test``)."""
    if "/" in key:
        part, role = key.split("/", 1)
        return part, role
    for role in _ROLES:
        if key.endswith(f"_{role}"):
            return key[:-len(role) - 1], role
    return "", key


def headline(metrics: Mapping[str, Mapping[str, float]]) -> dict[str, tuple[str, str, float]]:
    """Part -> (split, metric, value): per part the first of test/val/oof that holds one of
    the headline metrics (AUROC, QWK, mAP50, ...), and the first such metric in it."""
    by_part: dict[str, dict[str, Mapping[str, float]]] = {}
    for key, values in metrics.items():
        part, role = _split_key(key)
        by_part.setdefault(part, {})[role] = values
    out = {}
    for part, roles in by_part.items():
        order = [r for r in _ROLES if r in roles] + [r for r in roles if r not in _ROLES]
        for role in order:
            name = next((m for m in _HEADLINE if m in roles[role]), None)
            if name is not None:
                out[part] = (role, name, float(roles[role][name]))
                break
    return out


def _cell(figure: tuple[str, str, float] | None) -> str:
    if figure is None:
        return ""
    role, name, value = figure
    return f"{name} {value:.3f} ({role})" if math.isfinite(value) else f"{name} n/a ({role})"


def _one_line(text: str) -> str:
    return " ".join(text.replace("|", "/").split())


def history_lines(manifest: Mapping[str, Any]) -> list[str]:
    """The History section: this pack, then every pack it replaced (newest first)."""
    card = manifest.get("card") or {}
    if not card.get("history"):
        return []
    rows = [("this pack", history_entry(manifest, None))]
    rows += [("", HistoryEntry.from_json(h)) for h in card["history"]]
    heads = [(label, e, headline(e.metrics)) for label, e in rows]
    parts = list(dict.fromkeys(p for _, _, h in heads for p in h))
    names = [p or str(manifest.get("name", "pack")) for p in parts]
    lines = ["", "## History", "",
             "Headline figure per part (split in brackets); a retrain replaces the weights, "
             "the figures of the packs it replaced stay here (all their metrics in pack.json).",
             "", "| version | installed | " + " | ".join(names) + " | note |",
             "|" + "---|" * (len(parts) + 3)]
    for label, e, h in heads:
        version = f"{e.version} ({label})" if label and e.version else (e.version or label)
        lines.append(f"| {version} | {e.date or 'not recorded'} | "
                     + " | ".join(_cell(h.get(p)) for p in parts) + f" | {_one_line(e.note)} |")
    return lines


def _sample(curve: LearningCurve) -> list[int]:
    """Indices of the rows to show: all, or ~8 evenly spaced plus every marked epoch."""
    n = len(curve.points)
    if n <= _SAMPLE_ROWS + 2:
        return list(range(n))
    marked = set(curve.best_epochs) | set(curve.last_epochs)
    keep = {round(i * (n - 1) / (_SAMPLE_ROWS - 1)) for i in range(_SAMPLE_ROWS)}
    keep |= {i for i, p in enumerate(curve.points) if p.epoch in marked}
    return sorted(keep)


def _mark(curve: LearningCurve, epoch: int) -> str:
    runs = len(curve.best_epochs)
    best = sum(e == epoch for e in curve.best_epochs)
    stops = sum(e == epoch for e in curve.stopped_early)
    marks = []
    if best:
        marks.append("**best**" if runs == 1 else f"**best** in {best}/{runs} runs")
    if stops:
        marks.append(f"early stop (of {curve.planned_epochs} planned)" if runs == 1
                     else f"{stops}/{runs} runs stopped early")
    return ", ".join(marks)


def _value(value: float | None) -> str:
    return "" if value is None else f"{value:.4g}"


def curve_table(curve: LearningCurve) -> list[str]:
    """One curve as a Markdown table (sampled rows; the marks say best epoch and stops)."""
    shown = curve.shown
    rows = _sample(curve)
    lines = [f"Validation {curve.monitor} ({'higher' if curve.mode == 'max' else 'lower'} is "
             f"better; **best** marks the epoch model selection kept) and training loss, from "
             f"{curve.source or 'the training log'}"
             + (f"; {len(rows)} of {len(curve.points)} epochs shown (all in pack.json)"
                if len(rows) < len(curve.points) else "") + ".", "",
             f"| epoch | {curve.unit} seen | train loss | val loss | " + " | ".join(shown)
             + " | |", "|" + "---|" * (len(shown) + 5)]
    for i in rows:
        p = curve.points[i]
        seen = "" if p.seen is None else f"{p.seen:,.0f}"
        lines.append(f"| {p.epoch} | {seen} | {_value(p.train_loss)} | "
                     f"{_value(p.val.get('val_loss'))} | "
                     + " | ".join(_value(p.val.get(m)) for m in shown)
                     + f" | {_mark(curve, p.epoch)} |")
    return lines


def learning_curves(card: Mapping[str, Any]) -> dict[str, LearningCurve]:
    """The parsed ``card.learning_curves`` of a pack (model key -> curve)."""
    return {str(k): LearningCurve.from_dict(v)
            for k, v in dict(card.get("learning_curves") or {}).items()}


def curve_lines(manifest: Mapping[str, Any]) -> list[str]:
    """The Learning curves section: a table per model that has one, "not recorded" for the
    others (a model whose training wrote no log, or one from before curves were kept)."""
    models: Sequence[str] = list(manifest.get("models") or {})
    curves = learning_curves(manifest.get("card") or {})
    if not models:
        return []
    lines = ["", "## Learning curves", ""]
    for key in [k for k in models if k in curves] + [k for k in curves if k not in models]:
        lines += [f"### `{key}`", ""] + curve_table(curves[key]) + [""]
    missing = [k for k in models if k not in curves]
    if not missing:
        return lines[:-1]                       # the next section opens with its blank line
    lines.append("Not recorded (no training log in the pack) for: "
                 + ", ".join(f"`{k}`" for k in missing) + ".")
    return lines


def measured_lines(manifest: Mapping[str, Any]) -> list[str]:
    """The "Measured as a user gets it" section: per set in ``card.measured``, its command and
    its rates, each with its aim from ``card.aims`` when one is set."""
    card = manifest.get("card") or {}
    measured = dict(card.get("measured") or {})
    metrics = manifest.get("metrics") or {}
    if not measured:
        return []
    lines = ["", "## Measured as a user gets it", "",
             "Fixed sets through the whole analyzer (`spinexr evaluate`, end-to-end block); every "
             "figure and count is in pack.json, and a test re-measures them.", ""]
    for name, command in measured.items():
        figures = metrics.get(name) or {}
        aims = dict((card.get("aims") or {}).get(name) or {})
        lines += [f"### `{name}`", "", "```", str(command), "```", "",
                  "| figure | value | aim |", "|---|---|---|"]
        for key, value in figures.items():
            if key.rsplit(".", 1)[-1] not in _SHOWN and key not in aims:
                continue
            aim = aims.get(key)
            mark = "" if aim is None else f">= {aim:g} ({'met' if value >= aim else 'not met'})"
            lines.append(f"| {key} | {value:.3f} | {mark} |")
        lines += [f"| {key} | not measured | >= {aim:g} |" for key, aim in aims.items()
                  if key not in figures]
        lines.append("")
    return lines
