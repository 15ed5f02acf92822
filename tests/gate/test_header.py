"""Header evidence for the input gate: spellings, regions, views, modalities, odd values."""
from __future__ import annotations

import io

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydicom import uid
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.filewriter import dcmwrite

from spinexr.gate.header import HeaderEvidence, header_evidence, normalise
from spinexr.gate.header_terms import REGION_WORDS, TERMS, VIEW_TERMS
from spinexr.io import read_radiograph

BP, SD = "body_part_examined", "study_description"

#: (meta key, value, verdict, region or None)
SPELLINGS = [
    # DICOM PS3.16 Annex L defined terms.
    (BP, "SPINE", "spine", None), (BP, "CSPINE", "spine", "cervical"),
    (BP, "TSPINE", "spine", "thoracic"), (BP, "LSPINE", "spine", "lumbar"),
    (BP, "SSPINE", "spine", "lumbar"), (BP, "LSSPINE", "spine", "lumbar"),
    (BP, "COCCYX", "spine", "lumbar"), (BP, "CTSPINE", "spine", None),
    (BP, "TLSPINE", "spine", None), (BP, "CHEST", "other", None),
    (BP, "WHOLEBODY", "other", None), (BP, "ABDOMENPELVIS", "other", None),
    # English spellings and abbreviations.
    (BP, "L-SPINE", "spine", "lumbar"), (SD, "LS SPINE", "spine", "lumbar"),
    (SD, "L/S SPINE", "spine", "lumbar"), (SD, "LUMBAR SPINE", "spine", "lumbar"),
    (SD, "XR LUMBOSACRAL SPINE 2 VIEWS", "spine", "lumbar"), (SD, "SACRUM", "spine", "lumbar"),
    (SD, "C-SPINE", "spine", "cervical"), (SD, "C SP", "spine", "cervical"),
    (SD, "XR C Spine Comp Min 4 Views", "spine", "cervical"), (SD, "ODONTOID", "spine", "cervical"),
    (SD, "DENS", "spine", "cervical"), (SD, "T-SPINE", "spine", "thoracic"),
    (SD, "THORACIC SPINE", "spine", "thoracic"), (SD, "DORSAL SPINE", "spine", "thoracic"),
    (SD, "WHOLE SPINE", "spine", "whole"), (SD, "FULL SPINE PA", "spine", "whole"),
    (SD, "TOTAL SPINE", "spine", "whole"), (SD, "SCOLIOSIS SERIES", "spine", "whole"),
    (SD, "L SPINE FULL SERIES", "spine", "lumbar"),
    (SD, "C-SPINE AND L-SPINE", "spine", "whole"),
    # Other languages.
    (SD, "COLUMNA LUMBAR", "spine", "lumbar"), (SD, "Columna cervical y dorsal", "spine", None),
    (SD, "ESCOLIOSIS", "spine", "whole"), (SD, "RACHIS LOMBAIRE", "spine", "lumbar"),
    (SD, "RACHIS DORSAL", "spine", "thoracic"), (SD, "Rachis entier face", "spine", "whole"),
    (SD, "COLUNA LOMBAR", "spine", "lumbar"), (SD, "Coluna cervical", "spine", "cervical"),
    (SD, "COLONNA LOMBARE", "spine", "lumbar"), (SD, "RACHIDE CERVICALE", "spine", "cervical"),
    (SD, "LWS", "spine", "lumbar"), (SD, "BWS", "spine", "thoracic"),
    (SD, "HWS", "spine", "cervical"), (SD, "WIRBELSAEULE", "spine", None),
    (SD, "Wirbelsäule", "spine", None), (SD, "Lendenwirbelsäule", "spine", "lumbar"),
    (SD, "Skoliose", "spine", "whole"), (SD, "WERVELKOLOM", "spine", None),
    (SD, "Lumbale wervelkolom", "spine", "lumbar"), (SD, "KRĘGOSŁUP", "spine", None),
    (SD, "Kręgosłup lędźwiowy", "spine", "lumbar"), (SD, "LÄNDRYGG", "spine", "lumbar"),
    (SD, "HALSRYGG", "spine", "cervical"), (SD, "BRÖSTRYGG", "spine", "thoracic"),
    (SD, "OMURGA", "spine", None), (SD, "LOMBER", "spine", "lumbar"),
    (SD, "ПОЗВОНОЧНИК", "spine", None), (SD, "ПОЯСНИЧНЫЙ ОТДЕЛ", "spine", "lumbar"),
    (SD, "Рентгенография шейного отдела позвоночника", "spine", "cervical"),
    (SD, "Грудной отдел позвоночника", "spine", "thoracic"),
    (SD, "CỘT SỐNG THẮT LƯNG", "spine", "lumbar"), (SD, "COT SONG THAT LUNG", "spine", "lumbar"),
    (SD, "CS THAT LUNG", "spine", "lumbar"), (SD, "CSTL", "spine", "lumbar"),
    (SD, "CỘT SỐNG CỔ", "spine", "cervical"), (SD, "Cột sống ngực", "spine", "thoracic"),
    (SD, "腰椎", "spine", "lumbar"), (SD, "頚椎", "spine", "cervical"),
    (SD, "頸椎", "spine", "cervical"), (SD, "颈椎正侧位", "spine", "cervical"),
    (SD, "胸椎", "spine", "thoracic"), (SD, "脊椎", "spine", None), (SD, "脊柱", "spine", None),
    (SD, "全脊柱", "spine", "whole"), (SD, "요추", "spine", "lumbar"),
    # Other body parts.
    (SD, "THORAX", "other", None), (SD, "TORAX PA", "other", None),
    (SD, "POUMONS", "other", None), (SD, "POITRINE", "other", None),
    (SD, "LUNGE", "other", None), (SD, "X QUANG NGUC THANG", "other", None),
    (SD, "Phổi", "other", None), (SD, "胸部", "other", None),
    (SD, "Рентгенография органов грудной клетки", "other", None),
    (SD, "HAND", "other", None), (SD, "MAIN GAUCHE", "other", None),
    (SD, "MANO DERECHA", "other", None), (SD, "WRIST", "other", None),
    (SD, "KNEE", "other", None), (SD, "KNIE", "other", None), (SD, "GENOU", "other", None),
    (SD, "RODILLA", "other", None), (SD, "FOOT", "other", None), (SD, "Fuß", "other", None),
    (SD, "ANKLE", "other", None), (SD, "ELBOW", "other", None), (SD, "SHOULDER", "other", None),
    (SD, "HIP", "other", None), (SD, "PELVIS", "other", None), (SD, "BASSIN", "other", None),
    (SD, "SKULL", "other", None), (SD, "HEAD", "other", None), (SD, "ABDOMEN", "other", None),
    (SD, "BREAST", "other", None), (SD, "MAMMO", "other", None),
    (SD, "EXTREMITY", "other", None), (SD, "LEG", "other", None), (SD, "ARM", "other", None),
    (SD, "FINGER", "other", None), (SD, "TEETH", "other", None), (SD, "DENTAL", "other", None),
    (SD, "PANORAMIC", "other", None),
    # Spine and another part together.
    (SD, "CHEST AND SPINE", "conflict", None),
    # Equipment, not anatomy; a film of the femoral neck is not the neck.
    (SD, "C-ARM L SPINE", "spine", "lumbar"), (SD, "FEMORAL NECK", "other", None),
    (SD, "Cột sống lưng", "spine", None),
    # Nothing said.
    (SD, "", "unknown", None), (SD, "ROUTINE", "unknown", None),
    (SD, "PHANTOM QA 2 VIEWS", "unknown", None),
]


