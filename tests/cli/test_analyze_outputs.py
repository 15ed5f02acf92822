"""``spinexr analyze`` output folders: complete or absent, never colliding, never a traceback
(the hardening faults of the CLI, each reproduced first)."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from spinexr.cli import main
from spinexr.cli.analyze_cmd import OutputNames, write_folder
from spinexr.phantom import XrayConfig, generate_xray, xray_to_dicom


def _phantom(path, seed=3):
    ph = generate_xray(seed, XrayConfig(size=(256, 200)))
    path.parent.mkdir(parents=True, exist_ok=True)
    xray_to_dicom(ph).save_as(path, enforce_file_format=True)
    return ph


def test_unreadable_dicoms_beside_a_good_one_with_decode_workers(tmp_path, tiny_pack):
    """Four unreadable .dcm files and one phantom, read by 2 worker processes, in a fresh
    interpreter (pydicom not yet imported): every input gets its folder. The pool's result
    thread and the main thread used to import pydicom at once: exit 1, no outputs."""
    src = tmp_path / "in"
    src.mkdir()
    for i in range(4):
        (src / f"bad{i}.dcm").write_bytes(b"\0" * 128 + b"DICM" + os.urandom(64 * (i + 1)))
    ph = _phantom(src / "good.dcm")
    out = tmp_path / "out"
    env = {**os.environ, "SPINEXR_MODELS": str(tmp_path / "no-models")}
    run = subprocess.run([sys.executable, "-m", "spinexr", "analyze", str(src), "--pack",
                          str(tiny_pack), "--out", str(out), "--quiet", "--decode-workers", "2",
                          "--batch", "2"], env=env, capture_output=True, text=True, timeout=300)
    assert run.returncode == 2, run.stderr[-2000:]        # the four bad ones are refused
    assert "Traceback" not in run.stderr and "1 of 5 analysed" in run.stdout
    assert (out / ph.uids.sop / "sr.dcm").is_file()
    for i in range(4):
        doc = json.loads((out / f"bad{i}" / "result.json").read_text())
        assert doc["gate"]["accepted"] is False and doc["gate"]["reason"]


def test_same_file_names_in_two_folders_get_two_output_folders(tmp_path, tiny_pack, capsys):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    (tmp_path / "a" / "x.png").write_bytes(b"not a png")
    (tmp_path / "b" / "x.png").write_bytes(b"not a png either")
    (tmp_path / "b" / "notes.txt").write_text("hello")
    out = tmp_path / "out"
    assert main(["analyze", str(tmp_path / "a"), str(tmp_path / "b"), "--pack", str(tiny_pack),
                 "--out", str(out), "--quiet"]) == 2
    names = sorted(p.name for p in out.iterdir())
    assert names == ["x", "x-2"]
    sources = {json.loads((out / n / "result.json").read_text())["source"]["path"]
               for n in names}
    assert sources == {str(tmp_path / "a" / "x.png"), str(tmp_path / "b" / "x.png")}
    captured = capsys.readouterr()
    assert f"skipped {tmp_path / 'b' / 'notes.txt'}" in captured.err


def test_output_names_are_stable_and_safe():
    names = OutputNames()
    claimed = [names.claim(i) for i in ("a", "a", "../etc", "a", "")]
    assert claimed == ["a", "a-2", "_etc", "a-3", "input"]
    assert all("/" not in n for n in claimed)


def test_a_folder_is_replaced_whole_and_an_interrupted_write_leaves_none(tmp_path,
                                                                           monkeypatch):
    folder = tmp_path / "img"
    write_folder({"result.json": b"{}", "overlay.png": b"old"}, folder)
    write_folder({"result.json": b"{\"v\": 2}", "report.html": b"new"}, folder)
    assert sorted(p.name for p in folder.iterdir()) == ["report.html", "result.json"]
    real = type(folder).write_bytes

    def dies_on_result(self, data):
        if self.name == "result.json":
            raise KeyboardInterrupt                    # Ctrl-C while writing the last file
        return real(self, data)

    monkeypatch.setattr(type(folder), "write_bytes", dies_on_result)
    with pytest.raises(KeyboardInterrupt):
        write_folder({"result.json": b"{}", "overlay.png": b"x"}, tmp_path / "other")
    monkeypatch.undo()
    assert not (tmp_path / "other").exists()          # no folder listing missing files
    assert json.loads((folder / "result.json").read_text()) == {"v": 2}
    write_folder({"result.json": b"{}"}, tmp_path / "other")   # the next run cleans up
    assert sorted(p.name for p in tmp_path.iterdir()) == ["img", "other"]


@pytest.mark.skipif(os.geteuid() == 0, reason="root can write into a read-only folder")
def test_an_unwritable_output_folder_is_one_error_line(tmp_path, tiny_pack, capsys):
    out = tmp_path / "ro"
    out.mkdir()
    out.chmod(0o500)
    try:
        code = main(["analyze", str(tmp_path / "missing.png"), "--pack", str(tiny_pack),
                     "--out", str(out), "--quiet"])
    finally:
        out.chmod(0o700)
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and err[0].startswith("error:") and str(out) in err[0]


def test_an_output_path_that_is_a_file_is_one_error_line(tmp_path, tiny_pack, capsys):
    """Fails for root too: the output 'folder' is a file (the same PermissionError path)."""
    out = tmp_path / "file"
    out.write_text("x")
    code = main(["analyze", str(tmp_path / "missing.png"), "--pack", str(tiny_pack),
                 "--out", str(out), "--quiet"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and err[0].startswith("error:") and str(out) in err[0]


def test_sigint_mid_run_leaves_only_complete_folders(tmp_path, tiny_pack):
    """Ctrl-C while a run writes: every folder left holds every file its result.json lists."""
    src = tmp_path / "in"
    for i in range(6):
        _phantom(src / f"p{i}.dcm", seed=10 + i)
    out = tmp_path / "out"
    env = {**os.environ, "SPINEXR_MODELS": str(tmp_path / "no-models")}
    proc = subprocess.Popen([sys.executable, "-m", "spinexr", "analyze", str(src), "--pack",
                             str(tiny_pack), "--out", str(out), "--quiet", "--batch", "1",
                             "--decode-workers", "0"], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not any(out.glob("*/result.json")):
        time.sleep(0.01)
    proc.send_signal(signal.SIGINT)
    proc.wait(60)
    for result in out.glob("*/result.json"):
        listed = json.loads(result.read_text())["outputs"]
        assert all((result.parent / name).is_file() for name in listed), result.parent
