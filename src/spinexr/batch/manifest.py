"""What a batch run analyses: folders, glob patterns, files, and CSV / Parquet lists of paths.

A manifest item is one of:

* a folder: searched recursively; files whose suffix no reader handles are skipped (and
  reported), files without a suffix are tried (DICOM files often have none);
* a glob pattern (``archive/**/*.dcm``);
* a ``.csv`` or ``.parquet`` file: a list of paths in its ``path`` column (else its first
  column); relative paths are taken relative to the list's folder;
* any other file or URL (``s3://...``, read through fsspec): analysed as it is.

The result is a list of path strings in a stable order, each once. A path string is the key of
a row in ``results.parquet`` (what a resumed run skips).
"""
from __future__ import annotations

import glob
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from spinexr.errors import ConfigError, FileAccessError

#: Suffixes a folder search picks up ("" : DICOM files named without a suffix).
IMAGE_SUFFIXES = frozenset({".dcm", ".dicom", ".png", ".jpg", ".jpeg", ".tif", ".tiff", ""})
LIST_SUFFIXES = (".csv", ".parquet")


@dataclass(frozen=True)
class Manifest:
    """The inputs of a run (``paths``, in order, each once) and the files a folder search
    passed over (``skipped``: their suffix names no image format)."""

    paths: tuple[str, ...]
    skipped: tuple[str, ...] = ()


def is_url(item: str) -> bool:
    """Whether ``item`` names a remote object (``scheme://``) rather than a local path."""
    return "://" in item and not item.startswith("file://")


def expand(items: Sequence[str]) -> Manifest:
    """The :class:`Manifest` of folders, globs, path lists and files (see the module doc)."""
    out: list[str] = []
    skipped: list[str] = []
    for raw in items:
        raw = str(raw)
        if is_url(raw):
            out.append(raw)
            continue
        matches = [Path(m) for m in sorted(glob.glob(raw, recursive=True))] or [Path(raw)]
        for path in matches:
            if path.is_dir():
                for p in sorted(q for q in path.rglob("*") if q.is_file()):
                    (out if p.suffix.lower() in IMAGE_SUFFIXES else skipped).append(str(p))
            elif path.suffix.lower() in LIST_SUFFIXES and path.is_file():
                out.extend(read_path_list(path))
            else:
                out.append(str(path))
    return Manifest(tuple(dict.fromkeys(out)), tuple(dict.fromkeys(skipped)))


def read_path_list(path: Path) -> list[str]:
    """The paths listed in a CSV or Parquet file (column ``path``, else the first column);
    relative local paths are resolved against the list's folder; empty cells are dropped."""
    import pandas as pd

    try:
        table = pd.read_parquet(path) if path.suffix.lower() == ".parquet" else \
            pd.read_csv(path, dtype=str, keep_default_na=False)
    except (OSError, ValueError) as exc:
        raise FileAccessError(f"cannot read the path list ({exc})", str(path)) from exc
    if table.shape[1] == 0:
        raise ConfigError(f"{path} has no columns: give a 'path' column of image paths",
                          "manifest")
    column = "path" if "path" in table.columns else table.columns[0]
    out = []
    for value in table[column].astype(str):
        value = value.strip()
        if not value or value.lower() == "nan":
            continue
        out.append(value if is_url(value) or Path(value).is_absolute()
                   else str(path.parent / value))
    return out


__all__ = ["IMAGE_SUFFIXES", "Manifest", "expand", "is_url", "read_path_list"]
