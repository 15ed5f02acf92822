"""Mutated real DICOM bytes: the reader returns a valid Radiograph or raises SpinexrError only."""
from __future__ import annotations

import functools
from pathlib import Path

import numpy as np
import pytest
from dicom_factory import ANY_MODALITY
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from spinexr.errors import SpinexrError
from spinexr.io import read_radiograph

#: One small real file per decoder path: native, RLE, JPEG-LS (lossless, near-lossless),
#: deflated, 12-bit JPEG via gdcm, JPEG lossless via gdcm, JPEG 2000 via openjpeg (full and
#: reduced), and a file with neither meta nor pixels.
FILES = ("CR1_6154", "MR_small_RLE.dcm", "JLSL_08_07_0_1F.dcm", "JPEGLSNearLossless_16.dcm",
         "image_dfl.dcm", "JPGExtended.dcm", "JPEG-LL.dcm", "693_J2KR.dcm", "vlut_04.dcm",
         "ExplVR_BigEndNoMeta.dcm")

flips = st.tuples(st.just("flip"), st.booleans(),
                  st.lists(st.tuples(st.integers(0, 1 << 30), st.integers(0, 7)),
                           min_size=1, max_size=24))
truncation = st.tuples(st.just("truncate"), st.floats(0.0, 1.0))
splice = st.tuples(st.just("splice"), st.integers(0, 4096), st.integers(1, 96),
                   st.integers(0, 4096))
overwrite = st.tuples(st.just("overwrite"), st.integers(0, 4096), st.binary(min_size=1, max_size=8))


@functools.cache
def _real_bytes(directory: str, name: str) -> bytes:
    return (Path(directory) / name).read_bytes()


def _mutate(data: bytes, mutation: tuple) -> bytes:
    out = bytearray(data)
    kind = mutation[0]
    if kind == "flip":
        _, header_only, bits = mutation
        span = min(len(out), 2048) if header_only else len(out)
        for position, bit in bits:
            out[position % span] ^= 1 << bit
    elif kind == "truncate":
        del out[int(mutation[1] * len(out)):]
    elif kind == "splice":  # copy a slice of header bytes somewhere else in the header
        _, src, length, dst = mutation
        out[dst % len(out): dst % len(out)] = out[src % len(out): src % len(out) + length]
    else:
        _, at, payload = mutation
        at %= len(out)
        out[at: at + len(payload)] = payload
    return bytes(out)


@pytest.mark.filterwarnings("ignore::UserWarning")  # pydicom warns about the damage it sees
@settings(max_examples=150, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(name=st.sampled_from(FILES), mutation=st.one_of(flips, truncation, splice, overwrite),
       reduce=st.sampled_from([0, 0, 1, 2]))
def test_mutated_real_files_fail_only_with_spinexr_errors(dicom_dir, name, mutation, reduce):
    data = _mutate(_real_bytes(str(dicom_dir), name), mutation)
    try:
        image = read_radiograph(data, policy=ANY_MODALITY, reduce=reduce, name=name)
    except SpinexrError as exc:
        assert str(exc).startswith(f"{name}: ")
        return
    px = image.pixels
    assert px.dtype == np.float32 and px.ndim == 2 and not px.flags.writeable
    assert np.isfinite(px).all() and 0.0 <= px.min() and px.max() <= 1.0
    h, w = image.info.stored_shape
    assert px.shape == (-(-h // 2**reduce), -(-w // 2**reduce))
