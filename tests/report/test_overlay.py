"""The overlay: class colours on the box edges, the synthetic banner, heatmap, downscaling."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from report_factory import (CONFIRMED, FINDINGS, UNCONFIRMED, make_analysis, make_refused,
                            make_uncertain)

from spinexr.errors import ConfigError
from spinexr.report import CLASS_COLORS, class_color, overlay, render_overlay
from spinexr.report.overlay import (BANNER_BACKGROUND, LEGEND_BACKGROUND, WARNING_BACKGROUND,
                                    blend_heatmap, colormap)
from spinexr.types import PackInfo

CLINICAL = PackInfo("real", "1.0", False)


def test_shape_dtype_and_input_untouched(radiograph, analysis):
    before = radiograph.pixels.copy()
    out = render_overlay(radiograph.pixels, analysis)
    assert out.shape == (256, 200, 3) and out.dtype == np.uint8 and out.flags.writeable
    np.testing.assert_array_equal(radiograph.pixels, before)


@pytest.mark.parametrize("i", range(len(FINDINGS)))
def test_box_edges_have_the_class_colour(radiograph, i):
    a = make_analysis(radiograph, pack=CLINICAL)
    out = render_overlay(radiograph.pixels, a)
    x1, y1, x2, y2, label, *_ = FINDINGS[i]
    mid = int((y1 + y2) / 2)
    colour = np.array(class_color(label), np.uint8)
    np.testing.assert_array_equal(out[mid, int(np.floor(x1))], colour)      # left edge
    np.testing.assert_array_equal(out[mid, int(np.ceil(x2)) - 1], colour)   # right edge
    inside = out[mid, int(x1) + 5]
    assert inside[0] == inside[1] == inside[2]                              # still grey


def test_class_colours_are_distinct_and_cover_the_classes():
    from spinexr.labels import LESION_CLASSES

    assert set(CLASS_COLORS) == set(LESION_CLASSES)
    assert len(set(CLASS_COLORS.values())) == len(LESION_CLASSES)


def test_synthetic_banner_only_for_synthetic_packs(radiograph, analysis):
    synthetic = render_overlay(radiograph.pixels, analysis)
    clinical = render_overlay(radiograph.pixels, make_analysis(radiograph, pack=CLINICAL))
    top = synthetic[:4]
    assert (top == np.array(BANNER_BACKGROUND, np.uint8)).all(axis=2).mean() > 0.9
    assert (synthetic[4:20].min(axis=2) > 180).sum() > 50                      # white text
    assert not np.array_equal(clinical[:4], top)


def test_heatmap_colours_only_the_hot_region(radiograph):
    a = make_analysis(radiograph, pack=CLINICAL, findings=())
    plain = render_overlay(radiograph.pixels, a).astype(int)
    hot = render_overlay(radiograph.pixels, a, heatmap=a.heatmaps[0], alpha=0.5).astype(int)
    np.testing.assert_array_equal(hot[:90], plain[:90])                     # heat 0: unchanged
    region = hot[110:150, 90:140]
    assert (region[..., 0] != region[..., 2]).mean() > 0.9                  # coloured
    expected = np.rint(plain[120, 100] * 0.5 + colormap(np.float32(1.0)) * 0.5)
    np.testing.assert_allclose(hot[120, 100], expected, atol=1)


def test_large_images_are_drawn_smaller_with_boxes_scaled(radiograph):
    a = make_analysis(radiograph, pack=CLINICAL)
    out = render_overlay(radiograph.pixels, a, max_side=128)
    assert out.shape == (128, 100, 3)
    x1, y1, x2, y2, label, *_ = FINDINGS[1]                                 # box 100..140
    np.testing.assert_array_equal(out[int((y1 + y2) / 4), 50], class_color(label))


def test_reduced_decode_pixels_still_get_source_boxes(radiograph):
    a = make_analysis(radiograph, pack=CLINICAL)
    half = radiograph.pixels[::2, ::2]
    out = render_overlay(half, a)
    assert out.shape == (128, 100, 3)
    np.testing.assert_array_equal(out[67, 50], class_color(FINDINGS[1][4]))


def test_blend_heatmap_resizes_and_checks_arguments():
    rgb = np.zeros((8, 6, 3), np.uint8)
    out = blend_heatmap(rgb, np.ones((4, 3), np.float32), alpha=1.0)
    np.testing.assert_array_equal(out[0, 0], [253, 231, 37])
    with pytest.raises(ConfigError, match="alpha"):
        blend_heatmap(rgb, np.ones((4, 3)), alpha=2.0)
    with pytest.raises(ConfigError, match="pixels must be"):
        render_overlay(np.zeros((4, 4, 3)), None)


def _share(row: np.ndarray, colour) -> float:
    """Fraction of the pixels of an (W, 3) row that have ``colour``."""
    return float((row == np.array(colour, np.uint8)).all(axis=1).mean())


def _drawn_labels(monkeypatch, pixels, a) -> list[str]:
    texts: list[str] = []
    real = overlay._label
    monkeypatch.setattr(overlay, "_label", lambda draw, rect, text, *rest:
                        texts.append(text) or real(draw, rect, text, *rest))
    render_overlay(pixels, a)
    return texts


def test_uncertain_input_gets_an_amber_warning_at_the_top(radiograph):
    out = render_overlay(radiograph.pixels, make_uncertain(radiograph, pack=CLINICAL,
                                                           levels=None))
    assert _share(out[1], WARNING_BACKGROUND) > 0.5
    assert (out[4:20].max(axis=2) < 60).sum() > 30                      # black text on it
    assert _share(out[-1], WARNING_BACKGROUND) == 0.0


def test_warning_goes_below_the_synthetic_banner(radiograph):
    out = render_overlay(radiograph.pixels, make_uncertain(radiograph, levels=None))
    assert _share(out[1], BANNER_BACKGROUND) > 0.9
    rows = [_share(r, WARNING_BACKGROUND) > 0.5 for r in out[:120]]
    first = rows.index(True)
    assert first > 10 and all(_share(r, BANNER_BACKGROUND) > 0.5 for r in out[1:first - 1])


def test_unconfirmed_levels_end_with_a_question_mark_and_get_a_legend(radiograph, monkeypatch):
    a = make_analysis(radiograph, pack=CLINICAL, levels=UNCONFIRMED)
    labels = _drawn_labels(monkeypatch, radiograph.pixels, a)
    assert sorted(labels) == sorted([f"{label} {score:.2f} {level}?"
                                     for *_, label, score, level in FINDINGS]
                                    + ["Triage ABNORMAL: P(abnormal) 0.83 >= 0.42",
                                       "degeneration: moderate (whole image)"])
    out = render_overlay(radiograph.pixels, a)
    assert _share(out[1], LEGEND_BACKGROUND) > 0.5
    assert _share(out[1], WARNING_BACKGROUND) == 0.0                     # accepted: no warning


def test_confirmed_levels_are_drawn_as_they_are_without_a_legend(radiograph, monkeypatch):
    a = make_analysis(radiograph, pack=CLINICAL, levels=CONFIRMED)
    assert "Osteophytes 0.91 L3" in _drawn_labels(monkeypatch, radiograph.pixels, a)
    plain = render_overlay(radiograph.pixels, make_analysis(radiograph, pack=CLINICAL))
    np.testing.assert_array_equal(render_overlay(radiograph.pixels, a), plain)


def test_refused_overlay_shows_no_caution(radiograph):
    a = dataclasses.replace(make_refused(radiograph), pack=CLINICAL, levels=UNCONFIRMED)
    out = render_overlay(radiograph.pixels, a)
    assert _share(out[1], LEGEND_BACKGROUND) == 0.0 and _share(out[1], WARNING_BACKGROUND) == 0.0


def test_long_cautions_wrap_to_the_width():
    from PIL import Image, ImageDraw

    draw = ImageDraw.Draw(Image.new("RGB", (10, 10)))
    font = overlay._font(12)
    text = "UNCERTAIN INPUT: spine content not confirmed (p_spine=0.55, between 0.30 and 0.80)"
    lines = overlay._wrap(draw, text, font, 120)
    assert len(lines) > 1 and " ".join(lines) == text
    for line in lines:
        x0, _, x1, _ = draw.textbbox((0, 0), line, font=font)
        assert x1 - x0 <= 120 or " " not in line
    assert overlay._ascii("p \u2014 ca\u00f1a \u2192") == "p - cana ?"
