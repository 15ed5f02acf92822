"""``spinexr evaluate --task gate DATA [--pack DIR] [--vertebrae DIR] --out DIR``: measure the
input gate (is this a spine radiograph?) on a labelled set.

Each file is read as ``spinexr analyze`` reads it (the analyzer's decode size) and judged by
:meth:`spinexr.analyze.Analyzer.gate` in batches; a file that cannot be read counts as refused
with the reader's reason, as a user would see it. Writes to OUT, each file atomically:

- ``metrics.json``: the flat keys of :func:`spinexr.evaluate.gate.gate_metrics`, ``cost``
  (read and gate seconds per image: mean, p50, p95; images per second) and the run's details;
- ``gate.csv``: every file with its label, view, outcome, P(spine), reason and seconds;
- ``misclassified.csv``: spine radiographs refused, other images accepted or uncertain;
- ``p_spine.png``: P(spine) of spine vs other images with the gate's thresholds, when the gate
  gives P(spine).

The layouts DATA may have are in :mod:`spinexr.cli.gate_data`.
"""
from __future__ import annotations

import argparse
import csv
import io
import json
import math
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

import numpy as np

from spinexr.analyze import Analyzer, AnalyzerConfig
from spinexr.cli._json import jsonable
from spinexr.cli.gate_data import GateItem, GateSet, load_gate_set
from spinexr.errors import ConfigError, FileAccessError, SpinexrError
from spinexr.evaluate.gate import cost_summary, gate_metrics
from spinexr.evaluate.plots import plot_p_spine
from spinexr.io.prefetch import read_one
from spinexr.models.pack import resolve_packs
from spinexr.types import GATE_OUTCOMES

_GATE_COLUMNS = ("file", "label", "view", "near_case", "split", "outcome", "p_spine", "reason",
                 "read_s", "gate_s", "checks")
_MISSED_COLUMNS = ("file", "label", "outcome", "p_spine", "reason")


@dataclass(frozen=True)
class _Row:
    """One file's verdict; ``gate_s`` is ``nan`` for a file that could not be read."""

    item: GateItem
    outcome: str
    reason: str
    p_spine: float | None
    checks: Mapping
    read_s: float
    gate_s: float


def run_gate(args: argparse.Namespace) -> int:
    """The ``--task gate`` command; ``args.data`` is the dataset folder."""
    if args.batch < 1:
        raise ConfigError(f"--batch must be >= 1, got {args.batch}", "--batch")
    gate_set = load_gate_set(args.data, split_file=args.split_file, split=args.split)
    analyzer = _analyzer(args)
    _make_dir(args.out)
    t0 = time.perf_counter()
    rows = _judge(analyzer, gate_set.items, args.batch)
    wall = time.perf_counter() - t0
    items = [r.item for r in rows]
    p = np.array([np.nan if r.p_spine is None else r.p_spine for r in rows], dtype=float)
    metrics = {
        **gate_metrics([r.outcome for r in rows], [i.spine for i in items],
                       near=[i.near_case for i in items], views=[i.view for i in items],
                       p_spine=p),
        "cost": {**cost_summary([r.read_s for r in rows], [r.gate_s for r in rows], wall),
                 "batch": args.batch, "device": args.device},
    }
    thresholds = gate_thresholds(analyzer)
    plot, note = _plot(args.out, p, items, thresholds)
    metrics.update(_details(args, analyzer, gate_set, thresholds, plot, note))
    _write_outputs(args.out, metrics, rows)
    _summary(metrics, args.out)
    return 0


def _analyzer(args: argparse.Namespace):
    """The analyzer of ``spinexr analyze`` with the same packs (see its ``--pack``)."""
    pack, vert = resolve_packs(args.pack, args.vertebrae)
    return Analyzer(pack, vertebrae_pack=vert, config=AnalyzerConfig(device=args.device))


def _make_dir(out: Path) -> None:
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise FileAccessError(f"cannot create the output folder: {exc}", str(out)) from exc


def _judge(analyzer, items: tuple[GateItem, ...], batch: int) -> list[_Row]:
    """Read each file (timed), then gate the readable ones of each batch in one call."""
    from tqdm import tqdm

    kwargs = {"min_side": analyzer.decode_side()}
    rows: list[_Row] = []
    with tqdm(total=len(items), desc="gate", unit="img", file=sys.stderr, disable=None) as bar:
        for start in range(0, len(items), batch):
            chunk = items[start:start + batch]
            reads = [read_one(item.path, kwargs) for item in chunk]
            images = [r.image for r in reads if r.image is not None]
            t0 = time.perf_counter()
            verdicts = analyzer.gate(images) if images else []
            each = (time.perf_counter() - t0) / max(len(images), 1)
            if len(verdicts) != len(images):
                raise ConfigError(f"the gate returned {len(verdicts)} verdicts for "
                                  f"{len(images)} images", "Analyzer.gate")
            gates = iter(verdicts)
            for item, read in zip(chunk, reads):
                if read.image is None:
                    rows.append(_Row(item, "refused", str(read.error), None, {}, read.seconds,
                                     float("nan")))
                    continue
                g = next(gates)
                rows.append(_Row(item, g.outcome, g.reason, g.p_spine, dict(g.checks),
                                 read.seconds, each))
            bar.update(len(chunk))
    return rows


def gate_thresholds(analyzer) -> dict[str, float]:
    """The gate's P(spine) thresholds (``uncertain``, ``accept``), empty without a fitted gate."""
    return dict(analyzer.gate_thresholds)


