"""The writer protocol shared by every layout: a context manager that places image files at once
and writes annotation files when it closes.

Output is deterministic: the same samples and bytes added in the same order give byte-identical
files (no timestamps, sorted keys, fixed number formats).
"""
from __future__ import annotations

import re
from pathlib import Path
from types import TracebackType
from typing import Sequence

from spinexr.errors import ConfigError, DatasetError
from spinexr.types import Sample

from spinexr.data.base import check_image_id, check_suffix, image_size_of_bytes


class DatasetWriter:
    """Base of the layout writers; use :func:`spinexr.data.open_writer` to get one.

    Annotation files are written by :meth:`close` (called on leaving the ``with`` block without
    an exception). On an exception nothing is written, so a half-written dataset never looks
    complete; image files already placed stay.
    """

    layout = ""

    def __init__(self, root: Path | str, *, split: str = "train", classes: Sequence[str]) -> None:
        if not isinstance(split, str) or not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_-]*", split):
            raise ConfigError(f"split {split!r} must be a simple name such as 'train' or 'test'",
                              "split")
        classes = tuple(classes)
        if not classes or any(not isinstance(c, str) or not c.strip() or c != c.strip()
                              for c in classes) or len(set(classes)) != len(classes):
            raise ConfigError(f"classes {list(classes)!r} must be distinct non-empty names",
                              "classes")
        self.root = Path(root)
        self.split = split
        self.classes = classes
        self._ids: set[str] = set()
        self._closed = False
        self._refuse_existing()

    # -- protocol ------------------------------------------------------------------------------
    def __enter__(self) -> DatasetWriter:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if exc_type is None:
            self.close()
        else:
            self._closed = True

    def add(self, sample: Sample, image: bytes, suffix: str) -> Path:
        """Store ``image`` (encoded file bytes) for ``sample`` and return where it went.

        ``sample.image_path`` is ignored: the layout decides the path, from ``image_id``.

        Raises:
            ConfigError: a duplicate or unusable ``image_id``, a bad suffix, or boxes / labels
                that this layout cannot represent.
        """
        if self._closed:
            raise ConfigError("the writer is closed; open a new one", str(self.root))
        check_image_id(sample.image_id)
        check_suffix(suffix)
        if sample.image_id in self._ids:
            raise ConfigError(f"image_id {sample.image_id!r} was already added to this "
                              f"{self.layout} writer", "sample.image_id")
        self._check_sample(sample)
        path = self._image_path(sample, suffix)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(bytes(image))
        self._ids.add(sample.image_id)
        self._record(sample, path, bytes(image), suffix)
        return path

    def close(self) -> None:
        """Write the annotation files. Idempotent."""
        if not self._closed:
            self._closed = True
            self._write_annotations()

    # -- for subclasses ------------------------------------------------------------------------
    def _annotation_files(self) -> list[Path]:
        """Files this writer creates and must not find already there."""
        return []

    def _refuse_existing(self) -> None:
        for path in self._annotation_files():
            if path.exists() and (path.is_file() or any(path.iterdir())):
                raise DatasetError(f"already exists; refusing to overwrite a {self.layout} "
                                   f"'{self.split}' split: delete it or write elsewhere",
                                   str(path))

    def _check_sample(self, sample: Sample) -> None:
        for box in sample.boxes:
            if box.label not in self.classes:
                raise ConfigError(f"box class {box.label!r} of image {sample.image_id!r} is not "
                                  f"in the writer's classes {list(self.classes)}", "sample.boxes")

    def _image_path(self, sample: Sample, suffix: str) -> Path:
        raise NotImplementedError

    def _record(self, sample: Sample, path: Path, image: bytes, suffix: str) -> None:
        raise NotImplementedError

    def _write_annotations(self) -> None:
        raise NotImplementedError


def size_of(sample: Sample, image: bytes, suffix: str) -> tuple[int, int]:
    """``(width, height)``: from the sample when it has both, else from the image header."""
    if sample.width and sample.height:
        return int(sample.width), int(sample.height)
    try:
        return image_size_of_bytes(image, suffix)
    except DatasetError as exc:
        raise ConfigError(f"image {sample.image_id!r}: no width/height on the sample and "
                          f"{exc.reason}", "image") from exc
