"""What the SR, GSPS and SC writers share: the checked source header, equipment, series."""
from __future__ import annotations

import unicodedata
import warnings
from contextlib import contextmanager
from copy import deepcopy
from typing import Iterator

import numpy as np
from pydicom import Dataset

from spinexr import __version__
from spinexr.errors import ConfigError
from spinexr.report import notices
from spinexr.types import Analysis, Box, Grade

MANUFACTURER = "spinexr"
#: Series numbers of the derived objects (high, so viewers sort them after the source series);
#: :func:`spinexr.report.uids.result_uids` combines them with the source Series Number.
SR_SERIES_NUMBER = 9901
GSPS_SERIES_NUMBER = 9902
SC_SERIES_NUMBER = 9903

#: Attributes the writers read from the source header (type 1 in every image IOD).
_REQUIRED = ("StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID", "SOPClassUID")
#: Type 2 patient/study attributes highdicom reads directly; absent ones are added empty.
_TYPE2 = ("PatientID", "PatientName", "PatientBirthDate", "PatientSex", "AccessionNumber",
          "StudyID", "StudyDate", "StudyTime", "ReferringPhysicianName")


def software_version() -> str:
    return __version__


def missing_references(header: Dataset) -> list[str]:
    """The UIDs a derived object must reference that ``header`` lacks (empty: none)."""
    return [k for k in _REQUIRED if not header.get(k)]


def source_header(header: Dataset | None, *, what: str) -> Dataset:
    """A copy of the source header (never the caller's object, never its Pixel Data) with
    absent type 2 patient/study attributes present and empty, as highdicom expects.

    Raises:
        ConfigError: no header (a raster input), or a header without the UIDs the object
            must reference.
    """
    if header is None:
        raise ConfigError(f"a {what} needs the source DICOM header; the input is not DICOM "
                          "(Radiograph.header is None)")
    missing = missing_references(header)
    if missing:
        raise ConfigError(f"cannot write a {what}: the source header lacks {', '.join(missing)}")
    ds = Dataset()
    for elem in header:
        if elem.tag != 0x7FE00010:
            ds.add(deepcopy(elem))
    for keyword in _TYPE2:
        if keyword not in ds:
            setattr(ds, keyword, None)
    _repair_dates(ds)
    return ds


def _repair_dates(ds: Dataset) -> None:
    """Old writers put ``15:18:59`` in TM and ``2003.01.01`` in DA, which highdicom refuses:
    drop the separators, and empty (type 2) what still does not parse."""
    from pydicom.valuerep import DA, DT, TM

    parsers = {"DA": DA, "TM": TM, "DT": DT}
    strip = {"DA": ".-/", "TM": ":", "DT": ""}
    for elem in ds:
        if elem.VR not in parsers or not isinstance(elem.value, str) or not elem.value:
            continue
        text = elem.value
        for candidate in (text.translate({ord(c): None for c in strip[elem.VR]}), text):
            try:
                parsers[elem.VR](candidate)
            except ValueError:
                continue
            elem.value = candidate
            break
        else:
            elem.value = None


@contextmanager
def quiet_person_names() -> Iterator[None]:
    """highdicom warns about single-component person names, quoting them: the source's names
    are copied as they are, and a warning would put a patient name into logs."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r"The string .* is unlikely to represent",
                                category=UserWarning)
        yield


def check_same_image(a: Analysis, header: Dataset, what: str) -> None:
    """Refuse to file an analysis of one image against another image's header."""
    sop = a.source.sop_instance_uid
    if sop and sop != header.SOPInstanceUID:
        raise ConfigError(f"cannot write a {what}: the analysis is of SOP Instance {sop} but the "
                          f"header is of {header.SOPInstanceUID}")


def rectangle(box: Box, width: int, height: int) -> np.ndarray:
    """Closed POLYLINE of a box, (5, 2) (column, row) pairs in DICOM image coordinates.

    DICOM (PS3.3 C.18.6.1.2 SCOORD, C.10.5.1.2 PIXEL annotation units) puts 0.0\\0.0 at the
    top left corner of the top left pixel and Columns\\Rows at the bottom right corner of the
    bottom right pixel: the same continuous convention as spinexr's boxes, so no 0.5 shift.
    Coordinates are clipped to the image.
    """
    x1, x2 = (min(max(float(v), 0.0), float(width)) for v in (box.x1, box.x2))
    y1, y2 = (min(max(float(v), 0.0), float(height)) for v in (box.y1, box.y2))
    return np.array([[x1, y1], [x2, y1], [x2, y2], [x1, y2], [x1, y1]], dtype=np.float64)


def finding_text(label: str, score: float, level: str | None) -> str:
    """The human-readable tag of a finding: ``"Osteophytes 0.91 L4"`` (``level`` as printed,
    e.g. ``"L4?"`` from :func:`~spinexr.report.notices.level_label`)."""
    return f"{label} {score:.2f}" + (f" {level}" if level else "")


def verdict_lines(a: Analysis) -> list[str]:
    """Every result of ``a`` as lines, most important first: :func:`headline_lines` (gate
    and triage), then one line per finding and per grade (:func:`result_lines`), then the
    heads that disagree (:func:`~spinexr.report.notices.contradictions`)."""
    return headline_lines(a) + result_lines(a) + [f"{c}." for c in notices.contradictions(a)]


