"""End-to-end metrics on hand-made results: what a refused image costs, what the triage gating of
lesion boxes does to mAP, the class mapping, grades given or not."""
from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from spinexr.errors import ConfigError
from spinexr.evaluate.end_to_end import (GradeTruth, LesionTruth, TriageTruth, UserResult,
                                         end_to_end_metrics, gate_counts, grade_task_metrics,
                                         lesion_metrics, triage_metrics)
from spinexr.types import (WINDOW_LABEL, Analysis, Box, Finding, GateResult, Grade, PackInfo,
                           SourceRef, TriageResult)

NAN = float("nan")


def _ok(p: float, flagged: bool, *boxes: Box, **grades: Grade) -> UserResult:
    return UserResult("accepted", probability=p, flagged=flagged, findings=boxes, grades=grades)


REFUSED = UserResult("refused")


# -- gate and triage -----------------------------------------------------------------------------
def test_gate_counts_every_verdict():
    results = [_ok(0.1, False), REFUSED, UserResult("uncertain", 0.7, True), REFUSED]
    assert gate_counts(results) == {"n": 4, "accepted": 1, "uncertain": 1, "refused": 2}


def test_a_refused_abnormal_image_lowers_the_all_images_auroc():
    """y = [1, 1, 0, 0, ?]. Analysed, image 1 would be ranked first (P 0.8): AUROC 1.
    Refused, it counts with P = 0, below both normals: pairs (0.9 > 0.2, 0.9 > 0.4, 0 < 0.2,
    0 < 0.4) give AUROC 2/4 = 0.5, while the analysed images alone still rank perfectly."""
    truth = TriageTruth(np.array([1, 1, 0, 0, NAN]), "youden", 0.5)
    analysed = [_ok(0.9, True), _ok(0.8, True), _ok(0.2, False), _ok(0.4, False),
                _ok(0.6, True)]
    before = triage_metrics(analysed, truth)
    assert before["auroc"] == 1.0 and before["sensitivity"] == 1.0
    refused = [analysed[0], REFUSED, *analysed[2:]]
    m = triage_metrics(refused, truth)
    assert m["auroc"] == pytest.approx(0.5) and m["auroc_analysed"] == 1.0
    assert (m["n"], m["n_pos"], m["n_analysed"], m["n_pos_analysed"]) == (4, 2, 3, 1)
    assert (m["tp"], m["fn"], m["tn"], m["fp"]) == (1, 1, 2, 0)
    assert m["sensitivity"] == 0.5 and m["specificity"] == 1.0
    assert m["f1"] == pytest.approx(2 / 3)                 # 2 tp / (2 tp + fp + fn)
    assert (m["refused_abnormal"], m["refused_normal"], m["excluded_unlabelled"]) == (1, 0, 1)
    assert m["operating_point"] == "youden" and m["threshold"] == 0.5


def test_the_rates_use_the_analyzers_decision_not_the_probability():
    """A decision taken at another threshold than the one reported is counted as taken."""
    truth = TriageTruth(np.array([1, 0]), "high_sensitivity", 0.3)
    m = triage_metrics([_ok(0.2, True), _ok(0.1, False)], truth)
    assert (m["tp"], m["tn"]) == (1, 1) and m["threshold"] == 0.3


def test_triage_without_labels_or_probability():
    m = triage_metrics([_ok(0.3, False)], TriageTruth(np.array([NAN]), "youden", 0.5))
    assert m["n"] == 0 and m["excluded_unlabelled"] == 1 and m["notes"]
    with pytest.raises(ConfigError, match="image 0 was analysed"):
        triage_metrics([UserResult("accepted")], TriageTruth(np.array([1.0]), "youden", 0.5))
    with pytest.raises(ConfigError, match="2 labels for 1 results"):
        triage_metrics([REFUSED], TriageTruth(np.array([1.0, 0.0]), "youden", 0.5))


# -- lesions: gating and class mapping --------------------------------------------------------------
A_TRUE = Box(10, 10, 30, 30, "osteophyte")
B_TRUE = Box(50, 50, 70, 70, "osteophyte")
MAP = {"osteophyte": "Osteophytes"}
CLASSES = ("Osteophytes", "Disc space narrowing")


def _found(box: Box, score: float) -> Box:
    return Box(box.x1, box.y1, box.x2, box.y2, "Osteophytes", score=score)


def _lesion_truth(n: int = 3) -> LesionTruth:
    boxes = [(A_TRUE,), (B_TRUE,), ()][:n]
    return LesionTruth(boxes, [(100, 100)] * n, MAP, CLASSES)


def test_dernet_and_vindr_gating_change_lesion_map_as_expected():
    """The detector finds, exactly: image A (triage abnormal) its lesion at 0.6; image B (triage
    normal) its lesion at 0.7 and a stray box at 0.3; image C (triage normal, no lesion) a stray
    box at 0.8. What the analyzer keeps (spinexr.analyze.Analyzer._lesions):

    - dernet: A's box only (no detection on triage-normal images): recall 1/2 at precision 1,
      COCO 101-point AP = 51/101 (recall 0.00 .. 0.50) at every IoU threshold;
    - vindr: A's box, and on B and C the boxes scoring >= 0.5: C 0.8 (false), B 0.7, A 0.6;
      precision 0, 1/2, 2/3 at recall 0, 1/2, 1: interpolated precision 2/3 everywhere, AP 2/3.
    """
    stray_c = Box(80, 80, 95, 95, "Osteophytes", score=0.8)
    dernet = [_ok(0.9, True, _found(A_TRUE, 0.6)), _ok(0.1, False), _ok(0.1, False)]
    vindr = [_ok(0.9, True, _found(A_TRUE, 0.6)), _ok(0.1, False, _found(B_TRUE, 0.7)),
             _ok(0.1, False, stray_c)]
    d, v = lesion_metrics(dernet, _lesion_truth()), lesion_metrics(vindr, _lesion_truth())
    np.testing.assert_allclose([d["map50"], d["map50_95"]], [51 / 101] * 2, atol=1e-9)
    np.testing.assert_allclose([v["map50"], v["map50_95"]], [2 / 3] * 2, atol=1e-9)
    assert (d["n_findings"], d["n_images_with_findings"]) == (1, 1)
    assert (v["n_findings"], v["n_images_with_findings"]) == (3, 3)
    assert d["per_class"]["Osteophytes"]["n_true"] == 2
    assert np.isnan(d["per_class"]["Disc space narrowing"]["ap50"])   # no truth: left out


