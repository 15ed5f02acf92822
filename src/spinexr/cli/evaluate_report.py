"""What ``spinexr evaluate`` writes and prints: the flat headline keys of metrics.json, the plots
next to it and the summary lines (strict JSON values: :mod:`spinexr.cli._json`)."""
from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Mapping

from spinexr.errors import SpinexrError
from spinexr.evaluate import plots as P
from spinexr.evaluate import roc_band
from spinexr.labels import TRIAGE_CLASSES

_FLAT_BINARY = ("auroc", "auroc_ci", "sensitivity", "specificity", "f1", "ppv", "npv",
                "accuracy", "balanced_accuracy", "threshold")


def headline(detection: Mapping, triage: Mapping | None, classifiers: Mapping) -> dict:
    """The flat keys of metrics.json, each from the first model it applies to."""
    flat: dict[str, Any] = {}
    binary = triage or next((c["binary"] for c in classifiers.values() if "binary" in c), None)
    grades = next((c for c in classifiers.values() if len(c["labels"]) > 2),
                  next(iter(classifiers.values()), None))
    if binary is not None:
        op = binary["default_operating_point"]
        flat.update({k: binary["operating_points"][op][k] for k in _FLAT_BINARY},
                    operating_point=op, operating_points=binary["operating_points"],
                    calibration=public(binary["calibration"]))
    if grades is not None:
        flat.update({k: grades[k] for k in ("accuracy", "balanced_accuracy", "qwk", "macro_f1")},
                    per_class=grades["per_class"])
    if detection:
        first = next(iter(detection.values()))
        flat.update(map50=first["map50"], map50_95=first["map50_95"], per_class=first["per_class"])
    return flat


def public(block: Any) -> Any:
    """Drop the raw arrays kept for plotting."""
    if isinstance(block, Mapping):
        return {k: public(v) for k, v in block.items() if k not in ("y", "prob", "groups")}
    return block


# -- plots -----------------------------------------------------------------------------------------
class Plots:
    """Plot file names: ``roc.png`` for the first model, ``roc-<key>.png`` after; failures noted."""

    def __init__(self, out: Path) -> None:
        self.out, self.files, self.notes = out, [], []

    def draw(self, base: str, key: str, fn, *args, **kwargs) -> None:
        name = f"{base}.png" if f"{base}.png" not in self.files else f"{base}-{key}.png"
        try:
            fn(*args, self.out / name, **kwargs)
        except SpinexrError as exc:
            self.notes.append(f"{name}: not drawn: {exc}")
            return
        self.files.append(name)


def _draw_binary(plots: Plots, key: str, block: Mapping, args, title: str) -> None:
    y, p, groups = block["y"], block["prob"], block["groups"]
    ops = {k: v["threshold"] for k, v in block["operating_points"].items()}
    others = {k: v["prob"] for k, v in block.get("per_model", {}).items()}
    if y.min() != y.max():
        band = roc_band(y, p, n_boot=args.n_boot, seed=args.seed, groups=groups)
        plots.draw("roc", key, P.plot_roc, y, p, band=band, operating_points=ops, others=others,
                   auroc_ci=block["auroc_ci"], label=key, title=f"{title} ROC")
    plots.draw("pr", key, P.plot_pr, y, p, operating_points=ops, others=others, label=key,
               title=f"{title} precision-recall")
    plots.draw("reliability", key, P.plot_reliability, block["calibration"],
               title=f"{title} reliability")
    op = block["operating_points"][block["default_operating_point"]]
    cm = [[op["tn"], op["fp"]], [op["fn"], op["tp"]]]
    plots.draw("confusion", key, P.plot_confusion, cm, list(TRIAGE_CLASSES),
               title=f"{title} at {block['default_operating_point']}, "
                     f"threshold {op['threshold']:.3f}")


