"""Reading ahead: batches in order, unreadable files reported (never raised), same pixels from
worker processes as from the main process."""
from __future__ import annotations

import numpy as np
import pytest

from spinexr.io.prefetch import read_batches, read_one
from spinexr.phantom import XrayConfig, generate_xray, xray_to_dicom


@pytest.fixture()
def files(tmp_path):
    paths = []
    for seed in range(3):
        path = tmp_path / f"p{seed}.dcm"
        xray_to_dicom(generate_xray(seed, XrayConfig(size=(160, 128)))).save_as(
            path, enforce_file_format=True)
        paths.append(path)
    bad = tmp_path / "notes.txt"
    bad.write_text("not an image")
    return [paths[0], bad, paths[1], paths[2]]


def test_read_one_reports_the_reason_instead_of_raising(files):
    ok, bad = read_one(files[0]), read_one(files[1])
    assert ok.error is None and ok.image.pixels.shape == (160, 128) and ok.seconds > 0
    assert bad.image is None and "not DICOM" in bad.error


@pytest.mark.parametrize("workers", [0, 2])
def test_batches_keep_the_order_and_the_pixels(files, workers):
    got = list(read_batches(files, 3, workers=workers, kwargs={"min_side": 64}))
    assert [len(b) for b in got] == [3, 1]
    flat = [r for b in got for r in b]
    assert [r.path for r in flat] == files
    assert flat[1].image is None and flat[1].error
    for r, path in zip(flat, files):
        if r.image is not None:
            np.testing.assert_array_equal(r.image.pixels,
                                          read_one(path, {"min_side": 64}).image.pixels)
            assert r.image.source.study_instance_uid    # the header travelled too
    assert list(read_batches([], 4)) == []
