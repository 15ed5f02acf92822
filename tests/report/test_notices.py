"""The cautions' wording, shared by every output: uncertain input and unconfirmed levels."""
from __future__ import annotations

import dataclasses

from report_factory import CONFIRMED, UNCONFIRMED, make_analysis, make_refused, make_uncertain

from spinexr.report import notices

GATE_REASON = ("uncertain input: could not confirm a spine radiograph (P(spine) 0.41); "
               "analysed anyway: check that this is a spine radiograph")


def test_the_drawn_line_does_not_repeat_the_gates_own_opening(radiograph):
    a = make_uncertain(radiograph, reason=GATE_REASON)
    assert notices.uncertain_line(a) == (
        "UNCERTAIN INPUT: could not confirm a spine radiograph (P(spine) 0.41); "
        "analysed anyway: check that this is a spine radiograph")


def test_level_marks_and_legend_only_when_counted_unconfirmed(radiograph):
    counted = make_analysis(radiograph, levels=UNCONFIRMED)
    assert notices.level_label("L4-L5", counted) == "L4-L5?"
    assert notices.level_label(None, counted) is None
    assert notices.level_legend(counted) == \
        "? = levels counted, unconfirmed (lowest body taken as L5)"
    for a in (make_analysis(radiograph, levels=CONFIRMED), make_analysis(radiograph)):
        assert notices.level_label("L4", a) == "L4"
        assert notices.level_legend(a) is None and notices.warnings(a) == []


def test_no_legend_without_a_named_finding(radiograph):
    a = make_analysis(radiograph, levels=UNCONFIRMED,
                      findings=((5.0, 5.0, 20.0, 20.0, "Osteophytes", 0.7, None),))
    assert notices.level_legend(a) is None
    assert notices.warnings(a) == ["Level naming: levels counted, unconfirmed "
                                   "(lowest body taken as L5)"]          # vertebrae are named


def test_a_refused_input_carries_no_caution(radiograph):
    a = dataclasses.replace(make_refused(radiograph), levels=UNCONFIRMED)
    assert notices.warnings(a) == [] and notices.uncertain_line(a) is None
    assert notices.level_label("L4", a) == "L4"
