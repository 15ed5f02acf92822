"""results.parquet: atomic parts, what counts as done, compaction (newest row of a path wins)."""
from __future__ import annotations

import pytest

from spinexr.batch.rows import ANALYSIS_FAILED, error_row
from spinexr.batch.store import ResultStore, write_renditions


def _row(path: str, reason: str = "failed") -> dict:
    return error_row(path, ANALYSIS_FAILED, reason)


def test_parts_count_as_done_and_compact_into_one_sorted_table(tmp_path):
    store = ResultStore(str(tmp_path / "out"))
    store.write_part([_row("b"), _row("a", "first try")])
    store.write_part([_row("a", "second try")])
    assert store.done_paths() == {"a", "b"}
    table = store.compact()
    assert table.column("path").to_pylist() == ["a", "b"]
    assert table.column("error").to_pylist() == ["second try", "failed"]
    assert not list((tmp_path / "out" / "parts").glob("part-*"))
    assert ResultStore(str(tmp_path / "out")).done_paths() == {"a", "b"}


def test_a_half_written_part_is_not_a_result(tmp_path):
    store = ResultStore(str(tmp_path))
    (tmp_path / "parts" / ".tmp-abc").write_bytes(b"PAR1 half")
    (tmp_path / "parts" / "part-broken.parquet").write_bytes(b"not parquet")
    store.write_part([_row("a")])
    assert store.done_paths() == {"a"}
    assert store.read()["path"].tolist() == ["a"]


def test_an_fsspec_url_holds_results_and_renditions():
    pytest.importorskip("fsspec")
    store = ResultStore("memory://spinexr-test-run")
    store.write_part([_row("x")])
    store.compact()
    assert store.fs.exists("/spinexr-test-run/results.parquet")
    assert store.read()["path"].tolist() == ["x"]
    folder = write_renditions("memory://spinexr-test-run/images", "x-1", {"result.json": b"{}"})
    assert store.fs.cat(f"{folder}/result.json") == b"{}"


def test_local_renditions_replace_an_earlier_runs_folder(tmp_path):
    write_renditions(str(tmp_path), "x", {"old.png": b"1", "result.json": b"{}"})
    write_renditions(str(tmp_path), "x", {"result.json": b"{\"v\": 2}"})
    assert sorted(p.name for p in (tmp_path / "x").iterdir()) == ["result.json"]
    assert not list(tmp_path.glob(".tmp-*"))
