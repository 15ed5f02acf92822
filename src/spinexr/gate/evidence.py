"""Image evidence for the input gate from the vertebra detector's boxes (pure geometry).

A spine radiograph shows vertebral bodies stacked head to tail. A whole-spine film shows
seventeen or more; a coned L5-S1 spot film shows two. So the evidence is not a count alone:
:func:`adjacent_pairs` counts pairs of bodies that sit one above the other with a disc space
between them (similar widths, centres aligned, a gap of at most one body height), which is
what a coned view still shows and a chest or limb film rarely does.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from spinexr.geometry import vertebra_chain
from spinexr.types import Box

#: Features the gate's fusion reads, in order (see :func:`features`).
FEATURES = ("classifier_logit", "log_chain", "log_confident", "top3_score", "adjacent_pairs")


@dataclass(frozen=True)
class ChainEvidence:
    """What the detector's boxes say.

    Attributes:
        detected: boxes found at the gate confidence.
        chain: bodies in the longest head-to-tail run (:func:`~spinexr.geometry.vertebra_chain`).
        confident: bodies of that run scoring at least ``strong_conf``.
        top3_score: mean score of the run's three best bodies (0 without any).
        adjacent_pairs: confident neighbours in the run with a disc space between them.
    """

    detected: int
    chain: int
    confident: int
    top3_score: float
    adjacent_pairs: int

    @property
    def coned_view(self) -> bool:
        """Two or more adjacent bodies with a disc between them, as a coned view shows."""
        return self.adjacent_pairs >= 1

    def as_checks(self) -> dict[str, float | int]:
        return {"vertebrae_detected": self.detected, "vertebra_chain": self.chain,
                "vertebra_chain_confident": self.confident,
                "vertebra_top3_score": round(self.top3_score, 4),
                "adjacent_body_pairs": self.adjacent_pairs}


def is_adjacent(upper: Box, lower: Box) -> bool:
    """``lower`` lies just below ``upper`` with a disc space between them: widths within a
    factor 1.7, centres less than one body width apart sideways, and the gap between them
    from -0.25 to 1.0 of the mean body height (small overlaps: tilted bodies, loose boxes)."""
    w = (upper.width + lower.width) / 2
    h = (upper.height + lower.height) / 2
    ratio = max(upper.width, lower.width) / max(min(upper.width, lower.width), 1e-6)
    gap = lower.y1 - upper.y2
    return (ratio <= 1.7 and abs(lower.center[0] - upper.center[0]) <= w
            and -0.25 * h <= gap <= 1.0 * h and lower.center[1] > upper.center[1])


def adjacent_pairs(chain: Sequence[Box], strong_conf: float) -> int:
    """Consecutive pairs of the (head-to-tail) run that are adjacent and both confident."""
    ordered = sorted(chain, key=lambda b: b.center[1])
    return sum(1 for u, v in zip(ordered, ordered[1:])
               if (u.score or 0) >= strong_conf and (v.score or 0) >= strong_conf
               and is_adjacent(u, v))


def chain_evidence(boxes: Sequence[Box], strong_conf: float = 0.5) -> tuple[ChainEvidence,
                                                                             list[Box]]:
    """The evidence of one image's detections, and the head-to-tail run it is based on."""
    chain = vertebra_chain(boxes)
    scores = sorted((b.score or 0.0 for b in chain), reverse=True)
    ev = ChainEvidence(detected=len(boxes), chain=len(chain),
                       confident=sum(s >= strong_conf for s in scores),
                       top3_score=float(np.mean(scores[:3])) if scores else 0.0,
                       adjacent_pairs=adjacent_pairs(chain, strong_conf))
    return ev, chain


def features(logit: float, ev: ChainEvidence) -> np.ndarray:
    """The fusion's input vector (order :data:`FEATURES`); the logit is clipped to +-12."""
    return np.array([float(np.clip(logit, -12.0, 12.0)), np.log1p(ev.chain),
                     np.log1p(ev.confident), ev.top3_score, np.log1p(ev.adjacent_pairs)],
                    dtype=np.float64)