@pytest.mark.parametrize("key, value, verdict, region", SPELLINGS,
                         ids=[f"{k[:2]}:{v}" for k, v, _, _ in SPELLINGS])
def test_spellings(key, value, verdict, region):
    e = header_evidence({key: value})
    assert (e.verdict, e.region) == (verdict, region), e.reason


def test_at_least_sixty_spellings_and_the_vocabulary_is_consistent():
    assert len(SPELLINGS) >= 60
    regions = {"cervical", "thoracic", "lumbar", "whole"}
    for term, (verdict, value) in TERMS.items():
        assert verdict in ("spine", "other"), term
        if verdict == "spine" and value is not None:
            assert set(value.split("+")) <= regions, term
    assert set(REGION_WORDS.values()) <= regions
    views = {v for value in VIEW_TERMS.values() for v in value.split("+")}
    assert views == {"ap", "lateral", "oblique", "odontoid", "flexion", "extension"}


def test_normalise_strips_accents_case_and_separators():
    assert normalise("  l-spine/AP_lat.  ") == "L SPINE AP LAT"
    assert normalise("Cột sống thắt lưng") == "COT SONG THAT LUNG"
    assert normalise("KRĘGOSŁUP, Wirbelsäule, Fuß") == "KREGOSLUP WIRBELSAULE FUSS"
    assert normalise("腰椎") == "腰椎"


