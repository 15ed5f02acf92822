"""The one vocabulary of spinexr: lesion classes, vertebral levels and grades.

Names follow VinDr-SpineXR (Nguyen et al., MICCAI 2021). The published CSV spells one class
"Spondylolysthesis"; we use the correct spelling and accept the published one as an alias.
"""
from __future__ import annotations

#: The 7 lesion classes used for detection, in a fixed order (class index = position).
LESION_CLASSES: tuple[str, ...] = (
    "Osteophytes",
    "Disc space narrowing",
    "Surgical implant",
    "Foraminal stenosis",
    "Spondylolisthesis",
    "Vertebral collapse",
    "Other lesions",
)

#: The image-level label used in VinDr-SpineXR CSVs for images without lesions.
NO_FINDING = "No finding"

#: Spelling in the published VinDr-SpineXR annotation files, where it differs from ours.
VINDR_SPELLING: dict[str, str] = {"Spondylolisthesis": "Spondylolysthesis"}

#: Accepted aliases -> canonical class. The 6 rare VinDr-SpineXR findings were merged into
#: "Other lesions" by the dataset's authors for the 7-class benchmark; we do the same.
LESION_ALIASES: dict[str, str] = {
    "Spondylolysthesis": "Spondylolisthesis",
    "Ankylosis": "Other lesions",
    "Enthesophytes": "Other lesions",
    "Fracture": "Other lesions",
    "Sclerotic lesion": "Other lesions",
    "Subchondral sclerosis": "Other lesions",
    "Foreign body": "Other lesions",
}

#: Default relative frequency of each lesion class in phantoms, shaped like VinDr-SpineXR's
#: training set (osteophytes ~47x vertebral collapse).
LESION_FREQUENCY: dict[str, float] = {
    "Osteophytes": 0.47,
    "Disc space narrowing": 0.13,
    "Surgical implant": 0.08,
    "Foraminal stenosis": 0.10,
    "Spondylolisthesis": 0.07,
    "Vertebral collapse": 0.01,
    "Other lesions": 0.14,
}

CERVICAL_LEVELS: tuple[str, ...] = ("C2", "C3", "C4", "C5", "C6", "C7")
THORACIC_LEVELS: tuple[str, ...] = tuple(f"T{i}" for i in range(1, 13))
LUMBAR_LEVELS: tuple[str, ...] = ("L1", "L2", "L3", "L4", "L5")
SACRAL_LEVELS: tuple[str, ...] = ("S1",)
#: Vertebral levels from top to bottom.
VERTEBRAL_LEVELS: tuple[str, ...] = (CERVICAL_LEVELS + THORACIC_LEVELS + LUMBAR_LEVELS
                                     + SACRAL_LEVELS)

#: Image-level triage labels (index = label value).
TRIAGE_CLASSES: tuple[str, ...] = ("normal", "abnormal")
#: Degeneration severity 0-4 (seed 002, Kellgren-Lawrence-like).
DEGENERATION_GRADES: tuple[str, ...] = ("healthy", "doubtful", "minimal", "moderate", "severe")
#: Cervical spine injury classes (seed 004).
CERVICAL_CLASSES: tuple[str, ...] = ("normal", "fracture", "dislocation")
#: 4-grade stenosis on axial MRI (seed 003).
STENOSIS_GRADES: tuple[str, ...] = ("normal", "mild", "moderate", "severe")
#: Stenosis regions on an axial lumbar MRI slice (seed 003).
STENOSIS_REGIONS: tuple[str, ...] = (
    "central canal", "left lateral recess", "right lateral recess",
    "left neural foramen", "right neural foramen",
)
#: The class name used for vertebral bodies by the vertebra detector.
VERTEBRA_CLASS = "Vertebra"


def canonical_lesion(name: str) -> str | None:
    """Return the canonical lesion class for ``name`` (exact or alias), or ``None`` if unknown."""
    name = name.strip()
    if name in LESION_CLASSES:
        return name
    return LESION_ALIASES.get(name)


def vindr_name(lesion: str) -> str:
    """The spelling VinDr-SpineXR's CSV uses for a canonical lesion class."""
    return VINDR_SPELLING.get(lesion, lesion)


def disc_level(upper: str, lower: str) -> str:
    """Name the disc between two vertebrae, e.g. ``disc_level("L4", "L5") == "L4-L5"``."""
    return f"{upper}-{lower}"
