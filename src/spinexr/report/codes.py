"""Coded concepts for the DICOM outputs: lesion classes, vertebral levels, triage and gate.

The one place where spinexr's vocabulary meets DICOM/SNOMED CT codes. Standard codes are used
where a fitting concept exists; the rest use the private coding scheme ``99SPINEXR``
(PS3.3 section 8.2: designators beginning with "99" are private), declared in SR objects by a
Coding Scheme Identification item (:func:`coding_scheme_item`).

Standard codes (checked against pydicom's code dictionary, which is generated from PS3.16,
unless noted):

- Osteophytes: SCT 88998003 "Osteophyte" (SNOMED CT; in no DICOM CID, see below)
- Spondylolisthesis: SCT 274152003 "Spondylolisthesis" (SNOMED CT; in no DICOM CID, see below)
- Surgical implant: SCT 40388003 "Implant" (CID 7151, 7193)
- Other lesions: SCT 52988006 "Lesion" (CID 7151, 7159); also used for labels outside the 7
- vertebrae C2-L5: CID 7603 "Spinal Vertebra"; S1: SCT 54735007 "Sacrum" (closest concept)
- discs C2/C3 ... L5/S1: CID 7604 "Intervertebral Disc"
- finding probability: DCM 122157 "Probability"; threshold: DCM 122411 "Threshold Value"
- width / height: SCT 103355008 "Width" / DCM 121207 "Height", in UCUM "mm"
- normal / abnormal: SCT 17621005 "Normal" / SCT 263654008 "Abnormal"
- procedure reported: SCT 168537006 "Plain radiography"; free text: DCM 121106 "Comment"
- probability unit: UCUM "{probability}" (UCUM's annotated, dimensionless "1")

The two SNOMED CT codes in no DICOM CID come from SNOMED CT itself (checked against public
mappings, not against a SNOMED CT release); confirm them in a SNOMED CT browser before any
clinical deployment.

Private codes (scheme ``99SPINEXR``, version 1): the three lesion classes for which no SNOMED CT
concept could be confirmed offline (``DSN`` disc space narrowing, ``FSTEN`` foraminal stenosis,
``VCOLL`` vertebral collapse), the gate verdict (``GATE`` = ``ACCEPTED``, ``UNCERTAIN`` or
``REFUSED``), the image-level triage (``ABN-P``, ``MODEL-P``, ``TRIAGE``) and grades
(``grade:<task>`` with values ``grade:<task>:<index>``), and two MRI stenosis regions
(``LATREC`` lateral recess, ``NFORAMEN`` neural foramen; see :data:`REGION_CODES`).
"""
from __future__ import annotations

from dataclasses import dataclass

from pydicom.sr.codedict import codes
from pydicom.sr.coding import Code

from spinexr.labels import VERTEBRAL_LEVELS, canonical_lesion

#: Private coding scheme designator of spinexr.
PRIVATE_SCHEME = "99SPINEXR"
PRIVATE_SCHEME_NAME = "spinexr private codes"
PRIVATE_SCHEME_VERSION = "1"


def _private(value: str, meaning: str) -> Code:
    return Code(value, PRIVATE_SCHEME, meaning[:64], PRIVATE_SCHEME_VERSION)


@dataclass(frozen=True)
class LesionSpec:
    """How one lesion class is written: its code and its GSPS graphic layer name (a CS value:
    16 characters at most, upper case, digits, underscore)."""

    label: str
    code: Code
    layer: str