def test_regions_of_combined_terms_are_honest():
    tl = header_evidence({BP: "TLSPINE"})
    assert tl.region is None and tl.regions == ("thoracic", "lumbar")
    assert "thoracic and lumbar spine" in tl.reason
    ct = header_evidence({BP: "CTSPINE"})
    assert ct.region is None and ct.regions == ("cervical", "thoracic")
    assert header_evidence({SD: "C-SPINE AND L-SPINE"}).regions == ("cervical", "lumbar")


def test_the_series_decides_the_region_before_the_study():
    e = header_evidence({SD: "XR SPINE CERVICAL AND LUMBAR", "series_description": "LUMBAR LAT"})
    assert (e.verdict, e.region, e.view) == ("spine", "lumbar", "lateral")


@pytest.mark.parametrize("meta, view", [
    ({"view_position": "AP"}, "ap"), ({"view_position": "PA"}, "ap"),
    ({"view_position": "LL"}, "lateral"), ({"view_position": "RL"}, "lateral"),
    ({"view_position": "LAT"}, "lateral"), ({"view_position": "LATERAL"}, "lateral"),
    ({"view_position": "RLO"}, "oblique"), ({"view_position": "LAO"}, "oblique"),
    ({"view_position": "RPO"}, "oblique"), ({"series_description": "L SPINE OBL"}, "oblique"),
    ({"series_description": "HWS seitlich"}, "lateral"),
    ({"series_description": "RACHIS LOMBAIRE PROFIL"}, "lateral"),
    ({"series_description": "RACHIS LOMBAIRE FACE"}, "ap"),
    ({"series_description": "CS THAT LUNG NGHIENG"}, "lateral"),
    ({"series_description": "CS THAT LUNG THANG"}, "ap"),
    ({"series_description": "C SPINE ODONTOID"}, "odontoid"),
    ({"series_description": "C1-C2 AP OPEN MOUTH"}, "odontoid"),
    ({"series_description": "C SPINE LAT FLEXION"}, "flexion"),
    ({"series_description": "C SPINE LAT EXT"}, "extension"),
    ({"series_description": "腰椎正位"}, "ap"), ({"series_description": "腰椎侧位"}, "lateral"),
    ({"series_description": "颈椎正侧位"}, None),
    ({"series_description": "C SPINE FLEX/EXT"}, None),   # two views: none
    ({"study_description": "L SPINE AP/LAT"}, None),
    ({"series_description": "ELBOW OBLIQUE EXT"}, "oblique"),  # EXT: external rotation
    ({"view_position": "LL", "series_description": "L SPINE AP"}, "lateral"),  # tag first
    ({"view_position": "", "series_description": "L SPINE AP"}, "ap"),
])
def test_views(meta, view):
    assert header_evidence(meta).view == view


@pytest.mark.parametrize("code, kind", [
    ("CR", "radiograph"), ("DX", "radiograph"), ("RG", "radiograph"), ("DR", "radiograph"),
    ("RF", "radiograph"), ("XA", "radiograph"), ("CT", "other"), ("MR", "other"),
    ("US", "other"), ("NM", "other"), ("PT", "other"), ("MG", "other"), ("IO", "other"),
    ("PX", "other"), ("OP", "other"), ("XC", "other"), ("OT", "unknown"), (None, "unknown"),
    ("", "unknown"), ("dx", "radiograph"), ("ZZ", "unknown"),
])
def test_modalities(code, kind):
    e = header_evidence({"modality": code, BP: "LSPINE"})
    assert e.modality == kind and e.verdict in ("spine", "conflict")
    if kind == "other":
        assert f"modality {code} is not a projection radiograph" in e.reason
    if kind != "unknown":
        assert ("Modality", code.upper()) in e.matched


