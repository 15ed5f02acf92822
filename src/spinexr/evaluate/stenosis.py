"""Stenosis grading on axial MR slices end to end: the region grades a user gets, against the
ground-truth regions and grades of each slice.

Matching, per slice and per region name (``Box.label``, e.g. ``"central canal"``): one truth
and one prediction of that name are paired whatever their overlap (a slice has one central
canal); where a name occurs more than once on either side, pairs are taken greedily by IoU,
highest first, down to ``iou_threshold``. A truth region left without a prediction is
*missed* (a refused slice misses all of its regions); a prediction left without a truth is
*extra*. Grades are compared on the matched pairs; ``qwk_missed_as_normal`` also counts each
missed region as graded ``normal`` (index 0), which is what a reader of the report sees there.

Pure: :class:`~spinexr.types.Grade` sequences in, a plain dict out (``nan`` where undefined,
with a note).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from spinexr.errors import ConfigError
from spinexr.evaluate.classification import bootstrap_indices, grade_metrics, quadratic_kappa
from spinexr.labels import STENOSIS_GRADES, STENOSIS_REGIONS
from spinexr.types import Box, Grade

__all__ = ["StenosisTruth", "match_regions", "stenosis_metrics"]

NAN = float("nan")


@dataclass(frozen=True)
class StenosisTruth:
    """The truth of the slices: per slice, one :class:`~spinexr.types.Grade` per region (its
    ``box`` the region, ``box.label`` the region name, ``index`` the grade into ``labels``), and
    optional per-slice ``groups`` (study ids) for the bootstrap."""

    regions: Sequence[Sequence[Grade]]
    labels: Sequence[str] = STENOSIS_GRADES
    groups: Sequence | None = None


def _iou(a: Box, b: Box) -> float:
    """Intersection over union of two ``[x1, y1, x2, y2]`` boxes (0 when they do not meet)."""
    w = min(a.x2, b.x2) - max(a.x1, b.x1)
    h = min(a.y2, b.y2) - max(a.y1, b.y1)
    if w <= 0 or h <= 0:
        return 0.0
    inter = w * h
    return float(inter / (a.width * a.height + b.width * b.height - inter))


def match_regions(predicted: Sequence[Box], truth: Sequence[Box], iou_threshold: float = 0.3
                  ) -> tuple[list[tuple[int, int | None, float]], list[int]]:
    """Pair one slice's truth regions with its predicted regions of the same name.

    Returns:
        (one ``(truth index, predicted index or None, IoU)`` per truth region, in truth order;
        the indices of the unmatched predictions).
    """
    pairs: dict[int, tuple[int, float]] = {}
    for name in dict.fromkeys(b.label for b in truth):
        ti = [i for i, b in enumerate(truth) if b.label == name]
        pi = [j for j, b in enumerate(predicted) if b.label == name]
        scored = sorted(((_iou(truth[i], predicted[j]), i, j) for i in ti for j in pi),
                        key=lambda c: -c[0])
        single = len(ti) == 1 and len(pi) == 1
        used: set[int] = set()
        for iou, i, j in scored:
            if i not in pairs and j not in used and (single or iou >= iou_threshold):
                pairs[i] = (j, iou)
                used.add(j)
    matched = {j for j, _ in pairs.values()}
    out = [(i, *pairs[i]) if i in pairs else (i, None, 0.0) for i in range(len(truth))]
    return out, [j for j in range(len(predicted)) if j not in matched]


def _region_boxes(grades: Sequence[Grade], k: int, what: str) -> list[Box]:
    for g in grades:
        if g.box is None:
            raise ConfigError(f"{what}: grade {g.label!r} of task {g.task!r} has no region box; "
                              "pass the region grades (Grade.box set) only", what)
        if not 0 <= g.index < k:
            raise ConfigError(f"{what}: grade index {g.index} of region {g.box.label!r} is not "
                              f"in 0..{k - 1}", what)
    return [g.box for g in grades]


@dataclass(frozen=True)
class _Pairs:
    """Every truth region of the set: its slice, name, true grade, predicted grade (-1 when
    missed) and IoU; and the number of extra predictions."""

    slice: np.ndarray
    region: np.ndarray
    y: np.ndarray
    pred: np.ndarray
    iou: np.ndarray
    n_extra: int

    @property
    def matched(self) -> np.ndarray:
        return self.pred >= 0


def _pair_all(predicted: Sequence[Sequence[Grade]], truth: StenosisTruth,
              iou_threshold: float) -> _Pairs:
    k = len(truth.labels)
    rows, n_extra = [], 0
    for s, (pred, true) in enumerate(zip(predicted, truth.regions)):
        pb = _region_boxes(pred, k, "predicted")
        tb = _region_boxes(true, k, "truth")
        matches, extra = match_regions(pb, tb, iou_threshold)
        n_extra += len(extra)
        rows += [(s, tb[i].label, true[i].index, -1 if j is None else pred[j].index, iou)
                 for i, j, iou in matches]
    cols = list(zip(*rows)) if rows else [(), (), (), (), ()]
    return _Pairs(np.array(cols[0], int), np.array(cols[1], object), np.array(cols[2], int),
                  np.array(cols[3], int), np.array(cols[4], float), n_extra)


def _grade_figures(y: np.ndarray, pred: np.ndarray, labels: Sequence[str]) -> dict:
    """accuracy, balanced accuracy, QWK, MAE and confusion of matched grades (nan if none)."""
    if y.size == 0:
        return {"accuracy": NAN, "balanced_accuracy": NAN, "qwk": NAN, "mae": NAN,
                "confusion": None, "notes": []}
    m = grade_metrics(y, np.eye(len(labels))[pred], list(labels))
    return {**{key: m[key] for key in ("accuracy", "balanced_accuracy", "qwk", "confusion",
                                       "notes")},
            "mae": float(np.abs(y - pred).mean())}


def _per_region(p: _Pairs, labels: Sequence[str]) -> dict[str, dict]:
    order = {name: i for i, name in enumerate(STENOSIS_REGIONS)}
    names = sorted(set(p.region.tolist()), key=lambda n: (order.get(n, len(order)), n))
    out = {}
    for name in names:
        here = p.region == name
        hit = here & p.matched
        figures = _grade_figures(p.y[hit], p.pred[hit], labels)
        out[name] = {"n_truth": int(here.sum()), "n_matched": int(hit.sum()),
                     "qwk": figures["qwk"], "accuracy": figures["accuracy"],
                     "mae": figures["mae"]}
    return out


def _qwk_ci(p: _Pairs, groups: np.ndarray, k: int, n_boot: int, seed: int, level: float) -> dict:
    """Percentile-bootstrap CI of the matched QWK, resampling whole groups of slices."""
    hit = np.flatnonzero(p.matched)
    values = []
    if hit.size and n_boot:
        y, pred = p.y[hit], p.pred[hit]
        g = groups[p.slice[hit]].astype(str)
        for idx in bootstrap_indices(np.zeros(hit.size), n_boot, np.random.default_rng(seed), g):
            value = quadratic_kappa(y[idx], pred[idx], k)
            if np.isfinite(value):
                values.append(value)
    if not values:
        return {"ci": [NAN, NAN], "n_boot": 0}
    tail = 100 * (1 - level) / 2
    lo, hi = np.percentile(values, [tail, 100 - tail])
    return {"ci": [float(lo), float(hi)], "n_boot": len(values)}


def stenosis_metrics(predicted: Sequence[Sequence[Grade]], truth: StenosisTruth, *,
                     iou_threshold: float = 0.3, n_boot: int = 0, seed: int = 0,
                     level: float = 0.95) -> dict:
    """Region-level stenosis grading of a set of MR slices, as a user gets it.

    Args:
        predicted: per slice, the region grades given (``Analysis.grades`` with a box; empty
            for a refused slice), in the same slice order as ``truth.regions``.
        truth: the truth regions and grades per slice (see :class:`StenosisTruth`).
        iou_threshold: least IoU of a pair where a region name occurs more than once.
        n_boot: bootstrap replicates of ``qwk_ci`` (0: none), resampling ``truth.groups``
            (default: each slice its own group).

    Returns:
        ``{"labels", "n_slices", "n_truth", "n_matched", "n_missed", "n_extra", "n_predicted",
        "qwk", "qwk_ci", "ci_level", "n_boot", "qwk_missed_as_normal", "accuracy",
        "balanced_accuracy", "mae", "confusion" (K x K, rows = truth; ``None`` when nothing
        matched), "per_region": {name: {"n_truth", "n_matched", "qwk", "accuracy", "mae"}},
        "mean_iou", "iou_threshold", "notes"}``.
    """
    n = len(truth.regions)
    if len(predicted) != n:
        raise ConfigError(f"{len(predicted)} predicted slices for {n} truth slices", "predicted")
    if truth.groups is not None and len(truth.groups) != n:
        raise ConfigError(f"{len(truth.groups)} groups for {n} slices", "groups")
    labels, k = list(truth.labels), len(truth.labels)
    p = _pair_all(predicted, truth, iou_threshold)
    hit = p.matched
    figures = _grade_figures(p.y[hit], p.pred[hit], labels)
    notes = figures.pop("notes")
    if not hit.any():
        notes.append("no truth region was matched by a prediction: grade metrics undefined")
    as_normal = quadratic_kappa(p.y, np.where(hit, p.pred, 0), k) if p.y.size else NAN
    groups = np.arange(n) if truth.groups is None else np.asarray(truth.groups, dtype=object)
    ci = _qwk_ci(p, groups, k, n_boot, seed, level)
    return {"labels": labels, "n_slices": n, "n_truth": int(p.y.size),
            "n_matched": int(hit.sum()), "n_missed": int((~hit).sum()), "n_extra": p.n_extra,
            "n_predicted": int(hit.sum()) + p.n_extra, **figures, "qwk_ci": ci["ci"],
            "ci_level": level, "n_boot": ci["n_boot"], "qwk_missed_as_normal": as_normal,
            "per_region": _per_region(p, labels),
            "mean_iou": float(p.iou[hit].mean()) if hit.any() else NAN,
            "iou_threshold": iou_threshold, "notes": notes}
