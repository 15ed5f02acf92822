"""Read the next batch of files while the current one is analysed.

Decoding (JPEG 2000 above all: openjpeg holds the GIL for the whole decode) costs as much as
inference on a CPU, so :func:`read_batches` reads batch i + 1 in worker *processes* while the
caller runs the models on batch i. Workers return what :func:`read_radiograph` returned, or the
reason it refused the file: an unreadable file never stops the batch.
"""
from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Sequence

from spinexr.errors import SpinexrError
from spinexr.io.reader import read_radiograph
from spinexr.types import Radiograph

#: Imported once by the fork server before it forks the workers (spares each worker the import).
WORKER_PRELOAD = ["spinexr.io.reader", "spinexr.io.dicom", "spinexr.io.raster"]


@dataclass(frozen=True)
class ReadResult:
    """One file: the radiograph, or the reason it could not be read (``error``, with the
    reader's error ``error_code``, e.g. ``not_an_image``)."""

    path: Path
    image: Radiograph | None
    error: str | None = None
    started: float = 0.0        # time.perf_counter() when the read started (same clock
    seconds: float = 0.0        # across processes on Linux: CLOCK_MONOTONIC)
    error_code: str | None = None


def read_one(src: str | os.PathLike | bytes, kwargs: dict[str, Any] | None = None, *,
             label: str | None = None) -> ReadResult:
    """``read_radiograph(src, **kwargs)`` as a :class:`ReadResult` (never raises
    :class:`~spinexr.errors.SpinexrError`). For bytes, ``path`` is ``Path(label)``."""
    t0 = time.perf_counter()
    try:
        image, error, code = read_radiograph(src, **(kwargs or {})), None, None
    except SpinexrError as exc:
        image, error, code = None, exc.reason, exc.code
    where = Path(label or "upload") if isinstance(src, (bytes, bytearray, memoryview)) \
        else Path(src)
    return ReadResult(where, image, error, t0, time.perf_counter() - t0, code)


def read_batches(paths: Sequence[str | os.PathLike], batch: int, *,
                 kwargs: dict[str, Any] | None = None, workers: int = 2
                 ) -> Iterator[list[ReadResult]]:
    """Yield the files in batches of ``batch``, reading the next batch meanwhile.

    ``workers`` processes read (``0``: read in this process, one batch at a time). Worker
    processes start from a fork server, so the caller's threads (torch, ONNX Runtime) are not
    forked. Results come back in the order of ``paths``.
    """
    batch = max(1, int(batch))
    chunks = [list(paths[i:i + batch]) for i in range(0, len(paths), batch)]
    if not chunks:
        return
    if workers <= 0 or len(chunks) == 1:
        for chunk in chunks:
            yield [read_one(p, kwargs) for p in chunk]
        return
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    # Results carry pydicom datasets: the pool's result thread imports pydicom to unpickle them.
    # Import it here first, or that thread and the caller's first pydicom import (e.g. the
    # report writers) race and one gets "partially initialized module 'pydicom.dataset'".
    import spinexr.io.dicom  # noqa: F401

    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(WORKER_PRELOAD)
    with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
        pending = [pool.submit(read_one, p, kwargs) for p in chunks[0]]
        for i in range(len(chunks)):
            done = [f.result() for f in pending]
            if i + 1 < len(chunks):
                pending = [pool.submit(read_one, p, kwargs) for p in chunks[i + 1]]
            yield done
