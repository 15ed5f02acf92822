"""Image-level classification metrics: binary triage at operating points and multi-class grades.

Pure: numpy arrays and explicit parameters in, plain dicts out; inputs are never modified and
randomness comes from a seeded :class:`numpy.random.Generator`. A metric that is undefined for
the data (AUROC with one class only, PPV with no positive calls) is ``nan`` and its reason is
listed under ``"notes"``; malformed input (NaN, wrong shapes, labels outside the classes) raises
:class:`~spinexr.errors.ConfigError` naming the argument and the value found.

Conventions: label 1 is the positive (abnormal) class; a sample is called positive when
``prob >= threshold``.
"""
from __future__ import annotations

import warnings
from typing import Iterator, Mapping, Sequence

import numpy as np

from spinexr.errors import ConfigError

__all__ = ["auroc", "auroc_ci", "binary_metrics", "bootstrap_indices", "grade_metrics",
           "operating_point_metrics", "quadratic_kappa", "roc_band", "threshold_metrics"]


# -- input checks --------------------------------------------------------------------------------
def _first_bad(mask: np.ndarray) -> str:
    idx = np.flatnonzero(mask)
    shown = ", ".join(str(i) for i in idx[:5])
    return f"{idx.size} value(s), first at index {shown}"


def _floats(values, name: str) -> np.ndarray:
    try:
        return np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"expected numbers, got {type(values).__name__}: {exc}", name) from exc


def check_binary(y_true, prob) -> tuple[np.ndarray, np.ndarray]:
    """Validate and return ``(y, p)``: int8 labels in {0, 1} and float64 probabilities in [0, 1]."""
    y, p = _floats(y_true, "y_true"), _floats(prob, "prob")
    if y.ndim != 1 or p.ndim != 1:
        raise ConfigError(f"y_true and prob must be 1-D, got shapes {y.shape} and {p.shape}",
                          "y_true/prob")
    if y.size != p.size:
        raise ConfigError(f"y_true has {y.size} samples, prob has {p.size}; pass one "
                          "probability per sample", "y_true/prob")
    if y.size == 0:
        raise ConfigError("no samples to evaluate (empty y_true)", "y_true")
    if np.isnan(y).any():
        raise ConfigError(f"y_true holds NaN: {_first_bad(np.isnan(y))}; drop unlabelled "
                          "samples first", "y_true")
    if not np.isin(y, (0.0, 1.0)).all():
        raise ConfigError(f"y_true must be 0 (normal) or 1 (abnormal), found "
                          f"{sorted(set(y[~np.isin(y, (0.0, 1.0))].tolist()))[:5]}", "y_true")
    if not np.isfinite(p).all():
        raise ConfigError(f"prob holds NaN or inf: {_first_bad(~np.isfinite(p))}; the model "
                          "failed on those images", "prob")
    if (p < 0).any() or (p > 1).any():
        raise ConfigError(f"prob must lie in [0, 1] (pass probabilities, not logits): "
                          f"{_first_bad((p < 0) | (p > 1))}", "prob")
    return y.astype(np.int8), p


def _check_groups(groups, n: int) -> np.ndarray | None:
    if groups is None:
        return None
    g = np.asarray(groups, dtype=object).ravel()
    if g.size != n:
        raise ConfigError(f"groups has {g.size} entries for {n} samples", "groups")
    if any(v is None for v in g):
        raise ConfigError("groups holds None; give every sample its patient/study id", "groups")
    return g


# -- AUROC and its bootstrap ---------------------------------------------------------------------
def auroc(y_true, prob) -> float:
    """Area under the ROC curve (sklearn ``roc_auc_score``); ``nan`` with one class only."""
    from sklearn.metrics import roc_auc_score

    y, p = check_binary(y_true, prob)
    if y.min() == y.max():
        return float("nan")
    return float(roc_auc_score(y, p))


