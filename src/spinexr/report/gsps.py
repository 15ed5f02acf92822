"""Grayscale Softcopy Presentation State drawing every result over the source image.

One graphic layer per lesion class present (layer colour = the overlay's class colour, as
CIELab), one graphic annotation per finding: a closed POLYLINE rectangle and a text
"label score level" just above it (or below, when the box touches the top edge), both in
PIXEL units of the source image, with the same tracking id/UID; a level name counted,
unconfirmed ends with "?" ("Osteophytes 0.91 L4?"). One layer per grade class present
(``G_MODERATE``, ``G_FRACTURE``, ...; colour = the overlay's grade colour): a graded region
(MR stenosis) or window is a POLYLINE with its tag ("1 central canal: moderate"), a
whole-image grade a DISPLAY text line ("Grade: degeneration moderate (whole image), P 0.50")
below the summary. A ``SPINEXR_SUMMARY`` layer carries, in DISPLAY units, the synthetic-pack
warning, the triage (or MR stenosis) sentence, the heads that disagree ("The models disagree:
...") and the legend of the "?" mark ("? = levels counted, unconfirmed (...)"); an uncertain
input gets "UNCERTAIN INPUT: <reason>" in amber on a ``SPINEXR_WARNING`` layer above
everything, on the first line. Body Part Examined and Laterality come from the source. A
refused input gets no GSPS: nothing of it was analysed. A presentation
state replaces the image's own VOI, so the source's first Window Center/Width pair (else its
first VOI LUT) becomes the softcopy VOI LUT; MONOCHROME1 sources get an INVERSE presentation
LUT so the image displays as its modality intended.
"""
from __future__ import annotations

import re

import numpy as np
from pydicom import Dataset

from spinexr.errors import ConfigError
from spinexr.labels import canonical_lesion
from spinexr.report import _dicom, codes, notices
from spinexr.report.overlay import BANNER_TEXT, class_color, grade_tag_color
from spinexr.report.uids import ResultUids, tracking_uid, writer_uids
from spinexr.types import Analysis, Box, Grade

SUMMARY_LAYER = "SPINEXR_SUMMARY"
WARNING_LAYER = "SPINEXR_WARNING"
#: Display colour of the uncertain-input warning (amber).
WARNING_COLOR = (255, 191, 0)


def make_gsps(a: Analysis, source_header: Dataset, *, uids: ResultUids | None = None,
              uid_root: str | None = None) -> Dataset:
    """A GSPS object annotating the findings and grades of ``a`` on the source image.

    Args:
        a: the analysis; boxes in source pixels.
        source_header: the source image's DICOM header (``Radiograph.header``); copied, never
            modified. It must describe a single-sample (grayscale) image.
        uids: the GSPS's Series/SOP Instance UIDs, numbers and description; default
            :func:`~spinexr.report.uids.result_uids` (the same for the same image and pack).
        uid_root: the organisation's UID root for the derived and tracking UIDs; default
            ``2.25.`` UUID-derived UIDs.

    Returns:
        A ``highdicom.pr.GrayscaleSoftcopyPresentationState`` in the source study; validated
        by highdicom on construction. Tracking UIDs derive from its SOP Instance UID and the
        finding's index.

    Raises:
        ConfigError: a refused input (nothing to draw), no header, a header without the UIDs
            to reference, of another image, or an invalid ``uid_root``.
    """
    import highdicom as hd

    if not a.gate.accepted:
        raise ConfigError(f"no GSPS for a refused input: nothing was analysed ({a.gate.reason})")
    header = _dicom.source_header(source_header, what="GSPS")
    _dicom.check_same_image(a, header, "GSPS")
    if int(header.get("SamplesPerPixel", 1)) != 1 or int(header.get("NumberOfFrames") or 1) > 1:
        raise ConfigError("a GSPS needs a single-frame grayscale source; it has "
                          f"SamplesPerPixel {header.get('SamplesPerPixel')}, NumberOfFrames "
                          f"{header.get('NumberOfFrames', 1)}")
    ids = writer_uids(a, header, "gsps", given=uids, root=uid_root)
    voi = _voi(header)
    layers = _layers(a)
    annotations = [_annotation(n, f.box, _dicom.finding_text(
                       f.label, f.score, notices.level_label(f.level, a)), header,
                       layers[codes.lesion_layer(f.label)],
                       tracking_uid(ids.sop_instance_uid, n, root=uid_root))
                   for n, f in enumerate(a.findings, start=1)]
    for n, g in enumerate(a.grades, start=1):
        if g.box is not None:
            track = tracking_uid(ids.sop_instance_uid, len(a.findings) + n, root=uid_root)
            annotations.append(_annotation(n, g.box, _grade_tag(n, g, a), header,
                                           layers[grade_layer(g)], track, kind="Grade"))
    annotations += _summary(a, header, layers)
    inverse = header.get("PhotometricInterpretation") == "MONOCHROME1"
    presentation = hd.PresentationLUTTransformation(
        presentation_lut_shape=hd.PresentationLUTShapeValues.INVERSE if inverse
        else hd.PresentationLUTShapeValues.IDENTITY)
    with _dicom.quiet_person_names():
        ps = _gsps(a, header, ids, annotations, layers, voi, presentation)
    _dicom.carry_series_attributes(ps, header)
    return ps


