"""The API end to end with the tiny pack: sync and async analyses, renditions, history,
models, seed routes, readiness, metrics, headers, CORS, queue limits and restarts."""
from __future__ import annotations

import io
import threading

import numpy as np
import pydicom
import pytest

from service_helpers import add_key, bearer, phantom_dicom, png_bytes, running, upload


@pytest.fixture
def key(settings):
    return add_key(settings, "alice", "submit")


def test_sync_analysis_returns_the_result_and_stores_every_rendition(settings, analyzer, key):
    dcm = phantom_dicom()
    with running(settings, analyzer) as c:
        r = c.post("/v1/analyses", headers=bearer(key), files=upload("p.dcm", dcm))
        assert r.status_code == 200, r.text
        doc = r.json()
        assert doc["status"] == "done" and doc["gate"]["accepted"] is True
        assert doc["pack"] == {"name": "tiny", "version": "0.0.1", "synthetic": True}
        assert r.headers["location"] == f"/v1/analyses/{doc['id']}"
        src = pydicom.dcmread(io.BytesIO(dcm))
        assert doc["source"]["study_instance_uid"] == src.StudyInstanceUID
        got = c.get(f"/v1/analyses/{doc['id']}", headers=bearer(key)).json()
        assert got["triage"] == doc["triage"] and got["status"] == "done"
        for name in ("sr.dcm", "gsps.dcm", "sc.dcm"):
            rr = c.get(f"/v1/analyses/{doc['id']}/{name}", headers=bearer(key))
            assert rr.headers["content-type"] == "application/dicom"
            assert pydicom.dcmread(io.BytesIO(rr.content)).StudyInstanceUID == \
                src.StudyInstanceUID
        png = c.get(f"/v1/analyses/{doc['id']}/overlay.png", headers=bearer(key))
        assert png.content.startswith(b"\x89PNG")
        from PIL import Image

        plain = c.get(f"/v1/analyses/{doc['id']}/image.png", headers=bearer(key))
        assert Image.open(io.BytesIO(plain.content)).mode == "L"     # grey: nothing drawn
        item = c.get("/v1/analyses", headers=bearer(key)).json()["items"][0]
        assert item["id"] == doc["id"] and item["n_findings"] == len(doc["findings"])
        assert item["probability"] == doc["triage"]["probability"]
        html = c.get(f"/v1/analyses/{doc['id']}/report.html", headers=bearer(key))
        assert "<html" in html.text.lower() and "sandbox" in html.headers["content-security-policy"]
        assert c.get(f"/v1/analyses/{doc['id']}/result.json", headers=bearer(key)).json()[
            "image_id"] == doc["image_id"]
        r = c.get(f"/v1/analyses/{doc['id']}/secrets.txt", headers=bearer(key))
        assert r.status_code == 404 and r.json()["error"]["code"] == "rendition_not_found"


def test_async_analysis_with_explanations(settings, analyzer, key):
    with running(settings, analyzer) as c:
        r = c.post("/v1/analyses?async=true&explain=gradcam", headers=bearer(key),
                   files=upload("p.dcm", phantom_dicom(seed=5)))
        assert r.status_code == 202 and r.json()["status"] == "queued"
        url = r.headers["location"]
        c.app.state.service.queue.wait_idle(60)
        doc = c.get(url, headers=bearer(key)).json()
        assert doc["status"] == "done" and [h["method"] for h in doc["heatmaps"]] == ["gradcam"]
        heat = c.get(f"{url}/heatmap/gradcam.png", headers=bearer(key))
        assert heat.status_code == 200 and heat.content.startswith(b"\x89PNG")
        assert c.get(f"{url}/heatmap/ig.png", headers=bearer(key)).status_code == 404
        r = c.post("/v1/analyses?explain=magic", headers=bearer(key),
                   files=upload("p.dcm", phantom_dicom()))
        assert r.status_code == 422 and r.json()["error"]["code"] == "unknown_explain_method"


