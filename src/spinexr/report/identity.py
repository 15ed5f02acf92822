"""Who and what an image is of, for the people allowed to see it: patient, study, view.

result.json never holds these (it is shared for research). They are read from the source
header only when a report is rendered (report.html) or when the web service stores an analysis
(its ``identity.json``, served to authenticated readers only), and either can leave them out
(``spinexr analyze --hide-identifiers``, ``SPINEXR_SHOW_IDENTIFIERS=off``). Never log them.

Pure: a pydicom ``Dataset`` (or ``None``) in, an :class:`Identity` out; nothing else is read.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any

#: Titles of the :class:`Identity` fields, in the order reports show them.
TITLES = {"patient_name": "Patient", "patient_id": "Patient ID", "birth_date": "Born",
          "sex": "Sex", "study_date": "Study date", "accession_number": "Accession",
          "study_description": "Study", "series_description": "Series", "view": "View",
          "body_part": "Body part"}


@dataclass(frozen=True)
class Identity:
    """The identifying attributes of one image; ``None`` where the header has none.

    Dates are ISO (``YYYY-MM-DD``; the study date with ``HH:MM`` when the header has a study
    time); the name is ``"FAMILY, Given Middle"``; ``view`` is View Position with the image
    laterality when present (``"AP"``, ``"LL (L)"``).
    """

    patient_name: str | None = None
    patient_id: str | None = None
    birth_date: str | None = None
    sex: str | None = None
    study_date: str | None = None
    accession_number: str | None = None
    study_description: str | None = None
    series_description: str | None = None
    view: str | None = None
    body_part: str | None = None

    def as_dict(self) -> dict[str, str]:
        """The fields that have a value (for ``identity.json``)."""
        return {k: v for k, v in asdict(self).items() if v}

    def rows(self) -> list[tuple[str, str]]:
        """``(title, value)`` of each field that has a value, in :data:`TITLES` order."""
        return [(TITLES[f.name], getattr(self, f.name)) for f in fields(self)
                if getattr(self, f.name)]

    def __bool__(self) -> bool:
        return bool(self.as_dict())


def identity_of(header: Any) -> Identity | None:
    """The :class:`Identity` of a DICOM header, ``None`` without one (a PNG or JPEG)."""
    if header is None:
        return None
    study = iso_date(_text(header, "StudyDate"))
    time = iso_time(_text(header, "StudyTime"))
    view = _text(header, "ViewPosition")
    side = _text(header, "ImageLaterality") or _text(header, "Laterality")
    if view and side:
        view = f"{view} ({side})"
    return Identity(
        patient_name=person_name(header.get("PatientName")),
        patient_id=_text(header, "PatientID"),
        birth_date=iso_date(_text(header, "PatientBirthDate")),
        sex=_text(header, "PatientSex"),
        study_date=f"{study} {time}" if study and time else study,
        accession_number=_text(header, "AccessionNumber"),
        study_description=_text(header, "StudyDescription"),
        series_description=_text(header, "SeriesDescription"),
        view=view or side, body_part=_text(header, "BodyPartExamined"))


def person_name(value: Any) -> str | None:
    """A DICOM Person Name as ``"FAMILY, Given Middle"`` (``"A^B^C"`` -> ``"A, B C"``)."""
    text = str(value or "").split("=")[0].strip()         # the alphabetic group only
    if not text:
        return None
    parts = [p.strip() for p in text.split("^")]
    family, given = parts[0], " ".join(p for p in parts[1:3] if p)
    name = f"{family}, {given}" if family and given else family or given
    prefix, suffix = (parts + ["", "", "", "", ""])[3:5]
    return " ".join(p for p in (prefix, name, suffix) if p) or None


def iso_date(da: str | None) -> str | None:
    """A DICOM DA ``YYYYMMDD`` as ``YYYY-MM-DD``; anything else is returned as it is."""
    if not da:
        return None
    da = da.strip()
    if len(da) == 8 and da.isdigit():
        return f"{da[:4]}-{da[4:6]}-{da[6:]}"
    return da


def iso_time(tm: str | None) -> str | None:
    """A DICOM TM ``HHMMSS.FFFFFF`` (or ``HH:MM:SS``) as ``HH:MM``; ``None`` when unusable."""
    digits = (tm or "").strip().replace(":", "")
    if len(digits) >= 4 and digits[:4].isdigit():
        return f"{digits[:2]}:{digits[2:4]}"
    return None


def _text(header: Any, keyword: str) -> str | None:
    value = header.get(keyword)
    if value is None:
        return None
    if isinstance(value, (list, tuple)) or type(value).__name__ == "MultiValue":
        value = "\\".join(str(v) for v in value)
    text = str(value).strip()
    return text or None


__all__ = ["TITLES", "Identity", "identity_of", "iso_date", "iso_time", "person_name"]
