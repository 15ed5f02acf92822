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
    private = {label for label, scheme in schemes.items() if scheme == codes.PRIVATE_SCHEME}
    assert private == {"Disc space narrowing", "Foraminal stenosis", "Vertebral collapse"}


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
                 codes.TRIAGE_RESULT,
                 codes.ABNORMALITY_PROBABILITY, codes.MODEL_PROBABILITY):
        assert code.scheme_designator == "99SPINEXR" and len(code.value) <= 16
        assert len(code.meaning) <= 64
    item = codes.coding_scheme_item()
    assert item.CodingSchemeDesignator == "99SPINEXR"


def test_every_gate_outcome_has_a_distinct_private_verdict():
    from spinexr.types import GATE_OUTCOMES

    assert tuple(codes.GATE_OUTCOME_CODES) == GATE_OUTCOMES
    assert [c.value for c in codes.GATE_OUTCOME_CODES.values()] == \
        ["ACCEPTED", "UNCERTAIN", "REFUSED"]
