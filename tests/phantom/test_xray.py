"""generate_xray: determinism, label consistency, and labels that the pixels carry."""
from __future__ import annotations

import dataclasses
import itertools
import time

import numpy as np
import pytest
from phantom_helpers import SMALL, overlaps

from spinexr.errors import ConfigError
from spinexr.labels import (
    CERVICAL_CLASSES, LESION_CLASSES, LESION_FREQUENCY, VERTEBRA_CLASS, VERTEBRAL_LEVELS,
)
from spinexr.phantom import XrayConfig, generate_xray, render_display
from spinexr.phantom.anatomy import FOV_MM
from spinexr.phantom.lesions import DEGENERATIVE
from spinexr.phantom.xray import _geometry

COMBOS = list(itertools.product(("lateral", "ap"), ("lumbar", "cervical")))


def small(**kw) -> XrayConfig:
    return XrayConfig(size=SMALL, **kw)


@pytest.fixture(scope="module")
def many():
    """24 abnormal-heavy phantoms over every view and region."""
    out = []
    for seed in range(24):
        view, region = COMBOS[seed % 4]
        out.append(generate_xray(seed, small(view=view, region=region, abnormal_rate=0.8)))
    return out


def test_same_seed_gives_identical_phantoms():
    a, b = generate_xray(11, small()), generate_xray(11, small())
    np.testing.assert_array_equal(a.stored, b.stored)
    assert (a.lesions, a.vertebrae, a.window, a.patient, a.uids, a.photometric) == (
        b.lesions, b.vertebrae, b.window, b.patient, b.uids, b.photometric)


def test_different_seeds_differ():
    a, b = generate_xray(1, small(view="ap", region="lumbar")), generate_xray(
        2, small(view="ap", region="lumbar"))
    assert not np.array_equal(a.stored, b.stored)
    assert a.uids.study != b.uids.study and a.patient.name != b.patient.name


def test_stored_is_12_bit_uint16_and_read_only(many):
    for ph in many:
        assert ph.stored.dtype == np.uint16 and ph.stored.shape == SMALL
        assert int(ph.stored.max()) <= 4095
        assert not ph.stored.flags.writeable
        assert ph.photometric in ("MONOCHROME1", "MONOCHROME2")


def test_boxes_are_valid_and_inside(many):
    for ph in many:
        for box in ph.lesions + ph.vertebrae:
            assert box.is_valid(ph.width, ph.height), (ph.seed, box)
        assert {b.label for b in ph.lesions} <= set(LESION_CLASSES)
        assert {b.label for b in ph.vertebrae} == {VERTEBRA_CLASS}


def test_vertebra_levels_run_top_to_bottom(many):
    for ph in many:
        levels = [b.level for b in ph.vertebrae]
        assert levels == sorted(levels, key=VERTEBRAL_LEVELS.index)
        ys = [b.center[1] for b in ph.vertebrae]
        assert ys == sorted(ys), (ph.seed, levels)
        expected = ("C2", "C7") if ph.region == "cervical" else ("L1", "L5")
        assert set(expected) <= set(levels)


def test_lesions_sit_on_the_level_they_name(many):
    for ph in many:
        by_level = {b.level: b for b in ph.vertebrae}
        for les in ph.lesions:
            named = [by_level[lv] for lv in les.level.split("-")]
            assert any(overlaps(les, v, slack=1.0) for v in named), (ph.seed, les)


def test_image_labels_agree_with_lesions(many):
    assert any(ph.abnormal for ph in many) and any(not ph.abnormal for ph in many)
    for ph in many:
        assert ph.abnormal == bool(ph.lesions)
        degenerative = [s for b, s in zip(ph.lesions, ph.severities) if b.label in DEGENERATIVE]
        assert (ph.degeneration == 0) == (not degenerative)
        if degenerative:
            assert ph.degeneration == min(4, max(degenerative) + (len(degenerative) >= 3))
        kinds = {b.label for b in ph.lesions}
        if ph.region == "lumbar":
            assert ph.cervical == 0
        elif ph.cervical == 1:
            assert "Vertebral collapse" in kinds
        elif ph.cervical == 2:
            assert "Spondylolisthesis" in kinds
        assert ph.grades == {"triage": int(ph.abnormal), "degeneration": ph.degeneration,
                             "cervical": ph.cervical}


def test_abnormal_rate_zero_and_frequency_one_class():
    for seed in range(6):
        ph = generate_xray(seed, small(region="lumbar", abnormal_rate=0.0))
        assert not ph.lesions and not ph.abnormal and ph.degeneration == 0
        only = small(region="lumbar", abnormal_rate=1.0, lesion_frequency={"Other lesions": 1})
        ph = generate_xray(seed, only)
        assert ph.lesions and {b.label for b in ph.lesions} == {"Other lesions"}