# -- outputs ---------------------------------------------------------------------------------------
def _plot(out: Path, p: np.ndarray, items: list[GateItem],
          thresholds: Mapping[str, float]) -> tuple[str | None, str | None]:
    """Draw ``p_spine.png``; (its name, or None and why not)."""
    if not np.isfinite(p).any():
        return None, "p_spine.png not drawn: the gate gave no P(spine)"
    target = out / "p_spine.png"
    tmp = _temp_beside(target)
    try:
        plot_p_spine(p, [i.spine for i in items], tmp, thresholds=thresholds,
                     near=[i.near_case for i in items])
        os.replace(tmp, target)
    except SpinexrError as exc:
        return None, f"p_spine.png not drawn: {exc}"
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return target.name, None


def _details(args, analyzer, gate_set: GateSet, thresholds, plot, note) -> dict:
    info = analyzer.info
    return {
        "thresholds": thresholds, "plots": [plot] if plot else [],
        "plot_notes": [note] if note else [],
        "pack": {"name": info.name, "version": info.version, "synthetic": info.synthetic},
        "data": {"root": str(gate_set.root), "layout": gate_set.layout, "split": gate_set.split,
                 "split_file": None if args.split_file is None else str(args.split_file),
                 "split_file_unmatched": gate_set.split_file_unmatched,
                 "n_images": len(gate_set.items), "decode_side": analyzer.decode_side()},
    }


def _temp_beside(path: Path) -> Path:
    """A hidden name in ``path``'s folder, same suffix, unique to this process."""
    return path.with_name(f".{path.stem}.{os.getpid()}.tmp{path.suffix}")


def write_atomic(path: Path, text: str) -> None:
    """Write ``text`` to a temporary file beside ``path``, then rename it over ``path``: a
    reader sees the old file or the new one, never half of one."""
    tmp = _temp_beside(path)
    try:
        with open(tmp, "w", encoding="utf-8", newline="") as f:
            f.write(text)
        os.replace(tmp, path)
    except OSError as exc:
        raise FileAccessError(f"cannot write it: {exc}", str(path)) from exc
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def _csv(columns: tuple[str, ...], rows: list[dict]) -> str:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buf.getvalue()


def _csv_row(r: _Row) -> dict:
    num = (lambda v: "" if v is None or not math.isfinite(v) else f"{v:.6g}")
    return {"file": r.item.file, "label": r.item.label, "view": r.item.view,
            "near_case": str(r.item.near_case).lower(), "split": r.item.split or "",
            "outcome": r.outcome, "p_spine": num(r.p_spine), "reason": r.reason,
            "read_s": num(r.read_s), "gate_s": num(r.gate_s),
            "checks": json.dumps(jsonable(r.checks), sort_keys=True) if r.checks else ""}


def is_missed(label: str, outcome: str) -> bool:
    """A gate error: a spine radiograph refused, or another image let through."""
    return (outcome == "refused") == (label == "spine")


def _write_outputs(out: Path, metrics: dict, rows: list[_Row]) -> None:
    table = [_csv_row(r) for r in rows]
    missed = [{k: t[k] for k in _MISSED_COLUMNS} for t in table
              if is_missed(t["label"], t["outcome"])]
    write_atomic(out / "gate.csv", _csv(_GATE_COLUMNS, table))
    write_atomic(out / "misclassified.csv", _csv(_MISSED_COLUMNS, missed))
    write_atomic(out / "metrics.json", json.dumps(jsonable(metrics), indent=2, sort_keys=True,
                                                  allow_nan=False) + "\n")


# -- summary ---------------------------------------------------------------------------------------
def _rate(m: Mapping, key: str) -> str:
    value, (lo, hi) = m[key], m[f"{key}_ci"]
    if value is None or not math.isfinite(value):
        return "n/a"
    return f"{value:.3f} (95% CI {lo:.3f}-{hi:.3f})"


def _summary(m: Mapping, out: Path) -> None:
    c, cost = m["confusion"], m["cost"]
    through = c["accepted"]["spine"] + c["uncertain"]["spine"]
    near = f"{m['n_near']} near case" + ("" if m["n_near"] == 1 else "s")
    print(f"gate on {m['n']} images: {m['n_spine']} spine, {m['n_other']} other ({near}); "
          f"pack {m['pack']['name']} {m['pack']['version']}")
    print(f"sensitivity  {_rate(m, 'sensitivity')}: {through} of {m['n_spine']} spine let "
          f"through; accepted only {_rate(m, 'sensitivity_strict')}")
    print(f"specificity  {_rate(m, 'specificity')}: {c['refused']['other']} of {m['n_other']} "
          "other refused")
    if m["n_near"]:
        print(f"near cases refused or uncertain {_rate(m, 'near_refused_or_uncertain')}")
    auc = m["auroc_p_spine"]
    print("AUROC of P(spine) " + (f"{auc:.3f} on {m['auroc_p_spine_n']} images"
                                  if auc is not None and math.isfinite(auc) else "n/a"))
    print(f"{'':10s}{'spine':>7s}{'other':>7s}")
    for outcome in GATE_OUTCOMES:
        print(f"{outcome:10s}{c[outcome]['spine']:7d}{c[outcome]['other']:7d}")
    r, g = cost["read_s"], cost["gate_s"]
    print(f"cost per image: read {_secs(r)}, gate {_secs(g)}; "
          f"{cost['images_per_s']:.2f} images/s")
    for note in m["plot_notes"]:
        print(note)
    print(f"written to {out}: metrics.json, gate.csv, misclassified.csv"
          + "".join(f", {p}" for p in m["plots"]))


def _secs(s: Mapping) -> str:
    if not s["n"]:
        return "n/a"
    return f"mean {s['mean']:.3f} s (p50 {s['p50']:.3f}, p95 {s['p95']:.3f})"