def test_mammography_and_dental_modalities_name_a_body_part():
    assert header_evidence({"modality": "MG"}).verdict == "other"
    assert "teeth" in header_evidence({"modality": "PX"}).reason
    assert header_evidence({"modality": "MG", BP: "LSPINE"}).verdict == "conflict"


def test_conflict_between_attributes_says_both():
    e = header_evidence({BP: "CHEST", "series_description": "L-SPINE LAT", "modality": "CR"})
    assert (e.verdict, e.region, e.near_case) == ("conflict", "lumbar", False)
    assert e.reason.startswith("the header disagrees: it names the lumbar spine "
                               "(SeriesDescription 'L SPINE') and chest (BodyPartExamined "
                               "'CHEST')")
    assert ("BodyPartExamined", "CHEST") in e.matched


def test_spine_named_with_another_part_is_a_near_conflict():
    e = header_evidence({SD: "CHEST AND SPINE"})
    assert (e.verdict, e.near_case) == ("conflict", True)
    assert "names both chest and the spine" in e.reason


@pytest.mark.parametrize("value, near", [
    ("PELVIS", True), ("ABDOMEN", True), ("HIP", True), ("SIJOINT", True), ("NECK", True),
    ("WHOLEBODY", True), ("KUB", True), ("CHEST", False), ("THORAX", False), ("HAND", False),
    ("KNEE", False), ("SKULL", False),
])
def test_near_cases(value, near):
    e = header_evidence({BP: value})
    assert (e.verdict, e.near_case) == ("other", near)
    assert ("shows part of the spine" in e.reason) is near


def test_dual_words_name_a_region_beside_the_spine():
    assert header_evidence({SD: "NECK"}).verdict == "other"
    assert header_evidence({SD: "SPINE NECK"}).region == "cervical"
    assert header_evidence({SD: "Brust"}).verdict == "other"
    assert header_evidence({SD: "Wirbelsäule Brust"}).region == "thoracic"


def test_reason_and_matched_for_a_plain_lumbar_lateral():
    e = header_evidence({"modality": "CR", BP: "L-SPINE", "view_position": "LL"})
    assert e == HeaderEvidence(
        verdict="spine", region="lumbar", view="lateral", near_case=False,
        modality="radiograph",
        matched=(("Modality", "CR"), ("BodyPartExamined", "L SPINE"), ("ViewPosition", "LL")),
        reason="the header says lumbar spine (BodyPartExamined 'L SPINE'); lateral view",
        regions=("lumbar",))


def test_free_text_never_reaches_matched_or_reason():
    e = header_evidence({SD: "Doe^Jane 1970 LUMBAR SPINE ACC-999", "protocol_name": "Doe"})
    text = repr(e.matched) + e.reason
    assert "DOE" not in text.upper() and "1970" not in text and "ACC" not in text


@pytest.mark.parametrize("meta", [
    {}, {BP: None}, {BP: 12}, {BP: 3.5}, {BP: True}, {BP: b"\xff\xfe\x00garbage"},
    {BP: bytearray(b"LSPINE")}, {BP: memoryview(b"CHEST")}, {BP: ["L", None, 7, b"x"]},
    {BP: object()}, {BP: "\x00\x1b$B\x1b(B"}, {BP: "x" * 100_000}, {"modality": ["CR", 3]},
    {"modality": b"\xc3"}, {"view_position": {"a": 1}}, {BP: "*", SD: "\\\\", "view_position": "-"},
])
def test_odd_values_never_raise(meta):
    e = header_evidence(meta)
    assert e.verdict in ("spine", "other", "conflict", "unknown") and isinstance(e.reason, str)


_VALUES = st.one_of(st.none(), st.text(max_size=60), st.binary(max_size=60), st.integers(),
                    st.floats(allow_nan=True), st.lists(st.text(max_size=10), max_size=3))


@settings(max_examples=200, deadline=None, derandomize=True, database=None)
@given(st.dictionaries(st.sampled_from([BP, SD, "series_description", "protocol_name",
                                        "view_position", "modality"]), _VALUES))
