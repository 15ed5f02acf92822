"""``spinexr analyze --engine local``: results.parquet from a CSV manifest, renditions on request,
and a re-run that skips what is done."""
from __future__ import annotations

import pandas as pd
import pytest

from spinexr.cli import main
from spinexr.phantom import XrayConfig, generate_xray, xray_to_dicom

pytest.importorskip("pyarrow")


def test_a_csv_manifest_gives_one_row_each_and_a_rerun_skips_them(tmp_path, tiny_pack, capsys):
    (tmp_path / "img").mkdir()
    names = []
    for seed in range(3):
        xray_to_dicom(generate_xray(seed, XrayConfig(size=(256, 200)))).save_as(
            tmp_path / "img" / f"{seed}.dcm", enforce_file_format=True)
        names.append(f"img/{seed}.dcm")
    (tmp_path / "img" / "broken.dcm").write_bytes(b"not a dicom")
    pd.DataFrame({"path": names + ["img/broken.dcm"]}).to_csv(tmp_path / "list.csv", index=False)
    out = tmp_path / "out"
    argv = ["analyze", "--engine", "local", "--workers", "1", str(tmp_path / "list.csv"),
            "--pack", str(tiny_pack), "--out", str(out), "--quiet", "--renditions"]
    assert main(argv) == 0
    assert "4 analysed now (1 refused, 3 uncertain), 0 already done" in capsys.readouterr().out
    rows = pd.read_parquet(out / "results.parquet")
    assert sorted(rows["path"]) == sorted(str(tmp_path / n) for n in names + ["img/broken.dcm"])
    broken = rows[rows["path"].str.endswith("broken.dcm")].iloc[0]
    assert broken["outcome"] == "refused" and broken["error_code"] == "not_an_image"
    folders = sorted(p.name for p in (out / "images").iterdir())
    assert len(folders) == 4 and all((out / "images" / f / "result.json").is_file()
                                     for f in folders)

    assert main(argv) == 0
    assert "0 analysed now (none), 4 already done, 4 in all" in capsys.readouterr().out
    assert len(pd.read_parquet(out / "results.parquet")) == 4
