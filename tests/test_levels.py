"""Level naming: hand-made geometry, and agreement with the phantoms' exact labels."""
from __future__ import annotations

from dataclasses import replace

import pytest

from spinexr.errors import ConfigError
from spinexr.levels import assign_levels, level_of, nearest_disc
from spinexr.phantom import XrayConfig, generate_xray
from spinexr.types import Box


def _column(n: int, top: float = 10, height: float = 30, gap: float = 10) -> list[Box]:
    return [Box(40, top + i * (height + gap), 80, top + i * (height + gap) + height, "Vertebra")
            for i in range(n)]


def test_lumbar_counts_up_from_the_sacrum_and_cervical_down_from_c2():
    boxes = _column(7)
    lumbar = assign_levels(list(reversed(boxes)), "lumbar")
    assert [b.level for b in lumbar] == ["T12", "L1", "L2", "L3", "L4", "L5", "S1"]
    assert lumbar[0].y1 == boxes[0].y1                     # ordered head to tail
    cervical = assign_levels(boxes, "cervical")
    assert [b.level for b in cervical] == ["C2", "C3", "C4", "C5", "C6", "C7", "T1"]
    assert [b.level for b in assign_levels(boxes[:2], "lumbar-no-sacrum")] == ["L4", "L5"]
    assert [b.level for b in assign_levels(boxes[:3], "thoracic")] == ["T10", "T11", "T12"]
    assert [b.level for b in assign_levels(boxes[:2], "whole")] == ["L4", "L5"]
    with pytest.raises(ConfigError, match="region 'sacral'"):
        assign_levels(boxes, "sacral")


def test_counted_names_say_what_was_assumed_and_are_unconfirmed():
    from spinexr.levels import counted_naming, guess_region

    naming = counted_naming("whole")
    assert not naming.confirmed and naming.region == "whole"
    assert naming.note == "levels counted, unconfirmed (lowest body taken as L5)"
    assert counted_naming("cervical").anchor == "top body taken as C2"
    assert guess_region(17, None) == "whole"
    assert guess_region(17, "cervical") == "cervical"
    assert guess_region(5, None) == "lumbar"
    assert guess_region(5, None, default="cervical") == "cervical"


def test_disc_and_vertebra_classes_by_hand():
    named = assign_levels(_column(3), "lumbar")            # L4 [10,40], L5 [50,80], S1 [90,120]
    dsn = Box(40, 40, 80, 50, "Disc space narrowing")      # in the L4/L5 gap
    assert level_of(dsn, named) == "L4-L5"
    spur = Box(78, 72, 90, 84, "Osteophytes")              # at the lower corner of L5
    assert level_of(spur, named) == "L5"
    assert nearest_disc(Box(40, 82, 80, 88, "x"), named) == "L5-S1"
    assert level_of(spur, []) is None
    fusion = Box(45, 20, 75, 110, "Surgical implant")      # hardware over L4, L5 and S1
    assert level_of(fusion, named) == "L4-S1"


def test_levels_agree_with_phantom_ground_truth():
    hits = total = 0
    for seed in range(40):
        ph = generate_xray(seed, XrayConfig(size=(512, 400), abnormal_rate=1.0))
        for lesion in ph.lesions:
            total += 1
            hits += level_of(replace(lesion, level=None), ph.vertebrae) == lesion.level
    assert total > 40
    assert hits / total >= 0.95, f"{hits}/{total} levels agree"
