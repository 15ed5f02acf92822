"""Secondary Capture of the rendered overlay, for PACS viewers that show neither SR nor GSPS.

Uncompressed RGB (highdicom 0.28.2 cannot write JPEG 2000 RGB Secondary Captures, and
pydicom has no JPEG baseline encoder), Burned In Annotation YES, in the source study, with a
Source Image Sequence pointing at the radiograph it was drawn on. The cautions burnt into the
overlay (uncertain input, levels counted, unconfirmed) are also in the header: Series
Description ("UNCERTAIN INPUT"), Derivation Description (which starts with the verdict line
"UNCERTAIN INPUT: <reason>.") and Image Comments (every warning of result.json, the heads
that disagree included). Body Part Examined and Laterality come from the source. A refused
input gets no Secondary Capture: nothing of it was analysed.
"""
from __future__ import annotations

import numpy as np
from pydicom import Dataset
from pydicom.uid import ExplicitVRLittleEndian

from spinexr.errors import ConfigError
from spinexr.report import _dicom, notices
from spinexr.report.uids import ResultUids, writer_uids
from spinexr.types import Analysis, Radiograph

#: Stand-in passed to highdicom when the source has no usable Patient Orientation: highdicom
#: insists on one, and the element is emptied again afterwards (type 2C, may be empty).
_PLACEHOLDER_ORIENTATION = ("L", "F")
_BIPED = frozenset("APRLHF")


def make_sc(a: Analysis, image: Radiograph, overlay_rgb: np.ndarray, *,
            uids: ResultUids | None = None, uid_root: str | None = None) -> Dataset:
    """A Secondary Capture image of ``overlay_rgb`` in the study of ``image``.

    Args:
        a: the analysis drawn in the overlay (for the description and the pixel spacing).
        image: the source radiograph; its ``header`` supplies patient, study and orientation.
        overlay_rgb: uint8 (H, W, 3), e.g. from :func:`~spinexr.report.render_overlay`.
        uids: the SC's Series/SOP Instance UIDs, numbers and description; default
            :func:`~spinexr.report.uids.result_uids` (the same for the same image and pack).
        uid_root: the organisation's UID root for the derived UIDs; default ``2.25.``
            UUID-derived UIDs.

    Returns:
        A ``highdicom.sc.SCImage``: RGB, 8 bits, Explicit VR Little Endian,
        ``BurnedInAnnotation`` ``"YES"``, ``PixelSpacing`` scaled to the overlay size when the
        source spacing is known.

    Raises:
        ConfigError: a refused input, no header (raster input), ``overlay_rgb`` not uint8
            (H, W, 3), or an invalid ``uid_root``.
    """
    if not a.gate.accepted:
        raise ConfigError("no Secondary Capture for a refused input: nothing was analysed "
                          f"({a.gate.reason})")
    if overlay_rgb.dtype != np.uint8 or overlay_rgb.ndim != 3 or overlay_rgb.shape[2] != 3:
        raise ConfigError(f"overlay_rgb must be uint8 (H, W, 3), got {overlay_rgb.dtype} "
                          f"{overlay_rgb.shape}")
    header = _dicom.source_header(image.header, what="Secondary Capture")
    _dicom.check_same_image(a, header, "Secondary Capture")
    ids = writer_uids(a, header, "sc", given=uids, root=uid_root)
    orientation = _orientation(header)
    with _dicom.quiet_person_names():
        sc = _sc(a, header, ids, overlay_rgb, orientation)
    if orientation is None:
        sc.PatientOrientation = None
    sc.copy_patient_and_study_information(header)
    _dicom.carry_series_attributes(sc, header)
    sc.BurnedInAnnotation = "YES"
    warning = notices.uncertain_line(a)
    sc.DerivationDescription = _dicom.encodable(
        (f"{warning}. " if warning else "") + f"Overlay of AI findings: {_dicom.pack_text(a)}",
        header)[:1024]
    if notices.warnings(a):
        sc.ImageComments = _dicom.encodable(" ".join(f"{w}." for w in notices.warnings(a)),
                                            header)[:10240]
    sc.LossyImageCompression = "01" if header.get("LossyImageCompression") == "01" else "00"
    ref = Dataset()
    ref.ReferencedSOPClassUID = header.SOPClassUID
    ref.ReferencedSOPInstanceUID = header.SOPInstanceUID
    sc.SourceImageSequence = [ref]
    return sc


def _sc(a: Analysis, header: Dataset, ids: ResultUids, overlay_rgb: np.ndarray, orientation):
    import highdicom as hd

    return hd.sc.SCImage.from_ref_dataset(
        ref_dataset=header, pixel_array=np.ascontiguousarray(overlay_rgb),
        photometric_interpretation=hd.PhotometricInterpretationValues.RGB, bits_allocated=8,
        coordinate_system=hd.CoordinateSystemNames.PATIENT,
        series_instance_uid=ids.series_instance_uid, series_number=ids.series_number,
        sop_instance_uid=ids.sop_instance_uid, instance_number=ids.instance_number,
        manufacturer=_dicom.MANUFACTURER,
        manufacturer_model_name="spinexr", software_versions=_dicom.software_version(),
        pixel_spacing=_spacing(a, overlay_rgb.shape[:2]),
        patient_orientation=orientation or _PLACEHOLDER_ORIENTATION,
        transfer_syntax_uid=ExplicitVRLittleEndian,
        series_description=ids.series_description)


def _orientation(header: Dataset) -> tuple[str, str] | None:
    """The source's Patient Orientation when highdicom accepts it (one biped letter each)."""
    value = header.get("PatientOrientation")
    if value is None or len(value) != 2:
        return None
    row, col = (str(v) for v in value)
    return (row, col) if row in _BIPED and col in _BIPED else None


def _spacing(a: Analysis, shape_hw: tuple[int, int]) -> tuple[float, float] | None:
    """(row, column) spacing of the overlay: the source's, scaled if the overlay was shrunk."""
    if a.spacing_mm is None:
        return None
    width, height = a.image_size
    return (float(a.spacing_mm[0]) * height / shape_hw[0],
            float(a.spacing_mm[1]) * width / shape_hw[1])
