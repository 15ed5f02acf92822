"""Each plot writes a PNG of sensible size, returns its path, and refuses bad input."""
from __future__ import annotations

import sys

import numpy as np
import pytest
from PIL import Image

from spinexr.errors import ConfigError, FileAccessError
from spinexr.evaluate import expected_calibration_error, roc_band
from spinexr.evaluate.plots import (plot_ap_per_class, plot_confusion, plot_p_spine, plot_pr,
                                    plot_reliability, plot_roc)

RNG = np.random.default_rng(0)
Y = RNG.integers(0, 2, 120)
P = np.clip(0.35 * Y + 0.65 * RNG.random(120), 0, 1)


def _check_png(path, min_side=300):
    with Image.open(path) as im:
        im.verify()
    with Image.open(path) as im:
        assert im.format == "PNG" and min(im.size) >= min_side and max(im.size) <= 3000
        # not blank: a real figure has many distinct colours
        assert len(im.convert("RGB").getcolors(1 << 20) or []) > 20


def test_roc_with_band_points_and_members(tmp_path):
    band = roc_band(Y, P, n_boot=50)
    out = plot_roc(Y, P, tmp_path / "roc.png", band=band, auroc_ci=[0.8, 0.9],
                   operating_points={"youden": 0.5, "sens90": 0.3},
                   others={"densenet121": np.clip(P + 0.1, 0, 1)}, label="ensemble")
    assert out == tmp_path / "roc.png"
    _check_png(out)


def test_pr_curve(tmp_path):
    _check_png(plot_pr(Y, P, tmp_path / "pr.png", operating_points={"youden": 0.5}))


def test_confusion_counts_and_normalized(tmp_path):
    cm = [[5, 1, 0], [2, 3, 1], [0, 0, 0]]   # an empty row shows '-' instead of dividing by 0
    _check_png(plot_confusion(cm, ["healthy", "doubtful", "minimal"], tmp_path / "c.png"))


def test_reliability_diagram(tmp_path):
    _check_png(plot_reliability(expected_calibration_error(Y, P), tmp_path / "r.png"))


def test_p_spine_histograms_with_thresholds_and_near_cases(tmp_path):
    p = np.where(Y == 1, P, 1 - P).astype(object)
    p[:5] = None                                      # refused before any model judged them
    near = np.arange(120) % 10 == 0
    out = plot_p_spine(p, Y == 1, tmp_path / "p.png", near=near,
                       thresholds={"refuse below": 0.3, "accept from": 0.7})
    _check_png(out)
    with pytest.raises(ConfigError, match="no image has a P"):
        plot_p_spine([None, np.nan], [True, False], tmp_path / "q.png")
    assert not (tmp_path / "q.png").exists()


def test_ap_per_class_with_a_class_without_ground_truth(tmp_path):
    per_class = {"Osteophytes": {"ap50": 0.41, "ap50_95": 0.18, "n_true": 40},
                 "Vertebral collapse": {"ap50": float("nan"), "ap50_95": float("nan"),
                                        "n_true": 0}}
    _check_png(plot_ap_per_class(per_class, tmp_path / "ap.png"), min_side=200)


@pytest.mark.parametrize("call, match", [
    (lambda d: plot_roc([1, 1, 1], [0.2, 0.5, 0.9], d / "r.png"), "both classes"),
    (lambda d: plot_roc(Y, P[:-1], d / "r.png"), "119"),
    (lambda d: plot_roc(Y, P, d / "r.png", operating_points={"x": 2.0}), "threshold 2.0"),
    (lambda d: plot_pr([0, 0], [0.1, 0.2], d / "p.png"), "positive samples"),
    (lambda d: plot_confusion([[1, 2, 3]], ["a"], d / "c.png"), "square"),
    (lambda d: plot_confusion([[1, 2], [3, 4]], ["a"], d / "c.png"), "1 names"),
    (lambda d: plot_confusion([[1, -2], [3, 4]], ["a", "b"], d / "c.png"), "non-negative"),
    (lambda d: plot_reliability({"ece": 0.1}, d / "r.png"), "bins"),
    (lambda d: plot_ap_per_class({}, d / "a.png"), "non-empty"),
    (lambda d: plot_ap_per_class({"A": {"ap50": 0.1}}, d / "a.png"), "ap50_95"),
    (lambda d: plot_roc(Y, P, d / "roc.jpg"), "ending in .png"),
])
def test_bad_input_is_refused_and_nothing_written(tmp_path, call, match):
    with pytest.raises(ConfigError, match=match):
        call(tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_missing_folder_is_named(tmp_path):
    with pytest.raises(FileAccessError, match="does not exist"):
        plot_pr(Y, P, tmp_path / "missing" / "pr.png")


def test_plotting_leaves_pyplot_and_the_backend_alone(tmp_path):
    import matplotlib

    backend = matplotlib.get_backend()
    plot_pr(Y, P, tmp_path / "pr.png")
    assert matplotlib.get_backend() == backend
    if "matplotlib.pyplot" in sys.modules:   # imported by something else: no figures left open
        assert sys.modules["matplotlib.pyplot"].get_fignums() == []


def test_importing_the_package_does_not_import_matplotlib():
    import subprocess

    code = ("import sys, spinexr.evaluate, spinexr.evaluate.plots; "
            "print('matplotlib' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