def headline_lines(a: Analysis) -> list[str]:
    """The gate and triage verdict: ``"Not analysed: <reason>"`` for a refused input; for an
    uncertain one ``"UNCERTAIN INPUT: <reason>."`` first; then the triage (or MR stenosis)
    sentence."""
    if not a.gate.accepted:
        return [not_analysed_text(a)]
    t = a.triage
    if a.modality == "mri":
        sentence = stenosis_sentence(a)
    elif t is None:
        sentence = "No triage result."
    else:
        verdict = "ABNORMAL" if t.abnormal else "NORMAL"
        sentence = (f"Triage {verdict}: P(abnormal) = {t.probability:.3f} at operating point "
                    f"'{t.operating_point}' (threshold {t.threshold:.3f}); "
                    f"{len(a.findings)} finding(s).")
    warning = notices.uncertain_line(a)
    return [f"{warning}.", sentence] if warning else [sentence]


def not_analysed_text(a: Analysis) -> str:
    """``"Not analysed: the input was refused (<reason>)."``"""
    return f"Not analysed: the input was refused ({a.gate.reason.strip().rstrip('.')})."


def result_lines(a: Analysis) -> list[str]:
    """One line per finding (``"Finding 1: Osteophytes 0.91 at L3"``) and per grade
    (``"Grade: degeneration moderate (whole image), P 0.50"``, ``"Region 1: central canal
    moderate"`` for an MR region), in the order of ``a``; nothing for a refused input."""
    if not a.gate.accepted:
        return []
    lines = []
    for n, f in enumerate(a.findings, start=1):
        at = f" at {notices.level_label(f.level, a)}" if f.level else ""
        lines.append(f"Finding {n}: {f.label} {f.score:.2f}{at}")
    for n, g in enumerate(a.grades, start=1):
        lines.append(grade_line(n, g, a))
    return lines


def grade_line(n: int, g: Grade, a: Analysis) -> str:
    """The line of one grade: ``"Region <n>: <region> <grade>"`` for an MR stenosis region,
    else ``"Grade: <task> <label> (<location>), P <probability>"``."""
    if a.modality == "mri" and g.box is not None:
        return f"Region {n}: {g.box.label} {g.label}"
    p = g.probabilities.get(g.label)
    prob = f", P {float(p):.2f}" if p is not None else ""
    return f"Grade: {g.task} {g.label} ({notices.grade_location(g, a)}){prob}"


def stenosis_sentence(a: Analysis) -> str:
    """The verdict of an analysed MR slice: how many regions were graded and the worst."""
    graded = [g for g in a.grades if g.box is not None]
    if not graded:
        return "No stenosis region found."
    worst = max(graded, key=lambda g: g.index)
    return (f"Stenosis grading: {len(graded)} region(s) graded; worst {worst.label} "
            f"({worst.box.label}).")


def triage_text(a: Analysis) -> str:
    """One line on the gate and the triage verdict, for SR comments: :func:`headline_lines`
    joined, so an uncertain input's line starts ``"UNCERTAIN INPUT: <reason>."``."""
    return " ".join(headline_lines(a))


def description_flags(a: Analysis) -> str:
    """The cautions a derived object's Series Description ends with: ``" UNCERTAIN INPUT"``
    for an uncertain input, ``" SYNTHETIC-TRAINED"`` for a synthetic-trained pack, or ``""``
    (at most 34 characters)."""
    uncertain = f" {notices.UNCERTAIN_TITLE}" if notices.is_uncertain(a) else ""
    synthetic = " SYNTHETIC-TRAINED" if a.pack.synthetic else ""
    return uncertain + synthetic


#: General Series attributes carried from the source into a GSPS or SC: Body Part Examined,
#: and Laterality, which is required (type 2C) where the body part is paired.
SERIES_ATTRIBUTES = ("BodyPartExamined", "Laterality")


def carry_series_attributes(ds: Dataset, header: Dataset) -> None:
    """Copy :data:`SERIES_ATTRIBUTES` present in ``header`` into the derived ``ds`` (in
    place: ``ds`` is the object just built, never the caller's). A source with only Image
    Laterality (0020,0062) ``L`` or ``R`` gives its Laterality, as the derived object has no
    Image Laterality of its own. Without Body Part Examined the type 2C Laterality cannot be
    judged not required, so it is then written empty (unknown)."""
    for keyword in SERIES_ATTRIBUTES:
        value = header.get(keyword)
        if value not in (None, ""):
            setattr(ds, keyword, value)
    if "Laterality" not in ds and header.get("ImageLaterality") in ("L", "R"):
        ds.Laterality = header.ImageLaterality
    if "BodyPartExamined" not in ds and "Laterality" not in ds:
        ds.Laterality = None


def pack_text(a: Analysis) -> str:
    synthetic = ", SYNTHETIC-TRAINED, NOT FOR CLINICAL USE" if a.pack.synthetic else ""
    return f"spinexr {software_version()} pack {a.pack.name} {a.pack.version}{synthetic}"


def encodable(text: str, header: Dataset) -> str:
    """``text`` made writable in the source's Specific Character Set (the derived objects
    inherit it): unchanged under UTF-8 (ISO_IR 192), else dashes and accents folded and
    anything left outside Latin-1 (ISO_IR 100) or ASCII (default repertoire) replaced by '?'."""
    charset = header.get("SpecificCharacterSet") or ""
    charsets = [charset] if isinstance(charset, str) else list(charset)
    if "ISO_IR 192" in charsets:
        return text
    text = text.replace("\u2014", "-").replace("\u2013", "-")
    if "ISO_IR 100" in charsets:
        return text.encode("latin-1", errors="replace").decode("latin-1")
    folded = "".join(c for c in unicodedata.normalize("NFKD", text)
                     if not unicodedata.combining(c))
    return folded.encode("ascii", errors="replace").decode("ascii")
