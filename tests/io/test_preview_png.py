"""save_png: 8-bit grayscale PNG of a normalized image, optionally shrunk."""
from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from spinexr.errors import ConfigError, SpinexrError
from spinexr.io import save_png


def test_writes_8_bit_gray_rounded(tmp_path):
    image = np.array([[0.0, 0.5, 1.0], [0.002, 0.998, 1.5]], dtype=np.float32)
    save_png(image, tmp_path / "a.png")
    with Image.open(tmp_path / "a.png") as png:
        assert png.mode == "L" and png.size == (3, 2)
        np.testing.assert_array_equal(np.asarray(png), [[0, 128, 255], [1, 254, 255]])


def test_max_side_shrinks_with_area_averaging(tmp_path):
    image = np.zeros((40, 100), np.float32)
    image[:, 50:] = 1.0
    save_png(image, tmp_path / "b.png", max_side=20)
    with Image.open(tmp_path / "b.png") as png:
        assert png.size == (20, 8)
        arr = np.asarray(png)
    assert (arr[:, :10] == 0).all() and (arr[:, 10:] == 255).all()
    save_png(image, tmp_path / "c.png", max_side=500)  # never enlarged
    with Image.open(tmp_path / "c.png") as png:
        assert png.size == (100, 40)


def test_bad_input_and_unwritable_path(tmp_path):
    with pytest.raises(ConfigError, match=r"\(H, W\) image"):
        save_png(np.zeros((2, 2, 3)), tmp_path / "x.png")
    with pytest.raises(ConfigError, match="max_side"):
        save_png(np.zeros((2, 2)), tmp_path / "x.png", max_side=0)
    with pytest.raises(SpinexrError, match="cannot write the PNG"):
        save_png(np.zeros((2, 2)), tmp_path / "missing" / "x.png")
