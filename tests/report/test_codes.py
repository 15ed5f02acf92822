"""The coded vocabulary: every class and level has a code, layer names are valid CS values."""
from __future__ import annotations

import re

import pytest
from pydicom.sr.coding import Code

from spinexr.labels import LESION_CLASSES, VERTEBRAL_LEVELS, disc_level
from spinexr.report import codes


def test_every_lesion_class_has_a_distinct_code_and_layer():
    assert tuple(codes.LESIONS) == LESION_CLASSES
    values = {(s.code.scheme_designator, s.code.value) for s in codes.LESIONS.values()}
    assert len(values) == len(LESION_CLASSES)
    layers = [s.layer for s in codes.LESIONS.values()] + [codes.UNKNOWN_LAYER]
    assert len(set(layers)) == len(layers)
    for layer in layers:                 # DICOM CS: 16 chars, upper case, digits, _ and space
        assert re.fullmatch(r"[A-Z0-9_ ]{1,16}", layer), layer


@pytest.mark.parametrize("label", LESION_CLASSES)
def test_lesion_code_round_trips(label):
    assert codes.label_from_code(codes.lesion_code(label)) == label


def test_standard_codes_where_they_exist_private_elsewhere():
    schemes = {label: s.code.scheme_designator for label, s in codes.LESIONS.items()}
    assert schemes["Osteophytes"] == schemes["Spondylolisthesis"] == "SCT"
    assert codes.lesion_code("Surgical implant") == Code("40388003", "SCT", "Implant")
    assert codes.lesion_code("Foraminal stenosis").value == "76107001"    # Spinal stenosis
    assert codes.lesion_code("Vertebral collapse").value == "42942008"    # compression fracture
    private = {label for label, scheme in schemes.items() if scheme == codes.PRIVATE_SCHEME}
    assert private == {"Disc space narrowing"}


def test_aliases_and_unknown_labels():
    assert codes.lesion_code("Spondylolysthesis") == codes.lesion_code("Spondylolisthesis")
    assert codes.lesion_code("Fracture") == codes.lesion_code("Other lesions")
    assert codes.lesion_code("Something new") == Code("52988006", "SCT", "Lesion")
    assert codes.lesion_layer("Something new") == codes.UNKNOWN_LAYER


@pytest.mark.parametrize("level", VERTEBRAL_LEVELS)
def test_every_vertebra_and_the_disc_below_it_has_an_sct_code(level):
    code = codes.level_code(level)
    assert code is not None and code.scheme_designator == "SCT"
    assert codes.level_from_code(code) == level
    i = VERTEBRAL_LEVELS.index(level)
    if i + 1 < len(VERTEBRAL_LEVELS):
        disc = disc_level(level, VERTEBRAL_LEVELS[i + 1])
        assert codes.level_from_code(codes.level_code(disc)) == disc


def test_level_codes_match_the_dicom_meanings():
    assert codes.level_code("L4") == Code("11994002", "SCT", "L4 vertebra")
    assert codes.level_code("L4-L5") == Code("84020006", "SCT", "L4/L5 disc")
    assert codes.level_code("l4/l5") == codes.level_code("L4-L5")
    assert codes.level_code("L5-S1").value == "715056000"
    assert codes.level_code(None) is None and codes.level_code("L9") is None


def test_private_codes_fit_short_strings_and_declare_the_scheme():
    for code in (codes.GATE, codes.GATE_ACCEPTED, codes.GATE_UNCERTAIN, codes.GATE_REFUSED,
                 *codes.REGION_CODES.values()):
        assert len(code.value) <= 16 and len(code.meaning) <= 64
    assert codes.GATE.scheme_designator == "99SPINEXR"
    item = codes.coding_scheme_item()
    assert item.CodingSchemeDesignator == "99SPINEXR"


def test_every_gate_outcome_has_a_distinct_private_verdict():
    from spinexr.types import GATE_OUTCOMES

    assert tuple(codes.GATE_OUTCOME_CODES) == GATE_OUTCOMES
    assert [c.value for c in codes.GATE_OUTCOME_CODES.values()] == \
        ["ACCEPTED", "UNCERTAIN", "REFUSED"]


def test_triage_uses_dicom_probability_and_normality():
    assert (codes.PROBABILITY.value, codes.PROBABILITY.scheme_designator) == ("122157", "DCM")
    assert (codes.NORMALITY.value, codes.NORMALITY.scheme_designator) == ("121402", "DCM")
    assert {codes.NORMAL.value, codes.ABNORMAL.value} == {"17621005", "263654008"}


@pytest.mark.parametrize("task, index, label, finding, site, evaluation", [
    ("degeneration", 0, "healthy", "8847002", None, ("246112005", "17621005")),
    ("degeneration", 1, "doubtful", "8847002", None, ("246112005", "42425007")),
    ("degeneration", 2, "minimal", "8847002", None, ("246112005", "255605001")),
    ("degeneration", 4, "severe", "8847002", None, ("246112005", "24484000")),
    ("cervical", 1, "fracture", "125605004", "122494005", None),
    ("cervical", 2, "dislocation", "108367008", "122494005", None),
    ("cervical", 0, "normal", None, "122494005", ("121402", "17621005")),
    ("stenosis", 2, "moderate", "76107001", None, ("246112005", "6736007")),
])
def test_grades_have_standard_codes(task, index, label, finding, site, evaluation):
    coded = codes.grade_codes(task, index, label)
    assert (coded.finding.value if coded.finding else None) == finding
    assert (coded.site.value if coded.site else None) == site
    assert (tuple(c.value for c in coded.evaluation) if coded.evaluation else None) == evaluation
    for code in filter(None, (coded.finding, coded.site, *(coded.evaluation or ()))):
        assert code.scheme_designator in ("SCT", "DCM")


def test_unknown_grades_get_private_codes_that_fit_code_value():
    coded = codes.grade_codes("spondyloarthropathy activity", 12, "very active indeed")
    assert coded.finding is None and coded.site is None
    name, value = coded.evaluation
    assert name.scheme_designator == value.scheme_designator == "99SPINEXR"
    assert len(name.value) <= 16 and len(value.value) <= 16
    assert (name.value, value.value) == ("G-SPONDYLOART", "G-SPONDYLOART-12")
    assert value.meaning == "very active indeed"
    assert name.meaning == "spondyloarthropathy activity grade"
    assert codes.severity_code(9, "extreme").value.startswith("G-STENOSIS")


@pytest.mark.parametrize("region, code", [("cervical", "122494005"), ("thoracic", "122495006"),
                                          ("lumbar", "122496007"), ("whole", "421060004"),
                                          (None, "421060004")])
def test_region_sites(region, code):
    assert codes.region_site(region).value == code