def _auc_ranks(y: np.ndarray, p: np.ndarray) -> float:
    """Mann-Whitney AUROC with mid-ranks (ties count 1/2): equal to sklearn's, much cheaper."""
    from scipy.stats import rankdata

    n_pos = int(y.sum())
    n_neg = y.size - n_pos
    ranks = rankdata(p)
    return float((ranks[y == 1].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def bootstrap_indices(y_true, n_boot: int, rng: np.random.Generator,
                      groups=None) -> Iterator[np.ndarray]:
    """Yield ``n_boot`` index arrays resampled with replacement.

    Without ``groups``: stratified, i.e. the positives and the negatives are each resampled to
    their own count, so every replicate has both classes. With ``groups`` (patient or study ids):
    whole groups are resampled, stratified by whether a group holds any positive; a replicate may
    then still lack a class, and callers skip it.
    """
    y = np.asarray(y_true).ravel()
    if groups is None:
        strata = [np.flatnonzero(y == 1), np.flatnonzero(y != 1)]
        for _ in range(n_boot):
            yield np.concatenate([s[rng.integers(0, s.size, s.size)] for s in strata if s.size])
        return
    _, inverse = np.unique(np.asarray(groups, dtype=str), return_inverse=True)
    order = np.argsort(inverse, kind="stable")
    members = np.split(order, np.flatnonzero(np.diff(inverse[order])) + 1)
    has_pos = np.array([bool((y[m] == 1).any()) for m in members])
    strata = [np.flatnonzero(has_pos), np.flatnonzero(~has_pos)]
    for _ in range(n_boot):
        chosen = np.concatenate([s[rng.integers(0, s.size, s.size)] for s in strata if s.size])
        yield np.concatenate([members[g] for g in chosen])


def auroc_ci(y_true, prob, *, n_boot: int = 1000, seed: int = 0, groups=None,
             level: float = 0.95) -> dict:
    """Percentile-bootstrap confidence interval of the AUROC.

    Returns:
        ``{"ci": [lo, hi], "n_boot": replicates used, "level": level}``; ``[nan, nan]`` when
        ``n_boot`` is 0, the data hold one class only, or no replicate held both classes.
    """
    y, p = check_binary(y_true, prob)
    if not 0 < level < 1:
        raise ConfigError(f"level must be in (0, 1), got {level}", "level")
    if n_boot < 0:
        raise ConfigError(f"n_boot must be >= 0, got {n_boot}", "n_boot")
    g = _check_groups(groups, y.size)
    values = []
    if y.min() != y.max():
        for idx in bootstrap_indices(y, n_boot, np.random.default_rng(seed), g):
            yb = y[idx]
            if yb.min() != yb.max():
                values.append(_auc_ranks(yb, p[idx]))
    if not values:
        return {"ci": [float("nan"), float("nan")], "n_boot": 0, "level": level}
    tail = 100 * (1 - level) / 2
    lo, hi = np.percentile(values, [tail, 100 - tail])
    return {"ci": [float(lo), float(hi)], "n_boot": len(values), "level": level}


def _roc(y: np.ndarray, p: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(fpr, tpr) at every distinct threshold, from (0, 0); as sklearn's ``roc_curve``."""
    order = np.argsort(-p, kind="mergesort")
    ps, ys = p[order], y[order]
    last = np.r_[np.flatnonzero(np.diff(ps)), ys.size - 1]
    tps = np.cumsum(ys)[last]
    fps = last + 1 - tps
    return np.r_[0.0, fps / fps[-1]], np.r_[0.0, tps / tps[-1]]


def roc_band(y_true, prob, *, n_boot: int = 1000, seed: int = 0, groups=None,
             level: float = 0.95, points: int = 101) -> dict:
    """Pointwise percentile-bootstrap band of the ROC curve on a fixed false-positive-rate grid.

    Returns:
        ``{"fpr": (points,), "tpr_lo": (points,), "tpr_hi": (points,), "n_boot", "level"}``
        (numpy arrays); the band is empty (``n_boot`` 0, NaN arrays) when it cannot be formed.
    """
    y, p = check_binary(y_true, prob)
    grid = np.linspace(0.0, 1.0, points)
    curves = []
    if y.min() != y.max():
        for idx in bootstrap_indices(y, n_boot, np.random.default_rng(seed),
                                     _check_groups(groups, y.size)):
            yb = y[idx]
            if yb.min() != yb.max():
                fpr, tpr = _roc(yb, p[idx])
                curves.append(np.interp(grid, fpr, tpr))
    if not curves:
        nan = np.full(points, np.nan)
        return {"fpr": grid, "tpr_lo": nan, "tpr_hi": nan.copy(), "n_boot": 0, "level": level}
    tail = 100 * (1 - level) / 2
    lo, hi = np.percentile(np.stack(curves), [tail, 100 - tail], axis=0)
    return {"fpr": grid, "tpr_lo": lo, "tpr_hi": hi, "n_boot": len(curves), "level": level}


# -- metrics at a threshold ----------------------------------------------------------------------
def _ratio(num: int, den: int, name: str, why: str, notes: list[str]) -> float:
    if den == 0:
        notes.append(f"{name}: undefined, {why}")
        return float("nan")
    return num / den


def threshold_metrics(y_true, prob, threshold: float) -> dict:
    """Confusion counts and the rates derived from them when ``prob >= threshold`` is positive.

    Returns:
        ``{"threshold", "n", "n_pos", "tp", "fp", "tn", "fn", "sensitivity", "specificity",
        "ppv", "npv", "f1", "accuracy", "balanced_accuracy", "notes"}``.
    """
    y, p = check_binary(y_true, prob)
    if not (np.isfinite(threshold) and 0 <= threshold <= 1):
        raise ConfigError(f"threshold must be in [0, 1], got {threshold!r}", "threshold")
    call = p >= threshold
    tp, fp = int((call & (y == 1)).sum()), int((call & (y == 0)).sum())
    fn, tn = int((~call & (y == 1)).sum()), int((~call & (y == 0)).sum())
    notes: list[str] = []
    sens = _ratio(tp, tp + fn, "sensitivity", "no positive samples", notes)
    spec = _ratio(tn, tn + fp, "specificity", "no negative samples", notes)
    return {"threshold": float(threshold), "n": int(y.size), "n_pos": tp + fn,
            "tp": tp, "fp": fp, "tn": tn, "fn": fn, "sensitivity": sens, "specificity": spec,
            "ppv": _ratio(tp, tp + fp, "ppv", "no sample called positive", notes),
            "npv": _ratio(tn, tn + fn, "npv", "no sample called negative", notes),
            "f1": _ratio(2 * tp, 2 * tp + fp + fn, "f1", "no positives and none called", notes),
            "accuracy": (tp + tn) / y.size,
            # as sklearn: the mean recall over the classes present (never both absent, n > 0)
            "balanced_accuracy": float(np.nanmean([sens, spec])),
            "notes": notes}


def _auroc_part(y: np.ndarray, p: np.ndarray, n_boot: int, seed: int, groups,
                level: float) -> dict:
    value = auroc(y, p)
    ci = auroc_ci(y, p, n_boot=n_boot, seed=seed, groups=groups, level=level)
    notes = []
    if np.isnan(value):
        notes.append(f"auroc: undefined with one class only (n={y.size}, n_pos={int(y.sum())})")
    elif ci["n_boot"] == 0:
        notes.append("auroc_ci: not computed (n_boot=0 or no replicate held both classes)")
    return {"auroc": value, "auroc_ci": ci["ci"], "ci_level": level, "n_boot": ci["n_boot"],
            "notes": notes}


def binary_metrics(y_true, prob, threshold: float = 0.5, *, n_boot: int = 1000, seed: int = 0,
                   groups: Sequence | None = None, level: float = 0.95) -> dict:
    """AUROC with a bootstrap CI, and the threshold metrics at ``threshold``.

    Args:
        y_true: (N,) labels, 1 = positive (abnormal), 0 = negative.
        prob: (N,) probabilities of the positive class in [0, 1].
        threshold: call positive when ``prob >= threshold``.
        n_boot: bootstrap replicates for ``auroc_ci`` (0: no CI).
        seed: seeds the ``numpy.random.Generator`` of the bootstrap.
        groups: (N,) patient or study ids; resample whole groups instead of images.
        level: CI coverage (0.95: percentiles 2.5 and 97.5).

    Returns:
        ``{"auroc", "auroc_ci": [lo, hi], "sensitivity", "specificity", "f1", "accuracy",
        "balanced_accuracy", "ppv", "npv", "threshold", "n", "n_pos", "tp", "fp", "tn", "fn",
        "ci_level", "n_boot", "notes"}``; undefined values are ``nan`` and explained in notes.
    """
    y, p = check_binary(y_true, prob)
    part = _auroc_part(y, p, n_boot, seed, groups, level)
    out = threshold_metrics(y, p, threshold)
    notes = part.pop("notes") + out.pop("notes")
    return {**part, **out, "notes": notes}


def operating_point_metrics(y_true, prob, operating_points: Mapping[str, float], *,
                            n_boot: int = 1000, seed: int = 0, groups: Sequence | None = None,
                            level: float = 0.95) -> dict[str, dict]:
    """:func:`binary_metrics` at each named threshold, e.g. ``{"youden": 0.42, "sens90": 0.2}``.

    The AUROC and its CI do not depend on the threshold: they are computed once and repeated
    in every entry.
    """
    if not operating_points:
        raise ConfigError("no operating points given", "operating_points")
    y, p = check_binary(y_true, prob)
    part = _auroc_part(y, p, n_boot, seed, groups, level)
    result = {}
    for name, threshold in operating_points.items():
        out = threshold_metrics(y, p, float(threshold))
        notes = part["notes"] + out.pop("notes")
        result[str(name)] = {**{k: v for k, v in part.items() if k != "notes"}, **out,
                             "notes": notes}
    return result


# -- multi-class / grades ------------------------------------------------------------------------
def check_multiclass(y_true, prob, names) -> tuple[np.ndarray, np.ndarray, list[str]]:
    p = _floats(prob, "prob")
    if p.ndim != 2 or p.shape[1] < 2:
        raise ConfigError(f"prob must be (N, K) with K >= 2 classes, got shape {p.shape}", "prob")
    y = _floats(y_true, "y_true").ravel()
    if y.size != p.shape[0]:
        raise ConfigError(f"y_true has {y.size} samples, prob has {p.shape[0]} rows", "y_true")
    if y.size == 0:
        raise ConfigError("no samples to evaluate (empty y_true)", "y_true")
    if not np.isfinite(p).all():
        raise ConfigError(f"prob holds NaN or inf: {_first_bad(~np.isfinite(p).all(1))}", "prob")
    k = p.shape[1]
    bad = ~np.isfinite(y) | (y != np.round(y)) | (y < 0) | (y >= k)
    if bad.any():
        raise ConfigError(f"y_true must hold class indices 0..{k - 1}: {_first_bad(bad)} "
                          f"(e.g. {y[bad][0]!r})", "y_true")
    names = [str(i) for i in range(k)] if names is None else [str(n) for n in names]
    if len(names) != k:
        raise ConfigError(f"{len(names)} names for {k} classes", "names")
    return y.astype(np.int64), p, names


def quadratic_kappa(y_true, y_pred, k: int) -> float:
    """Cohen's kappa with quadratic weights of two gradings (as sklearn's
    ``cohen_kappa_score(weights="quadratic")``, without its per-call overhead: it runs in
    bootstrap loops).

    Args:
        y_true, y_pred: (N,) integer grades in ``0..k-1``.
        k: the number of grades.

    Returns:
        The kappa in [-1, 1]; ``nan`` when undefined (no sample, or truth and prediction each
        a single and the same grade, so no disagreement is expected).
    """
    y, pred = np.asarray(y_true, dtype=np.int64), np.asarray(y_pred, dtype=np.int64)
    if y.size == 0:
        return float("nan")
    observed = np.bincount(y * k + pred, minlength=k * k).reshape(k, k).astype(np.float64)
    expected = np.outer(observed.sum(axis=1), observed.sum(axis=0)) / y.size
    grid = np.arange(k)
    weights = (grid[:, None] - grid[None, :]) ** 2
    chance = float((weights * expected).sum())
    return float("nan") if chance == 0 else 1.0 - float((weights * observed).sum()) / chance


def grade_metrics(y_true, prob, names: Sequence[str] | None = None) -> dict:
    """Multi-class (or ordinal grade) metrics of ``argmax(prob)`` against ``y_true``.

    Args:
        y_true: (N,) class indices in ``0..K-1``.
        prob: (N, K) class scores; the predicted class is the row's argmax.
        names: K class names (default ``"0".."K-1"``).

    Returns:
        ``{"accuracy", "balanced_accuracy" (mean recall over classes present in y_true),
        "qwk" (quadratic weighted Cohen's kappa), "macro_f1" (over classes in y_true or
        predicted), "confusion" (K x K list, rows = truth), "per_class": {name: {"precision",
        "recall", "f1", "support"}}, "n", "notes"}``; undefined values are ``nan``.
    """
    from sklearn.metrics import confusion_matrix, f1_score
    from sklearn.metrics import precision_recall_fscore_support

    y, p, names = check_multiclass(y_true, prob, names)
    k = p.shape[1]
    pred = p.argmax(axis=1)
    labels = list(range(k))
    cm = confusion_matrix(y, pred, labels=labels)
    support = cm.sum(axis=1)
    notes: list[str] = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # undefined cases become nan + a note below
        present = sorted(set(y.tolist()) | set(pred.tolist()))
        macro_f1 = float(f1_score(y, pred, labels=present, average="macro", zero_division=0))
        prec, rec, f1, _ = precision_recall_fscore_support(y, pred, labels=labels,
                                                           zero_division=np.nan)
    qwk = quadratic_kappa(y, pred, k)
    if np.isnan(qwk):
        notes.append("qwk: undefined, truth and prediction agree on a single class")
    absent = [names[i] for i in labels if support[i] == 0]
    if absent:
        notes.append(f"per_class: no true samples of {absent}; their recall is undefined")
    recalls = np.diag(cm)[support > 0] / support[support > 0]
    return {"accuracy": float((pred == y).mean()), "balanced_accuracy": float(recalls.mean()),
            "qwk": qwk, "macro_f1": macro_f1, "confusion": cm.tolist(),
            "per_class": {names[i]: {"precision": float(prec[i]), "recall": float(rec[i]),
                                     "f1": float(f1[i]), "support": int(support[i])}
                          for i in labels},
            "n": int(y.size), "notes": notes}
