"""What the browser UI needs from the service (issue 12, items 3-5): patient and study
identifiers for authenticated readers only (and none with SPINEXR_SHOW_IDENTIFIERS=off), the
history telling entries apart, the heatmap values to colour, the clinical model card; logs and
result.json stay free of identifiers."""
from __future__ import annotations

import io
import json
import logging

import numpy as np
import pytest

from service_helpers import add_key, bearer, phantom_dicom, png_bytes, running, upload

#: What the phantom's header says (seed 3): see spinexr.phantom.dicom.
NAME, PATIENT_ID, ACCESSION = "PHANTOM, Seed0003", "PHANTOM-0003", "PH0000000003"


@pytest.fixture
def keys(settings):
    return {name: add_key(settings, name, role) for name, role in
            (("alice", "submit"), ("bob", "submit"), ("reader", "read"))}


def test_identity_is_served_to_its_readers_and_shown_in_the_history(settings, analyzer, keys,
                                                                    caplog):
    from spinexr.service.observe import JsonFormatter

    with caplog.at_level(logging.INFO, logger="spinexr.service"):
        with running(settings, analyzer) as c:
            doc = c.post("/v1/analyses?explain=gradcam", headers=bearer(keys["alice"]),
                         files=upload("x.dcm", phantom_dicom(seed=3))).json()
            url = f"/v1/analyses/{doc['id']}/identity.json"
            ident = c.get(url, headers=bearer(keys["alice"])).json()
            assert (ident["patient_name"], ident["patient_id"], ident["accession_number"],
                    ident["study_date"], ident["birth_date"], ident["view"],
                    ident["body_part"]) == (NAME, PATIENT_ID, ACCESSION, "2021-11-16 17:20",
                                            "1983-06-16", "AP", "LSPINE")
            assert c.get(url, headers=bearer(keys["reader"])).status_code == 200
            assert c.get(url, headers=bearer(keys["bob"])).status_code == 404   # not his
            assert c.get(url).status_code == 401
            item = c.get("/v1/analyses", headers=bearer(keys["alice"])).json()["items"][0]
            assert item["identity"]["patient_name"] == NAME
            assert c.get("/v1/analyses", headers=bearer(keys["bob"])).json()["items"] == []
            report = c.get(f"/v1/analyses/{doc['id']}/report.html",
                           headers=bearer(keys["alice"])).text
            assert NAME in report and PATIENT_ID in report
            result = c.get(f"/v1/analyses/{doc['id']}/result.json",
                           headers=bearer(keys["alice"])).content
            models = c.get("/v1/models", headers=bearer(keys["alice"])).json()
    for secret in (b"PHANTOM", b"19830616", ACCESSION.encode()):
        assert secret not in result
    assert "PHANTOM" not in json.dumps(doc)
    lines = [JsonFormatter().format(r) for r in caplog.records]
    assert lines and not any("PHANTOM" in line or "1983" in line for line in lines)
    assert models["show_identifiers"] is True
    assert models["clinical"]["intended_use"] == "tests only"
    assert models["clinical"]["operating_points"] == {"youden": 0.5}


def test_show_identifiers_off_stores_and_serves_none(settings, analyzer, keys):
    settings = settings.with_(show_identifiers=False)
    with running(settings, analyzer) as c:
        doc = c.post("/v1/analyses", headers=bearer(keys["alice"]),
                     files=upload("x.dcm", phantom_dicom(seed=3))).json()
        r = c.get(f"/v1/analyses/{doc['id']}/identity.json", headers=bearer(keys["alice"]))
        assert r.status_code == 404 and r.json()["error"]["code"] == "identifiers_hidden"
        assert "identity.json" not in doc["links"]
        item = c.get("/v1/analyses", headers=bearer(keys["alice"])).json()["items"][0]
        assert "identity" not in item
        report = c.get(f"/v1/analyses/{doc['id']}/report.html",
                       headers=bearer(keys["alice"])).text
        assert NAME not in report and PATIENT_ID not in report
        assert c.get("/v1/models", headers=bearer(keys["alice"])).json()[
            "show_identifiers"] is False


def test_png_upload_has_no_identity(settings, analyzer, keys):
    from spinexr.phantom import XrayConfig, generate_xray, render_display

    picture = np.rint(render_display(generate_xray(3, XrayConfig(size=(256, 200)))) * 255)
    with running(settings, analyzer) as c:
        doc = c.post("/v1/analyses", headers=bearer(keys["alice"]),
                     files=upload("x.png", png_bytes(picture.astype(np.uint8)))).json()
        assert "identity.json" not in doc["links"]
        item = c.get("/v1/analyses", headers=bearer(keys["alice"])).json()["items"][0]
        assert item["identity"] is None


def test_heat_values_are_the_size_of_the_display_image(settings, analyzer, keys):
    from PIL import Image

    with running(settings, analyzer) as c:
        doc = c.post("/v1/analyses?explain=gradcam", headers=bearer(keys["alice"]),
                     files=upload("x.dcm", phantom_dicom(seed=3))).json()
        base = f"/v1/analyses/{doc['id']}"
        image = Image.open(io.BytesIO(c.get(f"{base}/image.png",
                                            headers=bearer(keys["alice"])).content))
        r = c.get(f"{base}/heat/gradcam.png", headers=bearer(keys["alice"]))
        heat = Image.open(io.BytesIO(r.content))
        assert r.status_code == 200 and heat.mode == "L" and heat.size == image.size
        assert c.get(f"{base}/heat/gradcam.png", headers=bearer(keys["bob"])).status_code == 404
