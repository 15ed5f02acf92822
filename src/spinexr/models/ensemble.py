"""Weighted soft voting of binary (triage) classifiers, and the numbers it is fitted with.

Pure functions, numpy in and out, deterministic:

* :func:`weighted_vote`; AUROC of many weightings at once by ranks (single AUROCs and
  threshold metrics live in :mod:`spinexr.evaluate.classification`);
* :func:`fit_weights`: ensemble weights on the simplex that maximise AUROC, by exhaustive grid;
* :func:`youden_threshold`, :func:`threshold_for_sensitivity`: operating points;
* :func:`fit_temperature`: temperature scaling by L-BFGS on the negative log-likelihood.

Every one of them must be given **out-of-fold validation** predictions, never test-set ones:
the training recipe (:mod:`spinexr.train.classify`) fits them before it has read the test split.
:class:`TriageEnsemble` applies the fitted numbers at inference.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from itertools import combinations
from typing import Any, Mapping, Sequence

import numpy as np

from spinexr.errors import ConfigError
from spinexr.types import TriageResult

#: Grids larger than this are coarsened (see :func:`fit_weights`).
MAX_GRID_POINTS = 20_000
_STEPS = (0.02, 0.05, 0.1, 0.2, 0.25, 0.5, 1.0)


def _binary(y: Sequence[int] | np.ndarray, n: int, what: str = "y") -> np.ndarray:
    y = np.asarray(y)
    if y.shape != (n,):
        raise ConfigError(f"{what} has shape {y.shape}, expected ({n},)", what)
    if not np.isin(y, (0, 1)).all():
        raise ConfigError(f"{what} must hold 0/1 labels, found {np.unique(y)[:5]}", what)
    return y.astype(bool)


def _ranks(scores: np.ndarray) -> np.ndarray:
    """Average ranks (1-based) along the last axis, ties sharing their mean rank."""
    from scipy.stats import rankdata

    return rankdata(scores, axis=-1, method="average")


def _auroc_rows(scores: np.ndarray, pos: np.ndarray) -> np.ndarray:
    n_pos, n_neg = int(pos.sum()), int((~pos).sum())
    if n_pos == 0 or n_neg == 0:
        return np.full(scores.shape[0], np.nan)
    r = _ranks(scores)[:, pos].sum(axis=1)
    return (r - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg)


def weighted_vote(probs: np.ndarray, weights: Sequence[float] | np.ndarray) -> np.ndarray:
    """Soft vote ``sum_m w_m p_m`` of per-model probabilities (M, N); returns (N,)."""
    probs = np.asarray(probs, dtype=np.float64)
    w = np.asarray(weights, dtype=np.float64)
    if probs.ndim != 2 or w.shape != (probs.shape[0],):
        raise ConfigError(f"probabilities {probs.shape} and weights {w.shape} do not fit: need "
                          "(M, N) and (M,)", "weights")
    return w @ probs


def simplex_grid(m: int, step: float) -> np.ndarray:
    """Every weight vector of length ``m`` with entries in multiples of ``step`` summing to 1.

    Returns (G, m) float64 in lexicographically decreasing order of the first weights.
    """
    n = int(round(1.0 / step))
    if m < 1 or not math.isclose(n * step, 1.0):
        raise ConfigError(f"step={step}: 1/step must be an integer (m={m})", "step")
    rows = []
    for bars in combinations(range(n + m - 1), m - 1):  # stars and bars
        edges = (-1, *bars, n + m - 1)
        rows.append([edges[i + 1] - edges[i] - 1 for i in range(m)])
    return np.asarray(rows[::-1], dtype=np.float64) / n


def grid_step(m: int, step: float = 0.02) -> float:
    """The finest step >= ``step`` whose simplex grid has at most :data:`MAX_GRID_POINTS`."""
    for s in (x for x in _STEPS if x >= step - 1e-12):
        if math.comb(int(round(1 / s)) + m - 1, m - 1) <= MAX_GRID_POINTS:
            return s
    return 1.0


def fit_weights(oof_probs: np.ndarray, y: np.ndarray, *, step: float = 0.02) -> np.ndarray:
    """Weights on the simplex maximising the AUROC of the weighted vote; deterministic.

    Exhaustive search over the grid of multiples of ``step`` (0.02: 1,326 points for 3 models;
    coarsened for more models, see :func:`grid_step`). Among weightings within 1e-12 of the
    best AUROC the one closest to equal weights wins, then the first in grid order.

    Args:
        oof_probs: (M, N) out-of-fold probabilities of M models on the same N samples.
        y: (N,) 0/1 labels.

    Returns:
        (M,) float64 weights, >= 0, summing to 1.
    """
    probs = np.asarray(oof_probs, dtype=np.float64)
    if probs.ndim != 2 or probs.shape[0] < 1:
        raise ConfigError(f"oof_probs has shape {probs.shape}, expected (M, N)", "oof_probs")
    pos = _binary(y, probs.shape[1])
    m = probs.shape[0]
    if m == 1:
        return np.ones(1)
    grid = simplex_grid(m, grid_step(m, step))
    scores = np.concatenate([_auroc_rows(grid[i:i + 256] @ probs, pos)
                             for i in range(0, len(grid), 256)])
    if np.isnan(scores).all():
        raise ConfigError("AUROC is undefined: y holds one class only", "y")
    best = np.nanmax(scores)
    near = np.flatnonzero(scores >= best - 1e-12)
    spread = ((grid[near] - 1.0 / m) ** 2).sum(axis=1)
    return grid[near[int(np.argmin(spread))]].copy()


def youden_threshold(p: np.ndarray, y: np.ndarray) -> float:
    """The score ``t`` maximising Youden's J = sensitivity + specificity - 1 of ``p >= t``.

    Candidates are the observed scores; ties go to the largest ``t`` (the most specific).
    """
    p = np.asarray(p, dtype=np.float64)
    pos = _binary(y, len(p))
    if pos.all() or not pos.any():
        raise ConfigError("Youden's J needs both classes in y", "y")
    t = np.unique(p)[::-1]  # descending
    tpr = (p[pos][None, :] >= t[:, None]).mean(axis=1)
    fpr = (p[~pos][None, :] >= t[:, None]).mean(axis=1)
    j = tpr - fpr
    return float(t[int(np.flatnonzero(j >= j.max() - 1e-12)[0])])  # ties within rounding


def threshold_for_sensitivity(p: np.ndarray, y: np.ndarray, target: float = 0.95) -> float:
    """The largest score ``t`` with sensitivity of ``p >= t`` at least ``target``.

    That is the k-th highest positive score, ``k = ceil(target * n_positives)``.
    """
    p = np.asarray(p, dtype=np.float64)
    pos = _binary(y, len(p))
    if not 0.0 < target <= 1.0:
        raise ConfigError(f"target={target}: a sensitivity in (0, 1]", "target")
    scores = np.sort(p[pos])[::-1]
    if scores.size == 0:
        raise ConfigError("a sensitivity target needs positives in y", "y")
    k = max(1, math.ceil(target * scores.size - 1e-9))
    return float(scores[k - 1])


def _nll(z, y, head: str):
    import torch.nn.functional as F

    if head == "binary":
        return F.binary_cross_entropy_with_logits(z.reshape(-1), y.to(z.dtype))
    if head == "softmax":
        return F.cross_entropy(z, y.long())
    from spinexr.train.losses import coral_loss

    return coral_loss(z, y)


def fit_temperature(logits: np.ndarray, y: np.ndarray, head: str = "binary") -> float:
    """The temperature T > 0 minimising the NLL of ``logits / T`` (Guo et al. 2017).

    Args:
        logits: (N,) or (N, 1) for ``binary``, (N, C) for ``softmax``, (N, C-1) for ``ordinal``.
        y: (N,) labels (0/1 or class indices).
        head: which likelihood; the ordinal head uses the CORAL loss.

    Returns:
        T in [0.05, 20] (L-BFGS on log T, float64; deterministic).
    """
    import torch

    z = torch.as_tensor(np.asarray(logits, dtype=np.float64))
    target = torch.as_tensor(np.asarray(y))
    if z.shape[0] != target.shape[0]:
        raise ConfigError(f"{z.shape[0]} logits but {target.shape[0]} labels", "y")
    log_t = torch.zeros(1, dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS([log_t], lr=0.5, max_iter=100, line_search_fn="strong_wolfe",
                            tolerance_grad=1e-10, tolerance_change=1e-12)

    def closure():
        opt.zero_grad()
        loss = _nll(z / log_t.exp(), target, head)
        loss.backward()
        return loss

    opt.step(closure)
    t = float(log_t.detach().exp())
    return float(np.clip(t if math.isfinite(t) else 1.0, 0.05, 20.0))


def positive_probability(logits: np.ndarray, head: str, temperature: float = 1.0) -> np.ndarray:
    """P(abnormal) (N,) from a binary head (1 logit) or a 2-class softmax head."""
    from spinexr.models.classifier import probabilities

    probs = probabilities(logits, head, temperature)
    if probs.shape[1] != 2:
        raise ConfigError(f"a triage member needs 2 classes, its {head} head has "
                          f"{probs.shape[1]}", "members")
    return probs[:, 1]


@dataclass(frozen=True)
class TriageScores:
    """Triage predictions of a batch of N images.

    Attributes:
        probability: (N,) fused P(abnormal).
        per_model: member name -> (N,) temperature-scaled P(abnormal).
        decisions: operating point -> (N,) bool, ``probability >= threshold``.
        windows: for a window triage, each image's vertebra windows; else ``None``.
    """

    probability: np.ndarray
    per_model: Mapping[str, np.ndarray]
    decisions: Mapping[str, np.ndarray]
    windows: tuple[tuple[Any, ...], ...] | None = None

    def result(self, j: int, operating_point: str, threshold: float) -> TriageResult:
        """Image ``j``'s :class:`~spinexr.types.TriageResult` at ``operating_point``."""
        return TriageResult(
            probability=float(self.probability[j]),
            abnormal=bool(self.decisions[operating_point][j]), operating_point=operating_point,
            threshold=float(threshold),
            per_model={k: float(v[j]) for k, v in self.per_model.items()},
            decisions={k: bool(v[j]) for k, v in self.decisions.items()})

    @staticmethod
    def concatenate(parts: Sequence[TriageScores]) -> TriageScores:
        """The scores of several batches as one."""
        first = parts[0]
        return TriageScores(np.concatenate([p.probability for p in parts]),
                            {k: np.concatenate([p.per_model[k] for p in parts])
                             for k in first.per_model},
                            {k: np.concatenate([p.decisions[k] for p in parts])
                             for k in first.decisions})


