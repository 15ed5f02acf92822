"""Stenosis metrics on hand-made region grades: matching by region name (and by IoU where a
name repeats), grade agreement with hand-derived QWK, missed and extra regions, the slice
bootstrap."""
from __future__ import annotations

import math
import warnings

import numpy as np
import pytest

from spinexr.errors import ConfigError
from spinexr.evaluate import StenosisTruth, quadratic_kappa, stenosis_metrics
from spinexr.evaluate.stenosis import match_regions
from spinexr.labels import STENOSIS_GRADES, STENOSIS_REGIONS
from spinexr.types import Box, Grade

CC, LLR, RLR, LNF, RNF = STENOSIS_REGIONS


def _box(name: str, x: float = 0.0, y: float = 0.0, side: float = 10.0) -> Box:
    return Box(x, y, x + side, y + side, name)


def _g(name: str, grade: int, x: float = 0.0) -> Grade:
    """A region grade; regions of different names sit apart, same-name ones at ``x``."""
    offset = 20.0 * STENOSIS_REGIONS.index(name) + x
    return Grade("stenosis", STENOSIS_GRADES[grade], grade, box=_box(name, offset))


def _slice(*grades: tuple[str, int]) -> list[Grade]:
    return [_g(name, grade) for name, grade in grades]


FOUR = (CC, LLR, RLR, LNF)


def test_perfect_grades_give_qwk_one():
    truth = [_slice((CC, 0), (LNF, 2)), _slice((CC, 3), (RLR, 1))]
    m = stenosis_metrics(truth, StenosisTruth(truth))
    assert (m["n_slices"], m["n_truth"], m["n_matched"], m["n_missed"], m["n_extra"]) == \
        (2, 4, 4, 0, 0)
    assert m["qwk"] == 1.0 == m["qwk_missed_as_normal"]
    assert (m["accuracy"], m["balanced_accuracy"], m["mae"], m["mean_iou"]) == (1, 1, 0, 1)
    assert m["confusion"] == [[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]]
    assert list(m["per_region"]) == [CC, RLR, LNF]                 # STENOSIS_REGIONS order
    assert m["per_region"][CC] == {"n_truth": 2, "n_matched": 2, "qwk": 1.0,
                                   "accuracy": 1.0, "mae": 0.0}
    assert m["labels"] == list(STENOSIS_GRADES) and m["notes"] == []


def test_one_grade_off():
    """Truth 0, 1, 2, 3; predicted 0, 1, 2, 2. Quadratic weights (i - j)^2: the observed
    disagreement is 1 (one cell one grade off). Expected counts E_ij = row_i * col_j / 4 with
    rows (1, 1, 1, 1) and predicted columns (1, 1, 2, 0): sum_i (i - j)^2 is 14, 6, 6 for
    j = 0, 1, 2, so the chance disagreement is (14 + 6 + 2 * 6) / 4 = 8 and QWK = 1 - 1/8."""
    truth = _slice(*zip(FOUR, (0, 1, 2, 3)))
    pred = _slice(*zip(FOUR, (0, 1, 2, 2)))
    m = stenosis_metrics([pred], StenosisTruth([truth]))
    assert m["qwk"] == pytest.approx(0.875, abs=1e-12)
    assert (m["accuracy"], m["mae"], m["balanced_accuracy"]) == (0.75, 0.25, 0.75)
    assert m["confusion"][3] == [0, 0, 1, 0] and m["n_missed"] == 0
    # one pair per region: agreeing, no disagreement is expected by chance (undefined);
    # disagreeing, exactly the chance disagreement (0)
    assert math.isnan(m["per_region"][LLR]["qwk"]) and m["per_region"][LNF]["qwk"] == 0.0


def test_a_missed_region_counts_apart_and_as_normal():
    """The severe foramen is missed: the three matched regions agree (QWK 1). Read as normal,
    predicted 0, 1, 2, 0 for truth 0, 1, 2, 3: disagreement 9; columns (2, 1, 1, 0) give the
    chance disagreement (2 * 14 + 6 + 6) / 4 = 10, so QWK = 1 - 9/10."""
    truth = _slice(*zip(FOUR, (0, 1, 2, 3)))
    pred = _slice(*zip(FOUR[:3], (0, 1, 2)))
    m = stenosis_metrics([pred], StenosisTruth([truth]))
    assert (m["n_truth"], m["n_matched"], m["n_missed"], m["n_extra"]) == (4, 3, 1, 0)
    assert m["qwk"] == 1.0
    assert m["qwk_missed_as_normal"] == pytest.approx(0.1, abs=1e-12)
    lnf = m["per_region"][LNF]
    assert (lnf["n_truth"], lnf["n_matched"]) == (1, 0) and math.isnan(lnf["accuracy"])


def test_a_refused_slice_misses_all_its_regions():
    truth = _slice((CC, 2), (RNF, 1))
    m = stenosis_metrics([[]], StenosisTruth([truth]))
    assert (m["n_matched"], m["n_missed"], m["n_predicted"]) == (0, 2, 0)
    assert math.isnan(m["qwk"]) and m["confusion"] is None
    assert "no truth region was matched" in m["notes"][0]
    # read as normal: predicted (0, 0) against (2, 1): QWK 0 (no agreement beyond chance)
    assert m["qwk_missed_as_normal"] == 0.0


