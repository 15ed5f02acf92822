"""``write_outputs``: every file a user and a PACS need, from one analysis, into one folder."""
from __future__ import annotations

import io
from dataclasses import replace
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from spinexr.errors import ConfigError, FileAccessError
from spinexr.report._dicom import missing_references
from spinexr.report.gsps import make_gsps
from spinexr.report.html import render_html
from spinexr.report.identity import identity_of
from spinexr.report.json_out import analysis_to_dict, json_bytes, validate_result
from spinexr.report.overlay import (DEFAULT_MAX_SIDE, blend_heatmap, png_bytes,
                                    radiograph_rgb, render_overlay)
from spinexr.report.sc import make_sc
from spinexr.report.sr import make_sr
from spinexr.report.voc import voc_xml
from spinexr.types import Analysis, Heatmap, Radiograph

#: File names, by the key ``write_outputs`` returns them under.
FILES = {"json": "result.json", "overlay": "overlay.png", "voc": "boxes.xml",
         "html": "report.html", "sr": "sr.dcm", "gsps": "gsps.dcm", "sc": "sc.dcm"}
#: Longest side of the pictures embedded in report.html (keeps the file a few MB at most).
HTML_MAX_SIDE = 1024
NOT_DICOM_NOTE = ("DICOM SR, GSPS and Secondary Capture not written: the input is not DICOM, "
                  "so there is no study to file them into.")
REFUSED_NOTE = ("GSPS and Secondary Capture not written: the input was refused, so nothing "
                "was analysed; the SR says why.")


def select_heatmap(a: Analysis, name: str | None) -> Heatmap | None:
    """The heatmap called ``name`` (its method, or ``method:target``), or ``None`` for none.

    Raises:
        ConfigError: no heatmap of ``a`` has that name (the message lists those it has).
    """
    if name is None:
        return None
    for h in a.heatmaps:
        if name in (h.method, f"{h.method}:{h.target}"):
            return h
    have = [f"{h.method}:{h.target}" for h in a.heatmaps] or ["none"]
    raise ConfigError(f"no heatmap {name!r} in the analysis; it has {', '.join(have)}")


def render_outputs(a: Analysis, image: Radiograph, *, heatmap: str | None = None,
                   card: Mapping[str, Any] | None = None,
                   max_side: int = DEFAULT_MAX_SIDE,
                   uid_root: str | None = None, identifiers: bool = True) -> dict[str, bytes]:
    """Every output of :func:`write_outputs`, in memory: file name -> bytes (result.json
    first). Nothing touches the disk (the web service stores these bytes as they are).
    ``uid_root``: the organisation's UID root for the SR/GSPS/SC (see
    :func:`~spinexr.report.uids.result_uids`); default ``2.25.`` UUID-derived UIDs.
    ``identifiers``: show the patient and study of the DICOM header at the top of
    report.html (``False`` for research exports); result.json never holds them.

    Raises:
        ConfigError: an unknown ``heatmap`` name, the header of another image, or an invalid
            ``uid_root``. A header lacking the UIDs the SR/GSPS/SC must reference does not
            raise: those three are left out and result.json's ``notes`` say why.
        ResultValidationError: the result document breaks the schema.
    """
    doc = analysis_to_dict(a)
    validate_result(doc)
    heat = select_heatmap(a, heatmap)
    identity = identity_of(image.header) if identifiers else None
    missing = [] if image.header is None else missing_references(image.header)
    if missing:  # the SR/GSPS/SC could not be filed: the other outputs are still made
        image = replace(image, header=None)
        doc["notes"].append("DICOM SR, GSPS and Secondary Capture not written: the source "
                            f"header lacks {', '.join(missing)}")
    contents = _render_all(a, image, heat, card or {}, max_side, uid_root, identity)
    if image.header is None and not missing:
        doc["notes"].append(NOT_DICOM_NOTE)
    if "sr" in contents and not a.gate.accepted:
        doc["notes"].append(REFUSED_NOTE)
    doc["outputs"] = [FILES["json"]] + [FILES[key] for key in contents]
    return {FILES["json"]: json_bytes(doc), **{FILES[k]: v for k, v in contents.items()}}


