"""DICOMweb: STOW-RS of several instances, then QIDO-RS and WADO-RS of their results."""
from __future__ import annotations

import io
import time

from pydicom import dcmread
from service_helpers import add_key, bearer, running

STUDY = "1.2.826.0.1.3680043.9.7777.13"


def _instance(seed: int, study: str = STUDY) -> bytes:
    from spinexr.phantom import XrayConfig, generate_xray, xray_to_dicom

    ds = xray_to_dicom(generate_xray(seed, XrayConfig(size=(256, 200))))
    ds.StudyInstanceUID = study
    buf = io.BytesIO()
    ds.save_as(buf, enforce_file_format=True)
    return buf.getvalue()


def _related(parts: list[bytes], boundary: str = "spinexr-test-boundary") -> tuple[bytes, dict]:
    body = b"".join(b"--" + boundary.encode() + b"\r\nContent-Type: application/dicom\r\n\r\n"
                    + p + b"\r\n" for p in parts) + b"--" + boundary.encode() + b"--\r\n"
    ctype = f'multipart/related; type="application/dicom"; boundary={boundary}'
    return body, {"Content-Type": ctype}


def _split(response) -> list[bytes]:
    ctype = response.headers["content-type"]
    assert ctype.startswith('multipart/related; type="application/dicom"')
    boundary = ctype.split("boundary=")[1].encode()
    parts = response.content.split(b"--" + boundary)[1:-1]
    return [p.split(b"\r\n\r\n", 1)[1][:-2] for p in parts]


def _wait_done(client, key: str, location: str) -> dict:
    for _ in range(200):
        doc = client.get(location, headers=bearer(key)).json()
        if doc["status"] not in ("queued", "running"):
            return doc
        time.sleep(0.05)
    raise AssertionError(f"{location} did not finish")


def test_stow_then_qido_and_wado_of_the_results(settings, analyzer):
    submit, read = add_key(settings, "modality", "submit"), add_key(settings, "viewer", "read")
    other = add_key(settings, "other", "submit")
    sources = [dcmread(io.BytesIO(d)) for d in (_instance(1), _instance(2))]
    body, headers = _related([_instance(1), _instance(2)])
    with running(settings, analyzer) as client:
        r = client.post("/dicomweb/studies", content=body, headers={**headers, **bearer(submit)})
        assert r.status_code == 200, r.text
        assert r.headers["content-type"] == "application/dicom+json"
        items = r.json()["00081199"]["Value"]
        assert [i["00081155"]["Value"][0] for i in items] == \
            [str(s.SOPInstanceUID) for s in sources]
        for item in items:
            assert _wait_done(client, submit, item["00081190"]["Value"][0])["status"] == "done"

        r = client.get(f"/dicomweb/studies/{STUDY}/instances", headers=bearer(read))
        assert r.status_code == 200
        found = r.json()
        assert len(found) == 6
        assert sorted(i["00080060"]["Value"][0] for i in found) == ["OT", "OT", "PR", "PR",
                                                                     "SR", "SR"]
        assert {i["0020000D"]["Value"][0] for i in found} == {STUDY}

        one = found[0]
        series, sop = one["0020000E"]["Value"][0], one["00080018"]["Value"][0]
        r = client.get(f"/dicomweb/studies/{STUDY}/series/{series}/instances/{sop}",
                       headers=bearer(read))
        assert r.status_code == 200
        (part,) = _split(r)
        ds = dcmread(io.BytesIO(part))
        assert ds.SOPInstanceUID == sop and ds.StudyInstanceUID == STUDY
        r = client.get(f"/dicomweb/studies/{STUDY}", headers=bearer(read))
        assert sorted(str(dcmread(io.BytesIO(p)).SOPInstanceUID) for p in _split(r)) == \
            sorted(i["00080018"]["Value"][0] for i in found)
        r = client.get(f"/dicomweb/studies/{STUDY}/series/{series}/instances/{sop}/metadata",
                       headers=bearer(read))
        assert r.json()[0]["00080018"]["Value"] == [sop]
        assert len(client.get(f"/dicomweb/studies/{STUDY}/series",
                              headers=bearer(read)).json()) == 6   # one series per kind+source

        # the submitter sees its own results; another submit key none; no key: 401
        assert client.get(f"/dicomweb/studies/{STUDY}/instances",
                          headers=bearer(submit)).status_code == 200
        assert client.get(f"/dicomweb/studies/{STUDY}/instances",
                          headers=bearer(other)).status_code == 204
        assert client.get(f"/dicomweb/studies/{STUDY}/instances").status_code == 401
        assert client.post("/dicomweb/studies", content=body,
                           headers={**headers, **bearer(read)}).status_code == 403


def test_stow_failures_are_listed_with_their_reason(settings, analyzer):
    submit = add_key(settings, "modality", "submit")
    with running(settings, analyzer) as client:
        body, headers = _related([_instance(3, "1.2.3.4"), b"not dicom at all"])
        r = client.post(f"/dicomweb/studies/{STUDY}", content=body,
                        headers={**headers, **bearer(submit)})
        assert r.status_code == 409
        reasons = [i["00081197"]["Value"][0] for i in r.json()["00081198"]["Value"]]
        assert reasons == [0xA900, 0xC000]            # wrong study; cannot understand

        body, headers = _related([_instance(4), b"garbage"])
        r = client.post("/dicomweb/studies", content=body, headers={**headers, **bearer(submit)})
        assert r.status_code == 202
        assert len(r.json()["00081199"]["Value"]) == 1
        assert len(r.json()["00081198"]["Value"]) == 1

        r = client.post("/dicomweb/studies", content=b"x",
                        headers={"Content-Type": "application/dicom", **bearer(submit)})
        assert r.status_code == 415
        assert client.get("/dicomweb/studies/1.2.3/series/4/instances/5",
                          headers=bearer(submit)).status_code == 404
