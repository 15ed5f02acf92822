"""Input-gate metrics: three outcomes (accepted, uncertain, refused) against two labels (spine,
other). Pure: arrays in, dicts out; nothing is read or written.

An *uncertain* input is analysed with a warning, so for a spine radiograph it counts as let
through (:func:`gate_metrics` ``sensitivity``; ``sensitivity_strict`` counts accepted only), and
for any other image it counts as a miss of the gate (``specificity`` counts refused only).
Proportions come with a Wilson score interval (:func:`wilson_interval`).
"""
from __future__ import annotations

import math
from typing import Sequence

import numpy as np

from spinexr.errors import ConfigError
from spinexr.evaluate.classification import auroc
from spinexr.types import GATE_OUTCOMES

__all__ = ["GATE_LABELS", "Z95", "cost_summary", "gate_confusion", "gate_metrics", "per_view",
           "wilson_interval"]

#: The two labels of a gate dataset, in the column order of :func:`gate_confusion`.
GATE_LABELS: tuple[str, ...] = ("spine", "other")
#: The standard normal quantile of a two-sided 95 % interval.
Z95 = 1.959963984540054


def wilson_interval(k: int, n: int, z: float = Z95) -> tuple[float, float]:
    """Wilson score interval of the proportion ``k / n`` (Wilson 1927; Newcombe 1998, method 3).

    Unlike the normal approximation it stays inside [0, 1] and is not empty at 0 or n.
    Example: 8 of 10 at 95 % gives (0.4902, 0.9433).

    Returns:
        ``(lo, hi)``; ``(nan, nan)`` when ``n`` is 0.
    """
    if int(k) != k or int(n) != n or not 0 <= k <= n:
        raise ConfigError(f"need whole numbers 0 <= k <= n, got k={k}, n={n}", "k, n")
    if n == 0:
        return float("nan"), float("nan")
    p, z2 = k / n, z * z
    centre = (p + z2 / (2 * n)) / (1 + z2 / n)
    half = z / (1 + z2 / n) * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n))
    return max(0.0, centre - half), min(1.0, centre + half)


def _check(outcomes, is_spine) -> tuple[np.ndarray, np.ndarray]:
    """(outcomes as an (N,) str array, labels as an (N,) bool array), validated."""
    o = np.asarray(outcomes, dtype=object).ravel()
    y = np.asarray(is_spine).ravel()
    if o.shape != y.shape:
        raise ConfigError(f"{o.size} outcomes but {y.size} labels", "outcomes")
    unknown = sorted({str(v) for v in o} - set(GATE_OUTCOMES))
    if unknown:
        raise ConfigError(f"outcomes {unknown} are not among {list(GATE_OUTCOMES)}", "outcomes")
    if y.dtype != bool and not np.isin(y, (0, 1)).all():
        raise ConfigError("labels must be booleans (True: spine) or 0/1", "is_spine")
    return o.astype(str), y.astype(bool)


def gate_confusion(outcomes, is_spine) -> dict[str, dict[str, int]]:
    """The 3 x 2 table ``{outcome: {"spine": n, "other": n}}``, outcomes in
    :data:`~spinexr.types.GATE_OUTCOMES` order.

    Args:
        outcomes: (N,) ``"accepted"``, ``"uncertain"`` or ``"refused"``.
        is_spine: (N,) bool, True for a spine radiograph.
    """
    o, y = _check(outcomes, is_spine)
    return {out: {"spine": int(np.sum((o == out) & y)), "other": int(np.sum((o == out) & ~y))}
            for out in GATE_OUTCOMES}


def _proportion(k: int, n: int) -> tuple[float, list[float]]:
    return (k / n if n else float("nan")), list(wilson_interval(k, n))


def per_view(views: Sequence[str], outcomes, is_spine) -> dict[str, dict[str, int]]:
    """Counts per view (the manifest's ``view`` text, or the subfolder), sorted by view.

    Returns:
        ``{view: {"n", "n_spine", "n_other", "accepted", "uncertain", "refused",
        "let_through"}}``; ``let_through`` is accepted plus uncertain.
    """
    o, y = _check(outcomes, is_spine)
    v = np.asarray([str(x) for x in views], dtype=object)
    if v.shape != o.shape:
        raise ConfigError(f"{v.size} views but {o.size} outcomes", "views")
    table = {}
    for view in sorted(set(v.tolist())):
        sel = v == view
        counts = {out: int(np.sum(o[sel] == out)) for out in GATE_OUTCOMES}
        table[view] = {"n": int(sel.sum()), "n_spine": int(y[sel].sum()),
                       "n_other": int((~y[sel]).sum()), **counts,
                       "let_through": counts["accepted"] + counts["uncertain"]}
    return table


