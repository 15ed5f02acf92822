"""The one process step: the same file gives the same figures through every caller; MR slices
and radiographs in one call; the region of inputs whose header names none."""
from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pydicom
import pytest

from spinexr.analyze import Analyzer
from spinexr.cli import main
from spinexr.models.pack import resolve_packs
from spinexr.phantom import XrayConfig, generate_xray, xray_to_dicom
from spinexr.process import ProcessOptions, Processor, Source

MODELS = Path(__file__).resolve().parents[1] / "models"


@pytest.fixture(scope="module")
def analyzer():
    pack, vert = resolve_packs(models=MODELS)
    return Analyzer(pack, vertebrae_pack=vert)


def _j2k(tmp_path, seed=7, size=(1200, 900)) -> Path:
    ph = generate_xray(seed, XrayConfig(size=size))
    path = tmp_path / f"j2k-{seed}.dcm"
    xray_to_dicom(ph, transfer_syntax=pydicom.uid.JPEG2000Lossless).save_as(
        path, enforce_file_format=True)
    return path


def _figures(doc: dict) -> dict:
    tri = doc["triage"] or {}
    return {"gate": (doc["gate"]["accepted"], doc["gate"]["uncertain"], doc["gate"]["p_spine"]),
            "p": tri.get("probability"), "per_model": tri.get("per_model"),
            "findings": [(f["label"], f["box"], f.get("level")) for f in doc["findings"]],
            "grades": [(g["task"], g["label"]) for g in doc["grades"]],
            "size": doc["image_size"]}


def test_the_cli_and_the_service_give_the_same_figures_for_the_same_file(tmp_path, analyzer):
    """JPEG 2000 used to be decoded to the models' size by the CLI and at full size by the
    service (P(abnormal) 0.636 vs 0.630): both now read through the same step."""
    from fastapi.testclient import TestClient

    from spinexr.service import Settings, create_app

    path = _j2k(tmp_path)
    assert main(["analyze", str(path), "--out", str(tmp_path / "out"), "--quiet",
                 "--pack", str(MODELS / "demo"), "--vertebrae", str(MODELS / "vertebrae")]) == 0
    cli = json.loads(next((tmp_path / "out").glob("*/result.json")).read_text())
    settings = Settings(data_dir=tmp_path / "data", auth_required=False,
                        rate_limit_per_minute=0)
    with TestClient(create_app(settings, analyzer), raise_server_exceptions=False) as c:
        r = c.post("/v1/analyses", files={"file": ("x.dcm", path.read_bytes(),
                                                    "application/dicom")})
        assert r.status_code == 200, r.text
        service = r.json()
    assert _figures(service) == _figures(cli)
    assert cli["triage"]["probability"] is not None


def test_bytes_and_paths_read_the_same(tmp_path, analyzer):
    side = analyzer.decode_side()        # 2048 for the demo pack (lesion windows at 256 px)
    assert 2 * side <= 4096, "the phantom generator's largest image could not be reduced"
    path = _j2k(tmp_path, seed=9, size=(2 * side, int(1.56 * side)))   # one level to spare
    proc = Processor(analyzer)
    by_path, by_bytes = proc.process([path, Source(data=path.read_bytes(), name="upload")],
                                     ProcessOptions(render=False))
    assert by_path.analysis.triage.probability == by_bytes.analysis.triage.probability
    assert by_path.image.pixels.shape == by_bytes.image.pixels.shape
    assert by_path.image.info.reduce >= 1                 # decoded down to the models' size
    assert max(by_path.image.pixels.shape) >= analyzer.decode_side()
    assert by_path.files == {} and by_path.outcome in ("accepted", "uncertain")


def test_an_unreadable_source_is_a_refused_result_with_the_readers_code(analyzer):
    done = Processor(analyzer).process([Source(data=b"hello", name="notes.txt")])[0]
    assert done.outcome == "refused" and done.read_error[0] == "not_an_image"
    doc = json.loads(done.files["result.json"])
    assert doc["gate"]["accepted"] is False and "not DICOM" in doc["gate"]["reason"]