def test_a_refused_image_loses_its_lesions():
    found = [_ok(0.9, True, _found(A_TRUE, 0.6)), _ok(0.9, True, _found(B_TRUE, 0.7))]
    assert lesion_metrics(found, _lesion_truth(2))["map50"] == pytest.approx(1.0)
    m = lesion_metrics([found[0], REFUSED], _lesion_truth(2))
    assert m["map50"] == pytest.approx(51 / 101) and m["n_findings"] == 1


def test_truth_is_relabelled_through_the_class_map():
    results = [_ok(0.9, True, _found(A_TRUE, 0.6))]
    m = lesion_metrics(results, _lesion_truth(1))
    assert m["map50"] == pytest.approx(1.0) and m["class_map"] == MAP
    with pytest.raises(ConfigError, match=r"truth classes \['osteophyte'\] are not in"):
        lesion_metrics(results, LesionTruth([(A_TRUE,)], [(100, 100)], {}, CLASSES))
    other = Box(1, 1, 5, 5, "Rib", score=0.9)
    with pytest.raises(ConfigError, match=r"findings of \['Rib'\]"):
        lesion_metrics([_ok(0.9, True, other)], _lesion_truth(1))


# -- grades ----------------------------------------------------------------------------------------
LABELS = ("healthy", "minimal", "severe")


def _grade(index: int) -> Grade:
    probs = {n: 0.8 if i == index else 0.1 for i, n in enumerate(LABELS)}
    return Grade("degeneration", LABELS[index], index, probs)


def test_grades_are_measured_on_the_images_that_got_one():
    """Labels [0, 2, 1, 2, ?]: image 0 graded right, image 1 graded 1 (one step off), image 2
    not graded (e.g. a region the head does not apply to), image 3 refused, image 4 unlabelled."""
    results = [_ok(0.1, False, degeneration=_grade(0)), _ok(0.1, False, degeneration=_grade(1)),
               _ok(0.1, False), REFUSED, _ok(0.1, False, degeneration=_grade(2))]
    m = grade_task_metrics(results, GradeTruth("degeneration", LABELS,
                                               np.array([0, 2, 1, 2, NAN])))
    assert (m["n_labelled"], m["n_graded"], m["n_labelled_ungraded"]) == (4, 2, 2)
    assert m["accuracy"] == 0.5 and m["balanced_accuracy"] == 0.5
    assert m["confusion"] == [[1, 0, 0], [0, 0, 0], [0, 1, 0]]
    nothing = grade_task_metrics([REFUSED], GradeTruth("degeneration", LABELS, np.array([1.0])))
    assert nothing["n_labelled_ungraded"] == 1 and np.isnan(nothing["qwk"])


def test_all_blocks_together():
    results = [_ok(0.9, True, _found(A_TRUE, 0.6), degeneration=_grade(0)), REFUSED]
    m = end_to_end_metrics(
        results, triage=TriageTruth(np.array([1, 0]), "youden", 0.5),
        lesions=LesionTruth([(A_TRUE,), ()], [(100, 100)] * 2, MAP, CLASSES),
        grades=[GradeTruth("degeneration", LABELS, np.array([0, 0]))])
    assert m["gate"] == {"n": 2, "accepted": 1, "uncertain": 0, "refused": 1}
    assert m["triage"]["auroc"] == 1.0 and m["lesions"]["map50"] == pytest.approx(1.0)
    assert m["grades"]["degeneration"]["n_labelled_ungraded"] == 1
    assert end_to_end_metrics(results)["triage"] is None


# -- the results -----------------------------------------------------------------------------------
def test_user_result_of_an_analysis_and_invalid_results():
    pack = PackInfo("p", "1", True)
    box = Box(1, 2, 3, 4, "Osteophytes", score=0.7)
    region = Grade("stenosis", "mild", 1, box=box)
    a = Analysis("x", SourceRef("x.dcm"), (10, 10), None, GateResult(True, "ok", uncertain=True),
                 pack, triage=TriageResult(0.7, True, "youden", 0.5),
                 findings=(Finding(box),), grades=(_grade(2), region))
    r = UserResult.of(a)
    assert (r.outcome, r.probability, r.flagged, r.findings) == ("uncertain", 0.7, True, (box,))
    assert set(r.grades) == {"degeneration"}                   # region grades are not measured
    # a window grader's grade is located at the window that gave it, and is image-level
    window = Grade("cervical", "fracture", 1, box=Box(0, 0, 9, 9, WINDOW_LABEL, level="C5"))
    located = UserResult.of(replace(a, grades=(window, region)))
    assert set(located.grades) == {"cervical"} and located.grades["cervical"] is window
    refused = Analysis("y", SourceRef(None), None, None, GateResult(False, "no spine"), pack)
    assert UserResult.of(refused) == REFUSED
    with pytest.raises(ValueError, match="a refused image has no triage"):
        UserResult("refused", probability=0.2)
    with pytest.raises(ValueError, match="outcome 'maybe'"):
        UserResult("maybe")
