"""``spinexr analyze``: every input gets a result.json; DICOM inputs get SR/GSPS/SC in their study."""
from __future__ import annotations

import json

import pydicom
import pytest

from spinexr.cli import main
from spinexr.phantom import XrayConfig, generate_xray, xray_to_dicom


def test_dicom_and_refused_inputs(tmp_path, tiny_pack, dicom_dir, capsys):
    ph = generate_xray(3, XrayConfig(size=(256, 200)))
    src = tmp_path / "phantom.dcm"
    xray_to_dicom(ph).save_as(src, enforce_file_format=True)
    out = tmp_path / "out"
    code = main(["analyze", str(src), str(dicom_dir / "693_J2KR.dcm"), "--pack", str(tiny_pack),
                 "--out", str(out), "--quiet"])
    assert code == 2                                   # the CT was refused
    printed = capsys.readouterr().out
    assert "1 of 2 analysed" in printed and "refused" in printed

    done = out / ph.uids.sop
    assert sorted(p.name for p in done.iterdir()) == sorted(
        ["result.json", "overlay.png", "boxes.xml", "report.html", "sr.dcm", "gsps.dcm", "sc.dcm"])
    result = json.loads((done / "result.json").read_text())
    assert result["gate"]["accepted"] and result["pack"]["synthetic"]
    assert result["source"]["study_instance_uid"] == ph.uids.study
    for name in ("sr.dcm", "gsps.dcm", "sc.dcm"):
        ds = pydicom.dcmread(done / name)
        assert ds.StudyInstanceUID == ph.uids.study and ds.SeriesInstanceUID != ph.uids.series

    refused = json.loads((out / "693_J2KR" / "result.json").read_text())
    assert refused["gate"]["accepted"] is False and "'CT'" in refused["gate"]["reason"]
    assert refused["triage"] is None and refused["findings"] == []


def test_missing_default_pack_is_one_error_line(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("SPINEXR_MODELS", str(tmp_path / "none"))
    assert main(["analyze", str(tmp_path / "x.png"), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error:") and "--pack" in err[0]


def test_dicom_without_a_study_uid_keeps_its_other_outputs(tmp_path, tiny_pack, capsys):
    """The SR/GSPS/SC cannot be filed without a Study Instance UID: they are left out, the
    result says why, and the batch goes on."""
    ph = generate_xray(4, XrayConfig(size=(256, 200)))
    ds = xray_to_dicom(ph)
    del ds.StudyInstanceUID
    src = tmp_path / "nostudy.dcm"
    ds.save_as(src, enforce_file_format=True)
    out = tmp_path / "out"
    assert main(["analyze", str(src), "--pack", str(tiny_pack), "--out", str(out),
                 "--quiet"]) == 0
    done = out / ph.uids.sop
    assert sorted(p.name for p in done.iterdir()) == sorted(
        ["result.json", "overlay.png", "boxes.xml", "report.html"])
    notes = json.loads((done / "result.json").read_text())["notes"]
    assert any("SR, GSPS and Secondary Capture not written" in n for n in notes)


@pytest.mark.parametrize("intra, given, used", [(1, None, 1), (2, None, 1), (4, None, 4),
                                                (1, "3", 3)])
def test_the_default_batch_follows_the_thread_plan(tmp_path, tiny_pack, monkeypatch, intra,
                                                   given, used):
    from spinexr.models import threads
    from spinexr.process import Processor

    plan = threads.ThreadPlan(intra_op=intra, decode_workers=0, cpus=4, free=float(intra))
    monkeypatch.setattr(threads, "plan_threads", lambda *a, **k: plan)
    monkeypatch.setattr(threads, "apply_thread_plan", lambda p: p)   # leave torch as it is
    seen = []
    real = Processor.stream

    def stream(self, paths, *, batch, **kwargs):
        seen.append(batch)
        return real(self, paths, batch=batch, **kwargs)

    monkeypatch.setattr(Processor, "stream", stream)
    src = tmp_path / "phantom.dcm"
    xray_to_dicom(generate_xray(3, XrayConfig(size=(256, 200)))).save_as(
        src, enforce_file_format=True)
    args = ["analyze", str(src), "--pack", str(tiny_pack), "--out", str(tmp_path / "o"),
            "--quiet"] + (["--batch", given] if given else [])
    assert main(args) == 0 and seen == [used]


def test_a_batch_under_one_is_refused(capsys):
    assert main(["analyze", "x.png", "--batch", "0"]) == 2
    assert "'0': give an integer >= 1" in capsys.readouterr().err