def test_labels_do_not_change_acquisition():
    """Normal and abnormal images share acquisition: only the lesions differ."""
    for seed in range(4):
        a = generate_xray(seed, small(abnormal_rate=0.0))
        b = generate_xray(seed, small(abnormal_rate=1.0))
        assert (a.view, a.region, a.photometric, a.spacing_mm, a.patient, a.modality) == (
            b.view, b.region, b.photometric, b.spacing_mm, b.patient, b.modality)


def test_monochrome1_is_the_inverse_of_monochrome2():
    m1 = generate_xray(5, small(monochrome1_rate=1.0))
    m2 = generate_xray(5, small(monochrome1_rate=0.0))
    assert (m1.photometric, m2.photometric) == ("MONOCHROME1", "MONOCHROME2")
    np.testing.assert_array_equal(m1.stored.astype(int), 4095 - m2.stored.astype(int))
    assert m1.window == (4096 - m2.window[0], m2.window[1])
    np.testing.assert_allclose(render_display(m1), render_display(m2), atol=1e-6)


def test_default_sizes_and_spacing_are_realistic():
    rng_seeds = range(200)
    for seed, (view, region) in zip(rng_seeds, itertools.cycle(COMBOS)):
        (h, w), spacing = _geometry(np.random.default_rng(seed), region, view, None)
        assert 1200 <= h <= 3000 and 1200 <= w <= 3000
        assert 0.1 <= spacing <= 0.2
        assert FOV_MM[region][0] - 1 <= h * spacing <= FOV_MM[region][1] + 1


def test_given_size_keeps_anatomy_in_mm(many):
    for ph in many:
        lo, hi = FOV_MM[ph.region]
        assert lo <= ph.height * ph.spacing_mm[0] <= hi
        assert ph.spacing_mm[0] == ph.spacing_mm[1]


def test_patient_is_obviously_fake(many):
    for ph in many[:4]:
        assert ph.patient.name == f"PHANTOM^Seed{ph.seed:04d}"
        assert ph.patient.patient_id.startswith("PHANTOM-")
        assert ph.patient.sex in ("M", "F", "O")
        assert ph.patient.age.endswith("Y") and 18 <= int(ph.patient.age[:3]) <= 90
        assert ph.patient.birth_date < ph.study_time.date


@pytest.mark.parametrize("kw,match", [
    ({"view": "oblique"}, "view"), ({"region": "thoracic"}, "region"),
    ({"size": (10, 10)}, "size"), ({"abnormal_rate": 1.5}, "abnormal_rate"),
    ({"lesion_frequency": {"Fracture": 1.0}}, "unknown classes"),
    ({"force_lesions": ("Tumour",)}, "force_lesions"), ({"degeneration": 5}, "degeneration"),
    ({"region": "lumbar", "cervical": 1}, "cervical"),
])
def test_bad_config_is_refused(kw, match):
    with pytest.raises(ConfigError, match=match):
        XrayConfig(**kw)


def test_bad_seed_is_refused():
    with pytest.raises(ConfigError, match="seed"):
        generate_xray(-1)


def test_default_frequency_is_vindr_shaped():
    cfg = XrayConfig()
    assert dict(cfg.lesion_frequency) == LESION_FREQUENCY
    assert cfg.lesion_frequency["Osteophytes"] > 40 * cfg.lesion_frequency["Vertebral collapse"]


@pytest.mark.parametrize("grade", range(5))
def test_forced_degeneration_grade(grade):
    ph = generate_xray(3, small(region="lumbar", degeneration=grade, abnormal_rate=0.0))
    assert ph.degeneration == grade
    assert ph.abnormal == (grade > 0)


@pytest.mark.parametrize("cls", range(len(CERVICAL_CLASSES)))
def test_forced_cervical_class(cls):
    ph = generate_xray(4, small(cervical=cls, abnormal_rate=0.0, view="lateral"))
    assert ph.region == "cervical" and ph.cervical == cls
    if cls == 1:
        assert "Vertebral collapse" in {b.label for b in ph.lesions}


def test_dataclass_is_frozen():
    ph = generate_xray(0, small())
    with pytest.raises(dataclasses.FrozenInstanceError):
        ph.view = "ap"  # type: ignore[misc]


@pytest.mark.slow
def test_full_size_timing():
    """Times one default (full-size) image; asserts nothing about speed (see benchmarks)."""
    generate_xray(0, XrayConfig(view="lateral", region="lumbar"))     # warm caches
    t0 = time.perf_counter()
    ph = generate_xray(1, XrayConfig(view="lateral", region="lumbar"))
    dt = time.perf_counter() - t0
    print(f"\nfull-size phantom {ph.height}x{ph.width}: {dt:.2f} s")
    assert 1200 <= ph.height <= 3000