def test_not_a_radiograph_is_a_refused_200_and_png_has_no_dicom_objects(settings, analyzer,
                                                                          key):
    levels = (np.arange(8, dtype=np.uint8) * 20 + 60)[np.arange(256) // 32]
    pattern = np.tile(levels, (256, 1))                   # 8 grey bars: a graphic
    with running(settings, analyzer) as c:
        r = c.post("/v1/analyses", headers=bearer(key), files=upload("t.png", png_bytes(pattern)))
        assert r.status_code == 200
        doc = r.json()
        assert doc["status"] == "refused" and doc["gate"]["accepted"] is False
        assert "not a radiograph" in doc["gate"]["reason"] and doc["triage"] is None
        assert "sr.dcm" not in doc["links"] and "overlay.png" in doc["links"]


def test_submit_keys_see_only_their_own_analyses_and_history_pages(settings, analyzer, key):
    bob = add_key(settings, "bob", "submit")
    reader = add_key(settings, "carol", "read")
    img = png_bytes((np.random.default_rng(0).random((96, 96)) * 255).astype(np.uint8))
    with running(settings, analyzer) as c:
        ids = [c.post("/v1/analyses", headers=bearer(key), files=upload("a.png", img)).json()["id"]
               for _ in range(3)]
        assert c.get(f"/v1/analyses/{ids[0]}", headers=bearer(bob)).status_code == 404
        assert c.get(f"/v1/analyses/{ids[0]}", headers=bearer(reader)).status_code == 200
        assert c.get("/v1/analyses", headers=bearer(bob)).json()["items"] == []
        page = c.get("/v1/analyses?limit=2", headers=bearer(reader)).json()
        assert [i["id"] for i in page["items"]] == ids[:0:-1]
        rest = c.get(f"/v1/analyses?limit=2&cursor={page['next_cursor']}",
                     headers=bearer(reader)).json()
        assert [i["id"] for i in rest["items"]] == ids[:1] and rest["next_cursor"] is None
        r = c.get("/v1/analyses?limit=0", headers=bearer(reader))
        assert r.status_code == 422 and r.json()["error"]["code"] == "invalid_request"


def test_models_health_ready_metrics_and_headers(settings, analyzer, key):
    with running(settings, analyzer) as c:
        m = c.get("/v1/models", headers=bearer(key)).json()
        assert m["pack"]["name"] == "tiny" and m["pack"]["synthetic"] is True
        assert m["pack"]["card"] == {"intended_use": "tests only"}
        h = c.get("/health").json()
        assert set(h) == {"status", "models_loaded", "device", "timestamp"}
        assert h["status"] == "healthy" and h["models_loaded"] is True
        assert c.get("/ready").status_code == 200
        r = c.get("/v1/analyses/nope", headers=bearer(key))
        assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"
        assert r.headers["cache-control"] == "no-store"
        assert r.headers["x-content-type-options"] == "nosniff"
        assert r.headers["referrer-policy"] == "no-referrer"
        assert "frame-ancestors 'none'" in r.headers["content-security-policy"]
        assert "default-src 'self'" in r.headers["content-security-policy"]
        assert "access-control-allow-origin" not in c.get(
            "/health", headers={"Origin": "https://evil.example"}).headers
        text = c.get("/metrics").text
        assert 'spinexr_http_requests_total{method="GET",route="/v1/analyses/{analysis_id}",' \
               'status="404"} 1.0' in text
        assert "spinexr_http_request_duration_seconds_bucket" in text
        assert "spinexr_queue_depth 0.0" in text and "spinexr_inference_seconds" in text
        assert c.get("/nowhere").json()["error"]["code"] == "not_found"
    with running(settings, analyzer) as c:                 # a fresh registry per app
        assert "status=\"404\"" not in c.get("/metrics").text


def test_cors_allows_configured_origins_only(settings, analyzer):
    s = settings.with_(cors_origins=("https://ui.example",))
    with running(s, analyzer) as c:
        ok = c.options("/v1/analyses", headers={"Origin": "https://ui.example",
                                                "Access-Control-Request-Method": "POST"})
        assert ok.headers["access-control-allow-origin"] == "https://ui.example"
        bad = c.options("/v1/analyses", headers={"Origin": "https://evil.example",
                                                 "Access-Control-Request-Method": "POST"})
        assert "access-control-allow-origin" not in bad.headers


def test_seed_upload_shape(settings, analyzer, key):
    with running(settings, analyzer) as c:
        r = c.post("/upload", headers=bearer(key), files=upload("p.dcm", phantom_dicom()))
        doc = r.json()
        assert r.status_code == 200 and doc["status"] == "success"
        assert doc["diagnosis"] in ("Normal", "Abnormal") and 0.5 <= doc["confidence"] <= 1
        assert set(doc["ensemble_prediction"]) == {"clf"}
        assert doc["annotated_image"].startswith("data:image/png;base64,")
        assert "patient_id" not in doc["metadata"] and doc["metadata"]["format"] == "dicom"
        bad = c.post("/upload", headers=bearer(key), files=upload("p.dcm", b"not an image" * 20))
        assert bad.status_code == 415
        assert bad.json()["status"] == "error" and "'p.dcm'" in bad.json()["message"]
        anon = c.post("/upload", files=upload("p.dcm", phantom_dicom()))
        assert anon.status_code == 401 and anon.json()["status"] == "error"


def test_ui_is_served_when_present(settings, analyzer, tmp_path):
    static = tmp_path / "static"
    static.mkdir()
    (static / "index.html").write_text("<!doctype html><title>spinexr</title>")
    (static / "app.js").write_text("console.log(1)")
    with running(settings, analyzer, static_dir=static) as c:
        assert "spinexr" in c.get("/").text
        js = c.get("/static/app.js")
        assert js.status_code == 200 and "no-store" not in js.headers.get("cache-control", "")
    with running(settings, analyzer, static_dir=tmp_path / "none") as c:
        assert c.get("/").status_code == 404


class _Blocking:
    """The analyzer, held at a gate until the test opens it."""

    def __init__(self, inner) -> None:
        self.inner, self.gate, self.entered = inner, threading.Event(), threading.Event()
        self.info, self.config, self.pack = inner.info, inner.config, inner.pack
        self.read_policy, self.decode_side = inner.read_policy, inner.decode_side

    def analyze_batch(self, images, **options):
        self.entered.set()
        self.gate.wait(30)
        return self.inner.analyze_batch(images, **options)


def test_full_queue_is_429_with_retry_after(settings, analyzer, key):
    s = settings.with_(workers=1, queue_size=1)
    slow = _Blocking(analyzer)
    img = phantom_dicom()
    with running(s, slow) as c:
        first = c.post("/v1/analyses?async=true", headers=bearer(key), files=upload("a.dcm", img))
        assert slow.entered.wait(30)
        second = c.post("/v1/analyses?async=true", headers=bearer(key),
                        files=upload("b.dcm", img))
        third = c.post("/v1/analyses?async=true", headers=bearer(key), files=upload("c.dcm", img))
        assert (first.status_code, second.status_code, third.status_code) == (202, 202, 429)
        assert third.json()["error"]["code"] == "queue_full"
        assert int(third.headers["retry-after"]) >= 1
        assert "spinexr_queue_depth 1.0" in c.get("/metrics").text
        slow.gate.set()
        c.app.state.service.queue.wait_idle(60)
        ids = [i["id"] for i in c.get("/v1/analyses", headers=bearer(key)).json()["items"]]
        assert ids == [second.json()["id"], first.json()["id"]]    # the refused one left no row


def test_shutdown_keeps_queued_work_and_restart_runs_it(settings, analyzer, key):
    slow = _Blocking(analyzer)
    with running(settings.with_(workers=1), slow) as c:
        a = c.post("/v1/analyses?async=true", headers=bearer(key),
                   files=upload("a.dcm", phantom_dicom())).json()["id"]
        assert slow.entered.wait(30)
        b = c.post("/v1/analyses?async=true", headers=bearer(key),
                   files=upload("b.dcm", phantom_dicom(seed=4))).json()["id"]
        threading.Timer(0.3, slow.gate.set).start()
    from spinexr.service.store import Store

    store = Store.open(settings.db_url)
    assert store.get(a)["status"] == "done"                # running work was finished
    assert store.get(b)["status"] == "queued" and store.input_of(b) is not None
    store.close()
    with running(settings, analyzer) as c:                 # the next start runs it
        c.app.state.service.queue.wait_idle(60)
        doc = c.get(f"/v1/analyses/{b}", headers=bearer(key)).json()
        assert doc["status"] == "done" and doc["gate"]["accepted"] is True


def test_crash_recovery_requeues_stored_inputs_and_fails_the_others(settings, analyzer, key):
    from spinexr.service.store import Store

    store = Store.open(settings.db_url)
    for id, data in (("withinput", phantom_dicom()), ("without", None)):
        store.create_analysis(id=id, owner="alice", sha256="0" * 64, size=1, pack_name="tiny",
                              pack_version="0.0.1", data=data)
        store.set_status(id, "running")                    # as a crash would leave them
    store.close()
    with running(settings, analyzer) as c:
        c.app.state.service.queue.wait_idle(60)
        assert c.get("/v1/analyses/withinput", headers=bearer(key)).json()["status"] == "done"
        lost = c.get("/v1/analyses/without", headers=bearer(key)).json()
        assert lost["status"] == "failed" and lost["error"]["code"] == "interrupted"
    store = Store.open(settings.db_url)
    assert store.input_of("withinput") is None             # not kept once analysed
    outcomes = {(r["analysis_id"], r["outcome"]) for r in store.audit_rows()}
    assert ("withinput", "done") in outcomes
    # what the crash did to each is audited too, under the analysis' owner
    assert {("withinput", "requeued"), ("without", "interrupted")} <= outcomes
    assert {r["key_name"] for r in store.audit_rows()} == {"alice"}
    store.close()


def test_store_inputs_keeps_uploads(settings, analyzer, key):
    s = settings.with_(store_inputs=True)
    dcm = phantom_dicom()
    with running(s, analyzer) as c:
        id = c.post("/v1/analyses", headers=bearer(key), files=upload("a.dcm", dcm)).json()["id"]
    from spinexr.service.store import Store

    store = Store.open(s.db_url)
    assert store.input_of(id) == (dcm, "a.dcm")
    store.close()


def test_logs_hold_no_file_names(settings, analyzer, key, caplog):
    import logging

    with caplog.at_level(logging.INFO, logger="spinexr.service"):
        with running(settings, analyzer) as c:
            c.post("/v1/analyses", headers=bearer(key),
                   files=upload("DOE_JOHN_1970.dcm", phantom_dicom()))
    from spinexr.service.observe import JsonFormatter

    lines = [JsonFormatter().format(r) for r in caplog.records]
    assert any('"status": "done"' in line and '"sha256"' in line for line in lines)
    assert not any("DOE_JOHN" in line for line in lines)
