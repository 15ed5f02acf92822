"""Where a batch run's results go: ``<out>/results.parquet``, written so that a run can stop at
any moment and resume.

Each completed chunk becomes one Parquet part, ``<out>/parts/part-<time>-<id>.parquet``, written to
a temporary name and renamed into place (atomic on a local or network file system; an object
store's put is atomic by itself). At the end of a run the parts and the earlier
``results.parquet`` are compacted into a new ``results.parquet`` (one row per path, sorted by
path), again through a rename, and only then are the parts removed. So an interrupted run
loses at most the chunks in flight, and the rows already written are what a re-run skips.
``out`` is a folder or an fsspec URL (``s3://bucket/run``, ``memory://x``).
"""
from __future__ import annotations

import io
import logging
import time
import uuid
from typing import Any, Iterable, Mapping

from spinexr.batch.rows import COLUMNS
from spinexr.errors import FileAccessError

log = logging.getLogger(__name__)

RESULTS = "results.parquet"
PARTS = "parts"
_ARROW = {"string": "string", "bool": "bool_", "float": "float64", "int": "int64"}


def schema():
    """The Arrow schema of results.parquet (the columns of :data:`~spinexr.batch.rows.COLUMNS`)."""
    import pyarrow as pa

    return pa.schema([(name, getattr(pa, _ARROW[kind])()) for name, kind in COLUMNS])


def _fs(url: str):
    from fsspec.core import url_to_fs

    return url_to_fs(str(url))


class ResultStore:
    """The results of a run under ``out`` (a folder or an fsspec URL)."""

    def __init__(self, out: str) -> None:
        self.url = str(out)
        self.fs, self.root = _fs(self.url)
        try:
            self.fs.makedirs(f"{self.root}/{PARTS}", exist_ok=True)
        except OSError as exc:
            raise FileAccessError(f"the output folder cannot be written ({exc})",
                                  self.url) from exc

    @property
    def results_path(self) -> str:
        return f"{self.root}/{RESULTS}"

    def _parts(self) -> list[str]:
        return sorted(p for p in self.fs.ls(f"{self.root}/{PARTS}", detail=False)
                      if p.rsplit("/", 1)[-1].startswith("part-"))

    def done_paths(self) -> set[str]:
        """The paths that already have a row (in results.parquet or a part): a re-run skips
        them."""
        done: set[str] = set()
        for table in self._tables(columns=["path"]):
            done.update(table.column("path").to_pylist())
        return done

    def write_part(self, rows: Iterable[Mapping[str, Any]]) -> str | None:
        """Write ``rows`` as one new part (atomically); returns its path (None for no rows)."""
        import pyarrow as pa
        import pyarrow.parquet as pq

        rows = list(rows)
        if not rows:
            return None
        table = pa.Table.from_pylist(rows, schema=schema())
        buf = io.BytesIO()
        pq.write_table(table, buf)
        name = f"{time.time_ns():020d}-{uuid.uuid4().hex[:8]}"   # sorts oldest first
        tmp, final = f"{self.root}/{PARTS}/.tmp-{name}", f"{self.root}/{PARTS}/part-{name}.parquet"
        self.fs.pipe_file(tmp, buf.getvalue())
        self.fs.mv(tmp, final)
        return final

    def compact(self):
        """Merge results.parquet and the parts into results.parquet (one row per path, the
        newest kept, sorted by path), then remove the parts. Returns the table."""
        import pyarrow as pa
        import pyarrow.compute as pc
        import pyarrow.parquet as pq

        parts = self._parts()
        tables = list(self._tables(parts=parts))
        table = pa.concat_tables(tables) if tables else schema().empty_table()
        # the newest row of a path wins: reverse, keep the first occurrence of each path
        table = table.take(pa.array(range(table.num_rows - 1, -1, -1), pa.int64()))
        first = pc.equal(pc.index_in(table.column("path"), table.column("path")),
                         pa.array(range(table.num_rows), pa.int32()))
        table = table.filter(first).sort_by("path")
        buf = io.BytesIO()
        pq.write_table(table, buf)
        tmp = f"{self.root}/.tmp-{uuid.uuid4().hex}-{RESULTS}"
        self.fs.pipe_file(tmp, buf.getvalue())
        self.fs.mv(tmp, self.results_path)
        for part in parts:
            self.fs.rm(part)
        return table

    def read(self):
        """The compacted results as a pandas DataFrame (empty when there are none yet)."""
        import pyarrow as pa

        tables = list(self._tables())
        return (pa.concat_tables(tables) if tables else schema().empty_table()).to_pandas()

    def _tables(self, columns: list[str] | None = None, parts: list[str] | None = None):
        import pyarrow.parquet as pq

        files = ([self.results_path] if self.fs.exists(self.results_path) else []) + (
            self._parts() if parts is None else parts)
        for path in files:
            try:
                with self.fs.open(path, "rb") as fh:
                    yield pq.read_table(fh, columns=columns, schema=None if columns else
                                        schema())
            except (OSError, ValueError) as exc:  # e.g. a foreign file in parts/
                log.warning("skipping %s: not a readable results part (%s)", path, exc)


def write_renditions(root: str, name: str, files: Mapping[str, bytes]) -> str:
    """Write one input's renditions as ``<root>/<name>/<file>`` (result.json last); on a local
    file system into a temporary folder renamed into place, replacing an earlier run's."""
    fs, base = _fs(root)
    folder, tmp = f"{base}/{name}", f"{base}/.tmp-{name}-{uuid.uuid4().hex[:8]}"
    local = "file" in (fs.protocol if isinstance(fs.protocol, tuple) else (fs.protocol,))
    target = tmp if local else folder
    fs.makedirs(target, exist_ok=True)
    for file_name in sorted(files, key=lambda n: n == "result.json"):
        fs.pipe_file(f"{target}/{file_name}", files[file_name])
    if local:
        if fs.exists(folder):
            fs.rm(folder, recursive=True)
        fs.mv(tmp, folder, recursive=True)
    return folder


__all__ = ["PARTS", "RESULTS", "ResultStore", "schema", "write_renditions"]
