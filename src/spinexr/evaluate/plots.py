"""Evaluation plots a person reads on a laptop: ROC, PR, confusion, reliability, per-class AP.

Each function takes arrays or metric dicts and a ``.png`` path, writes the figure there and
returns the path. Figures are drawn with matplotlib's object API on an Agg canvas created inside
the call: no pyplot, no global backend switch (a caller's interactive backend is left alone), no
figure registry to leak, safe from threads. Text uses matplotlib's bundled DejaVu Sans.
Bad input raises :class:`~spinexr.errors.ConfigError` before anything is drawn.
"""
from __future__ import annotations

import math
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, Mapping, Sequence

import numpy as np

from spinexr.errors import ConfigError, FileAccessError
from spinexr.evaluate.classification import check_binary
from spinexr.evaluate.curves import LearningCurve

__all__ = ["plot_ap_per_class", "plot_confusion", "plot_learning_curves", "plot_p_spine", "plot_pr",
           "plot_reliability", "plot_roc"]

_DPI = 110
_MAIN = "#1f5fa8"       # the ensemble / main model
_OTHERS = ("#d95f02", "#1b9e77", "#7570b3", "#e7298a", "#66a61e", "#a6761d")
_POINTS = ("o", "s", "D", "^", "v", "P")


def _target(path: Path | str) -> Path:
    path = Path(path)
    if path.suffix.lower() != ".png":
        raise ConfigError(f"plots are written as PNG; give a path ending in .png, got "
                          f"{path.name!r}", str(path))
    if not path.parent.is_dir():
        raise FileAccessError("folder does not exist; create it first", str(path.parent))
    return path


