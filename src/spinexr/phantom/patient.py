"""Obviously fake patient data, dates and DICOM UIDs, all derived from the seed.

Nothing reads the clock: the same seed gives the same names, dates and UIDs on every machine.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np
from pydicom.uid import generate_uid

#: UID root for phantom objects (pydicom's registered root for generated UIDs).
UID_PREFIX = "1.2.826.0.1.3680043.8.498."
_EPOCH = dt.date(2020, 1, 1)


@dataclass(frozen=True)
class FakePatient:
    """Patient attributes that no one could mistake for a real person.

    Attributes:
        name: DICOM person name, ``"PHANTOM^Seed0042"``.
        patient_id: ``"PHANTOM-0042"``.
        birth_date: ``YYYYMMDD``.
        sex: ``"M"``, ``"F"`` or ``"O"``.
        age: DICOM age string, e.g. ``"057Y"``.
    """

    name: str
    patient_id: str
    birth_date: str
    sex: str
    age: str

    @property
    def id(self) -> str:
        """Alias of :attr:`patient_id`."""
        return self.patient_id


@dataclass(frozen=True)
class StudyUids:
    """Study, series and SOP instance UIDs (deterministic from the seed and the kind)."""

    study: str
    series: str
    sop: str
    frame_of_reference: str


@dataclass(frozen=True)
class StudyTime:
    date: str      # YYYYMMDD
    time: str      # HHMMSS


def seed_tag(seed: int) -> str:
    return f"{seed:04d}"


def make_uids(seed: int, kind: str) -> StudyUids:
    """UIDs from the seed; ``kind`` (``"xray"``, ``"mri"``) keeps the two families apart."""
    def uid(part: str) -> str:
        return str(generate_uid(prefix=UID_PREFIX,
                                entropy_srcs=["spinexr-phantom", kind, str(seed), part]))
    return StudyUids(uid("study"), uid("series"), uid("sop"), uid("frame"))


def sample_patient(rng: np.random.Generator, seed: int) -> tuple[FakePatient, StudyTime]:
    """A fake patient and the study date/time (2020-2024, daytime)."""
    u = rng.random(5)
    study = _EPOCH + dt.timedelta(days=int(u[0] * 1800))
    age = 18 + int(u[1] * 70)
    birth = study - dt.timedelta(days=int(age * 365.25 + u[2] * 300))
    age = (study - birth).days * 100 // 36525
    sex = "M" if u[3] < 0.48 else "F" if u[3] < 0.98 else "O"
    secs = 7 * 3600 + int(u[4] * 12 * 3600)
    time = f"{secs // 3600:02d}{secs // 60 % 60:02d}{secs % 60:02d}"
    tag = seed_tag(seed)
    patient = FakePatient(f"PHANTOM^Seed{tag}", f"PHANTOM-{tag}", birth.strftime("%Y%m%d"),
                          sex, f"{age:03d}Y")
    return patient, StudyTime(study.strftime("%Y%m%d"), time)
