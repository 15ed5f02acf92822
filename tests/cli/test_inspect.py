"""``spinexr inspect`` called through spinexr.cli.main: output, exit codes, PNG previews."""
from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from spinexr.cli import main


def test_one_radiograph_text(dicom_dir, capsys):
    path = str(dicom_dir / "CR1_6154")
    assert main(["inspect", path]) == 0
    out, err = capsys.readouterr()
    assert err == ""
    assert out.splitlines()[0] == f"{path}:"
    for fact in ("Explicit VR Little Endian", "MONOCHROME1, 12 bits stored", "modality CR",
                 "rescale(0.684,200) > window(1600,2800,LINEAR) > invert", "shape:        16 x 16",
                 "0.1 x 0.1 mm (ImagerPixelSpacing)", "decode:"):
        assert fact in out
    # the file's patient name and ID are never printed (nor any UID)
    for phi in ("Doe", "Archibald", "77654033", "1.3.6.1.4.1.5962"):
        assert phi not in out


def test_json_lines(dicom_dir, capsys):
    files = [str(dicom_dir / "CR1_6154"), str(dicom_dir / "RG1_J2KI.dcm")]
    assert main(["inspect", "--json", "--reduce", "1", *files]) == 0
    lines = capsys.readouterr().out.splitlines()
    records = [json.loads(line) for line in lines]
    assert [r["file"] for r in records] == files
    cr, chest = records
    assert cr["transfer_syntax"] == "1.2.840.10008.1.2.1" and cr["shape"] == [8, 8]
    assert cr["spacing_mm"] == [0.2, 0.2] and cr["photometric"] == "MONOCHROME1"
    assert chest["transfer_syntax_name"] == "JPEG 2000 Image Compression"
    assert chest["stored_shape"] == [1955, 1841] and chest["shape"] == [978, 921]
    assert chest["spacing_mm"] is None and chest["lut_path"].startswith("j2k_level(1) > ")
    assert isinstance(chest["decode_ms"], float)


def test_refused_file_is_one_error_line_and_exit_2(dicom_dir, capsys):
    path = str(dicom_dir / "693_J2KR.dcm")
    assert main(["inspect", path]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err.count("\n") == 1 and "Traceback" not in err
    assert err.startswith(f"error: {path}: (0008,0060) Modality 'CT' is not projection radiography")


def test_mixed_files_report_each_bad_one_and_continue(dicom_dir, tmp_path, capsys):
    junk = tmp_path / "notes.txt"
    junk.write_text("not an image")
    files = [str(dicom_dir / "MR_truncated.dcm"), str(dicom_dir / "CR1_6154"), str(junk),
             str(tmp_path / "missing.dcm"), str(dicom_dir / "RG3_J2KI.dcm")]
    assert main(["inspect", "--policy", "mri", *files[:1], "--json"]) == 2
    capsys.readouterr()
    assert main(["inspect", *files]) == 2
    out, err = capsys.readouterr()
    errors = err.splitlines()
    assert len(errors) == 3 and "Traceback" not in err
    assert errors[0].startswith(f"error: {files[0]}: (0008,0060) Modality 'MR'")
    assert errors[1].startswith(f"error: {junk}: not DICOM")
    assert errors[2].startswith(f"error: {files[3]}: cannot read the file")
    assert f"{files[1]}:" in out and f"{files[4]}:" in out


def test_png_preview_single_file(dicom_dir, tmp_path, capsys):
    out_png = tmp_path / "preview.png"
    assert main(["inspect", str(dicom_dir / "RG3_J2KR.dcm"), "--png", str(out_png),
                 "--max-side", "64"]) == 0
    assert f"png:          {out_png}" in capsys.readouterr().out
    with Image.open(out_png) as png:
        assert png.mode == "L" and png.size == (64, 64)
        arr = np.asarray(png)
    assert arr[:32, 29:35].mean() > arr[:32, 17:21].mean() + 60  # tibia brighter than air


def test_png_preview_several_files_and_folder(dicom_dir, tmp_path, capsys):
    files = [str(dicom_dir / "CR1_6154"), str(dicom_dir / "RG3_J2KI.dcm")]
    assert main(["inspect", *files, "--png", str(tmp_path / "p.png")]) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["p-CR1_6154.png", "p-RG3_J2KI.png"]
    folder = tmp_path / "previews"
    folder.mkdir()
    assert main(["inspect", *files, "--png", str(folder), "--max-side", "32"]) == 0
    assert sorted(p.name for p in folder.iterdir()) == ["CR1_6154.png", "RG3_J2KI.png"]
    with Image.open(folder / "CR1_6154.png") as png:
        assert png.size == (16, 16)  # never enlarged
    capsys.readouterr()


def test_png_into_a_missing_folder_is_refused_up_front(dicom_dir, tmp_path, capsys):
    assert main(["inspect", str(dicom_dir / "CR1_6154"), "--png",
                 str(tmp_path / "nowhere" / "x.png")]) == 2
    out, err = capsys.readouterr()
    assert out == "" and err.startswith("error: --png: folder ") and err.count("\n") == 1


@pytest.mark.parametrize("argv", [["inspect"], ["inspect", "x.dcm", "--policy", "ct"]])
def test_usage_errors_exit_2(argv, capsys):
    assert main(argv) == 2
    assert "usage:" in capsys.readouterr().err


def test_help_documents_png_naming(capsys):
    assert main(["inspect", "--help"]) == 0
    assert "<OUT stem>-<FILE stem>.png" in capsys.readouterr().out
