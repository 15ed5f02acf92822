"""kfold_splits / train_val_split: determinism, group disjointness, stratification, errors."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from spinexr.data import default_stratum, kfold_splits, train_val_split
from spinexr.errors import ConfigError
from spinexr.types import Box, Sample


def _cohort(n_groups: int = 60, per_group: int = 2, abnormal_every: int = 3) -> list[Sample]:
    """``n_groups`` patients with ``per_group`` images; every ``abnormal_every``-th is abnormal."""
    out = []
    for g in range(n_groups):
        label = int(g % abnormal_every == 0)
        for i in range(per_group):
            out.append(Sample(f"g{g}_{i}", Path("x"), f"patient{g}", label=label))
    return out


def _groups(samples, idx):
    return {samples[i].group for i in idx}


def test_folds_are_grouped_and_cover_every_sample_once():
    samples = _cohort()
    folds = kfold_splits(samples, k=5, seed=3)
    assert len(folds) == 5
    val_all = np.concatenate([va for _, va in folds])
    assert sorted(val_all.tolist()) == list(range(len(samples)))
    for train, val in folds:
        assert train.dtype == np.int64 and np.all(np.diff(val) > 0)
        assert not _groups(samples, train) & _groups(samples, val)
        assert len(train) + len(val) == len(samples)
    val_groups = [_groups(samples, va) for _, va in folds]
    assert sum(len(g) for g in val_groups) == len(set().union(*val_groups)) == 60


def test_same_seed_same_folds_other_seed_other_folds():
    samples = _cohort()
    a, b = kfold_splits(samples, 4, seed=7), kfold_splits(samples, 4, seed=7)
    assert all(np.array_equal(x[1], y[1]) for x, y in zip(a, b))
    c = kfold_splits(samples, 4, seed=8)
    assert any(not np.array_equal(x[1], y[1]) for x, y in zip(a, c))


def test_label_stratification_is_balanced():
    samples = _cohort(n_groups=100, per_group=1, abnormal_every=4)  # 25 % abnormal
    for _, val in kfold_splits(samples, 5, seed=0):
        rate = np.mean([samples[i].label for i in val])
        assert abs(rate - 0.25) <= 0.05


def test_rare_lesion_spreads_over_folds():
    samples = []
    for g in range(50):
        boxes = [Box(0, 0, 1, 1, "Osteophytes")]
        if g < 10:  # 10 patients with the rare class (and the common one too)
            boxes.append(Box(0, 0, 1, 1, "Vertebral collapse"))
        samples.append(Sample(f"s{g}", Path("x"), f"p{g}", boxes=tuple(boxes), label=1))
    assert default_stratum(samples)[:2] == ["box:Vertebral collapse"] * 2
    assert default_stratum(samples)[10] == "box:Osteophytes"
    for _, val in kfold_splits(samples, 5, seed=1):
        assert sum(1 for i in val if int(samples[i].image_id[1:]) < 10) == 2


def test_default_stratum_without_boxes_uses_the_label():
    samples = [Sample("a", Path("x"), "g", label=0), Sample("b", Path("x"), "h", label=None)]
    assert default_stratum(samples) == ["label:0", "label:None"]


def test_custom_stratify():
    samples = _cohort(n_groups=40, per_group=1)
    folds = kfold_splits(samples, 4, stratify=lambda s: int(s.group[7:]) % 2)
    for _, val in folds:
        assert sum(int(samples[i].group[7:]) % 2 for i in val) == 5


def test_too_many_folds_and_bad_k():
    samples = _cohort(n_groups=3, per_group=4)
    with pytest.raises(ConfigError, match="k=4 folds needs at least 4 groups .* have 3"):
        kfold_splits(samples, 4)
    with pytest.raises(ConfigError, match="integer >= 2"):
        kfold_splits(samples, 1)
    assert len(kfold_splits(samples, 3)) == 3


def test_train_val_split_grouped_stratified_deterministic():
    samples = _cohort(n_groups=100, per_group=3, abnormal_every=5)
    train, val = train_val_split(samples, 0.2, seed=5)
    assert not _groups(samples, train) & _groups(samples, val)
    assert sorted(np.concatenate([train, val]).tolist()) == list(range(300))
    assert abs(len(val) / 300 - 0.2) <= 0.02
    assert abs(np.mean([samples[i].label for i in val]) - 0.2) <= 0.03
    again = train_val_split(samples, 0.2, seed=5)
    assert np.array_equal(again[1], val)
    assert not np.array_equal(train_val_split(samples, 0.2, seed=6)[1], val)


def test_train_val_split_edges():
    two = _cohort(n_groups=2, per_group=1)
    train, val = train_val_split(two, 0.01)
    assert len(train) == 1 and len(val) == 1
    train, val = train_val_split(two, 0.99)
    assert len(train) == 1 and len(val) == 1
    with pytest.raises(ConfigError, match="val_fraction"):
        train_val_split(two, 1.0)
    with pytest.raises(ConfigError, match="at least 2 groups"):
        train_val_split(_cohort(n_groups=1), 0.2)
