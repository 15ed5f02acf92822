"""The node's results in the web service's store (history, UI, audit), checked against what
the PACS received; with the committed demo and vertebra packs so that findings exist."""
from __future__ import annotations

import io

import pytest
from pacs_helpers import free_port, pacs_running, send, wait_for
from pydicom import dcmread

from spinexr.pacs import Destination, RetryPolicy
from spinexr.pacs.node import analysis_id

pytest.importorskip("sqlalchemy")


@pytest.fixture(scope="module")
def demo_processor(tmp_path_factory):
    from spinexr.analyze import Analyzer
    from spinexr.models.pack import resolve_packs
    from spinexr.process import Processor

    pack, vertebrae = resolve_packs()
    if vertebrae is None:
        pytest.skip("the committed models/vertebrae pack is missing")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SPINEXR_CACHE", str(tmp_path_factory.mktemp("cache")))
        return Processor(Analyzer(pack, vertebrae_pack=vertebrae))


@pytest.fixture
def store(tmp_path):
    from spinexr.service.store import Store

    s = Store.open(f"sqlite:///{tmp_path / 'spinexr.db'}")
    yield s
    s.close()


def _lumbar(seed: int):
    from spinexr.phantom import XrayConfig, generate_xray, xray_to_dicom

    ds = xray_to_dicom(generate_xray(seed, XrayConfig(size=(640, 512), abnormal_rate=1.0,
                                                      lesions_per_image=3, region="lumbar",
                                                      view="lateral")))
    buf = io.BytesIO()
    ds.save_as(buf, enforce_file_format=True)
    return dcmread(io.BytesIO(buf.getvalue()))


def test_results_in_the_store_match_what_the_pacs_received(demo_processor, store, tmp_path):
    import highdicom as hd

    from spinexr.pacs.node import Node
    from spinexr.pacs.config import NodeConfig
    from spinexr.service.external import StoreRecorder

    images = [_lumbar(0), _lumbar(5)]          # seeds whose phantoms give findings
    with pacs_running() as pacs:
        config = NodeConfig(host="127.0.0.1", port=0, data_dir=tmp_path / "data",
                            study_window_s=0.0,
                            destinations=(Destination("PACS", "127.0.0.1", pacs.port),))
        with Node(config, demo_processor, recorder=StoreRecorder(store)) as node:
            assert send(node.port, images)[1] == [0, 0]
            assert wait_for(lambda: len(pacs.received) == 6, timeout=30)
            assert wait_for(node.idle)
    n_findings = 0
    for src in images:
        row = store.get(analysis_id(str(src.SOPInstanceUID)))
        assert row["owner"] == "pacs:MODALITY" and row["status"] == "done"
        doc = row["result"]
        assert doc["source"]["sop_instance_uid"] == str(src.SOPInstanceUID)
        assert {"sr.dcm", "gsps.dcm", "sc.dcm", "image.png"} <= set(store.rendition_names(
            row["id"]))
        got = pacs.by_source(str(src.SOPInstanceUID))
        assert bytes(store.rendition(row["id"], "sr.dcm")[1]) and \
            dcmread(io.BytesIO(store.rendition(row["id"], "sr.dcm")[1])).SOPInstanceUID == \
            got["sr"].SOPInstanceUID
        sr = hd.sr.ComprehensiveSR.from_dataset(got["sr"])
        groups = sr.content.get_planar_roi_measurement_groups()
        groups = [g.tracking_identifier for g in sr.content.get_planar_roi_measurement_groups()
                  if g.tracking_identifier.startswith("Finding ")]
        # "Finding 1: Spondylolisthesis at L3-L4?": one group per finding of result.json
        assert [t.split(": ", 1)[1].rsplit(" at ", 1)[0] for t in groups] == \
            [f["label"] for f in doc["findings"]]
        assert [t.rsplit(" at ", 1)[1].rstrip("?") for t in groups] == \
            [f["level"] for f in doc["findings"]]
        n_findings += len(doc["findings"])
    assert n_findings > 0
    history, _ = store.history(limit=10)
    assert len(history) == 2
    actions = {r["action"] for r in store.audit_rows()}
    assert {"analyze", "pacs_receive", "pacs_send", "pacs_study"} <= actions
    assert all(r["key_name"].startswith("pacs") for r in store.audit_rows())


def test_a_dead_letter_shows_on_the_analysis(processor, store, tmp_path):
    from pacs_helpers import phantom

    from spinexr.pacs.config import NodeConfig
    from spinexr.pacs.node import Node
    from spinexr.service.external import StoreRecorder

    port = free_port()
    config = NodeConfig(host="127.0.0.1", port=0, data_dir=tmp_path / "data",
                        study_window_s=0.0, destinations=(Destination("PACS", "127.0.0.1",
                                                                      port),),
                        retry=RetryPolicy(base_s=0.1, max_s=0.1, dead_after_s=0.3))
    ds = phantom(500)
    with Node(config, processor, recorder=StoreRecorder(store)) as node:
        assert send(node.port, [ds])[1] == [0]
        assert wait_for(lambda: node.queue.counts().get("deliveries.dead") == 3, timeout=15)
    row = store.get(analysis_id(str(ds.SOPInstanceUID)))
    assert row["status"] == "done" and row["error_code"] == "delivery_failed"
    assert f"PACS@127.0.0.1:{port}" in row["error_message"]
    assert "dead_letter" in {r["outcome"] for r in store.audit_rows()}