def gate_metrics(outcomes, is_spine, *, near=None, views: Sequence[str] | None = None,
                 p_spine=None) -> dict:
    """Headline figures of the gate on a labelled set.

    Args:
        outcomes: (N,) ``"accepted"``, ``"uncertain"`` or ``"refused"``.
        is_spine: (N,) bool, True for a spine radiograph.
        near: (N,) bool, True for a near case (a non-spine image that shows some spine, e.g. an
            AP pelvis); only non-spine images count as near cases. Default none.
        views: (N,) view names for :func:`per_view`; default no breakdown (``{}``).
        p_spine: (N,) float, the gate's P(spine), ``nan`` where it gave none. AUROC over the
            finite ones; ``nan`` when they hold one class only.

    Returns:
        Flat keys: ``n``, ``n_spine``, ``n_other``, ``n_near``, ``confusion``,
        ``sensitivity`` (spine let through: accepted or uncertain) and ``sensitivity_ci``,
        ``sensitivity_strict`` (accepted only) and ``sensitivity_strict_ci``, ``specificity``
        (other refused) and ``specificity_ci``, ``near_refused_or_uncertain`` and its ``_ci``,
        ``per_view``, ``auroc_p_spine`` and ``auroc_p_spine_n`` (images it was computed on).
        Undefined proportions (no image of that kind) are ``nan`` with a ``[nan, nan]`` CI.
    """
    o, y = _check(outcomes, is_spine)
    near_b = np.zeros_like(y) if near is None else np.asarray(near, dtype=bool).ravel()
    if near_b.shape != y.shape:
        raise ConfigError(f"{near_b.size} near-case flags but {y.size} labels", "near")
    near_b = near_b & ~y
    through = o != "refused"
    out = {"n": int(o.size), "n_spine": int(y.sum()), "n_other": int((~y).sum()),
           "n_near": int(near_b.sum()), "confusion": gate_confusion(o, y)}
    for key, k, n in (("sensitivity", through[y].sum(), y.sum()),
                      ("sensitivity_strict", (o[y] == "accepted").sum(), y.sum()),
                      ("specificity", (~through[~y]).sum(), (~y).sum()),
                      ("near_refused_or_uncertain", (o[near_b] != "accepted").sum(),
                       near_b.sum())):
        out[key], out[f"{key}_ci"] = _proportion(int(k), int(n))
    out["per_view"] = per_view(views, o, y) if views is not None else {}
    out["auroc_p_spine"], out["auroc_p_spine_n"] = _auroc(y, p_spine)
    return out


def _auroc(y: np.ndarray, p_spine) -> tuple[float, int]:
    if p_spine is None:
        return float("nan"), 0
    p = np.asarray([np.nan if v is None else v for v in np.ravel(p_spine)], dtype=float)
    if p.shape != y.shape:
        raise ConfigError(f"{p.size} p_spine values but {y.size} labels", "p_spine")
    keep = np.isfinite(p)
    if not keep.any() or y[keep].min() == y[keep].max():
        return float("nan"), int(keep.sum())
    return auroc(y[keep].astype(int), p[keep]), int(keep.sum())


def _spread(seconds: np.ndarray) -> dict[str, float]:
    s = seconds[np.isfinite(seconds)]
    if not s.size:
        return {"mean": float("nan"), "p50": float("nan"), "p95": float("nan"), "n": 0}
    return {"mean": float(s.mean()), "p50": float(np.percentile(s, 50)),
            "p95": float(np.percentile(s, 95)), "n": int(s.size)}


def cost_summary(read_s, gate_s, wall_s: float) -> dict:
    """Cost per image from per-image seconds.

    Args:
        read_s: (N,) seconds to read and decode each file.
        gate_s: (N,) seconds of the gate per image (a batch's time shared equally by its
            images), ``nan`` for files that were never gated (unreadable).
        wall_s: seconds for the whole run of N images.

    Returns:
        ``{"read_s": {mean, p50, p95, n}, "gate_s": {...}, "total_s": wall_s,
        "images_per_s": N / wall_s}``; percentiles interpolate linearly (numpy's default).
    """
    r = np.asarray(read_s, dtype=float).ravel()
    g = np.asarray(gate_s, dtype=float).ravel()
    if r.shape != g.shape:
        raise ConfigError(f"{r.size} read times but {g.size} gate times", "gate_s")
    if not wall_s >= 0:
        raise ConfigError(f"wall_s must be >= 0, got {wall_s}", "wall_s")
    return {"read_s": _spread(r), "gate_s": _spread(g), "total_s": float(wall_s),
            "images_per_s": r.size / wall_s if wall_s > 0 else float("nan")}
