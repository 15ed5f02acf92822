"""The input gate on real images: the real spine radiographs of the vertebra test split pass;
the non-spine images of ../shared/data/dicom are refused, at reading or by the gate."""
from __future__ import annotations

from pathlib import Path

import pytest

from spinexr.analyze import Analyzer
from spinexr.errors import ModalityNotAllowedError, SpinexrError, UnsupportedImageError
from spinexr.io import read_radiograph
from spinexr.models import load_pack

REPO = Path(__file__).resolve().parents[1]

#: Files that read as radiographs (or unknown modality) and must be refused by the gate.
GATE_REFUSES = {
    "RG1_J2KI.dcm": "not a spine radiograph",        # chest CR
    "RG3_J2KR.dcm": "not a spine radiograph",        # leg CR, lossless
    "RG3_J2KI.dcm": "not a spine radiograph",        # leg CR, lossy
    "image_dfl.dcm": "grey levels",                  # a test pattern
    "vlut_04.dcm": "grey levels",
    "mlut_18.dcm": "grey levels",
    "CR1_6154": "below 64 px",                       # cervical CR downsized to 16 x 16
    "JLSL_08_07_0_1F.dcm": "not a spine radiograph",  # 128 x 128 test images
    "JLSL_16_15_1_1F.dcm": "not a spine radiograph",
    "JPEGLSNearLossless_16.dcm": "below 64 px",
}
#: Files refused while reading: other modalities, colour, multi-frame, broken.
READ_REFUSES = {"693_J2KR.dcm": ModalityNotAllowedError, "MR2_J2KR.dcm": ModalityNotAllowedError,
                "JPGLosslessP14SV1_1s_1f_8b.dcm": ModalityNotAllowedError,
                "JPEG-LL.dcm": ModalityNotAllowedError,
                "SC_rgb_jpeg_dcmtk.dcm": UnsupportedImageError,
                "HTJ2KLossless_08_RGB.dcm": UnsupportedImageError}


@pytest.fixture(scope="module")
def analyzer(tmp_path_factory):
    import os

    os.environ.setdefault("SPINEXR_CACHE", str(tmp_path_factory.mktemp("cache")))
    return Analyzer(load_pack(REPO / "models" / "vertebrae"))


@pytest.mark.slow
def test_every_real_spine_radiograph_of_the_test_split_passes(analyzer, vertebrae_dir):
    paths = sorted((vertebrae_dir / "test" / "images").glob("*.jpg"))
    assert len(paths) == 141
    refused = [(p.name, a.gate.reason) for p in paths
               for a in [analyzer.analyze(read_radiograph(p))] if not a.gate.accepted]
    assert refused == []


@pytest.mark.parametrize("name, reason", sorted(GATE_REFUSES.items()))
def test_non_spine_images_are_refused_by_the_gate(analyzer, dicom_dir, name, reason):
    a = analyzer.analyze(read_radiograph(dicom_dir / name))
    assert not a.gate.accepted and reason in a.gate.reason
    assert a.findings == () and a.triage is None


@pytest.mark.parametrize("name, error", sorted(READ_REFUSES.items()))
def test_other_modalities_and_colour_are_refused_before_the_gate(dicom_dir, name, error):
    with pytest.raises(error):
        read_radiograph(dicom_dir / name)


def test_every_shared_dicom_is_covered(dicom_manifest):
    """Each of the 30 files is either in the tables above or refused at reading by io's tests."""
    unreadable = set()
    for name in dicom_manifest:
        if name in GATE_REFUSES or name in READ_REFUSES:
            continue
        with pytest.raises(SpinexrError):
            read_radiograph(REPO.parent / "shared" / "data" / "dicom" / name)
        unreadable.add(name)
    assert len(unreadable) + len(GATE_REFUSES) + len(READ_REFUSES) == 30
