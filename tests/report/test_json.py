"""result.json: the contract keys, the published schema, and what must never be in it."""
from __future__ import annotations

import copy
import dataclasses
import json

import pytest

from spinexr.report import (SCHEMA_VERSION, ResultValidationError, analysis_to_dict, load_schema,
                            validate_result, write_json)

from report_factory import make_refused

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
    assert doc["gate"] == {"accepted": False, "reason": refused.gate.reason,
                           "checks": {"p_spine": 0.03}}
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
