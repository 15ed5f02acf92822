"""Training images decoded once and cached at training resolution.

Decoding a full-size DICOM costs 0.1-0.8 s on two cores (more than a CNN step), so each image
is read once through :func:`spinexr.io.read_radiograph`, resized by
:func:`~spinexr.models.classifier.resize_to_input` (the first half of the inference-time
``prepare``, so cached and served pixels are resampled identically) and stored as a uint16
``.npy`` file (quantisation step 1/65535, finer than any 16-bit detector) keyed by the file's
path, size, modification time and the :class:`~spinexr.models.classifier.Preprocess`. A second
run, a resumed run or another fold reads the small files instead.
"""
from __future__ import annotations

import hashlib
import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch

from spinexr.io import read_radiograph
from spinexr.models.classifier import Preprocess, resize_to_input
from spinexr.types import Sample

_SCALE = 65535.0
#: Bump when the cached representation changes; old files are then simply not found.
CACHE_VERSION = 1


@dataclass(frozen=True)
class ArrayData:
    """Cached training images with their targets, indexable in batches.

    A subset (a fold) shares the cached pixels of the whole set through ``rows``; nothing is
    copied until a batch is drawn.

    Attributes:
        pixels: uint16 (M, S, S): ``resize_to_input`` output times 65535, rounded.
        targets: int64 (N,) class index (or grade) of each image.
        ids: image id of each image.
        groups: group (patient / study) of each image.
        rows: (N,) row of ``pixels`` of each image; ``None``: all M rows in order (N = M).
    """

    pixels: np.ndarray
    targets: np.ndarray
    ids: tuple[str, ...]
    groups: tuple[str, ...]
    rows: np.ndarray | None = None

    def __len__(self) -> int:
        return int(self.targets.shape[0])

    def _rows(self, index: Sequence[int] | np.ndarray) -> np.ndarray:
        index = np.asarray(index, dtype=np.int64)
        return index if self.rows is None else self.rows[index]

    def batch(self, index: Sequence[int] | np.ndarray) -> torch.Tensor:
        """Float32 (B, 1, S, S) images in [0, 1] for images ``index`` (not normalised)."""
        rows = self._rows(index)
        return torch.from_numpy(self.pixels[rows].astype(np.float32) / _SCALE)[:, None]

    def subset(self, index: Sequence[int] | np.ndarray) -> ArrayData:
        """The images ``index`` (e.g. one fold), sharing this set's pixels."""
        index = np.asarray(index, dtype=np.int64)
        return ArrayData(self.pixels, self.targets[index], tuple(self.ids[i] for i in index),
                         tuple(self.groups[i] for i in index), self._rows(index))


def to_uint16(canvas: np.ndarray) -> np.ndarray:
    """Quantise a float canvas in [0, 1] to uint16 (the cache representation)."""
    return np.rint(np.clip(canvas, 0.0, 1.0) * _SCALE).astype(np.uint16)


def cache_key(path: Path, pre: Preprocess) -> str:
    """A stable name for one cached canvas: file identity + preprocessing."""
    st = path.stat()
    doc = {"v": CACHE_VERSION, "path": str(path.resolve()), "size": st.st_size,
           "mtime_ns": st.st_mtime_ns, "pre": pre.to_dict()}
    return hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()[:32]


def _decode(path: Path) -> np.ndarray:
    return read_radiograph(path).pixels


def cached_canvas(path: Path, pre: Preprocess, cache_dir: Path | None, *,
                  decode: Callable[[Path], np.ndarray] = _decode) -> np.ndarray:
    """The uint16 (S, S) canvas of one image file, from ``cache_dir`` or decoded and stored."""
    target = None
    if cache_dir is not None:
        target = cache_dir / f"{cache_key(path, pre)}.npy"
        if target.is_file():
            try:
                arr = np.load(target, allow_pickle=False)
                if arr.shape == (pre.input_size, pre.input_size) and arr.dtype == np.uint16:
                    return arr
            except (OSError, ValueError):
                pass  # a torn file from an interrupted run: decode again
    arr = to_uint16(resize_to_input(decode(path), pre))
    if target is not None:
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f"{target.stem}.{os.getpid()}.part.npy")
        np.save(tmp, arr, allow_pickle=False)
        os.replace(tmp, target)
    return arr


def load_images(samples: Sequence[Sample], targets: Sequence[int], pre: Preprocess,
                cache_dir: Path | None, *, progress: bool = True,
                decode: Callable[[Path], np.ndarray] = _decode) -> ArrayData:
    """Decode (or read from the cache) every sample's image at training resolution.

    Args:
        samples: the images to load, in order.
        targets: the class index of each sample.
        pre: the preprocessing of the model that will train on them.
        cache_dir: where canvases are kept between runs; ``None`` keeps nothing on disk.
        decode: path -> (H, W) float image in [0, 1] (default: :func:`read_radiograph`).
    """
    from tqdm import tqdm

    if len(samples) != len(targets):
        raise ValueError(f"{len(samples)} samples but {len(targets)} targets")
    s = pre.input_size
    pixels = np.empty((len(samples), s, s), dtype=np.uint16)
    for i, sample in enumerate(tqdm(samples, desc=f"cache {s}px", unit="img", file=sys.stderr,
                                    disable=None if progress else True, leave=False)):
        pixels[i] = cached_canvas(Path(sample.image_path), pre, cache_dir, decode=decode)
    return ArrayData(pixels=pixels, targets=np.asarray(targets, dtype=np.int64),
                     ids=tuple(x.image_id for x in samples),
                     groups=tuple(str(x.group) for x in samples))
