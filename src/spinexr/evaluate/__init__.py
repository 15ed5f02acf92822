"""Metrics (pure: arrays and boxes in, dicts out) and plots."""
from spinexr.evaluate.detection import coco_map

__all__ = ["coco_map"]