#: The 7 lesion classes, in ``LESION_CLASSES`` order.
LESIONS: dict[str, LesionSpec] = {
    spec.label: spec for spec in (
        LesionSpec("Osteophytes", Code("88998003", "SCT", "Osteophyte"), "OSTEOPHYTES"),
        LesionSpec("Disc space narrowing", _private("DSN", "Disc space narrowing"),
                   "DISC_NARROWING"),
        LesionSpec("Surgical implant", Code("40388003", "SCT", "Implant"), "SURGICAL_IMPLANT"),
        LesionSpec("Foraminal stenosis", _private("FSTEN", "Foraminal stenosis"),
                   "FORAMINAL_STEN"),
        LesionSpec("Spondylolisthesis", Code("274152003", "SCT", "Spondylolisthesis"),
                   "LISTHESIS"),
        LesionSpec("Vertebral collapse", _private("VCOLL", "Vertebral collapse"),
                   "VERT_COLLAPSE"),
        LesionSpec("Other lesions", Code("52988006", "SCT", "Lesion"), "OTHER_LESIONS"),
    )
}

#: Layer for a label outside the 7 classes (written with the "Other lesions" code).
UNKNOWN_LAYER = "OTHER_FINDINGS"

PROBABILITY = Code("122157", "DCM", "Probability")
THRESHOLD = Code("122411", "DCM", "Threshold Value")
WIDTH = Code("103355008", "SCT", "Width")
HEIGHT = Code("121207", "DCM", "Height")
NORMAL = Code("17621005", "SCT", "Normal")
ABNORMAL = Code("263654008", "SCT", "Abnormal")
PLAIN_RADIOGRAPHY = Code("168537006", "SCT", "Plain radiography")
COMMENT = Code("121106", "DCM", "Comment")
DEVICE_OBSERVER = Code("121007", "DCM", "Device")

#: UCUM units: a probability is dimensionless; ``{probability}`` is UCUM's annotated "1".
UNIT_PROBABILITY = Code("{probability}", "UCUM", "probability")
UNIT_MM = Code("mm", "UCUM", "millimeter")

ABNORMALITY_PROBABILITY = _private("ABN-P", "Probability of an abnormal spine radiograph")
MODEL_PROBABILITY = _private("MODEL-P", "Ensemble member probability of abnormality")
TRIAGE_RESULT = _private("TRIAGE", "Triage result at the operating point")
GATE = _private("GATE", "Input gate verdict")
GATE_ACCEPTED = _private("ACCEPTED", "Accepted for analysis")
GATE_REFUSED = _private("REFUSED", "Refused, not analysed")
GATE_UNCERTAIN = _private("UNCERTAIN", "Analysed, not confirmed as a spine radiograph")
#: The gate verdict code of each :attr:`~spinexr.types.GateResult.outcome`.
GATE_OUTCOME_CODES: dict[str, Code] = {"accepted": GATE_ACCEPTED, "uncertain": GATE_UNCERTAIN,
                                       "refused": GATE_REFUSED}


def lesion_code(label: str) -> Code:
    """The code of a lesion class (aliases accepted); unknown labels get the generic
    SCT "Lesion" code, their name stays in the tracking identifier and text."""
    canonical = canonical_lesion(label)
    return LESIONS[canonical].code if canonical else LESIONS["Other lesions"].code


def lesion_layer(label: str) -> str:
    """The GSPS graphic layer name of a lesion class."""
    canonical = canonical_lesion(label)
    return LESIONS[canonical].layer if canonical else UNKNOWN_LAYER


def label_from_code(code: Code) -> str | None:
    """The lesion class a code stands for (the inverse of :func:`lesion_code`), else ``None``."""
    for spec in LESIONS.values():
        if spec.code.value == code.value and spec.code.scheme_designator == code.scheme_designator:
            return spec.label
    return None


def _level_codes() -> dict[str, Code]:
    table: dict[str, Code] = {}
    for level in VERTEBRAL_LEVELS:
        table[level] = codes.SCT.Sacrum if level == "S1" else getattr(codes.SCT, f"{level}Vertebra")
    for upper, lower in zip(VERTEBRAL_LEVELS, VERTEBRAL_LEVELS[1:]):
        table[f"{upper}-{lower}"] = getattr(codes.SCT, f"{upper}{lower}Disc")
    return table


#: Vertebral level (``"L4"``) or disc (``"L4-L5"``) -> SCT code (CID 7603 / 7604).
LEVEL_CODES: dict[str, Code] = _level_codes()


