"""Histogram equalisation of the input contract: hand-checked values, no mutation."""
from __future__ import annotations

import numpy as np
import pytest

from spinexr.errors import ConfigError
from spinexr.io.contrast import apply_preprocess, equalize_histogram


def test_equal_counts_map_to_evenly_spaced_levels():
    x = np.repeat(np.array([0.1, 0.2, 0.7, 0.9], np.float32), 25).reshape(10, 10)
    out = equalize_histogram(x)
    # cumulative counts 25, 50, 75, 100; the darkest level maps to 0: (c - 25) / 75
    np.testing.assert_allclose(np.unique(out), [0.0, 1 / 3, 2 / 3, 1.0], atol=1e-6)
    assert out.dtype == np.float32 and x[0, 0] == np.float32(0.1)      # input untouched


def test_equalisation_is_nearly_idempotent_and_constant_images_give_zeros():
    rng = np.random.default_rng(0)
    x = rng.beta(2, 5, size=(64, 64)).astype(np.float32)
    once = equalize_histogram(x)
    np.testing.assert_allclose(equalize_histogram(once), once, atol=2e-3)
    # equalised values are spread evenly: the mean of a uniform distribution
    assert abs(float(once.mean()) - 0.5) < 0.02
    assert not equalize_histogram(np.full((8, 8), 0.4, np.float32)).any()


def test_unknown_preprocess_names_are_refused():
    x = np.zeros((4, 4), np.float32)
    assert apply_preprocess(x, None) is x and apply_preprocess(x, "none") is x
    with pytest.raises(ConfigError, match="'clahe'"):
        apply_preprocess(x, "clahe")
