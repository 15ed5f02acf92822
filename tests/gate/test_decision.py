"""The gate's decision table: image outcome moved by the header, thresholds from validation."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest

from spinexr.errors import ConfigError
from spinexr.gate.decision import GateModel, decide, pick_thresholds
from spinexr.gate.evidence import ChainEvidence

MODEL = GateModel(classifier="c", detector="d", weights=(1.0, 0.0, 0.0, 0.0, 0.0), bias=0.0,
                  accept=0.8, uncertain=0.4)
EV = ChainEvidence(detected=6, chain=6, confident=5, top3_score=0.9, adjacent_pairs=4)


@dataclass
class _Header:
    verdict: str = "unknown"
    modality: str = "unknown"
    near_case: bool = False
    reason: str = "the header says so"


@pytest.mark.parametrize("p, header, expected", [
    (0.9, None, "accepted"), (0.5, None, "uncertain"), (0.1, None, "refused"),
    (0.5, _Header("spine"), "accepted"), (0.1, _Header("spine"), "uncertain"),
    (0.9, _Header("other"), "uncertain"), (0.5, _Header("other"), "refused"),
    (0.5, _Header("other", near_case=True), "uncertain"),
    (0.1, _Header("other", near_case=True), "refused"),
    (0.99, _Header("spine", modality="other"), "refused"),
    (0.5, _Header("conflict"), "uncertain"),
])
def test_the_header_moves_the_image_outcome_one_step_at_most(p, header, expected):
    outcome, reason = decide(p, EV, MODEL, header)
    assert outcome == expected
    assert f"P(spine) {p:.2f}" in reason or outcome == "refused"


def test_reasons_say_what_was_seen_in_plain_words():
    _, reason = decide(0.5, ChainEvidence(2, 2, 2, 0.9, 1), MODEL, None)
    assert reason.startswith("uncertain input") and "coned view: 2 adjacent" in reason
    assert "check that this is a spine radiograph" in reason
    _, reason = decide(0.1, ChainEvidence(0, 0, 0, 0.0, 0), MODEL, _Header("other"))
    assert reason.startswith("not a spine radiograph: the header says so")


def test_p_spine_is_the_logistic_fusion_and_round_trips_through_the_manifest():
    x = np.array([[0.0, 0, 0, 0, 0], [2.0, 0, 0, 0, 0]])
    np.testing.assert_allclose(MODEL.p_spine(x), [0.5, 1 / (1 + np.exp(-2))])
    assert GateModel.from_dict(MODEL.to_dict()) == MODEL
    with pytest.raises(ConfigError, match="thresholds"):
        GateModel("c", "d", (0.0,) * 5, 0.0, accept=0.3, uncertain=0.5)
    with pytest.raises(ConfigError, match="unknown gate settings"):
        GateModel.from_dict({**MODEL.to_dict(), "extra": 1})


def test_thresholds_sit_above_the_validation_negatives():
    neg = [0.01, 0.05, 0.1, 0.2, 0.3, 0.35, 0.4, 0.45, 0.5, 0.6]
    unc, acc = pick_thresholds(neg, [0.9], max_uncertain_fp=0.1, max_accept_fp=0.0,
                               margin=0.02)
    assert unc == pytest.approx(0.52)       # 1 of 10 (0.6) may pass; next one 0.5 + margin
    assert acc == pytest.approx(0.62)       # above every negative
    assert sum(p >= unc for p in neg) == 1 and sum(p >= acc for p in neg) == 0
    with pytest.raises(ConfigError, match="no non-spine"):
        pick_thresholds([], [0.9])


def test_each_negative_source_is_held_to_the_rates_on_its_own():
    easy = [0.01] * 200                          # many generated negatives, all easy
    real = [0.05, 0.1, 0.3, 0.6]                 # a few real ones, one hard
    pooled = pick_thresholds(easy + real, max_uncertain_fp=0.02, margin=0.0)[0]
    per_source = pick_thresholds({"generated": easy, "real": real}, max_uncertain_fp=0.02,
                                 margin=0.0)[0]
    assert pooled == pytest.approx(0.01)         # 4 of 204 may pass: all 4 real ones do
    assert per_source == pytest.approx(0.6)      # 2% of 4 real: none may pass


def test_without_any_vertebral_evidence_the_classifier_alone_cannot_let_an_image_in():
    nothing = ChainEvidence(detected=0, chain=0, confident=0, top3_score=0.0, adjacent_pairs=0)
    outcome, reason = decide(0.99, nothing, MODEL, None)
    assert outcome == "refused" and "no column of vertebral bodies" in reason
    assert decide(0.99, nothing, MODEL, _Header("spine"))[0] == "uncertain"   # the header says so
    coned = ChainEvidence(detected=2, chain=2, confident=2, top3_score=0.9, adjacent_pairs=1)
    assert decide(0.99, coned, MODEL, None)[0] == "accepted"                  # an L5-S1 view
    column = ChainEvidence(detected=2, chain=2, confident=0, top3_score=0.3, adjacent_pairs=0)
    assert decide(0.99, column, MODEL, None)[0] == "accepted"
    single = ChainEvidence(detected=1, chain=1, confident=1, top3_score=0.9, adjacent_pairs=0)
    assert decide(0.99, single, MODEL, None)[0] == "refused"
