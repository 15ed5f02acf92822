"""Plain clinical words for the technical names a pack and the gate use.

Operating points are named for what they do (``youden`` -> "balanced"), gate checks get a
title a clinician can read (``std`` -> "Contrast (spread of grey values)") and a formatted
value. The browser UI keeps the same words in ``service/static/dom.js`` (a test compares them).
Pure: names in, text out.
"""
from __future__ import annotations

from typing import Any

#: Pack operating-point names -> what they do. Unknown names are shown with spaces.
OPERATING_POINT_TITLES = {
    "youden": "balanced",
    "balanced": "balanced",
    "high_sensitivity": "high sensitivity",
    "sensitive": "high sensitivity",
    "high_specificity": "high specificity",
    "specific": "high specificity",
}

#: Gate check keys -> plain titles. Unknown keys are shown with spaces.
GATE_CHECK_TITLES = {
    "width": "Image width (pixels)",
    "height": "Image height (pixels)",
    "std": "Contrast (spread of grey values, 0-0.5)",
    "saturated": "Pixels pure black or white",
    "gray_levels": "Distinct grey levels",
    "header": "What the DICOM header says",
    "classifier_logit": "Spine classifier score (log-odds)",
    "level_region": "Spine region used to name levels",
    "vertebrae_detected": "Vertebrae detected",
    "vertebra_chain": "Vertebrae in the longest column",
    "vertebra_chain_confident": "Confident vertebrae in that column",
    "vertebra_top3_score": "Mean score of the 3 best vertebrae",
    "adjacent_body_pairs": "Adjacent vertebral body pairs",
}
#: Checks whose value is a fraction, shown as a percentage.
_PERCENT_CHECKS = frozenset({"saturated"})


def operating_point_title(name: str) -> str:
    """``"youden"`` -> ``"balanced"``, ``"high_sensitivity"`` -> ``"high sensitivity"``."""
    return OPERATING_POINT_TITLES.get(name, name.replace("_", " "))


def gate_check_title(key: str) -> str:
    """The plain title of a gate check (``"std"`` -> ``"Contrast (...)"``)."""
    return GATE_CHECK_TITLES.get(key, key.replace("_", " ").capitalize())


def gate_check_value(key: str, value: Any) -> str:
    """A gate check's value as shown: fractions as percentages, floats to 3 digits."""
    if isinstance(value, bool) or value is None:
        return {True: "yes", False: "no", None: "\u2013"}[value]
    if isinstance(value, float):
        return f"{100 * value:.1f}%" if key in _PERCENT_CHECKS else f"{value:.3g}"
    return str(value)


__all__ = ["GATE_CHECK_TITLES", "OPERATING_POINT_TITLES", "gate_check_title", "gate_check_value",
           "operating_point_title"]
