"""Metrics (pure: arrays and boxes in, dicts out) and plots (:mod:`spinexr.evaluate.plots`,
imported on use so that metrics never pull in matplotlib)."""
from spinexr.evaluate.calibration import (brier_score, calibration_metrics,
                                          expected_calibration_error)
from spinexr.evaluate.classification import (auroc, auroc_ci, binary_metrics, bootstrap_indices,
                                             grade_metrics, operating_point_metrics,
                                             quadratic_kappa, roc_band, threshold_metrics)
from spinexr.evaluate.detection import coco_map
from spinexr.evaluate.gate import gate_confusion, gate_metrics, wilson_interval
from spinexr.evaluate.stenosis import StenosisTruth, stenosis_metrics

__all__ = [
    "StenosisTruth",
    "auroc",
    "auroc_ci",
    "binary_metrics",
    "bootstrap_indices",
    "brier_score",
    "calibration_metrics",
    "coco_map",
    "expected_calibration_error",
    "gate_confusion",
    "gate_metrics",
    "grade_metrics",
    "operating_point_metrics",
    "quadratic_kappa",
    "roc_band",
    "stenosis_metrics",
    "threshold_metrics",
    "wilson_interval",
]
