"""SR, GSPS and SC checked by DICOM tools nobody on this project wrote.

dciodvfy (dicom3tools) validates all three against the IODs of the standard; dcmtk's dsrdump
parses the SR and dcmpschk checks the GSPS. Inputs: DICOM phantoms (lumbar MONOCHROME2,
cervical MONOCHROME1, an axial MR slice written by ``spinexr phantom --task mri --layout
vindr``) and every real file of ../shared/data/dicom that the analyzer's reader accepts, each
as an accepted analysis (findings, grades, a window grade, heads that disagree), an uncertain
one and a refused one (an SR only). No "Error" line is allowed. The warnings left on phantoms
are dciodvfy's "Unrecognized defined term <99SPINEXR>", one per private code that remains (see
:mod:`spinexr.report.codes`); real headers add warnings on what the source itself holds or
lacks (:data:`SOURCE_WARNINGS`). The tools come from Debian's ``dicom3tools`` and ``dcmtk``
(``make setup`` installs them when run as root); without them these tests skip and say so.
"""
from __future__ import annotations

import csv
import dataclasses
import shutil
import subprocess
from pathlib import Path

import pytest
from report_factory import PACK, UNCONFIRMED, make_analysis, make_refused, make_uncertain

from spinexr.errors import SpinexrError
from spinexr.io import read_radiograph
from spinexr.io.policy import MRI_POLICY, RADIOGRAPH_OR_MRI_POLICY
from spinexr.labels import STENOSIS_GRADES
from spinexr.phantom import XrayConfig, generate_xray, xray_to_dicom
from spinexr.phantom.dicom import to_bytes
from spinexr.report import render_outputs
from spinexr.types import Analysis, Box, GateResult, Grade, Radiograph, TriageResult

TOOLS = ("dciodvfy", "dsrdump", "dcmpschk")
INSTALL = "apt-get install -y dicom3tools dcmtk (make setup does it when run as root)"
#: The only dciodvfy warning allowed on phantoms: a private code's scheme, which it cannot know.
PRIVATE_SCHEME_WARNING = "Unrecognized defined term <99SPINEXR>"
#: Warnings real headers add, on values copied from the source as they are: an empty
#: Laterality where the source names no body part (type 2C: empty is right when unknown, its
#: absence would be an error), retired person-name forms, and the type 2 patient/study
#: attributes a source leaves empty.
SOURCE_WARNINGS = (PRIVATE_SCHEME_WARNING,
                   "should be absent (not empty) if an unpaired body part, and have a value if "
                   "a paired body part - attribute <Laterality>",
                   "Retired Person Name form",
                   "Missing attribute or value that would be needed to build DICOMDIR")


@pytest.fixture(scope="module", autouse=True)
def _tools():
    missing = [t for t in TOOLS if shutil.which(t) is None]
    if missing:
        pytest.skip(f"{', '.join(missing)} not installed: {INSTALL}")


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(args, capture_output=True, text=True, timeout=60, check=False)


def problems(path: Path, allowed: tuple[str, ...] = (PRIVATE_SCHEME_WARNING,)) -> list[str]:
    """What the validators object to in one file: dciodvfy errors and warnings other than
    ``allowed``, dsrdump (SR) and dcmpschk (GSPS) errors, each prefixed with tool and file."""
    found = []
    out = _run("dciodvfy", str(path))
    for line in (out.stdout + out.stderr).splitlines():
        if line.startswith("Error") or (line.startswith("Warning")
                                        and not any(a in line for a in allowed)):
            found.append(f"dciodvfy {path.name}: {line}")
    checker = {"sr": "dsrdump", "gsps": "dcmpschk"}.get(path.stem.rsplit("_", 1)[-1])
    if checker:
        out = _run(checker, str(path))
        bad = [ln for ln in (out.stdout + out.stderr).splitlines() if ln[:2] in ("E:", "F:")]
        if out.returncode != 0 or bad:
            found.append(f"{checker} {path.name}: rc {out.returncode} {bad}")
    return found


def _write(files: dict[str, bytes], folder: Path, name: str) -> list[Path]:
    paths = []
    for file_name, data in files.items():
        if file_name.endswith(".dcm"):
            path = folder / f"{name}_{file_name.removesuffix('.dcm')}.dcm"
            path.write_bytes(data)
            paths.append(path)
    return paths


def _disagreeing(a: Analysis) -> Analysis:
    """``a`` triaged normal with a cervical fracture and a severe window grade at C5."""
    return dataclasses.replace(a, triage=TriageResult(0.2, False, "balanced", 0.42), grades=(
        Grade("cervical", "fracture", 1, {"normal": 0.1, "fracture": 0.84, "dislocation": 0.06}),
        Grade("degeneration", "severe", 4, {"severe": 0.7},
              Box(10.0, 20.0, 60.0, 80.0, "window", 0.7, "C5"))))


def _radiograph_cases(image: Radiograph, *, uncertain: bool = True) -> dict[str, Analysis]:
    """Accepted, disagreeing, refused and (unless not asked for) uncertain analyses."""
    accepted = make_analysis(image, levels=UNCONFIRMED)
    cases = {"accepted": accepted, "disagreeing": _disagreeing(accepted),
             "refused": make_refused(image)}
    return {**cases, "uncertain": make_uncertain(image)} if uncertain else cases