def test_an_extra_prediction_is_counted_not_graded():
    truth = _slice((CC, 1))
    pred = _slice((CC, 1), (LNF, 3))
    m = stenosis_metrics([pred], StenosisTruth([truth]))
    assert (m["n_truth"], m["n_matched"], m["n_missed"], m["n_extra"], m["n_predicted"]) == \
        (1, 1, 0, 1, 2)
    assert m["accuracy"] == 1.0 and list(m["per_region"]) == [CC]


def test_two_slices_pool_their_regions():
    """Truth (0, 3) and (2); predicted (0, 3) and (1). Rows (1, 0, 1, 1), columns (1, 1, 0, 1),
    E_ij = r_i c_j / 3: sum_j c_j (i - j)^2 is 10, 6, 13 for i = 0, 2, 3, so the chance
    disagreement is 29/3; observed 1: QWK = 1 - 3/29."""
    truth = [_slice((CC, 0), (LLR, 3)), _slice((CC, 2))]
    pred = [_slice((CC, 0), (LLR, 3)), _slice((CC, 1))]
    m = stenosis_metrics(pred, StenosisTruth(truth))
    assert m["qwk"] == pytest.approx(26 / 29, abs=1e-12)
    assert (m["n_slices"], m["n_matched"], m["mae"]) == (2, 3, pytest.approx(1 / 3))
    assert m["per_region"][CC]["n_truth"] == 2


def test_bootstrap_resamples_whole_studies():
    truth = [_slice((CC, 0), (LLR, 3)), _slice((CC, 2))]
    pred = [_slice((CC, 0), (LLR, 3)), _slice((CC, 1))]
    none = stenosis_metrics(pred, StenosisTruth(truth))
    assert none["n_boot"] == 0 and all(math.isnan(v) for v in none["qwk_ci"])
    # one study: every replicate holds both slices, so the interval is the point estimate
    one = stenosis_metrics(pred, StenosisTruth(truth, groups=["st1", "st1"]), n_boot=50)
    assert one["n_boot"] == 50
    np.testing.assert_allclose(one["qwk_ci"], [26 / 29, 26 / 29], atol=1e-12)
    two = stenosis_metrics(pred, StenosisTruth(truth, groups=["st1", "st2"]), n_boot=200,
                           seed=1)
    # two studies: a replicate holds slice 1 twice (QWK 1, p = 1/4), slice 2 twice (truth 2,
    # predicted 1 twice: QWK 0, p = 1/4) or both (26/29): the 2.5th and 97.5th percentiles
    # are 0 and 1
    assert two["n_boot"] == 200 and two["qwk_ci"] == [0.0, 1.0]


def test_a_repeated_region_name_is_matched_greedily_by_iou():
    a, b = _box("x", 0), _box("x", 20)
    near_a = Box(1, 0, 11, 10, "x")                       # IoU with a: 90 / 110
    pairs, extra = match_regions([near_a, _box("x", 50), b], [a, b])
    assert [(i, j) for i, j, _ in pairs] == [(0, 0), (1, 2)] and extra == [1]
    assert pairs[0][2] == pytest.approx(90 / 110) and pairs[1][2] == 1.0
    # below the IoU threshold a repeated name is not matched ...
    far = Box(8, 0, 18, 10, "x")                          # IoU with a: 20 / 180
    pairs, extra = match_regions([far], [a, b])
    assert [j for _, j, _ in pairs] == [None, None] and extra == [0]
    # ... while a name present once on each side is matched whatever the overlap
    pairs, extra = match_regions([far], [a])
    assert pairs[0][:2] == (0, 0) and extra == []


def test_bad_input_is_refused_with_the_reason():
    truth = [_slice((CC, 1))]
    with pytest.raises(ConfigError, match="2 predicted slices for 1"):
        stenosis_metrics([[], []], StenosisTruth(truth))
    with pytest.raises(ConfigError, match="has no region box"):
        stenosis_metrics([[Grade("stenosis", "mild", 1)]], StenosisTruth(truth))
    with pytest.raises(ConfigError, match="grade index 4"):
        stenosis_metrics([[Grade("stenosis", "?", 4, box=_box(CC))]], StenosisTruth(truth))
    with pytest.raises(ConfigError, match="1 groups for 2 slices"):
        stenosis_metrics([[], []], StenosisTruth([[], []], groups=["a"]))


def test_quadratic_kappa_equals_sklearn():
    from sklearn.metrics import cohen_kappa_score

    rng = np.random.default_rng(0)
    for n in (1, 2, 5, 40):
        for _ in range(20):
            y, p = rng.integers(0, 4, n), rng.integers(0, 4, n)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                want = cohen_kappa_score(y, p, labels=[0, 1, 2, 3], weights="quadratic")
            got = quadratic_kappa(y, p, 4)
            assert (math.isnan(got) and math.isnan(want)) or got == pytest.approx(want, abs=1e-12)
    assert math.isnan(quadratic_kappa([], [], 4))
