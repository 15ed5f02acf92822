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


def _graded(radiograph, abnormal: bool, *grades, **kwargs):
    from spinexr.types import TriageResult

    a = make_analysis(radiograph, **kwargs)
    return dataclasses.replace(a, grades=grades, triage=TriageResult(
        0.83 if abnormal else 0.20, abnormal, "balanced", 0.42))


def test_triage_normal_and_an_abnormal_grade_disagree(radiograph):
    from spinexr.types import Grade

    a = _graded(radiograph, False, Grade("cervical", "fracture", 1, {"fracture": 0.84}),
                Grade("degeneration", "doubtful", 1))
    assert notices.contradictions(a) == [
        "The models disagree: the triage says normal (P(abnormal) 0.20) but grades cervical: "
        "fracture (whole image); review the image"]
    assert notices.warnings(a) == notices.contradictions(a)


def test_triage_abnormal_and_only_normal_grades_disagree(radiograph):
    from spinexr.types import Grade

    a = _graded(radiograph, True, Grade("degeneration", "doubtful", 1),
                Grade("cervical", "normal", 0))
    assert notices.contradictions(a) == [
        "The models disagree: the triage says abnormal (P(abnormal) 0.83) but grades "
        "degeneration: doubtful (whole image); cervical: normal (whole image); review the image"]


def test_agreeing_or_ungraded_heads_give_no_contradiction(radiograph):
    from spinexr.types import Box, Grade

    severe = Grade("degeneration", "severe", 4, {}, Box(1.0, 2.0, 30.0, 40.0, "window", 0.9, "L4"))
    assert notices.contradictions(_graded(radiograph, True, severe)) == []
    assert notices.contradictions(_graded(radiograph, False, Grade("degeneration", "doubtful",
                                                                   1))) == []
    assert notices.contradictions(_graded(radiograph, False)) == []        # no grades
    refused = dataclasses.replace(make_refused(radiograph), grades=(severe,))
    assert notices.contradictions(refused) == []


def test_grade_location_names_the_window_level_or_the_whole_image(radiograph):
    from spinexr.types import Box, Grade

    window = Grade("degeneration", "severe", 4, {}, Box(1.0, 2.0, 30.0, 40.0, "window", 0.9, "L4"))
    counted = make_analysis(radiograph, levels=UNCONFIRMED)
    assert notices.grade_location(window, counted) == "L4?"
    assert notices.grade_location(window, make_analysis(radiograph)) == "L4"
    assert notices.grade_text(Grade("degeneration", "minimal", 2), counted) == \
        "degeneration: minimal (whole image)"
    assert notices.grade_is_abnormal(Grade("degeneration", "minimal", 2))
    assert not notices.grade_is_abnormal(Grade("degeneration", "doubtful", 1))
    assert notices.grade_is_abnormal(Grade("cervical", "dislocation", 2))