def test_mr_slices_and_radiographs_in_one_call(tmp_path, capsys):
    mri, xr = tmp_path / "mri", tmp_path / "xr"
    assert main(["phantom", "--task", "mri", "--n", "2", "--seed", "5", "--out", str(mri),
                 "--layout", "vindr", "--quiet"]) == 0
    assert main(["phantom", "--n", "1", "--seed", "7", "--out", str(xr), "--layout", "vindr",
                 "--quiet"]) == 0
    out = tmp_path / "out"
    assert main(["analyze", str(mri), str(xr), "--out", str(out), "--quiet", "--explain", "ig",
                 "--pack", str(MODELS / "demo"), "--vertebrae", str(MODELS / "vertebrae")]) == 0
    assert "MR: 5 region(s) graded" in capsys.readouterr().out
    docs = [json.loads(p.read_text()) for p in sorted(out.glob("*/result.json"))]
    assert sorted(d["modality"] for d in docs) == ["mri", "mri", "radiograph"]
    for folder, doc in zip(sorted(out.glob("*/")), docs):
        if doc["modality"] != "mri":
            assert doc["triage"] is not None
            continue
        regions = [g for g in doc["grades"] if g.get("box")]
        assert len(regions) >= 4 and all(g["task"] == "stenosis" for g in regions)
        assert doc["triage"] is None and doc["findings"] == []
        assert [h["method"] for h in doc["heatmaps"]] == ["ig"]
        sr = pydicom.dcmread(folder / "sr.dcm")
        assert sr.StudyInstanceUID == doc["source"]["study_instance_uid"]


def test_a_pack_without_mri_models_refuses_mr_slices_by_name(tmp_path):
    """The vertebra pack alone: MR slices are refused with a reason saying what is missing."""
    vert = resolve_packs(MODELS / "vertebrae", models=MODELS)[0]
    assert main(["phantom", "--task", "mri", "--n", "1", "--seed", "5", "--out",
                 str(tmp_path / "mri"), "--layout", "vindr", "--quiet"]) == 0
    src = next((tmp_path / "mri").rglob("*.dicom"))
    analyzer = Analyzer(vert)
    assert analyzer.read_policy.name == "radiograph"
    done = Processor(analyzer).process([src])[0]
    assert done.outcome == "refused" and "'MR'" in done.analysis.gate.reason
    from spinexr.io import read_radiograph
    from spinexr.io.policy import MRI_POLICY

    a = analyzer.analyze_batch([read_radiograph(src, policy=MRI_POLICY)])[0]
    assert not a.gate.accepted and "no MRI stenosis models" in a.gate.reason


def test_region_names_the_levels_of_inputs_without_a_body_part(tmp_path, analyzer):
    """A PNG carries no body part: lumbar by default, the given region when one is given."""
    from PIL import Image

    from spinexr.io import read_radiograph

    buf = io.BytesIO()
    xray_to_dicom(generate_xray(11, XrayConfig(size=(900, 600)))).save_as(
        buf, enforce_file_format=True)
    png = tmp_path / "spine.png"
    Image.fromarray((read_radiograph(buf.getvalue()).pixels * 255).astype(np.uint8)).save(png)
    proc, opts = Processor(analyzer), ProcessOptions(render=False)
    plain = proc.process([png], opts)[0].analysis
    cervical = proc.process([png], ProcessOptions(render=False, region="cervical"))[0].analysis
    assert plain.gate.accepted and cervical.gate.accepted
    assert plain.levels.region == "lumbar" and cervical.levels.region == "cervical"
    assert {b.level[0] for b in cervical.vertebrae} == {"C"}
    assert plain.vertebrae[-1].level == "S1" and {b.level[0] for b in plain.vertebrae} <= {"L", "S"}
    with pytest.raises(Exception, match="region 'sacral'"):
        proc.process([png], ProcessOptions(render=False, region="sacral"))


def test_the_service_takes_mr_slices_on_the_same_route(tmp_path, analyzer):
    from fastapi.testclient import TestClient

    from spinexr.service import Settings, create_app

    assert main(["phantom", "--task", "mri", "--n", "1", "--seed", "6", "--out",
                 str(tmp_path / "mri"), "--layout", "vindr", "--quiet"]) == 0
    data = next((tmp_path / "mri").rglob("*.dicom")).read_bytes()
    settings = Settings(data_dir=tmp_path / "data", auth_required=False,
                        rate_limit_per_minute=0)
    with TestClient(create_app(settings, analyzer), raise_server_exceptions=False) as c:
        r = c.post("/v1/analyses?explain=ig", files={"file": ("mr.dcm", data,
                                                              "application/dicom")})
        assert r.status_code == 200, r.text
        doc = r.json()
        assert doc["modality"] == "mri" and doc["status"] == "done"
        assert len([g for g in doc["grades"] if g.get("box")]) >= 4
        assert "sr.dcm" in doc["links"] and "heatmap/ig.png" in doc["links"]
        sr = c.get(doc["links"]["sr.dcm"])
        assert sr.status_code == 200
        assert pydicom.dcmread(io.BytesIO(sr.content)).Modality == "SR"
