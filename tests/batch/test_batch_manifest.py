"""Manifests: folders, globs, CSV and Parquet lists of paths, URLs."""
from __future__ import annotations

import pandas as pd

from spinexr.batch.manifest import expand


def _files(root, names):
    for name in names:
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(b"x")


def test_a_folder_is_searched_recursively_and_other_suffixes_are_skipped(tmp_path):
    _files(tmp_path, ["b/2.dcm", "a/1.png", "a/IM0001", "notes.txt"])
    found = expand([str(tmp_path)])
    assert found.paths == tuple(str(tmp_path / n) for n in ("a/1.png", "a/IM0001", "b/2.dcm"))
    assert found.skipped == (str(tmp_path / "notes.txt"),)


def test_globs_files_and_repeats_are_listed_once_in_order(tmp_path):
    _files(tmp_path, ["x/1.dcm", "x/2.dcm", "y/3.dcm"])
    found = expand([str(tmp_path / "y/3.dcm"), str(tmp_path / "**/*.dcm")])
    assert found.paths == tuple(str(tmp_path / n) for n in ("y/3.dcm", "x/1.dcm", "x/2.dcm"))


def test_csv_and_parquet_lists_resolve_relative_paths_against_their_folder(tmp_path):
    (tmp_path / "lists").mkdir()
    pd.DataFrame({"image_id": ["a", "b"], "path": ["../img/a.dcm", "/abs/b.dcm"]}).to_csv(
        tmp_path / "lists" / "m.csv", index=False)
    pd.DataFrame({"file": ["c.dcm", "s3://bucket/d.dcm"]}).to_parquet(
        tmp_path / "lists" / "m.parquet")
    found = expand([str(tmp_path / "lists" / "m.csv"), str(tmp_path / "lists" / "m.parquet")])
    assert found.paths == (str(tmp_path / "lists" / "../img/a.dcm"), "/abs/b.dcm",
                           str(tmp_path / "lists" / "c.dcm"), "s3://bucket/d.dcm")
