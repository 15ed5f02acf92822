"""Detector evidence for the gate: the coned-view rule (two adjacent bodies with a disc)."""
from __future__ import annotations

import numpy as np

from spinexr.gate.evidence import FEATURES, adjacent_pairs, chain_evidence, features, is_adjacent
from spinexr.types import Box


def _body(top, x=100.0, w=50.0, h=30.0, score=0.9):
    return Box(x, top, x + w, top + h, "Vertebra", score=score)


def test_bodies_with_a_disc_space_between_them_are_adjacent():
    upper = _body(0)
    assert is_adjacent(upper, _body(40))                 # a 10 px disc under a 30 px body
    assert is_adjacent(upper, _body(25))                 # loose boxes overlapping a little
    assert not is_adjacent(upper, _body(80))             # 50 px gap: a body is missing
    assert not is_adjacent(upper, _body(40, x=160))      # beside, not below
    assert not is_adjacent(upper, _body(40, w=120))      # a wider thing: not the next body
    assert not is_adjacent(_body(40), upper)             # order matters: head to tail


def test_a_coned_l5_s1_view_counts_one_pair_and_weak_bodies_do_not_count():
    ev, chain = chain_evidence([_body(40), _body(0)])
    assert ev.chain == 2 and ev.adjacent_pairs == 1 and ev.coned_view
    assert [b.y1 for b in chain] == [0, 40]
    weak = chain_evidence([_body(0), _body(40, score=0.3)])[0]
    assert weak.adjacent_pairs == 0 and weak.confident == 1 and not weak.coned_view
    assert adjacent_pairs([_body(i * 40) for i in range(5)], 0.5) == 4


def test_no_boxes_give_empty_evidence_and_features_follow_their_names():
    ev, chain = chain_evidence([])
    assert chain == [] and ev.chain == 0 and ev.top3_score == 0.0
    f = features(30.0, ev)
    assert f.shape == (len(FEATURES),) and f[0] == 12.0       # logit clipped
    ev5 = chain_evidence([_body(i * 40, score=s) for i, s in enumerate([0.9, 0.8, 0.7, 0.2])])[0]
    np.testing.assert_allclose(features(-1.0, ev5),
                               [-1.0, np.log1p(4), np.log1p(3), 0.8, np.log1p(2)])
