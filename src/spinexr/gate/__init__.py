"""The input gate: decides whether an input is a spine radiograph before any model reads it.

Three outcomes (accepted, uncertain, refused), from image checks, the DICOM header
(:mod:`spinexr.gate.header`), the vertebra detector's evidence (:mod:`spinexr.gate.evidence`)
and a spine-vs-other classifier, fused and thresholded as fitted on validation data
(:mod:`spinexr.gate.decision`); :class:`~spinexr.gate.runtime.InputGate` runs it in batches.
See docs/gate.md.
"""
from spinexr.gate.decision import GateModel, decide, pick_thresholds
from spinexr.gate.evidence import ChainEvidence, chain_evidence
from spinexr.gate.header import HeaderEvidence, header_evidence
from spinexr.gate.runtime import GateSettings, GateVerdict, InputGate, image_checks

__all__ = ["ChainEvidence", "GateModel", "GateSettings", "GateVerdict", "HeaderEvidence",
           "InputGate", "chain_evidence", "decide", "header_evidence", "image_checks",
           "pick_thresholds"]
