"""Grouped, stratified splits: a group (patient or study) never straddles train and validation.

Both functions are deterministic for a given ``seed`` and sample order, and return sorted
``int64`` index arrays into the ``samples`` sequence.
"""
from __future__ import annotations

import warnings
from collections import Counter
from typing import Callable, Hashable, Sequence

import numpy as np

from spinexr.errors import ConfigError
from spinexr.types import Sample


def default_stratum(samples: Sequence[Sample]) -> list[str]:
    """The default stratification key of each sample.

    A sample with boxes is keyed by its rarest box class (rarest = in the fewest images of
    ``samples``), so rare lesions spread over the folds; a sample without boxes by its
    image-level ``label``.
    """
    freq = Counter(c for s in samples for c in {b.label for b in s.boxes})

    def key(s: Sample) -> str:
        present = {b.label for b in s.boxes}
        if present:
            return "box:" + min(present, key=lambda c: (freq[c], c))
        return f"label:{s.label}"

    return [key(s) for s in samples]


def _strata(samples: Sequence[Sample],
            stratify: Callable[[Sample], Hashable] | None) -> np.ndarray:
    keys = default_stratum(samples) if stratify is None else [stratify(s) for s in samples]
    codes: dict[Hashable, int] = {}
    # codes in first-seen order: independent of the keys' types (no sorting of mixed types)
    return np.array([codes.setdefault(k, len(codes)) for k in keys], dtype=np.int64)


def _groups(samples: Sequence[Sample], need: int, what: str) -> np.ndarray:
    groups = np.array([str(s.group) for s in samples], dtype=object)
    n_groups = len(set(groups.tolist()))
    if n_groups < need:
        raise ConfigError(f"{what} needs at least {need} groups (patients/studies) but the "
                          f"{len(samples)} samples have {n_groups}; use fewer folds or more data",
                          "samples")
    return groups


def kfold_splits(samples: Sequence[Sample], k: int = 5, *, seed: int = 0,
                 stratify: Callable[[Sample], Hashable] | None = None,
                 ) -> list[tuple[np.ndarray, np.ndarray]]:
    """Stratified k-fold grouped by ``sample.group`` (sklearn ``StratifiedGroupKFold``).

    Args:
        samples: the samples to split.
        k: number of folds, at least 2 and at most the number of groups.
        seed: shuffling seed; the same seed and samples give the same folds.
        stratify: the stratification key of a sample; default :func:`default_stratum`.

    Returns:
        ``k`` pairs ``(train_idx, val_idx)``; every group is in exactly one ``val_idx``.

    Raises:
        ConfigError: ``k`` < 2, or more folds than groups.
    """
    if isinstance(k, bool) or not isinstance(k, int) or k < 2:
        raise ConfigError(f"k={k!r} folds: need an integer >= 2", "k")
    groups = _groups(samples, k, f"k={k} folds")
    y = _strata(samples, stratify)
    from sklearn.model_selection import StratifiedGroupKFold

    cv = StratifiedGroupKFold(n_splits=k, shuffle=True, random_state=seed)
    with warnings.catch_warnings():
        # a stratum smaller than k cannot be in every fold; that is expected for rare lesions
        warnings.filterwarnings("ignore", message="The least populated class",
                                category=UserWarning)
        folds = [(np.sort(tr).astype(np.int64), np.sort(va).astype(np.int64))
                 for tr, va in cv.split(np.zeros((len(y), 1)), y, groups)]
    empty = [i for i, (_, va) in enumerate(folds) if len(va) == 0]
    if empty:
        raise ConfigError(f"folds {empty} got no validation samples; use fewer folds", "k")
    return folds


def train_val_split(samples: Sequence[Sample], val_fraction: float = 0.2, seed: int = 0,
                    stratify: Callable[[Sample], Hashable] | None = None,
                    ) -> tuple[np.ndarray, np.ndarray]:
    """One grouped, stratified split with about ``val_fraction`` of the samples in validation.

    Groups are visited in a seeded random order (largest first) and each goes to validation
    when that brings the per-stratum validation counts closer to ``val_fraction`` of the
    totals. Both sides get at least one group.

    Returns:
        ``(train_idx, val_idx)``.

    Raises:
        ConfigError: ``val_fraction`` outside (0, 1) or fewer than 2 groups.
    """
    if not 0.0 < float(val_fraction) < 1.0:
        raise ConfigError(f"val_fraction={val_fraction!r}: need a number in (0, 1)",
                          "val_fraction")
    groups = _groups(samples, 2, "a train/validation split")
    y = _strata(samples, stratify)
    names, ginv = np.unique(groups.astype(str), return_inverse=True)
    counts = np.zeros((len(names), int(y.max()) + 1))
    np.add.at(counts, (ginv, y), 1.0)
    target = counts.sum(axis=0) * float(val_fraction)
    order = np.random.default_rng(seed).permutation(len(names))
    order = order[np.argsort(-counts[order].sum(axis=1), kind="stable")]
    val = np.zeros_like(target)
    chosen: list[int] = []
    for g in order:
        after = val + counts[g]
        if np.sum((after - target) ** 2) < np.sum((val - target) ** 2):
            val = after
            chosen.append(int(g))
    if not chosen:
        chosen = [int(order[-1])]
    if len(chosen) == len(names):
        chosen.pop()
    in_val = np.isin(ginv, chosen)
    return np.flatnonzero(~in_val).astype(np.int64), np.flatnonzero(in_val).astype(np.int64)
