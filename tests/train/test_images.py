"""Images are decoded once and cached at training resolution, keyed by file and preprocessing."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from spinexr.models.classifier import Preprocess, resize_to_input
from spinexr.train.images import cache_key, load_images, to_uint16
from spinexr.types import Sample


def _samples(tmp_path: Path, n: int = 3) -> list[Sample]:
    out = []
    for i in range(n):
        path = tmp_path / f"img{i}.raw"
        path.write_bytes(bytes([i]) * 8)
        out.append(Sample(image_id=f"img{i}", image_path=path, group=f"p{i // 2}", label=i % 2))
    return out


class _Decoder:
    def __init__(self):
        self.calls = 0

    def __call__(self, path: Path) -> np.ndarray:
        self.calls += 1
        seed = int(path.read_bytes()[0])
        return np.random.default_rng(seed).random((30 + seed, 20), dtype=np.float32)


def test_second_load_reads_the_cache_not_the_images(tmp_path):
    samples, decode = _samples(tmp_path), _Decoder()
    pre = Preprocess(16)
    first = load_images(samples, [0, 1, 0], pre, tmp_path / "cache", decode=decode,
                        progress=False)
    assert decode.calls == 3 and first.pixels.shape == (3, 16, 16)
    second = load_images(samples, [0, 1, 0], pre, tmp_path / "cache", decode=decode,
                         progress=False)
    assert decode.calls == 3
    np.testing.assert_array_equal(first.pixels, second.pixels)
    np.testing.assert_array_equal(first.pixels[1],
                                  to_uint16(resize_to_input(decode(samples[1].image_path), pre)))
    assert first.groups == ("p0", "p0", "p1") and first.targets.tolist() == [0, 1, 0]


def test_cache_key_follows_the_file_and_the_preprocessing(tmp_path):
    (sample,) = _samples(tmp_path, 1)
    key = cache_key(sample.image_path, Preprocess(16))
    assert key != cache_key(sample.image_path, Preprocess(32))
    assert key != cache_key(sample.image_path, Preprocess(16, resize="squash"))
    st = sample.image_path.stat()
    os.utime(sample.image_path, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    assert key != cache_key(sample.image_path, Preprocess(16))   # a changed file is re-read


def test_a_torn_cache_file_is_decoded_again(tmp_path):
    samples, decode = _samples(tmp_path, 1), _Decoder()
    pre = Preprocess(16)
    load_images(samples, [0], pre, tmp_path, decode=decode, progress=False)
    (tmp_path / f"{cache_key(samples[0].image_path, pre)}.npy").write_bytes(b"\x93NUMPY")
    again = load_images(samples, [0], pre, tmp_path, decode=decode, progress=False)
    assert decode.calls == 2 and again.pixels.shape == (1, 16, 16)


def test_batches_and_subsets(tmp_path):
    data = load_images(_samples(tmp_path), [0, 1, 0], Preprocess(16), None,
                       decode=_Decoder(), progress=False)
    batch = data.batch([2, 0])
    assert batch.shape == (2, 1, 16, 16) and str(batch.dtype) == "torch.float32"
    np.testing.assert_allclose(batch[0, 0].numpy(), data.pixels[2] / 65535.0, atol=1e-7)
    sub = data.subset([2])
    assert sub.ids == ("img2",) and len(sub) == 1
    with pytest.raises(ValueError, match="3 samples but 2 targets"):
        load_images(_samples(tmp_path), [0, 1], Preprocess(16), None, decode=_Decoder())