def draw_all(out_dir: Path, detection, triage, classifiers, args, curves=None,
             stenosis: Mapping | None = None) -> Plots:
    """Every plot; ``curves`` (model key -> LearningCurve, from the pack's card) make
    ``learning_curve.png``, the end-to-end ``stenosis`` block ``stenosis_confusion.png``."""
    plots = Plots(out_dir)
    if curves:
        plots.draw("learning_curve", "", P.plot_learning_curves, curves)
    if triage is not None:
        _draw_binary(plots, "ensemble", triage, args, "Triage")
    for key, entry in classifiers.items():
        if "binary" in entry:
            _draw_binary(plots, key, entry["binary"], args, key)
        else:
            plots.draw("confusion", key, P.plot_confusion, entry["confusion"], entry["labels"],
                       title=f"{key} confusion")
    for key, entry in detection.items():
        plots.draw("ap_per_class", key, P.plot_ap_per_class, entry["per_class"],
                   title=f"{key} AP per class")
    if stenosis and stenosis["confusion"] is not None:
        plots.draw("stenosis_confusion", "", P.plot_confusion, stenosis["confusion"],
                   stenosis["labels"], title="Stenosis grade per matched region, end to end")
    return plots


# -- summary ---------------------------------------------------------------------------------------
def _fmt(value: Any) -> str:
    return f"{value:.4f}" if isinstance(value, float) and math.isfinite(value) else "n/a"


def end_to_end_lines(block: Mapping) -> list[str]:
    """The end-to-end block as a few printed lines."""
    s, g = block["settings"], block["gate"]
    lines = [f"end to end (gating {s['gating']}, operating point {s['operating_point']}): "
             f"{g['n']} images, {g['accepted']} accepted, {g['uncertain']} uncertain, "
             f"{g['refused']} refused"]
    t = block.get("triage")
    if t and t.get("n"):
        lines.append(f"  triage: auroc {_fmt(t['auroc'])} (analysed only "
                     f"{_fmt(t['auroc_analysed'])}), sensitivity {_fmt(t['sensitivity'])}, "
                     f"specificity {_fmt(t['specificity'])}, f1 {_fmt(t['f1'])}")
    les = block.get("lesions")
    if les:
        lines.append(f"  lesions: map50 {_fmt(les['map50'])}, map50_95 {_fmt(les['map50_95'])}"
                     f" ({les['n_findings']} findings)")
    for task, m in (block.get("grades") or {}).items():
        lines.append(f"  {task}: accuracy {_fmt(m['accuracy'])}, balanced accuracy "
                     f"{_fmt(m['balanced_accuracy'])}, qwk {_fmt(m['qwk'])} ({m['n_graded']} "
                     f"graded, {m['n_labelled_ungraded']} labelled without a grade)")
    st = block.get("stenosis")
    if st:
        lo, hi = st["qwk_ci"]
        lines.append(f"  stenosis ({st['n_slices']} MR slices): qwk {_fmt(st['qwk'])} "
                     f"[{_fmt(lo)}, {_fmt(hi)}], missed as normal "
                     f"{_fmt(st['qwk_missed_as_normal'])}, accuracy {_fmt(st['accuracy'])}, "
                     f"balanced accuracy {_fmt(st['balanced_accuracy'])}, mae {_fmt(st['mae'])}"
                     f" ({st['n_matched']} of {st['n_truth']} regions matched, "
                     f"{st['n_missed']} missed, {st['n_extra']} extra)")
    lines += [f"  {note}" for note in block.get("notes", ())]
    return lines


def summary(metrics: Mapping, path: Path) -> None:
    """Print the headline figures, what was skipped and where the metrics went."""
    shown = [f"{k} {metrics[k]:.4f}" for k in ("auroc", "sensitivity", "specificity", "f1",
                                               "balanced_accuracy", "qwk", "map50", "map50_95")
             if isinstance(metrics.get(k), float) and math.isfinite(metrics[k])]
    print(f"{metrics['data']['n_images']} images, each model alone: "
          + (", ".join(shown) or "no finite metric"))
    if metrics.get("end_to_end"):
        print("\n".join(end_to_end_lines(metrics["end_to_end"])))
    for key, why in metrics["skipped"].items():
        print(f"skipped {key}: {why}")
    print(f"metrics written to {path} ({len(metrics['plots'])} plots)")
