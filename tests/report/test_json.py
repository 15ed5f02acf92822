"""result.json: the contract keys, the published schema, and what must never be in it."""
from __future__ import annotations

import copy
import dataclasses
import json

import pytest

from spinexr.report import (SCHEMA_VERSION, ResultValidationError, analysis_to_dict, load_schema,
                            validate_result, write_json)

from report_factory import (CONFIRMED, UNCERTAIN_REASON, UNCONFIRMED, make_analysis,
                            make_refused, make_uncertain)

CONTRACT = ("schema_version", "image_id", "source", "gate", "triage", "findings", "vertebrae",
            "grades", "pack", "image_size", "spacing_mm", "timings", "outputs", "disclaimer")


def test_accepted_document_has_every_contract_key_and_validates(analysis):
    doc = analysis_to_dict(analysis)
    assert set(CONTRACT) <= set(doc)
    validate_result(doc)
    assert doc["schema_version"] == SCHEMA_VERSION
    assert doc["image_size"] == [200, 256]
    assert doc["source"]["sop_instance_uid"] == analysis.source.sop_instance_uid
    f = doc["findings"][0]
    assert (f["label"], f["score"], f["level"]) == ("Osteophytes", 0.91, "L3")
    assert f["box"] == [20.5, 30.25, 60.0, 70.0]
    assert doc["triage"]["per_model"] == {"densenet121": 0.80, "resnet50": 0.86}
    assert doc["triage"]["threshold"] == 0.42 and doc["triage"]["abnormal"] is True
    assert doc["grades"][0]["index"] == 3 and doc["grades"][0]["box"] is None
    assert doc["gate"]["checks"] == {"p_spine": pytest.approx(0.98), "size": [200, 256]}
    json.dumps(doc, allow_nan=False)          # plain JSON: numpy scalars converted


def test_refused_document_validates_with_null_triage(refused):
    doc = analysis_to_dict(refused)
    validate_result(doc)
    assert doc["gate"] == {"accepted": False, "outcome": "refused", "uncertain": False,
                           "p_spine": None, "reason": refused.gate.reason,
                           "checks": {"p_spine": 0.03}}
    assert doc["warnings"] == [] and doc["levels"] is None
    assert doc["triage"] is None and doc["findings"] == [] and doc["grades"] == []


def test_synthetic_pack_disclaimer_says_not_for_clinical_use(analysis):
    text = analysis_to_dict(analysis)["disclaimer"]
    assert "synthetic" in text and "not for clinical use" in text


@pytest.mark.parametrize("key", CONTRACT)
def test_a_missing_contract_key_fails_validation(analysis, key):
    doc = analysis_to_dict(analysis)
    del doc[key]
    with pytest.raises(ResultValidationError, match=rf"\$: '{key}' is a required property"):
        validate_result(doc)


@pytest.mark.parametrize("path, value, message", [
    (("gate", "accepted"), "yes", r"\$\.gate\.accepted: 'yes' is not of type 'boolean'"),
    (("findings", 0, "score"), 1.5, r"\$\.findings\[0\]\.score: 1\.5 is greater than the max"),
    (("findings", 0, "box"), [1, 2, 3], r"\$\.findings\[0\]\.box: \[1, 2, 3\] is too short"),
    (("triage", "probability"), None, r"\$\.triage"),
    (("schema_version",), "2.0", r"does not match"),
    (("source", "study_instance_uid"), 12345, r"12345 is not of type"),
])
def test_wrong_values_fail_with_their_json_path(analysis, path, value, message):
    doc = copy.deepcopy(analysis_to_dict(analysis))
    node = doc
    for part in path[:-1]:
        node = node[part]
    node[path[-1]] = value
    with pytest.raises(ResultValidationError, match=message):
        validate_result(doc)


def test_refused_document_with_findings_is_invalid(analysis):
    doc = analysis_to_dict(analysis)
    doc["gate"]["accepted"] = False
    with pytest.raises(ResultValidationError) as info:
        validate_result(doc)
    assert any(p.startswith("$.triage") for p in info.value.problems)
    assert any(p.startswith("$.findings") for p in info.value.problems)


def test_non_finite_probability_becomes_null_and_is_rejected(radiograph):
    from spinexr.types import TriageResult

    from report_factory import make_analysis

    a = make_analysis(radiograph)
    a = dataclasses.replace(a, triage=TriageResult(float("nan"), True, "balanced", 0.4))
    doc = analysis_to_dict(a)
    assert doc["triage"]["probability"] is None
    with pytest.raises(ResultValidationError, match=r"\$\.triage"):
        validate_result(doc)


def test_no_patient_identifiers_anywhere(analysis, radiograph):
    text = json.dumps(analysis_to_dict(analysis))
    header = radiograph.header
    for keyword in ("PatientName", "PatientID", "PatientBirthDate", "AccessionNumber"):
        value = str(header.get(keyword))
        assert value and value not in text, keyword
        assert keyword not in text


def test_source_path_argument_overrides(analysis):
    assert analysis_to_dict(analysis, source_path="in/x.dcm")["source"]["path"] == "in/x.dcm"


def test_write_json_round_trips_and_refuses_invalid(analysis, tmp_path):
    doc = analysis_to_dict(analysis)
    path = write_json(doc, tmp_path / "result.json")
    assert json.loads(path.read_text("utf-8")) == doc
    bad = {k: v for k, v in doc.items() if k != "gate"}
    with pytest.raises(ResultValidationError):
        write_json(bad, tmp_path / "bad.json")
    assert not (tmp_path / "bad.json").exists()


def test_schema_is_a_valid_draft_2020_12_schema_with_the_contract_keys():
    import jsonschema

    schema = load_schema()
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    jsonschema.Draft202012Validator.check_schema(schema)
    assert set(CONTRACT) <= set(schema["required"])