@pytest.mark.parametrize("region, photometric_rate", [("lumbar", 0.0), ("cervical", 1.0)])
def test_phantom_radiographs_validate(tmp_path, region, photometric_rate):
    ph = generate_xray(5, XrayConfig(size=(192, 160), region=region,
                                     monochrome1_rate=photometric_rate))
    image = read_radiograph(to_bytes(xray_to_dicom(ph)))
    assert image.header.PhotometricInterpretation == ("MONOCHROME1" if photometric_rate
                                                      else "MONOCHROME2")
    paths = []
    for name, a in _radiograph_cases(image).items():
        files = render_outputs(a, image)
        paths += _write(files, tmp_path, name)
        assert ("gsps.dcm" in files) == ("sc.dcm" in files) == a.gate.accepted
    assert len(paths) == 3 * 3 + 1
    assert [p for path in paths for p in problems(path)] == []


def _mri_analysis(image: Radiograph, rows: list[dict]) -> Analysis:
    grades = tuple(Grade("stenosis", row["grade"], STENOSIS_GRADES.index(row["grade"]),
                         {row["grade"]: 0.7},
                         Box(float(row["xmin"]), float(row["ymin"]), float(row["xmax"]),
                             float(row["ymax"]), row["region"], 0.9))
                   for row in rows)
    return Analysis(image_id=image.image_id, source=image.source,
                    image_size=(image.width, image.height), spacing_mm=image.spacing_mm,
                    pack=PACK, modality="mri", grades=grades,
                    gate=GateResult(True, f"axial MR slice: {len(grades)} region(s) found"))


def test_mr_phantom_from_the_cli_validates(tmp_path):
    from spinexr.cli import main

    root = tmp_path / "mri"
    assert main(["phantom", "--n", "1", "--seed", "21", "--out", str(root), "--task", "mri",
                 "--layout", "vindr", "--size", "128", "128", "--quiet"]) == 0
    (source,) = sorted((root / "train_images").iterdir())
    with open(root / "annotations" / "train.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    image = read_radiograph(source, policy=MRI_POLICY)
    a = _mri_analysis(image, rows)
    files = render_outputs(a, image)
    refused = dataclasses.replace(a, grades=(), gate=GateResult(False, "unusable image"))
    paths = _write(files, tmp_path, "mri") + _write(render_outputs(refused, image), tmp_path,
                                                   "mri-refused")
    assert sorted(p.name for p in paths) == ["mri-refused_sr.dcm", "mri_gsps.dcm", "mri_sc.dcm",
                                             "mri_sr.dcm"]
    assert [p for path in paths for p in problems(path)] == []


def test_real_dicoms_the_reader_accepts_validate(dicom_dir, dicom_manifest, tmp_path):
    """Every real file the analyzer's reader accepts (radiograph or MR policy): the gate
    refuses them all (none is a spine radiograph), so their real outputs are refused SRs;
    accepted and disagreeing analyses check the GSPS and SC against the same headers."""
    accepted, paths = [], []
    for name in sorted(dicom_manifest):
        try:
            image = read_radiograph(dicom_dir / name, policy=RADIOGRAPH_OR_MRI_POLICY,
                                    min_side=128)
        except SpinexrError:
            continue
        accepted.append(name)
        mri = image.header.get("Modality") == "MR"
        cases = ({"refused": dataclasses.replace(make_refused(image), modality="mri"),
                  "accepted": _mri_analysis(image, [_region(image)])} if mri
                 else _radiograph_cases(image, uncertain=False))
        for case, a in cases.items():
            paths += _write(render_outputs(_in_bounds(a, image), image), tmp_path,
                            f"{Path(name).stem}-{case}")
    assert {"CR1_6154", "RG1_J2KI.dcm", "MR2_J2KR.dcm", "vlut_04.dcm"} <= set(accepted)
    assert len(paths) >= 2 * len(accepted)
    assert [p for path in paths for p in problems(path, SOURCE_WARNINGS)] == []


def _region(image: Radiograph) -> dict:
    w, h = image.header.Columns, image.header.Rows
    return {"grade": "moderate", "region": "central canal", "xmin": 0.4 * w, "ymin": 0.4 * h,
            "xmax": 0.6 * w, "ymax": 0.6 * h}


def _in_bounds(a: Analysis, image: Radiograph) -> Analysis:
    """``a`` with its findings and boxes moved inside the real image (the factory's boxes are
    for a 200 x 256 phantom) and its size that of the source."""
    w, h = int(image.header.Columns), int(image.header.Rows)

    def fit(b: Box) -> Box:
        return dataclasses.replace(b, x1=b.x1 / 256 * w, x2=b.x2 / 256 * w,
                                   y1=b.y1 / 256 * h, y2=b.y2 / 256 * h)

    findings = tuple(dataclasses.replace(f, box=fit(f.box)) for f in a.findings)
    grades = tuple(dataclasses.replace(g, box=fit(g.box)) if g.box is not None
                   and a.modality != "mri" else g for g in a.grades)
    return dataclasses.replace(a, findings=findings, grades=grades, image_size=(w, h))
