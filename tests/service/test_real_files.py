"""Every real DICOM file of ../shared/data/dicom (broken, colour, CT, MR, chest and leg CR)
gets a 4xx JSON error or a refused result through the API, never a 5xx."""
from __future__ import annotations

import pytest

from service_helpers import REPO_VERTEBRAE, add_key, bearer, running, upload

pytestmark = pytest.mark.skipif(not REPO_VERTEBRAE.is_dir(), reason="models/vertebrae missing")


@pytest.fixture(scope="module")
def gated(tiny_pack, tmp_path_factory):
    """The tiny pack with the committed vertebra detector, so the gate checks for a spine."""
    from spinexr.analyze import Analyzer

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SPINEXR_CACHE", str(tmp_path_factory.mktemp("cache")))
        return Analyzer.from_dirs(tiny_pack, REPO_VERTEBRAE)


def test_no_real_file_gets_a_5xx_or_an_accepted_analysis(dicom_dir, dicom_manifest, settings,
                                                          gated):
    key = add_key(settings, "alice", "submit")
    files = sorted(p for p in dicom_dir.iterdir() if p.name in dicom_manifest)
    assert len(files) >= 25
    outcomes, notes = {}, {}
    with running(settings.with_(max_pixels=4_000_000), gated) as c:
        for path in files:
            r = c.post("/v1/analyses", headers=bearer(key), files=upload(path.name,
                                                                         path.read_bytes()))
            doc = r.json()
            assert r.status_code < 500, (path.name, doc)
            if r.status_code == 200:
                assert doc["status"] == "refused" and doc["gate"]["accepted"] is False, path.name
                outcomes[path.name] = "refused"
                notes[path.name] = doc["notes"]
            else:
                err = doc["error"]
                assert 400 <= r.status_code < 500 and err["code"] and path.name in err["message"]
                outcomes[path.name] = err["code"]
    assert outcomes["693_J2KR.dcm"] == "modality_not_allowed"          # a CT
    assert outcomes["MR_truncated.dcm"] in ("corrupt_image", "modality_not_allowed")
    assert outcomes["RG1_J2KI.dcm"] == "refused"                        # a chest CR: no spine
    assert outcomes["ExplVR_LitEndNoMeta.dcm"] == "no_pixel_data"
    # no Study/Series UID: the other renditions are kept and a note says why DICOM ones are not
    assert any("not written: the source header lacks StudyInstanceUID" in n
               for n in notes["JLSL_08_07_0_1F.dcm"])