def test_random_values_never_raise(meta):
    e = header_evidence(meta)
    assert e.verdict in ("spine", "other", "conflict", "unknown")
    assert e.region in (None, "cervical", "thoracic", "lumbar", "whole")


def test_bytes_and_latin1_misread_utf8_are_read():
    assert header_evidence({BP: b"LSPINE"}).region == "lumbar"
    utf8 = "CỘT SỐNG THẮT LƯNG".encode("utf-8")
    assert header_evidence({SD: utf8}).region == "lumbar"
    assert header_evidence({SD: utf8.decode("latin-1")}).region == "lumbar"
    assert header_evidence({SD: "腰椎".encode("shift_jis").decode("latin-1")}).region == "lumbar"
    assert header_evidence({SD: "ПОЗВОНОЧНИК".encode("iso8859_5").decode("latin-1")}
                           ).verdict == "spine"


def test_a_mapping_whose_get_raises_is_unknown():
    class Broken(dict):
        def get(self, key, default=None):
            raise RuntimeError("no")

    assert header_evidence(Broken()).verdict == "unknown"


def test_a_phantom_dicom_reads_as_what_it_shows():
    from spinexr.phantom import XrayConfig, generate_xray, xray_to_dicom
    from spinexr.phantom.dicom import to_bytes

    phantom = generate_xray(3, XrayConfig(size=(160, 128)))
    e = header_evidence(read_radiograph(to_bytes(xray_to_dicom(phantom))).meta)
    view = "lateral" if phantom.view == "lateral" else "ap"
    assert (e.verdict, e.region, e.view, e.modality) == ("spine", phantom.region, view,
                                                         "radiograph")


def _dicom(**attrs) -> bytes:
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = uid.ExplicitVRLittleEndian
    ds.file_meta.MediaStorageSOPClassUID = uid.ComputedRadiographyImageStorage
    ds.file_meta.MediaStorageSOPInstanceUID = "1.2.826.0.1.3680043.8.498.11"
    ds.SOPClassUID = uid.ComputedRadiographyImageStorage
    ds.SOPInstanceUID = "1.2.826.0.1.3680043.8.498.11"
    ds.Rows, ds.Columns = 8, 8
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated = ds.BitsStored = 16
    ds.HighBit, ds.PixelRepresentation = 15, 0
    ds.PixelData = np.arange(64, dtype="<u2").tobytes()
    for key, value in attrs.items():
        setattr(ds, key, value)
    buf = io.BytesIO()
    dcmwrite(buf, ds, enforce_file_format=True)
    return buf.getvalue()


def test_a_utf8_dicom_reads_through_the_reader():
    data = _dicom(SpecificCharacterSet="ISO_IR 192", Modality="CR",
                  StudyDescription="CỘT SỐNG THẮT LƯNG", SeriesDescription="Thắt lưng nghiêng",
                  ProtocolName="CSTL")
    image = read_radiograph(data)
    assert image.meta["protocol_name"] == "CSTL"
    e = header_evidence(image.meta)
    assert (e.verdict, e.region, e.view, e.modality) == ("spine", "lumbar", "lateral",
                                                         "radiograph")


@pytest.mark.parametrize("name, verdict, region, view, modality", [
    ("RG1_J2KI.dcm", "other", None, "ap", "radiograph"),        # CHEST, THORAX, PA
    ("RG3_J2KR.dcm", "other", None, "ap", "radiograph"),        # EXTREMITY, AP
    ("CR1_6154", "spine", "cervical", "lateral", "radiograph"),  # CSPINE, Cervical LAT, LL
])
def test_real_dicom_headers(dicom_dir, name, verdict, region, view, modality):
    image = read_radiograph(dicom_dir / name)
    e = header_evidence(image.meta)
    assert (e.verdict, e.region, e.view, e.modality) == (verdict, region, view, modality)
    if name == "RG1_J2KI.dcm":
        assert image.meta["body_part_examined"] == "CHEST"
        assert e.reason.startswith("the header says chest, not spine (BodyPartExamined "
                                   "'CHEST'; StudyDescription 'THORAX')")