def grade_layer(g: Grade) -> str:
    """The graphic layer of a grade class: ``"G_"`` and the grade name upper-cased, letters,
    digits and underscores only, 16 characters at most (a CS value)."""
    return ("G_" + re.sub(r"[^A-Z0-9]+", "_", g.label.strip().upper()))[:16]


def _grade_tag(n: int, g: Grade, a: Analysis) -> str:
    """The tag of a boxed grade: ``"1 central canal: moderate"`` (MR region) or
    ``"degeneration: severe (L4)"`` (window)."""
    if a.modality == "mri":
        return f"{n} {g.box.label}: {g.label}"
    return notices.grade_text(g, a)


def _gsps(a: Analysis, header: Dataset, ids: ResultUids, annotations, layers, voi,
          presentation):
    import highdicom as hd

    return hd.pr.GrayscaleSoftcopyPresentationState(
        referenced_images=[header],
        series_instance_uid=ids.series_instance_uid, series_number=ids.series_number,
        sop_instance_uid=ids.sop_instance_uid, instance_number=ids.instance_number,
        manufacturer=_dicom.MANUFACTURER, manufacturer_model_name="spinexr",
        software_versions=_dicom.software_version(), device_serial_number=None,
        content_label="SPINEXR",
        content_description=_dicom.encodable(_description(a), header)[:64],
        graphic_annotations=annotations, graphic_layers=list(layers.values()),
        voi_lut_transformations=voi,
        presentation_lut_transformation=presentation,
        series_description=ids.series_description,
    )


def _layers(a: Analysis) -> dict:
    """Graphic layers: one per lesion class present (in class order), one per grade class
    present (in grade order), the summary layer, and the warning layer of an uncertain
    input."""
    import highdicom as hd

    labels = sorted({f.label for f in a.findings},
                    key=lambda lab: (list(codes.LESIONS).index(canonical_lesion(lab))
                                     if canonical_lesion(lab) else len(codes.LESIONS), lab))
    layers: dict = {}
    for label in labels:
        name = codes.lesion_layer(label)
        if name not in layers:
            layers[name] = hd.pr.GraphicLayer(
                layer_name=name, order=len(layers) + 1,
                description=(canonical_lesion(label) or "Other findings"),
                display_color=hd.color.CIELabColor.from_rgb(*class_color(label)))
    for g in a.grades:
        name = grade_layer(g)
        if name not in layers:
            layers[name] = hd.pr.GraphicLayer(
                layer_name=name, order=len(layers) + 1, description=f"grade {g.label}"[:64],
                display_color=hd.color.CIELabColor.from_rgb(*grade_tag_color(g)))
    layers[SUMMARY_LAYER] = hd.pr.GraphicLayer(
        layer_name=SUMMARY_LAYER, order=len(layers) + 1, description="spinexr verdict",
        display_color=hd.color.CIELabColor.from_rgb(255, 255, 255))
    if notices.is_uncertain(a):
        layers[WARNING_LAYER] = hd.pr.GraphicLayer(
            layer_name=WARNING_LAYER, order=len(layers) + 1,
            description="uncertain input: not confirmed as a spine radiograph",
            display_color=hd.color.CIELabColor.from_rgb(*WARNING_COLOR))
    return layers


def _text_box(box: Box, width: int, height: int) -> tuple[float, float, float, float]:
    """Where the tag goes: a strip above the box, else below it, else inside its top."""
    strip = max(8.0, 0.03 * height)
    (x1, y1), (x2, y2) = _dicom.rectangle(box, width, height)[[0, 2]]
    right = min(float(width), max(x2, x1 + 0.25 * width))
    if y1 >= strip:
        return x1, y1 - strip, right, y1
    if y2 + strip <= height:
        return x1, y2, right, y2 + strip
    return x1, y1, right, min(y2, y1 + strip)


def _annotation(n: int, box: Box, tag: str, header: Dataset, layer, track: str, *,
                kind: str = "Finding"):
    """A closed POLYLINE of ``box`` and its ``tag`` in PIXEL units, tracked as
    ``"<kind> <n>"``."""
    import highdicom as hd

    width, height = int(header.Columns), int(header.Rows)
    tracking_id = f"{kind} {n}"
    graphic = hd.pr.GraphicObject(
        graphic_type=hd.pr.GraphicTypeValues.POLYLINE,
        graphic_data=_dicom.rectangle(box, width, height),
        units=hd.pr.AnnotationUnitsValues.PIXEL,
        tracking_id=tracking_id, tracking_uid=track)
    text = hd.pr.TextObject(
        text_value=_dicom.encodable(tag, header)[:1024],
        units=hd.pr.AnnotationUnitsValues.PIXEL,
        bounding_box=_text_box(box, width, height),
        text_justification=hd.pr.TextJustificationValues.LEFT,
        tracking_id=tracking_id, tracking_uid=track)
    return hd.pr.GraphicAnnotation(referenced_images=[header], graphic_layer=layer,
                                   graphic_objects=[graphic], text_objects=[text])