class TriageEnsemble:
    """Temperature-scaled members, weighted soft voting and named operating points.

    Attributes:
        members: name -> :class:`~spinexr.models.classifier.Classifier` (binary or 2-class).
        weights: name -> weight (>= 0, summing to 1).
        temperatures: name -> temperature dividing that member's logits (default 1).
        operating_points: name -> threshold on the ensemble probability, e.g.
            ``{"youden": 0.41, "high_sensitivity": 0.18}``; decision = ``probability >= t``.
    """

    def __init__(self, members: Mapping[str, Any], weights: Mapping[str, float],
                 temperatures: Mapping[str, float] | None = None,
                 operating_points: Mapping[str, float] | None = None) -> None:
        if not members or set(weights) != set(members):
            raise ConfigError(f"weights name {sorted(weights)}, members are {sorted(members)}",
                              "ensemble.weights")
        w = np.array([float(weights[k]) for k in members])
        if (w < 0).any() or not math.isclose(w.sum(), 1.0, abs_tol=1e-6):
            raise ConfigError(f"weights {dict(weights)} must be >= 0 and sum to 1",
                              "ensemble.weights")
        temps = {k: float((temperatures or {}).get(k, 1.0)) for k in members}
        if any(t <= 0 for t in temps.values()):
            raise ConfigError(f"temperatures {temps} must be > 0", "ensemble.temperatures")
        self.members = dict(members)
        self.weights = {k: float(weights[k]) for k in members}
        self.temperatures = temps
        self.operating_points = {k: float(v) for k, v in (operating_points or {}).items()}

    def predict(self, images: Sequence[np.ndarray]) -> TriageScores:
        """Run every member on (H, W) float images in [0, 1]; per-model probabilities are
        temperature-scaled."""
        from spinexr.models.classifier import shared_logits   # torch: imported when used

        logits = shared_logits(self.members, images)   # one resize per image and contract
        per_model = {name: positive_probability(logits[name], clf.head,
                                                self.temperatures[name])
                     for name, clf in self.members.items()}
        return self.combine(per_model)

    def combine(self, per_model: Mapping[str, np.ndarray]) -> TriageScores:
        """The vote and decisions from already computed per-model probabilities."""
        names = list(self.members)
        prob = weighted_vote(np.stack([per_model[k] for k in names]),
                             [self.weights[k] for k in names])
        return TriageScores(prob, dict(per_model),
                            {op: prob >= t for op, t in self.operating_points.items()})

    def spec(self) -> dict[str, Any]:
        """The manifest's ``ensemble`` entry."""
        return {"members": list(self.members), "weights": self.weights,
                "temperatures": self.temperatures, "operating_points": self.operating_points}
