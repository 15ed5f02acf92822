"""The typed pack manifest: roles, version-1 upgrade, validation, where packs are found."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from spinexr.labels import LESION_CLASSES, VERTEBRA_CLASS
from spinexr.models.manifest import (PACK_FORMAT_VERSION, ModelPackError, infer_role,
                                     parse_manifest)
from spinexr.models.pack import MODELS_ENV, load_pack, models_dir, resolve_packs, save_pack

REPO_MODELS = Path(__file__).resolve().parents[2] / "models"


def _spec(kind, labels, **extra):
    return {"kind": kind, "arch": "a", "labels": labels, "weights": "w", "input": {"size": 32},
            **({"head": "binary"} if kind == "classifier" else {}), **extra}


def _doc(version=1, **models):
    return {"format": "spinexr-pack", "format_version": version, "name": "p", "version": "1",
            "models": models, "ensemble": {"members": ["t"], "weights": {"t": 1.0},
                                           "operating_points": {"youden": 0.4}}}


def test_version_1_roles_are_inferred_once_from_kinds_labels_and_membership():
    m = parse_manifest(_doc(
        t=_spec("classifier", ["normal", "abnormal"]),
        les=_spec("detector", list(LESION_CLASSES), thresholds={"conf": 0.3}),
        vert=_spec("detector", [VERTEBRA_CLASS]),
        deg=_spec("classifier", ["0", "1"], part="degeneration", regions=["cervical"]),
        reg=_spec("detector", ["central canal"], part="stenosis_regions"),
        sten=_spec("classifier", ["normal", "mild"], part="stenosis_grades", head="ordinal"),
        gate=_spec("classifier", ["other", "spine"], part="gate")))
    assert m.format_version == 1
    assert {k: s.role for k, s in m.models.items()} == {
        "t": "triage_member", "les": "lesion_detector", "vert": "vertebra_detector",
        "deg": "grader", "reg": "mri_region_detector", "sten": "mri_region_grader",
        "gate": "spine_classifier"}
    assert m.models["les"].thresholds.conf == 0.3 and m.models["vert"].thresholds.conf == 0.25
    assert m.models["deg"].regions == ("cervical",) and m.models["deg"].task == "degeneration"
    assert m.ensemble.members == ("t",) and m.ensemble.operating_points == {"youden": 0.4}
    assert m.first("grader").key == "deg" and m.first("lesion_detector").key == "les"


def test_a_stated_role_is_kept_and_must_fit_the_kind():
    m = parse_manifest(_doc(2, t=_spec("classifier", ["n", "a"], role="triage_member"),
                            x=_spec("classifier", ["a", "b"], role="grader")))
    assert m.models["x"].role == "grader"
    with pytest.raises(ModelPackError, match=r"models\.x\.role 'lesion_detector': a classifier"):
        parse_manifest(_doc(2, t=_spec("classifier", ["n", "a"], role="triage_member"),
                            x=_spec("classifier", ["a", "b"], role="lesion_detector")))


def test_mri_models_trained_alone_get_their_roles_from_their_classes():
    """A part pack is saved before a pack recipe gives its models a ``part``: the stenosis
    grader and region detector are recognised by their classes (a grader role here once made
    the analyzer grade radiographs with the stenosis grader and lose its MR path)."""
    from spinexr.labels import STENOSIS_GRADES, STENOSIS_REGIONS

    grader = _spec("classifier", list(STENOSIS_GRADES), head="ordinal")
    regions = _spec("detector", list(STENOSIS_REGIONS))
    assert infer_role("stenosis_grader", grader, frozenset()) == "mri_region_grader"
    assert infer_role("regions", regions, frozenset()) == "mri_region_detector"
    assert infer_role("deg", _spec("classifier", ["0", "1", "2", "3"]), frozenset()) == "grader"


def test_a_detector_of_unknown_labels_needs_a_role():
    with pytest.raises(ModelPackError, match="no known role"):
        infer_role("d", _spec("detector", ["cat"]), frozenset())


@pytest.mark.parametrize("field, value, message", [
    ("input", None, r"models\.t\.input is missing"),
    ("head", None, r"models\.t\.head is missing"),
    ("kind", "segmenter", r"models\.t\.kind 'segmenter'"),
    ("input", {"channels": 1}, r"models\.t: 'size'"),
])
def test_invalid_specs_fail_with_the_field_named(field, value, message):
    spec = {**_spec("classifier", ["n", "a"]), field: value}
    with pytest.raises(ModelPackError, match=message):
        parse_manifest(_doc(t=spec))


def test_ensemble_members_must_be_models():
    doc = _doc(x=_spec("classifier", ["n", "a"]))
    with pytest.raises(ModelPackError, match=r"\['t'\] not in models"):
        parse_manifest(doc)


def test_a_version_1_pack_on_disk_loads_and_save_pack_writes_version_2(tmp_path):
    src = REPO_MODELS / "vertebrae"
    doc = json.loads((src / "pack.json").read_text())
    for spec in doc["models"].values():           # as written before roles existed
        spec.pop("role", None)
    doc["format_version"] = 1
    old = tmp_path / "old"
    old.mkdir()
    (old / "pack.json").write_text(json.dumps(doc))
    for spec in doc["models"].values():
        (old / spec["weights"]).symlink_to(src / spec["weights"])
    pack = load_pack(old)
    assert pack.manifest.format_version == 1
    assert pack.manifest.first("vertebra_detector").key == "vertebra_detector"
    assert pack.manifest.first("spine_classifier").key == "spine_classifier"
    save_pack(tmp_path / "new", {k: v for k, v in doc.items() if k != "format_version"})
    written = json.loads((tmp_path / "new" / "pack.json").read_text())
    assert written["format_version"] == PACK_FORMAT_VERSION
    assert {k: s["role"] for k, s in written["models"].items()} == {
        "vertebra_detector": "vertebra_detector", "spine_classifier": "spine_classifier"}


def test_a_broken_manifest_names_the_file(tmp_path):
    (tmp_path / "pack.json").write_text(json.dumps(_doc(t={"kind": "classifier"})))
    with pytest.raises(ModelPackError, match=r"pack\.json: models\.t\.arch is missing"):
        load_pack(tmp_path)


def test_committed_packs_state_their_roles():
    demo = load_pack(REPO_MODELS / "demo").manifest
    assert demo.format_version == PACK_FORMAT_VERSION
    assert [s.key for s in demo.with_role("triage_member")] == list(demo.ensemble.members)
    assert {s.key for s in demo.with_role("grader")} == {"cervical", "degeneration"}
    assert demo.first("mri_region_detector").key == "stenosis_region_detector"
    assert demo.first("mri_region_grader").key == "stenosis_grader"
    vert = load_pack(REPO_MODELS / "vertebrae").manifest
    assert vert.first("vertebra_detector") is not None and vert.gate is not None


def test_pack_locations_come_from_argument_environment_or_the_checkout(tmp_path, monkeypatch):
    monkeypatch.delenv(MODELS_ENV, raising=False)
    assert models_dir() == REPO_MODELS
    monkeypatch.setenv(MODELS_ENV, str(tmp_path))
    assert models_dir() == tmp_path
    assert models_dir(REPO_MODELS) == REPO_MODELS
    with pytest.raises(ModelPackError, match=rf"{tmp_path / 'demo'}: model pack folder not "
                                             rf"found; pass --pack DIR or set {MODELS_ENV}"):
        resolve_packs()
    main, vert = resolve_packs(models=REPO_MODELS)
    assert (main.name, vert.name) == ("demo", "vertebrae")
    same, none = resolve_packs(REPO_MODELS / "vertebrae", REPO_MODELS / "vertebrae")
    assert same.name == "vertebrae" and none is None