def _summary(a: Analysis, header: Dataset, layers: dict) -> list:
    """The verdict in DISPLAY units, one line per row from the top: the uncertain-input
    warning (own layer), the synthetic banner, the triage sentence, the heads that disagree,
    the level legend (summary layer), then each whole-image grade (its grade layer)."""
    import highdicom as hd

    lines = _dicom.headline_lines(a)
    warning = lines.pop(0) if notices.is_uncertain(a) else None
    if a.pack.synthetic:
        lines.insert(0, BANNER_TEXT)
    lines += [f"{c}." for c in notices.contradictions(a)]
    legend = notices.level_legend(a)
    if legend:
        lines.append(legend)
    graded = [(n, g) for n, g in enumerate(a.grades, start=1) if g.box is None]
    first = 1 if warning else 0
    step = min(0.05, 0.96 / (first + len(lines) + len(graded)))
    out = [hd.pr.GraphicAnnotation(
        referenced_images=[header], graphic_layer=layers[SUMMARY_LAYER],
        text_objects=[_display_text(line, first + i, step, header)
                      for i, line in enumerate(lines)])]
    if warning:
        out.append(hd.pr.GraphicAnnotation(referenced_images=[header],
                                           graphic_layer=layers[WARNING_LAYER],
                                           text_objects=[_display_text(warning, 0, step,
                                                                       header)]))
    for row, (n, g) in enumerate(graded, start=first + len(lines)):
        out.append(hd.pr.GraphicAnnotation(
            referenced_images=[header], graphic_layer=layers[grade_layer(g)],
            text_objects=[_display_text(_dicom.grade_line(n, g, a), row, step, header)]))
    return out


def _display_text(line: str, row: int, step: float, header: Dataset):
    """A line of text in DISPLAY units on row ``row`` (rows ``step`` high from the top)."""
    import highdicom as hd

    top = 0.01 + step * row
    return hd.pr.TextObject(text_value=_dicom.encodable(line, header)[:1024],
                            units=hd.pr.AnnotationUnitsValues.DISPLAY,
                            bounding_box=(0.01, top, 0.99, top + 0.8 * step),
                            text_justification=hd.pr.TextJustificationValues.LEFT)


def _voi(header: Dataset):
    """Softcopy VOI LUT of the source: its first window, else its first VOI LUT. A GSPS
    replaces the image's own VOI, so it must carry it. A VOI LUT that cannot be carried is
    dropped from the (copied) header, so that highdicom does not try again."""
    import highdicom as hd

    center, width = header.get("WindowCenter"), header.get("WindowWidth")
    if center is not None and width is not None:
        explanation = header.get("WindowCenterWidthExplanation")
        function = header.get("VOILUTFunction")
        return [hd.pr.SoftcopyVOILUTTransformation(
            window_center=float(_first(center)), window_width=float(_first(width)),
            window_explanation=str(_first(explanation)) if explanation else None,
            voi_lut_function=function if function in ("LINEAR", "LINEAR_EXACT", "SIGMOID")
            else None)]
    lut = _voi_lut(header)
    for keyword in ("VOILUTSequence", "WindowCenter", "WindowWidth"):
        if keyword in header:
            delattr(header, keyword)
    return [hd.pr.SoftcopyVOILUTTransformation(voi_luts=[lut])] if lut is not None else None


def _voi_lut(header: Dataset):
    """The first VOI LUT Sequence item as a highdicom VOILUT, or ``None``."""
    import highdicom as hd

    items = header.get("VOILUTSequence")
    if not items or "LUTDescriptor" not in items[0] or "LUTData" not in items[0]:
        return None
    item = items[0]
    try:
        count, first, bits = (int(v) for v in item.LUTDescriptor)
        count = count or 65536
        raw = item.LUTData
        if isinstance(raw, (bytes, bytearray)):      # OW: 16-bit words, or packed 8-bit
            packed = bits <= 8 and len(raw) in (count, count + 1)
            data = np.frombuffer(raw[:len(raw) // 2 * 2] if not packed else raw,
                                 np.uint8 if packed else "<u2")
        else:                                        # US VR: pydicom gives ints
            data = np.atleast_1d(np.asarray(raw))
        data = data[:count].astype(np.uint8 if bits <= 8 and data.max(initial=0) < 256
                                   else np.uint16)
        return hd.VOILUT(first_mapped_value=first, lut_data=data,
                         lut_explanation=str(item.get("LUTExplanation") or "") or None)
    except (TypeError, ValueError):          # malformed, or a negative first mapped value
        return None


def _first(value):
    """The first value of a possibly multi-valued element."""
    from pydicom.multival import MultiValue

    return value[0] if isinstance(value, (MultiValue, list, tuple)) else value


def _description(a: Analysis) -> str:
    synthetic = " (synthetic-trained, not for clinical use)" if a.pack.synthetic else ""
    return f"spinexr {a.pack.name} {a.pack.version}{synthetic}"