@contextmanager
def _figure(path: Path, size: tuple[float, float], **kwargs) -> Iterator:
    """A Figure on its own Agg canvas; saved to ``path`` and cleared on leaving the block."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=size, dpi=_DPI, layout="constrained", **kwargs)
    FigureCanvasAgg(fig)
    try:
        yield fig
        try:
            fig.savefig(path, format="png", metadata={"Software": "spinexr"})
        except OSError as exc:
            raise FileAccessError(f"cannot write the plot: {exc}", str(path)) from exc
    finally:
        fig.clear()


def _fmt(value: float, digits: int = 3) -> str:
    return "n/a" if value is None or not math.isfinite(value) else f"{value:.{digits}f}"


def _check_others(others: Mapping[str, np.ndarray] | None, y: np.ndarray) -> dict:
    result = {}
    for name, prob in (others or {}).items():
        _, p = check_binary(y, prob)
        result[str(name)] = p
    return result


def _operating_xy(y: np.ndarray, p: np.ndarray, threshold: float) -> tuple[float, float, float]:
    """(1 - specificity, sensitivity, ppv) when ``p >= threshold`` is called positive."""
    call = p >= threshold
    pos, neg = y == 1, y == 0
    fpr = call[neg].mean() if neg.any() else float("nan")
    tpr = call[pos].mean() if pos.any() else float("nan")
    ppv = pos[call].mean() if call.any() else float("nan")
    return float(fpr), float(tpr), float(ppv)


def _check_points(points: Mapping[str, float] | None) -> dict[str, float]:
    result = {}
    for name, thr in (points or {}).items():
        if not isinstance(thr, (int, float)) or not 0 <= thr <= 1:
            raise ConfigError(f"operating point {name!r} has threshold {thr!r}; need a number in "
                              "[0, 1]", "operating_points")
        result[str(name)] = float(thr)
    return result


def plot_roc(y_true, prob, path: Path | str, *, band: Mapping | None = None,
             operating_points: Mapping[str, float] | None = None,
             others: Mapping[str, np.ndarray] | None = None,
             auroc_ci: Sequence[float] | None = None, label: str = "model",
             title: str = "ROC curve") -> Path:
    """ROC curve of ``prob`` with an optional bootstrap band, operating points and other models.

    Args:
        y_true: (N,) labels in {0, 1}; prob: (N,) probabilities of class 1.
        band: :func:`~spinexr.evaluate.classification.roc_band` output (fpr, tpr_lo, tpr_hi).
        operating_points: ``{name: threshold}``, each marked where ``prob >= threshold``.
        others: ``{name: (N,) probabilities}`` drawn as thin lines (e.g. ensemble members).
        auroc_ci: [lo, hi] shown with the AUROC in the legend.
    """
    from sklearn.metrics import roc_auc_score, roc_curve

    y, p = check_binary(y_true, prob)
    if y.min() == y.max():
        raise ConfigError("a ROC curve needs both classes in y_true", "y_true")
    target, others = _target(path), _check_others(others, y)
    points = _check_points(operating_points)
    with _figure(target, (6.4, 6.0)) as fig:
        ax = fig.add_subplot()
        ax.plot([0, 1], [0, 1], ls="--", lw=1, color="0.6", label="chance (AUROC 0.5)")
        if band is not None and band.get("n_boot"):
            ax.fill_between(band["fpr"], band["tpr_lo"], band["tpr_hi"], color=_MAIN, alpha=0.18,
                            lw=0, label=f"{100 * band.get('level', 0.95):.0f}% bootstrap band "
                                        f"({band['n_boot']} resamples)")
        for (name, q), color in zip(others.items(), _OTHERS):
            fpr, tpr, _ = roc_curve(y, q)
            ax.plot(fpr, tpr, lw=1.2, color=color, alpha=0.8,
                    label=f"{name} (AUROC {_fmt(roc_auc_score(y, q))})")
        fpr, tpr, _ = roc_curve(y, p)
        ci = f", 95% CI {_fmt(auroc_ci[0])}-{_fmt(auroc_ci[1])}" if auroc_ci is not None else ""
        ax.plot(fpr, tpr, lw=2.4, color=_MAIN,
                label=f"{label} (AUROC {_fmt(roc_auc_score(y, p))}{ci})")
        for (name, thr), marker in zip(points.items(), _POINTS):
            x, t, _ = _operating_xy(y, p, thr)
            ax.plot([x], [t], marker=marker, ms=9, color="black", mfc="white", mew=1.8, ls="none",
                    label=f"{name}: threshold {thr:.3f} (sens {t:.2f}, spec {1 - x:.2f})")
        _square_axes(ax, "1 - specificity (false-positive rate)",
                     "Sensitivity (true-positive rate)",
                     f"{title} (n={y.size}, {int(y.sum())} positive)")
        ax.legend(loc="lower right", fontsize=8, framealpha=0.9)
    return target


def _square_axes(ax, xlabel: str, ylabel: str, title: str) -> None:
    ax.set(xlim=(-0.01, 1.01), ylim=(-0.01, 1.01), aspect="equal")
    ax.set_xlabel(xlabel, fontsize=10)
    ax.set_ylabel(ylabel, fontsize=10)
    ax.set_title(title, fontsize=11)
    ax.grid(True, alpha=0.3)


def plot_pr(y_true, prob, path: Path | str, *, operating_points: Mapping[str, float] | None = None,
            others: Mapping[str, np.ndarray] | None = None, label: str = "model",
            title: str = "Precision-recall curve") -> Path:
    """Precision-recall curve with average precision, the prevalence baseline and operating points.

    Args as :func:`plot_roc`.
    """
    from sklearn.metrics import average_precision_score, precision_recall_curve

    y, p = check_binary(y_true, prob)
    if not y.any():
        raise ConfigError("a precision-recall curve needs positive samples in y_true", "y_true")
    target, others = _target(path), _check_others(others, y)
    points = _check_points(operating_points)
    prevalence = float(y.mean())
    with _figure(target, (6.4, 6.0)) as fig:
        ax = fig.add_subplot()
        ax.axhline(prevalence, ls="--", lw=1, color="0.6",
                   label=f"chance (prevalence {prevalence:.2f})")
        for (name, q), color in zip(others.items(), _OTHERS):
            prec, rec, _ = precision_recall_curve(y, q)
            ax.step(rec, prec, where="post", lw=1.2, color=color, alpha=0.8,
                    label=f"{name} (AP {_fmt(average_precision_score(y, q))})")
        prec, rec, _ = precision_recall_curve(y, p)
        ax.step(rec, prec, where="post", lw=2.4, color=_MAIN,
                label=f"{label} (AP {_fmt(average_precision_score(y, p))})")
        for (name, thr), marker in zip(points.items(), _POINTS):
            _, t, ppv = _operating_xy(y, p, thr)
            ax.plot([t], [ppv], marker=marker, ms=9, color="black", mfc="white", mew=1.8,
                    ls="none", label=f"{name}: threshold {thr:.3f} (recall {t:.2f}, "
                                     f"precision {_fmt(ppv, 2)})")
        _square_axes(ax, "Recall (sensitivity)", "Precision (positive predictive value)",
                     f"{title} (n={y.size}, {int(y.sum())} positive)")
        ax.legend(loc="lower left", fontsize=8, framealpha=0.9)
    return target


def plot_confusion(confusion, names: Sequence[str], path: Path | str, *,
                   title: str = "Confusion matrix") -> Path:
    """Counts and row-normalized (recall per true class) confusion matrices side by side.

    Args:
        confusion: (K, K) non-negative counts, rows = true class, columns = predicted class.
        names: the K class names.
    """
    cm = np.asarray(confusion, dtype=np.float64)
    if cm.ndim != 2 or cm.shape[0] != cm.shape[1] or cm.shape[0] < 2:
        raise ConfigError(f"confusion must be a square K x K matrix with K >= 2, got shape "
                          f"{cm.shape}", "confusion")
    if not np.isfinite(cm).all() or (cm < 0).any() or (cm != np.round(cm)).any():
        raise ConfigError("confusion must hold non-negative integer counts", "confusion")
    if len(names) != cm.shape[0]:
        raise ConfigError(f"{len(names)} names for a {cm.shape[0]} x {cm.shape[0]} matrix", "names")
    target, k = _target(path), cm.shape[0]
    rows = cm.sum(axis=1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        norm = np.where(rows > 0, cm / rows, np.nan)
    side = max(4.2, 1.0 + 0.75 * k)
    with _figure(target, (2 * side + 1.6, side + 0.2)) as fig:
        fig.suptitle(f"{title} (n={int(cm.sum())})", fontsize=12)
        for ax, values, kind in zip(fig.subplots(1, 2), (cm, norm), ("counts", "row-normalized")):
            image = ax.imshow(values, cmap="Blues", vmin=0,
                              vmax=1 if kind != "counts" else max(1.0, float(cm.max())))
            fig.colorbar(image, ax=ax, shrink=0.8,
                         label="images" if kind == "counts" else "fraction of the true class")
            _cells(ax, cm, norm, kind)
            ax.set_xticks(range(k), [str(n) for n in names], rotation=30 if k > 3 else 0,
                          ha="right" if k > 3 else "center", fontsize=9)
            ax.set_yticks(range(k), [str(n) for n in names], fontsize=9)
            ax.set_xlabel("Predicted class", fontsize=10)
            ax.set_ylabel("True class", fontsize=10)
            ax.set_title("Counts" if kind == "counts"
                         else "Row-normalized (recall on the diagonal)", fontsize=10)
    return target


def _cells(ax, cm: np.ndarray, norm: np.ndarray, kind: str) -> None:
    k = cm.shape[0]
    for i in range(k):
        for j in range(k):
            frac = norm[i, j]
            text = f"{int(cm[i, j])}" if kind == "counts" else (
                "-" if np.isnan(frac) else f"{frac:.2f}")
            shade = cm[i, j] / max(1.0, cm.max()) if kind == "counts" else (
                0 if np.isnan(frac) else frac)
            ax.text(j, i, text, ha="center", va="center", fontsize=10 if k <= 6 else 8,
                    color="white" if shade > 0.55 else "black")


def plot_reliability(calibration: Mapping, path: Path | str, *,
                     title: str = "Reliability diagram") -> Path:
    """Observed frequency against mean predicted probability per bin, with the ECE in the title.

    Args:
        calibration: :func:`~spinexr.evaluate.calibration.expected_calibration_error` output
            (``bins`` with lo, hi, count, mean_prob, observed; ``ece``; ``mode``).
    """
    bins = calibration.get("bins") if isinstance(calibration, Mapping) else None
    if not bins or not all(isinstance(b, Mapping) and {"lo", "hi", "count", "mean_prob",
                                                       "observed"} <= set(b) for b in bins):
        raise ConfigError("calibration must be expected_calibration_error() output with 'bins'",
                          "calibration")
    target = _target(path)
    lo, hi = np.array([b["lo"] for b in bins], float), np.array([b["hi"] for b in bins], float)
    count = np.array([b["count"] for b in bins], float)
    conf = np.array([np.nan if b["mean_prob"] is None else b["mean_prob"] for b in bins], float)
    obs = np.array([np.nan if b["observed"] is None else b["observed"] for b in bins], float)
    full = count > 0
    binary = calibration.get("mode", "binary") == "binary"
    with _figure(target, (6.4, 7.0)) as fig:
        top, bottom = fig.subplots(2, 1, sharex=True, gridspec_kw={"height_ratios": [3, 1]})
        top.plot([0, 1], [0, 1], ls="--", lw=1, color="0.5", label="perfect calibration")
        top.bar(lo[full], obs[full], width=(hi - lo)[full], align="edge", color=_MAIN, alpha=0.75,
                edgecolor="white", label="observed" if binary else "accuracy")
        top.bar(lo[full], np.abs(conf - obs)[full], bottom=np.minimum(conf, obs)[full],
                width=(hi - lo)[full], align="edge", fill=False, edgecolor="#d62728", hatch="///",
                lw=1.0, label="gap to mean predicted probability")
        top.plot(conf[full], obs[full], "o", color="black", ms=4,
                 label="bin (mean probability, observed)")
        top.set(xlim=(0, 1), ylim=(0, 1))
        top.set_ylabel("Fraction of positives" if binary else "Accuracy (top label correct)",
                       fontsize=10)
        top.set_title(f"{title}: ECE {_fmt(calibration.get('ece'))} "
                      f"({len(bins)} bins, n={int(count.sum())})", fontsize=11)
        top.legend(loc="upper left", fontsize=8)
        top.grid(True, alpha=0.3)
        bottom.bar(lo, count, width=hi - lo, align="edge", color="0.55", edgecolor="white")
        bottom.set_ylabel("Images", fontsize=10)
        bottom.set_xlabel("Predicted probability of abnormal" if binary
                          else "Confidence (top-label probability)", fontsize=10)
        bottom.grid(True, axis="y", alpha=0.3)
    return target


def plot_ap_per_class(per_class: Mapping[str, Mapping], path: Path | str, *,
                      title: str = "Detection AP per class") -> Path:
    """Horizontal bars of AP@0.5 and AP@0.5:0.95 per class (``coco_map()["per_class"]``).

    Classes without ground truth (AP ``nan``) are listed and marked "no ground truth".
    """
    if not isinstance(per_class, Mapping) or not per_class:
        raise ConfigError("per_class must be a non-empty {class: {ap50, ap50_95}} mapping",
                          "per_class")
    for name, row in per_class.items():
        if not isinstance(row, Mapping) or not {"ap50", "ap50_95"} <= set(row):
            raise ConfigError(f"class {name!r} lacks 'ap50' / 'ap50_95'", "per_class")
    target = _target(path)
    names = list(per_class)
    ap50 = np.array([_nan(per_class[n]["ap50"]) for n in names])
    ap = np.array([_nan(per_class[n]["ap50_95"]) for n in names])
    labels = [f"{n} (n={per_class[n]['n_true']})" if "n_true" in per_class[n] else str(n)
              for n in names]
    y = np.arange(len(names))[::-1]
    with _figure(target, (7.6, 1.6 + 0.55 * len(names))) as fig:
        ax = fig.add_subplot()
        ax.barh(y + 0.19, np.nan_to_num(ap50), height=0.38, color=_MAIN, label="AP@0.5")
        ax.barh(y - 0.19, np.nan_to_num(ap), height=0.38, color=_OTHERS[0], label="AP@0.5:0.95")
        for yy, a, b in zip(y, ap50, ap):
            if np.isnan(a):
                ax.text(0.01, yy, "no ground truth", va="center", fontsize=8, color="0.4")
                continue
            ax.text(a + 0.01, yy + 0.19, f"{a:.3f}", va="center", fontsize=8)
            ax.text(b + 0.01, yy - 0.19, f"{b:.3f}", va="center", fontsize=8)
        ax.set_yticks(y, labels, fontsize=9)
        ax.set_xlim(0, 1.08)
        ax.set_xlabel("Average precision (COCO 101-point)", fontsize=10)
        ax.set_title(f"{title}: mAP@0.5 {_fmt(_mean(ap50))}, mAP@0.5:0.95 {_fmt(_mean(ap))}",
                     fontsize=11)
        ax.legend(loc="lower right", fontsize=8)
        ax.grid(True, axis="x", alpha=0.3)
    return target


def plot_p_spine(p_spine, is_spine, path: Path | str, *,
                 thresholds: Mapping[str, float] | None = None, near=None,
                 title: str = "Input gate: P(spine)") -> Path:
    """Histograms of the gate's P(spine) for spine radiographs and other images, with the gate's
    thresholds as vertical lines.

    Args:
        p_spine: (N,) probabilities, ``nan`` (or ``None``) where the gate gave none; those are
            counted in the legend but not drawn.
        is_spine: (N,) bool, True for a spine radiograph.
        thresholds: ``{name: threshold in [0, 1]}``, e.g. the accept and refuse thresholds.
        near: (N,) bool, near cases (non-spine images showing some spine), drawn separately.
    """
    p = np.asarray([np.nan if v is None else v for v in np.ravel(p_spine)], dtype=np.float64)
    y = np.asarray(is_spine, dtype=bool).ravel()
    n_near = np.zeros_like(y) if near is None else np.asarray(near, dtype=bool).ravel()
    if p.shape != y.shape or n_near.shape != y.shape:
        raise ConfigError(f"{p.size} probabilities for {y.size} labels", "p_spine")
    finite = np.isfinite(p)
    if not finite.any():
        raise ConfigError("no image has a P(spine): the gate gave none", "p_spine")
    if ((p[finite] < 0) | (p[finite] > 1)).any():
        raise ConfigError("P(spine) must lie in [0, 1]", "p_spine")
    target, points = _target(path), _check_points(thresholds)
    bins = np.linspace(0.0, 1.0, 21)
    groups = (("spine", y & finite, _MAIN), ("other", ~y & ~n_near & finite, _OTHERS[0]),
              ("near case", ~y & n_near & finite, _OTHERS[1]))
    with _figure(target, (7.2, 4.6)) as fig:
        ax = fig.add_subplot()
        for name, sel, color in groups:
            if sel.any():
                ax.hist(p[sel], bins=bins, color=color, alpha=0.55, edgecolor=color,
                        label=f"{name} (n={int(sel.sum())})")
        for (name, thr), ls in zip(points.items(), ("--", ":", "-.", "-")):
            ax.axvline(thr, color="black", lw=1.4, ls=ls, label=f"{name} {thr:.3f}")
        ax.set_xlim(0, 1)
        ax.set_xlabel("P(spine) from the gate", fontsize=10)
        ax.set_ylabel("Images", fontsize=10)
        missing = int((~finite).sum())
        ax.set_title(title + (f"; {missing} images without one not shown" if missing else ""),
                     fontsize=11)
        ax.legend(loc="upper center", fontsize=8, framealpha=0.9)
        ax.grid(True, alpha=0.3)
    return target


def plot_learning_curves(curves: Mapping[str, LearningCurve], path: Path | str, *,
                         title: str = "Learning curves") -> Path:
    """One panel per model: its validation metrics (:attr:`LearningCurve.shown`) against the
    training samples seen (epochs when its log did not count them), the training loss on the
    right axis, the best epoch(s) as dotted lines and early stops as crosses."""
    if not isinstance(curves, Mapping) or not curves:
        raise ConfigError("no learning curve to draw (the pack records none)", "curves")
    target = _target(path)
    cols = min(len(curves), 3)
    rows = math.ceil(len(curves) / cols)
    with _figure(target, (4.6 * cols, 3.4 * rows + 0.4)) as fig:
        axes = fig.subplots(rows, cols, squeeze=False).ravel()
        for ax, (name, curve) in zip(axes, curves.items()):
            _curve_panel(ax, str(name), curve)
        for ax in axes[len(curves):]:
            ax.set_visible(False)
        fig.suptitle(title, fontsize=11)
    return target


def _curve_panel(ax, name: str, curve: LearningCurve) -> None:
    counted = all(p.seen is not None for p in curve.points)
    x = {p.epoch: (p.seen if counted else p.epoch) for p in curve.points}
    xs = list(x.values())
    for metric, color in zip(curve.shown, (_MAIN, *_OTHERS)):
        ax.plot(xs, [_nan(p.val.get(metric)) for p in curve.points], color=color, marker="o",
                ms=3, lw=1.4, label=f"val {metric}")
    for epoch in sorted(set(curve.best_epochs)):
        ax.axvline(x[epoch], color=_OTHERS[1], ls=":", lw=1.2)
    for epoch in sorted(set(curve.stopped_early)):
        value = next(p.val.get(curve.monitor) for p in curve.points if p.epoch == epoch)
        ax.plot([x[epoch]], [_nan(value)], marker="x", ms=9, mew=2, color=_OTHERS[0],
                ls="none", label="early stop")
    loss = ax.twinx()
    loss.plot(xs, [_nan(p.train_loss) for p in curve.points], color="0.45", ls="--", lw=1.2,
              label="train loss")
    loss.set_ylabel("train loss", fontsize=9)
    handles = ax.get_legend_handles_labels()[0] + loss.get_legend_handles_labels()[0]
    ax.legend(handles=handles, fontsize=7, loc="best", framealpha=0.9)
    ax.set_xlabel(f"{curve.unit} seen" if counted else "epoch", fontsize=9)
    ax.set_ylabel("validation metric", fontsize=9)
    runs = len(curve.best_epochs)
    ax.set_title(f"{name}: best epoch {', '.join(map(str, curve.best_epochs))}"
                 + (f" ({runs} runs, mean)" if runs > 1 else ""), fontsize=10)
    ax.grid(True, alpha=0.3)


def _nan(value) -> float:
    return float("nan") if value is None else float(value)


def _mean(values: np.ndarray) -> float:
    """Mean over the finite values (classes with ground truth), ``nan`` when there are none."""
    finite = values[np.isfinite(values)]
    return float(finite.mean()) if finite.size else float("nan")