def level_code(level: str | None) -> Code | None:
    """The SNOMED CT code of a vertebra (``"L4"``) or disc (``"L4-L5"``, ``"L4/L5"``), else
    ``None`` (the level then appears only as text)."""
    if not level:
        return None
    return LEVEL_CODES.get(level.strip().upper().replace("/", "-"))


def level_from_code(code: Code) -> str | None:
    """The level a code stands for (the inverse of :func:`level_code`), else ``None``."""
    for level, known in LEVEL_CODES.items():
        if known.value == code.value and known.scheme_designator == code.scheme_designator:
            return level
    return None


def grade_codes(task: str, index: int, label: str) -> tuple[Code, Code]:
    """(concept name, value) private codes of one grade, e.g. degeneration = moderate."""
    return (_private(f"grade:{task}", f"{task} grade"),
            _private(f"grade:{task}:{index}", label))


def coding_scheme_item():
    """The Coding Scheme Identification item that declares ``99SPINEXR`` in an object."""
    from highdicom.coding_schemes import CodingSchemeIdentificationItem

    return CodingSchemeIdentificationItem(
        designator=PRIVATE_SCHEME, name=PRIVATE_SCHEME_NAME, version=PRIVATE_SCHEME_VERSION,
        responsible_organization="spinexr developers")


# --------------------------------------------------------------------- MRI stenosis regions
#: Procedure reported by the SR of an axial lumbar MR slice: SCT 113091000 "Magnetic resonance
#: imaging" (from SNOMED CT itself, not in pydicom's dictionary: confirm it as the codes above).
MAGNETIC_RESONANCE_IMAGING = Code("113091000", "SCT", "Magnetic resonance imaging")
#: The anatomy every stenosis region lies in: SCT 122496007 "Lumbar spine" (CID 4, 7151).
LUMBAR_SPINE = codes.SCT.LumbarSpine
LEFT, RIGHT = codes.SCT.Left, codes.SCT.Right
#: Concept name of a region's grade: SCT 246112005 "Severity"; values: SCT "Normal" and the
#: CID 3716 severities Mild / Moderate / Severe.
SEVERITY = Code("246112005", "SCT", "Severity")
SEVERITY_CODES: dict[str, Code] = {"normal": NORMAL, "mild": codes.SCT.Mild,
                                   "moderate": codes.SCT.Moderate, "severe": codes.SCT.Severe}
#: The central canal is SCT 61853006 "Vertebral canal" (CID 6115); no SNOMED CT concept of the
#: lateral recess or the intervertebral (neural) foramen could be confirmed offline: private.
REGION_CODES: dict[str, Code] = {
    "central canal": Code("61853006", "SCT", "Vertebral canal"),
    "lateral recess": _private("LATREC", "Lateral recess of the lumbar spinal canal"),
    "neural foramen": _private("NFORAMEN", "Intervertebral (neural) foramen"),
}


def procedure_code(modality: str) -> Code:
    """The SR's procedure reported for an ``Analysis.modality``."""
    return MAGNETIC_RESONANCE_IMAGING if modality == "mri" else PLAIN_RADIOGRAPHY


def region_codes(region: str) -> tuple[Code, Code | None]:
    """(region code, laterality code or ``None``) of a stenosis region name such as
    ``"left neural foramen"``; unknown names get the generic SCT "Lesion" code."""
    name = region.strip().lower()
    side = LEFT if name.startswith("left ") else RIGHT if name.startswith("right ") else None
    base = name.split(" ", 1)[1] if side is not None else name
    return REGION_CODES.get(base, LESIONS["Other lesions"].code), side


def severity_code(index: int, label: str) -> Code:
    """The severity value of a stenosis grade (``"moderate"``); other names get the private
    grade code of :func:`grade_codes`."""
    return SEVERITY_CODES.get(label.strip().lower()) or grade_codes("stenosis", index, label)[1]