def write_outputs(a: Analysis, image: Radiograph, out_dir: Path, *, heatmap: str | None = None,
                  card: Mapping[str, Any] | None = None,
                  max_side: int = DEFAULT_MAX_SIDE,
                  uid_root: str | None = None, identifiers: bool = True) -> dict[str, Path]:
    """Write result.json, overlay.png, boxes.xml, report.html and, for DICOM input, sr.dcm,
    gsps.dcm and sc.dcm into ``out_dir`` (created if missing); a refused input gets only
    the SR of the three, which says "not analysed" and why.

    Args:
        a: the analysis of ``image``.
        image: the radiograph analysed (``pixels`` for the pictures, ``header`` for DICOM).
        out_dir: the folder to write into; existing files of these names are replaced.
        heatmap: the heatmap to blend into overlay.png (see :func:`select_heatmap`); every
            heatmap of ``a`` is shown in report.html regardless.
        card: the pack's model card for report.html.
        max_side: longest side of the drawn images.
        uid_root: the organisation's UID root for sr.dcm, gsps.dcm and sc.dcm; default
            ``2.25.`` UUID-derived UIDs. The same image and pack give the same UIDs.
        identifiers: patient and study identifiers at the top of report.html (from the
            DICOM header; ``False`` leaves them out, e.g. for research exports).

    Returns:
        ``{"json", "overlay", "voc", "html"[, "sr", "gsps", "sc"]} -> path``. result.json lists
        the file names under ``outputs`` and says in ``notes`` why DICOM objects are missing.

    Raises:
        ConfigError, ResultValidationError: as :func:`render_outputs` (nothing is written).
        FileAccessError: a file cannot be written.
    """
    out_dir = Path(out_dir)
    contents = render_outputs(a, image, heatmap=heatmap, card=card, max_side=max_side,
                              uid_root=uid_root, identifiers=identifiers)
    try:                                 # everything is built before the first file is written
        out_dir.mkdir(parents=True, exist_ok=True)
        for name, data in contents.items():
            (out_dir / name).write_bytes(data)
    except OSError as exc:
        raise FileAccessError(f"cannot write the outputs ({exc.strerror or exc})",
                              str(exc.filename or out_dir)) from exc
    keys = {name: key for key, name in FILES.items()}
    return {keys[name]: out_dir / name for name in contents}


def _render_all(a: Analysis, image: Radiograph, heat: Heatmap | None, card: Mapping[str, Any],
                max_side: int, uid_root: str | None, identity=None) -> dict[str, bytes]:
    """Every output but result.json, in memory, keyed as in :data:`FILES`."""
    overlay = render_overlay(image.pixels, a, heatmap=heat, max_side=max_side)
    contents = {"overlay": png_bytes(overlay), "voc": voc_xml(a).encode("utf-8")}
    if image.header is not None:
        contents["sr"] = _dicom_bytes(make_sr(a, image.header, uid_root=uid_root))
        if a.gate.accepted:          # a refused input: nothing analysed, nothing to draw
            contents["gsps"] = _dicom_bytes(make_gsps(a, image.header, uid_root=uid_root))
            contents["sc"] = _dicom_bytes(make_sc(a, image, overlay, uid_root=uid_root))
    side = min(max_side, HTML_MAX_SIDE)
    small = overlay if max(overlay.shape[:2]) <= side else render_overlay(
        image.pixels, a, heatmap=heat, max_side=side)
    html = render_html(a, png_bytes(radiograph_rgb(image.pixels, side)[..., 0]),
                       png_bytes(small), _heatmap_pngs(a, image.pixels, side), card,
                       identity=identity)
    contents["html"] = html.encode("utf-8")
    return contents


def _dicom_bytes(ds) -> bytes:
    buf = io.BytesIO()
    ds.save_as(buf)
    return buf.getvalue()


def _heatmap_pngs(a: Analysis, pixels: np.ndarray, max_side: int) -> dict[str, bytes]:
    base = radiograph_rgb(pixels, max_side)
    return {f"{h.method} for {h.target}" + (f" ({h.model})" if h.model else ""):
            png_bytes(blend_heatmap(base, h.array, 0.5)) for h in a.heatmaps}


__all__ = ["FILES", "NOT_DICOM_NOTE", "REFUSED_NOTE", "render_outputs", "select_heatmap",
           "write_outputs"]
