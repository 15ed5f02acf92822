"""The gate's calibrated decision: header evidence, image evidence and the spine classifier
combined into accepted / uncertain / refused, with a reason in plain words.

The image side is a logistic fusion (:class:`GateModel`) of the spine-vs-other classifier's
logit and the vertebra detector's evidence (:data:`~spinexr.gate.evidence.FEATURES`), fitted
on the validation split only; its two thresholds were chosen on validation images too
(``uncertain``: the lowest P(spine) still analysed; ``accept``: analysed without a warning).
An image in which the detector finds no vertebral evidence at all (:func:`has_column`) is
refused on the image side whatever P(spine) says.
The header then moves the decision, never past what the image allows:

* a header that names the spine: refused images become uncertain, uncertain become accepted;
* a header that names another body part: accepted only as uncertain, uncertain refused;
  near cases (pelvis, abdomen) keep "uncertain" when the image allows it;
* a header naming another modality (CT, MR, US, ...): refused.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Mapping, Sequence

import numpy as np

from spinexr.errors import ConfigError
from spinexr.gate.evidence import FEATURES, ChainEvidence


@dataclass(frozen=True)
class GateModel:
    """The fitted gate, stored in a pack's manifest as ``gate``.

    Attributes:
        classifier: key of the spine-vs-other classifier in the pack.
        detector: key of the vertebra detector in the pack.
        weights, bias: logistic fusion over ``features`` (P(spine) = sigmoid(w . f + b)).
        accept: P(spine) at or above which an input is accepted.
        uncertain: P(spine) at or above which (and below ``accept``) it is analysed with a
            warning; below it the input is refused.
        conf: detector confidence of the boxes the evidence counts.
        strong_conf: confidence of a "confident" body.
    """

    classifier: str
    detector: str
    weights: tuple[float, ...]
    bias: float
    accept: float
    uncertain: float
    features: tuple[str, ...] = FEATURES
    conf: float = 0.25
    strong_conf: float = 0.5

    def __post_init__(self) -> None:
        if tuple(self.features) != FEATURES or len(self.weights) != len(FEATURES):
            raise ConfigError(f"gate features {self.features} with {len(self.weights)} weights; "
                              f"this spinexr reads {FEATURES}", "gate")
        if not 0.0 <= self.uncertain <= self.accept <= 1.0:
            raise ConfigError(f"gate thresholds uncertain={self.uncertain} accept={self.accept}:"
                              " need 0 <= uncertain <= accept <= 1", "gate")

    def p_spine(self, feats: np.ndarray) -> np.ndarray:
        """P(spine) of each row of an (N, len(FEATURES)) feature array."""
        z = np.asarray(feats, np.float64) @ np.asarray(self.weights) + self.bias
        return 1.0 / (1.0 + np.exp(-z))

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["weights"], d["features"] = list(self.weights), list(self.features)
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> GateModel:
        known = set(cls.__dataclass_fields__)
        unknown = sorted(set(d) - known)
        if unknown:
            raise ConfigError(f"unknown gate settings {unknown}; known {sorted(known)}", "gate")
        values = dict(d)
        values["weights"] = tuple(float(w) for w in values["weights"])
        values["features"] = tuple(values.get("features", FEATURES))
        return cls(**values)


def _image_outcome(p: float, model: GateModel) -> str:
    if p >= model.accept:
        return "accepted"
    return "uncertain" if p >= model.uncertain else "refused"


def _what(ev: ChainEvidence) -> str:
    if ev.chain >= 5:
        return f"{ev.chain} vertebral bodies in a column"
    if ev.coned_view:
        return f"a coned view: {ev.adjacent_pairs + 1} adjacent vertebral bodies"
    return f"{ev.chain} vertebral bod{'y' if ev.chain == 1 else 'ies'} found"


#: Bodies in a column (at the gate's detector confidence) that count as image evidence.
MIN_COLUMN = 2


def has_column(ev: ChainEvidence) -> bool:
    """Whether the detector saw vertebral evidence at all: a coned view's two adjacent bodies,
    or a column of :data:`MIN_COLUMN` or more bodies at any confidence the gate counts (weakly
    detected lateral and oblique views keep their say). Without it, the image side refuses whatever
    the classifier says: a classifier trained on a few hundred real images is confidently
    wrong on images unlike any of them (photographs, CT slices), the detector is not."""
    return ev.coned_view or ev.chain >= MIN_COLUMN


def decide(p: float, ev: ChainEvidence, model: GateModel,
           header=None) -> tuple[str, str]:
    """The outcome (``accepted`` / ``uncertain`` / ``refused``) and its reason.

    Args:
        p: the image's P(spine) from :meth:`GateModel.p_spine`.
        ev: the detector evidence.
        model: thresholds.
        header: a :class:`~spinexr.gate.header.HeaderEvidence` or ``None`` (raster input).
    """
    image = _image_outcome(p, model) if has_column(ev) else "refused"
    seen = f"P(spine) {p:.2f}, {_what(ev)}"
    verdict = getattr(header, "verdict", "unknown")
    said = getattr(header, "reason", "")
    if getattr(header, "modality", "unknown") == "other":
        return "refused", f"not a radiograph: {said}"
    if verdict == "spine":
        outcome = {"refused": "uncertain", "uncertain": "accepted"}.get(image, image)
    elif verdict == "other":
        near = bool(getattr(header, "near_case", False))
        outcome = {"accepted": "uncertain",
                   "uncertain": "uncertain" if near else "refused"}.get(image, image)
    else:
        outcome = image
    if outcome == "refused" and not has_column(ev) and verdict != "other":
        return outcome, f"not a spine radiograph: no column of vertebral bodies found ({seen})"
    return outcome, _reason(outcome, image, seen, verdict, said)


def _reason(outcome: str, image: str, seen: str, verdict: str, said: str) -> str:
    if outcome == "accepted":
        extra = f"; {said}" if verdict == "spine" else ""
        return f"spine radiograph ({seen}){extra}"
    if outcome == "refused":
        if verdict == "other":
            return f"not a spine radiograph: {said} ({seen})"
        return f"not a spine radiograph ({seen})"
    if verdict == "spine":
        return (f"uncertain input: {said}, but the image could not confirm it ({seen}); "
                "analysed anyway: check that this is a spine radiograph")
    if verdict == "other":
        return (f"uncertain input: {said}, but the image looks like a spine radiograph "
                f"({seen}); analysed anyway: check the body part")
    return (f"uncertain input: could not confirm a spine radiograph ({seen}); analysed anyway: "
            "check that this is a spine radiograph")


def pick_thresholds(p_other, p_spine: Sequence[float] = (), *,
                    max_uncertain_fp: float = 0.02, max_accept_fp: float = 0.0,
                    margin: float = 0.02) -> tuple[float, float]:
    """(uncertain, accept) thresholds from validation P(spine) values of non-spine images.

    ``p_other`` is a sequence, or a mapping source -> sequence (then each source is held to the
    rates on its own, so that many easy generated negatives cannot let a few real ones
    through). ``uncertain``: the lowest threshold letting through at most ``max_uncertain_fp``
    of the non-spine images (of each source); ``accept``: the same for ``max_accept_fp``
    (0: above every non-spine image); each raised by ``margin`` (capped below 1), and
    ``accept`` never below ``uncertain``. ``p_spine`` is accepted for symmetry (unused: the
    thresholds are set by the errors they allow on non-spine images).
    """
    groups = dict(p_other) if isinstance(p_other, Mapping) else {"all": p_other}
    groups = {k: np.sort(np.asarray(v, np.float64))[::-1] for k, v in groups.items()}
    if not any(g.size for g in groups.values()):
        raise ConfigError("no non-spine validation images to set the gate thresholds", "gate")

    def threshold(neg: np.ndarray, rate: float) -> float:
        k = int(np.floor(rate * neg.size))      # negatives allowed at or above it
        base = neg[k] if k < neg.size else 0.0
        return float(min(base + max(margin, 1e-9), 0.999))   # strictly above neg[k]

    uncertain = max(threshold(g, max_uncertain_fp) for g in groups.values() if g.size)
    accept = max([threshold(g, max_accept_fp) for g in groups.values() if g.size] + [uncertain])
    return uncertain, accept
