"""Render an :class:`~spinexr.types.Analysis` as every output a user and a PACS need.

- ``result.json``: :func:`analysis_to_dict`, :func:`write_json`, checked by
  :func:`validate_result` against the published schema (``schema/analysis-v1.schema.json``,
  version :data:`SCHEMA_VERSION`);
- ``boxes.xml``: :func:`voc_xml` (Pascal VOC);
- ``overlay.png``: :func:`render_overlay`;
- DICOM objects in the source study: :func:`make_sr` (Comprehensive SR, TID 1500),
  :func:`make_gsps` (Grayscale Softcopy Presentation State), :func:`make_sc` (Secondary
  Capture of the overlay), coded with :mod:`spinexr.report.codes`;
- ``report.html``: :func:`render_html`;
- all of them at once: :func:`write_outputs` (to a folder) or :func:`render_outputs` (in memory);
- the DICOM objects' identities: :func:`result_uids` (:class:`ResultUids`), the same for the
  same image and pack, so a re-run or a retried send replaces instead of duplicating.

Importing this package does not load highdicom; the DICOM writers do, when called.
"""
from __future__ import annotations

from spinexr.report.gsps import make_gsps
from spinexr.report.html import render_html
from spinexr.report.json_out import (SCHEMA_VERSION, ResultValidationError, analysis_to_dict,
                                     load_schema, validate_result, write_json)
from spinexr.report.outputs import render_outputs, select_heatmap, write_outputs
from spinexr.report.overlay import CLASS_COLORS, class_color, png_bytes, render_overlay
from spinexr.report.sc import make_sc
from spinexr.report.sr import make_sr
from spinexr.report.uids import ResultUids, result_uids
from spinexr.report.voc import voc_xml

__all__ = [
    "CLASS_COLORS", "SCHEMA_VERSION", "ResultUids", "ResultValidationError", "analysis_to_dict",
    "class_color", "load_schema", "make_gsps", "make_sc", "make_sr", "png_bytes", "render_html",
    "render_outputs", "render_overlay", "result_uids", "select_heatmap", "validate_result",
    "voc_xml", "write_json", "write_outputs",
]
