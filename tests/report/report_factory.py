"""Hand-built analyses for the report tests (a module of its own: test directories have no
packages, so helpers are imported by their unique module name)."""
from __future__ import annotations

from dataclasses import replace

import numpy as np

from spinexr.types import (Analysis, Box, Finding, GateResult, Grade, Heatmap, LevelNaming,
                           PackInfo, Radiograph, TriageResult)

#: (x1, y1, x2, y2, label, score, level): three classes, a vertebra and a disc level.
FINDINGS = (
    (20.5, 30.25, 60.0, 70.0, "Osteophytes", 0.91, "L3"),
    (100.0, 120.0, 140.0, 150.0, "Disc space narrowing", 0.62, "L4-L5"),
    (12.0, 200.0, 52.0, 250.0, "Spondylolisthesis", 0.44, "L5"),
)
PACK = PackInfo("demo-phantom", "0.3.1", True)
#: Level names counted from an assumed end of the column, and anchored on a landmark.
UNCONFIRMED = LevelNaming(False, "lowest body taken as L5", "lumbar")
CONFIRMED = LevelNaming(True, "sacrum", "lumbar")
UNCERTAIN_REASON = "spine content not confirmed (p_spine=0.55, between 0.30 and 0.80)"


def make_analysis(image: Radiograph, *, findings=FINDINGS, pack: PackInfo = PACK,
                  heatmap: bool = True, levels: LevelNaming | None = None) -> Analysis:
    sp = image.spacing_mm
    made = tuple(Finding(Box(x1, y1, x2, y2, label, score, level),
                         None if sp is None else ((x2 - x1) * sp[1], (y2 - y1) * sp[0]))
                 for x1, y1, x2, y2, label, score, level in findings)
    heat = np.zeros((image.height, image.width), np.float32)
    heat[100:160, 80:150] = 1.0
    return Analysis(
        image_id=image.image_id, source=image.source, image_size=(image.width, image.height),
        spacing_mm=sp, pack=pack,
        gate=GateResult(True, "spine radiograph (p=0.98)", {"p_spine": np.float32(0.98),
                                                            "size": (image.width, image.height)}),
        triage=TriageResult(0.83, True, "balanced", 0.42,
                            {"densenet121": 0.80, "resnet50": 0.86},
                            {"balanced": True, "high_specificity": False}),
        findings=made,
        vertebrae=(Box(90.0, 100.0, 120.0, 118.0, "Vertebra", 0.97, "L3"),),
        grades=(Grade("degeneration", "moderate", 3,
                      {"healthy": 0.05, "doubtful": 0.1, "minimal": 0.2, "moderate": 0.5,
                       "severe": 0.15}),),
        heatmaps=(Heatmap("gradcam", "abnormal", heat, "densenet121"),) if heatmap else (),
        timings={"read": 0.01, "triage": 0.2}, levels=levels)


def make_uncertain(image: Radiograph, *, reason: str = UNCERTAIN_REASON,
                   levels: LevelNaming | None = UNCONFIRMED, **kwargs) -> Analysis:
    """An analysed input the gate could not confirm (p_spine 0.55), levels counted,
    unconfirmed unless ``levels`` says otherwise; other arguments as :func:`make_analysis`."""
    a = make_analysis(image, levels=levels, **kwargs)
    return replace(a, gate=GateResult(True, reason, {"p_spine": 0.55}, uncertain=True,
                                      p_spine=0.55))


def make_refused(image: Radiograph, reason: str = "not a spine radiograph (p_spine=0.03)"):
    return Analysis(image_id=image.image_id, source=image.source,
                    image_size=(image.width, image.height), spacing_mm=image.spacing_mm,
                    pack=PACK, gate=GateResult(False, reason, {"p_spine": 0.03}))
