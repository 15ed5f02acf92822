"""Coded concepts for the DICOM outputs: lesion classes, levels, triage, gate and grades.

The one place where spinexr's vocabulary meets DICOM, SNOMED CT and UCUM codes. Standard codes
are used wherever a fitting concept could be confirmed; the few left use the private coding
scheme ``99SPINEXR`` (PS3.3 section 8.2: designators beginning with "99" are private), declared
in SR objects by a Coding Scheme Identification item (:func:`coding_scheme_item`). Every code
value fits the 16 characters of Code Value (0008,0100): none goes to Long Code Value, which
older SR readers show blank.

Where each standard code comes from ("dict": pydicom's code dictionary, generated from DICOM
PS3.16, with the CIDs that list it):

- Osteophytes: SCT 88998003 "Osteophyte" (SNOMED CT; in no CID)
- Surgical implant: SCT 40388003 "Implant" (dict: CID 7151, 7193)
- Foraminal stenosis: SCT 76107001 "Spinal stenosis", the closest confirmed concept (its
  parent: narrowing of the canal, lateral recesses or neural foramina); the tracking identifier
  and texts keep "Foraminal stenosis". Source: SNOMED CT mappings in public code (the same code
  with ICD-10 M48.0 in several independent tables).
- Spondylolisthesis: SCT 274152003 "Spondylolisthesis" (SNOMED CT; in no CID)
- Vertebral collapse: SCT 42942008 "Compression fracture of vertebral column" (the collapse of
  a vertebral body VinDr-SpineXR annotates; source: a SNOMED CT FHIR value set and the Open
  Imaging Finding Model index, which both give this code and meaning)
- Other lesions: SCT 52988006 "Lesion" (dict: CID 7151, 7159); also labels outside the 7
- vertebrae C2-L5: CID 7603 "Spinal Vertebra"; S1: SCT 54735007 "Sacrum" (closest concept);
  discs C2/C3 ... L5/S1: CID 7604 "Intervertebral Disc"; regions: SCT "Cervical spine",
  "Thoracic spine", "Lumbar spine", "Spine" (dict: CID 4, 4031)
- probabilities: DCM 122157 "Probability"; threshold: DCM 122411 "Threshold Value"; the
  triage's probability is the Probability of Finding = SCT 263654008 "Abnormal"
- triage verdict: DCM 121402 "Normality" = SCT 17621005 "Normal" / SCT 263654008 "Abnormal"
  (dict: CID 222 "Normality Codes")
- width / height: SCT 103355008 "Width" / DCM 121207 "Height", in UCUM "mm"
- procedure reported: SCT 168537006 "Plain radiography", SCT 113091000 "Magnetic resonance
  imaging"; free text: DCM 121106 "Comment"
- grades: concept SCT 246112005 "Severity" with SCT Normal, SCT 42425007 "Equivocal" (dict:
  CID 3120; for a "doubtful" grade), SCT 255605001 "Minimal" (dict), SCT 255604002 "Mild",
  6736007 "Moderate", 24484000 "Severe" (dict: CID 3716); degeneration is Finding = SCT 8847002
  "Spondylosis" (SNOMED International release notes, November 2024: "8847002 |Spondylosis
  (disorder)|"); cervical injury is Finding = SCT 125605004 "Fracture of bone" (IHTSDO
  snomed-templates: "<< 125605004 |Fracture of bone (disorder)|") or SCT 108367008
  "Dislocation of joint" (a SNOMED CT FHIR value set of imaging indications), at Finding Site
  Cervical spine; MR stenosis is Finding = Spinal stenosis at the region
- probability unit: UCUM "{probability}" (UCUM's annotated, dimensionless "1")

Codes from SNOMED CT itself (not in a DICOM CID) were checked against the public sources named,
not against a SNOMED CT release: confirm them in a SNOMED CT browser before clinical use.

Private codes (``99SPINEXR``, version 1) that remain, and why:

- ``DSN`` disc space narrowing: a radiographic sign with no SNOMED CT or RadLex concept that
  could be confirmed offline; the disorder it suggests (SCT 77547008 "Degenerative disc
  disease") is a diagnosis, not what the model sees.
- ``GATE`` with ``ACCEPTED`` / ``UNCERTAIN`` / ``REFUSED``: whether the input lies within the
  algorithm's intended use. PS3.16 codes only image quality (DCM 111101 "Image Quality",
  CID 6044 "Usable" / "Unusable - Quality renders image unusable"), which would tell a reader
  that a good chest radiograph is of unusable quality.
- ``LATREC`` lateral recess and ``NFORAMEN`` neural (intervertebral) foramen, the sites of two
  MR stenosis regions: no SNOMED CT body structure could be confirmed offline (DCM 112097
  "Vertebral Intervertebral Notch" is a notch, not the foramen).
- grades of tasks or labels not listed above: ``G-<TASK>`` = ``G-<TASK>-<index>``, the task
  shortened to fit 16 characters (its full name stays in the code meaning).
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from pydicom.sr.codedict import codes
from pydicom.sr.coding import Code

from spinexr.labels import VERTEBRAL_LEVELS, canonical_lesion

#: Private coding scheme designator of spinexr.
PRIVATE_SCHEME = "99SPINEXR"
PRIVATE_SCHEME_NAME = "spinexr private codes"
PRIVATE_SCHEME_VERSION = "1"
#: Longest value of Code Value (0008,0100); longer ones would go to Long Code Value.
MAX_CODE_VALUE = 16


def _private(value: str, meaning: str) -> Code:
    if len(value) > MAX_CODE_VALUE:
        raise ValueError(f"private code value {value!r} is longer than {MAX_CODE_VALUE} "
                         "characters")
    return Code(value, PRIVATE_SCHEME, meaning[:64], PRIVATE_SCHEME_VERSION)


@dataclass(frozen=True)
class LesionSpec:
    """How one lesion class is written: its code and its GSPS graphic layer name (a CS value:
    16 characters at most, upper case, digits, underscore)."""

    label: str
    code: Code
    layer: str


SPINAL_STENOSIS = Code("76107001", "SCT", "Spinal stenosis")

#: The 7 lesion classes, in ``LESION_CLASSES`` order.
LESIONS: dict[str, LesionSpec] = {
    spec.label: spec for spec in (
        LesionSpec("Osteophytes", Code("88998003", "SCT", "Osteophyte"), "OSTEOPHYTES"),
        LesionSpec("Disc space narrowing", _private("DSN", "Disc space narrowing"),
                   "DISC_NARROWING"),
        LesionSpec("Surgical implant", Code("40388003", "SCT", "Implant"), "SURGICAL_IMPLANT"),
        LesionSpec("Foraminal stenosis", SPINAL_STENOSIS, "FORAMINAL_STEN"),
        LesionSpec("Spondylolisthesis", Code("274152003", "SCT", "Spondylolisthesis"),
                   "LISTHESIS"),
        LesionSpec("Vertebral collapse",
                   Code("42942008", "SCT", "Compression fracture of vertebral column"),
                   "VERT_COLLAPSE"),
        LesionSpec("Other lesions", Code("52988006", "SCT", "Lesion"), "OTHER_LESIONS"),
    )
}

#: Layer for a label outside the 7 classes (written with the "Other lesions" code).
UNKNOWN_LAYER = "OTHER_FINDINGS"

PROBABILITY = codes.DCM.Probability                       # 122157
THRESHOLD = codes.DCM.ThresholdValue                      # 122411
WIDTH = Code("103355008", "SCT", "Width")
HEIGHT = Code("121207", "DCM", "Height")
NORMAL = codes.SCT.Normal                                 # 17621005
ABNORMAL = codes.SCT.Abnormal                             # 263654008
#: The triage verdict's concept name; values :data:`NORMAL` / :data:`ABNORMAL`.
NORMALITY = codes.DCM.Normality                           # 121402
PLAIN_RADIOGRAPHY = Code("168537006", "SCT", "Plain radiography")
COMMENT = Code("121106", "DCM", "Comment")
DEVICE_OBSERVER = Code("121007", "DCM", "Device")

#: UCUM units: a probability is dimensionless; ``{probability}`` is UCUM's annotated "1".
UNIT_PROBABILITY = Code("{probability}", "UCUM", "probability")
UNIT_MM = Code("mm", "UCUM", "millimeter")

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


#: Spine region (``LevelNaming.region``) -> SCT code (CID 4031 "Common Anatomic Regions").
REGION_SITES: dict[str, Code] = {"cervical": codes.SCT.CervicalSpine,
                                 "thoracic": codes.SCT.ThoracicSpine,
                                 "lumbar": codes.SCT.LumbarSpine}
SPINE = codes.SCT.Spine                                   # 421060004


def region_site(region: str | None) -> Code:
    """The anatomic region of a spine region name; ``SCT Spine`` when unknown or whole."""
    return REGION_SITES.get((region or "").strip().lower(), SPINE)


def coding_scheme_item():
    """The Coding Scheme Identification item that declares ``99SPINEXR`` in an object."""
    from highdicom.coding_schemes import CodingSchemeIdentificationItem

    return CodingSchemeIdentificationItem(
        designator=PRIVATE_SCHEME, name=PRIVATE_SCHEME_NAME, version=PRIVATE_SCHEME_VERSION,
        responsible_organization="spinexr developers")


# ------------------------------------------------------------------------------------ grades
#: Concept name of a graded severity: SCT 246112005 "Severity".
SEVERITY = Code("246112005", "SCT", "Severity")
#: Severity grade names -> value (SCT Normal and CID 3716 / SNOMED CT severities).
SEVERITY_CODES: dict[str, Code] = {
    "normal": NORMAL, "healthy": NORMAL, "doubtful": codes.SCT.Equivocal,
    "minimal": Code("255605001", "SCT", "Minimal"), "mild": codes.SCT.Mild,
    "moderate": codes.SCT.Moderate, "severe": codes.SCT.Severe}
SPONDYLOSIS = Code("8847002", "SCT", "Spondylosis")
FRACTURE_OF_BONE = Code("125605004", "SCT", "Fracture of bone")
DISLOCATION_OF_JOINT = Code("108367008", "SCT", "Dislocation of joint")
#: Cervical injury classes -> Finding (``"normal"``: no finding type, Normality = Normal).
CERVICAL_FINDINGS: dict[str, Code] = {"fracture": FRACTURE_OF_BONE,
                                      "dislocation": DISLOCATION_OF_JOINT}


@dataclass(frozen=True)
class GradeCodes:
    """How one grade is coded in a TID 1501/1410 group: the Finding it is about (or
    ``None``), an anatomic site override (``None``: the caller's), and the (concept name,
    value) qualitative evaluation, or ``None`` when the finding itself is the grade."""

    finding: Code | None
    site: Code | None
    evaluation: tuple[Code, Code] | None


def grade_codes(task: str, index: int, label: str) -> GradeCodes:
    """The codes of one grade: degeneration = Spondylosis with its Severity; cervical injury =
    the injury as Finding at the cervical spine (a normal one: Normality = Normal); stenosis =
    Spinal stenosis with its Severity; any other task or label: private ``G-<TASK>`` codes."""
    name = label.strip().lower()
    if task == "degeneration" and name in SEVERITY_CODES:
        return GradeCodes(SPONDYLOSIS, None, (SEVERITY, SEVERITY_CODES[name]))
    if task == "stenosis" and name in SEVERITY_CODES:
        return GradeCodes(SPINAL_STENOSIS, None, (SEVERITY, SEVERITY_CODES[name]))
    if task == "cervical" and name in CERVICAL_FINDINGS:
        return GradeCodes(CERVICAL_FINDINGS[name], codes.SCT.CervicalSpine, None)
    if task == "cervical" and name == "normal":
        return GradeCodes(None, codes.SCT.CervicalSpine, (NORMALITY, NORMAL))
    return GradeCodes(None, None, private_grade_codes(task, index, label))


def private_grade_codes(task: str, index: int, label: str) -> tuple[Code, Code]:
    """(concept name, value) of a grade without a standard code: ``G-<TASK>`` and
    ``G-<TASK>-<index>``, the task upper-cased, letters and digits only, cut to fit 16."""
    short = re.sub(r"[^A-Z0-9]", "", task.upper())[:MAX_CODE_VALUE - 2 - 1 - len(str(index))]
    return (_private(f"G-{short}", f"{task} grade"),
            _private(f"G-{short}-{index}", label))


# --------------------------------------------------------------------- MRI stenosis regions
#: Procedure reported by the SR of an axial lumbar MR slice: SCT 113091000 "Magnetic resonance
#: imaging" (from SNOMED CT itself, not in pydicom's dictionary: confirm it as the codes above).
MAGNETIC_RESONANCE_IMAGING = Code("113091000", "SCT", "Magnetic resonance imaging")
#: The anatomy every stenosis region lies in: SCT 122496007 "Lumbar spine" (CID 4, 7151).
LUMBAR_SPINE = codes.SCT.LumbarSpine
LEFT, RIGHT = codes.SCT.Left, codes.SCT.Right
#: The central canal is SCT 61853006 "Vertebral canal" (CID 6115); the lateral recess and the
#: intervertebral (neural) foramen are private (see the module docstring).
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
    ``"left neural foramen"``; unknown names get SCT "Lumbar spine"."""
    name = region.strip().lower()
    side = LEFT if name.startswith("left ") else RIGHT if name.startswith("right ") else None
    base = name.split(" ", 1)[1] if side is not None else name
    return REGION_CODES.get(base, LUMBAR_SPINE), side


def severity_code(index: int, label: str) -> Code:
    """The severity value of a stenosis grade (``"moderate"``); other names get the private
    value of :func:`private_grade_codes`."""
    return SEVERITY_CODES.get(label.strip().lower()) or private_grade_codes("stenosis", index,
                                                                             label)[1]
