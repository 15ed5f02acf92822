"""ultralytics label lines: one ``class cx cy w h`` row per box, normalised to the image."""
from __future__ import annotations

from typing import Mapping


def mapped(label: str, class_map: Mapping[str, str]) -> str:
    """A dataset class name as the model's class (unchanged when the map does not name it)."""
    return class_map.get(label, label)


def yolo_line(box, index: int, width: float, height: float) -> str:
    """The label row of ``box`` (pixels of a ``width`` x ``height`` image) for class ``index``."""
    cx, cy = (box.x1 + box.x2) / 2 / width, (box.y1 + box.y2) / 2 / height
    return f"{index} {cx:.6f} {cy:.6f} {box.width / width:.6f} {box.height / height:.6f}"
