"""Pascal VOC XML of the findings, as annotation tools (labelImg, CVAT) and the SpineAI tools
read it, with ``score`` and ``level`` as extra tags per object."""
from __future__ import annotations

import math
from pathlib import PurePath
from xml.etree import ElementTree as ET

from spinexr.types import Analysis


def _sub(parent: ET.Element, tag: str, text: object | None = None) -> ET.Element:
    el = ET.SubElement(parent, tag)
    if text is not None:
        el.text = str(text)
    return el


def voc_xml(a: Analysis, *, filename: str | None = None) -> str:
    """The findings of ``a`` as a Pascal VOC annotation.

    Coordinates follow the VOC devkit: 1-based, inclusive integer pixel indices of every pixel
    the box touches, i.e. ``xmin = floor(x1) + 1``, ``xmax = ceil(x2)`` for a box
    ``[x1, y1, x2, y2]`` in 0-based continuous pixel edges (clipped to the image).

    Args:
        a: the analysis.
        filename: the image file name to record; default the source file's name, else
            ``<image_id>.dcm`` for DICOM and ``<image_id>.png`` otherwise.

    Returns:
        The XML document as a string (UTF-8 declaration included).
    """
    width, height = (int(v) for v in a.image_size)
    root = ET.Element("annotation")
    _sub(root, "folder", "spinexr")
    _sub(root, "filename", filename or _default_filename(a))
    source = _sub(root, "source")
    _sub(source, "database", "spinexr")
    _sub(source, "annotation", f"{a.pack.name} {a.pack.version}")
    size = _sub(root, "size")
    _sub(size, "width", width)
    _sub(size, "height", height)
    _sub(size, "depth", 1)
    _sub(root, "segmented", 0)
    for f in a.findings:
        obj = _sub(root, "object")
        _sub(obj, "name", f.label)
        _sub(obj, "pose", "Unspecified")
        _sub(obj, "truncated", 0)
        _sub(obj, "difficult", 0)
        box = _sub(obj, "bndbox")
        b = f.box
        _sub(box, "xmin", min(width, max(1, math.floor(b.x1) + 1)))
        _sub(box, "ymin", min(height, max(1, math.floor(b.y1) + 1)))
        _sub(box, "xmax", min(width, max(1, math.ceil(b.x2))))
        _sub(box, "ymax", min(height, max(1, math.ceil(b.y2))))
        _sub(obj, "score", f"{f.score:.4f}")
        if f.level:
            _sub(obj, "level", f.level)
    ET.indent(root)
    return ET.tostring(root, encoding="unicode", xml_declaration=False).join(
        ('<?xml version="1.0" encoding="utf-8"?>\n', "\n"))


def _default_filename(a: Analysis) -> str:
    if a.source.path:
        return PurePath(a.source.path).name
    return f"{a.image_id}.dcm" if a.source.sop_instance_uid else f"{a.image_id}.png"
