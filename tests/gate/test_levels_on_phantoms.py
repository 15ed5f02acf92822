"""Level names through the committed gate on phantoms of every view and region, whose levels
are exact: the counted names agree with the ground truth where the detector finds the
column's assumed end, and every output says the names are counted, not confirmed."""
from __future__ import annotations

from pathlib import Path

import pytest

from spinexr.analyze import Analyzer
from spinexr.io import read_radiograph
from spinexr.models import load_pack
from spinexr.phantom import XrayConfig, generate_xray, xray_to_dicom
from spinexr.phantom.dicom import to_bytes

REPO = Path(__file__).resolve().parents[2]


def _iou(a, b) -> float:
    ix = max(0.0, min(a.x2, b.x2) - max(a.x1, b.x1))
    iy = max(0.0, min(a.y2, b.y2) - max(a.y1, b.y1))
    inter = ix * iy
    return inter / (a.width * a.height + b.width * b.height - inter)


@pytest.fixture(scope="module")
def analyzer():
    return Analyzer(load_pack(REPO / "models" / "vertebrae"))


@pytest.mark.slow
@pytest.mark.parametrize("view", ["lateral", "ap"])
@pytest.mark.parametrize("region", ["cervical", "lumbar"])
def test_counted_levels_on_phantoms_are_flagged_and_right_when_the_end_is_found(
        analyzer, view, region):
    """Names are counted from the column's assumed end (C2 at the top of a cervical film, S1
    at the bottom of a lumbar one) and always flagged as counted, unconfirmed. On lumbar
    phantoms, where the detector's lowest box is S1, every matched name is right; on cervical
    ones an extra box above C2 shifts them, which is what the flag warns about."""
    matched = right = anchored = 0
    for seed in range(6):
        ph = generate_xray(seed=7000 + seed, config=XrayConfig(view=view, region=region,
                                                               size=(900, 760)))
        a = analyzer.analyze(read_radiograph(to_bytes(xray_to_dicom(ph))))
        assert a.gate.accepted, a.gate.reason
        assert a.levels is not None and not a.levels.confirmed
        assert a.levels.region == region and "counted, unconfirmed" in a.levels.note
        end = a.vertebrae[0] if region == "cervical" else a.vertebrae[-1]
        truth = {t.level: t for t in ph.vertebrae}
        end_found = _iou(end, truth[end.level]) >= 0.5 if end.level in truth else False
        anchored += end_found
        for found in a.vertebrae:
            best = max(ph.vertebrae, key=lambda t: _iou(found, t))
            if _iou(found, best) >= 0.5:
                matched += 1
                right += found.level == best.level
                if end_found and region == "lumbar":
                    assert found.level == best.level, (seed, found, best)
    assert matched >= 6 * 5
    if region == "lumbar":   # the detector finds S1 on every lumbar phantom (measured: 100%)
        assert anchored == 6 and right / matched >= 0.9, f"{right} of {matched} levels right"
    # cervical: measured 7 of 44 (lateral) and about half (AP) right: the detector also boxes
    # the atlas / dens above C2 and doubles bodies, so counting from the top shifts the names;
    # the flag above is what keeps those names from being read as confirmed