def test_refused_reason_is_free_text(radiograph):
    validate_result(analysis_to_dict(make_refused(radiograph, reason="")))


def test_malformed_uids_as_in_vindr_are_kept(analysis):
    """Real archives hold non-conformant UIDs; the result must still validate and keep them."""
    doc = analysis_to_dict(analysis)
    doc["source"]["sop_instance_uid"] = "1.2.840.abc.5f3e"
    validate_result(doc)


def test_schema_version_is_1_2():
    assert SCHEMA_VERSION == "1.2"


def test_accepted_document_has_no_warnings(analysis):
    doc = analysis_to_dict(analysis)
    assert (doc["gate"]["outcome"], doc["gate"]["uncertain"]) == ("accepted", False)
    assert doc["warnings"] == [] and doc["levels"] is None


def test_uncertain_document_carries_the_gate_warning_and_the_level_note(uncertain):
    doc = analysis_to_dict(uncertain)
    validate_result(doc)
    gate = doc["gate"]
    assert (gate["accepted"], gate["outcome"], gate["uncertain"]) == (True, "uncertain", True)
    assert gate["p_spine"] == pytest.approx(0.55)
    assert doc["warnings"] == [
        f"Uncertain input: {UNCERTAIN_REASON}; check that this is a spine radiograph",
        "Level naming: levels counted, unconfirmed (lowest body taken as L5)"]
    assert doc["levels"] == {"confirmed": False, "anchor": "lowest body taken as L5",
                             "region": "lumbar",
                             "note": "levels counted, unconfirmed (lowest body taken as L5)"}
    assert doc["findings"] and doc["triage"] is not None      # analysed all the same


def test_confirmed_levels_are_recorded_without_a_warning(radiograph):
    doc = analysis_to_dict(make_analysis(radiograph, levels=CONFIRMED))
    validate_result(doc)
    assert doc["levels"]["note"] == "levels anchored on the sacrum"
    assert doc["levels"]["confirmed"] is True and doc["warnings"] == []


def test_unconfirmed_levels_warn_on_a_confirmed_input(radiograph):
    doc = analysis_to_dict(make_analysis(radiograph, levels=UNCONFIRMED))
    assert doc["gate"]["outcome"] == "accepted"
    assert doc["warnings"] == ["Level naming: levels counted, unconfirmed "
                               "(lowest body taken as L5)"]


@pytest.mark.parametrize("reason, warning", [
    ("uncertain input: could not confirm a spine radiograph (P(spine) 0.41, 4 bodies); "
     "analysed anyway: check that this is a spine radiograph",
     "Uncertain input: could not confirm a spine radiograph (P(spine) 0.41, 4 bodies); "
     "analysed anyway: check that this is a spine radiograph"),
    ("uncertain input: header says CHEST, but the image looks like a spine radiograph "
     "(P(spine) 0.91); analysed anyway: check the body part",
     "Uncertain input: header says CHEST, but the image looks like a spine radiograph "
     "(P(spine) 0.91); analysed anyway: check the body part"),
    ("p_spine 0.5.", "Uncertain input: p_spine 0.5; check that this is a spine radiograph"),
    ("", "Uncertain input: the gate could not confirm a spine radiograph; "
         "check that this is a spine radiograph"),
])
def test_the_gate_reason_is_worded_once(radiograph, reason, warning):
    """The gate's reasons open with "uncertain input:" and may ask for a check themselves."""
    assert analysis_to_dict(make_uncertain(radiograph, reason=reason))["warnings"][0] == warning


def test_version_1_0_documents_still_validate(analysis):
    """1.1 only adds optional keys: a document written by 1.0 is still valid."""
    doc = analysis_to_dict(analysis)
    doc["schema_version"] = "1.0"
    del doc["warnings"], doc["levels"]
    for key in ("outcome", "uncertain", "p_spine"):
        del doc["gate"][key]
    validate_result(doc)


@pytest.mark.parametrize("gate, message", [
    ({"accepted": False, "outcome": "uncertain"}, r"\$\.gate\.outcome: 'refused' was expected"),
    ({"accepted": False, "uncertain": True}, r"\$\.gate\.uncertain: False was expected"),
    ({"accepted": True, "outcome": "refused"}, r"\$\.gate\.outcome: 'refused' is not one of"),
    ({"uncertain": True, "outcome": "accepted"}, r"\$\.gate\.outcome: 'uncertain' was expected"),
    ({"uncertain": False, "outcome": "uncertain"}, r"\$\.gate\.uncertain: True was expected"),
    ({"outcome": "maybe"}, r"\$\.gate\.outcome: 'maybe' is not one of"),
    ({"p_spine": 1.2}, r"\$\.gate\.p_spine"),
])
def test_inconsistent_gate_outcomes_fail(uncertain, gate, message):
    doc = analysis_to_dict(uncertain)
    doc["gate"].update(gate)
    if not doc["gate"]["accepted"]:
        doc.update(triage=None, findings=[], grades=[])
    with pytest.raises(ResultValidationError, match=message):
        validate_result(doc)


@pytest.mark.parametrize("key, value, message", [
    ("warnings", [""], r"\$\.warnings\[0\]: '' should be non-empty"),
    ("warnings", "careful", r"\$\.warnings: 'careful' is not of type 'array'"),
    ("levels", {"confirmed": False}, r"\$\.levels"),
])
def test_bad_warnings_and_levels_fail(uncertain, key, value, message):
    doc = analysis_to_dict(uncertain)
    doc[key] = value
    with pytest.raises(ResultValidationError, match=message):
        validate_result(doc)
