"""Nothing lost: a destination that is down, a node stopped mid-queue, dead letters, filters,
studies."""
from __future__ import annotations

from pacs_helpers import Pacs, free_port, pacs_running, phantom, send, wait_for

from spinexr.pacs import Destination, FilterConfig, RetryPolicy


def test_destination_down_then_up_gets_everything_after_backoff(make_node):
    port = free_port()
    node = make_node(destinations=(Destination("PACS", "127.0.0.1", port),))
    images = [phantom(60), phantom(61)]
    assert send(node.port, images)[1] == [0, 0]
    name = f"PACS@127.0.0.1:{port}"
    assert wait_for(lambda: node.metrics.value("spinexr_pacs_retried_total",
                                               destination=name) >= 6, timeout=90)
    assert not node.idle()
    pacs = Pacs(port).start()
    try:
        assert wait_for(lambda: len(pacs.received) == 6, timeout=15), pacs.uids()
        assert wait_for(node.idle)
    finally:
        pacs.stop()
    assert sorted(pacs.uids()) == sorted(set(pacs.uids()))
    assert node.metrics.value("spinexr_pacs_sent_total", destination=name) == 6


def test_node_stopped_mid_queue_delivers_after_restart_without_duplicates(make_node, tmp_path):
    port = free_port()
    dest = (Destination("PACS", "127.0.0.1", port),)
    first = make_node(destinations=dest, data_dir=tmp_path / "node")
    images = [phantom(70 + i) for i in range(3)]
    assert send(first.port, images)[1] == [0, 0, 0]
    assert wait_for(lambda: first.queue.counts().get("deliveries.pending", 0) == 9)
    first.stop()
    with pacs_running(port) as pacs:
        second = make_node(destinations=dest, data_dir=tmp_path / "node")
        assert send(second.port, images[:1])[1] == [0]          # a modality resends one
        assert wait_for(lambda: len(pacs.received) == 9, timeout=15)
        assert wait_for(second.idle)
        assert not wait_for(lambda: len(pacs.received) > 9, timeout=1.0)
    assert len(set(pacs.uids())) == 9
    for ds in images:
        assert set(pacs.by_source(str(ds.SOPInstanceUID))) == {"sr", "gsps", "sc"}
    assert second.metrics.value("spinexr_pacs_analysed_total", outcome="uncertain") == 0


def test_images_left_analysing_by_a_crash_are_analysed_after_restart(make_node, tmp_path):
    from spinexr.pacs.queue import DiskQueue

    images = [phantom(75, study_uid="1.2.3.75"), phantom(76, study_uid="1.2.3.75")]
    q = DiskQueue(tmp_path / "node" / "pacs")            # a node that died mid-analysis
    from pacs_helpers import to_bytes
    for ds in images:
        q.admit(sop_uid=str(ds.SOPInstanceUID), study_uid=str(ds.StudyInstanceUID),
                sop_class=str(ds.SOPClassUID), calling_aet="MODALITY", data=to_bytes(ds))
    assert len(q.claim_ready(0.0, 8)) == 2
    (q.incoming / "stray.dcm").write_bytes(b"half a file")
    q.close()
    with pacs_running() as pacs:
        node = make_node(destinations=(Destination("PACS", "127.0.0.1", pacs.port),),
                         data_dir=tmp_path / "node")
        assert wait_for(lambda: len(pacs.received) == 6, timeout=15)
    assert not (node.config.queue_dir / "incoming" / "stray.dcm").exists()
    assert ("pacs_resume", "requeued 2", None) in node.queue.events()


def test_undeliverable_results_are_dead_lettered(make_node):
    port = free_port()
    node = make_node(destinations=(Destination("PACS", "127.0.0.1", port),),
                     retry=RetryPolicy(base_s=0.1, max_s=0.2, dead_after_s=0.5))
    assert send(node.port, [phantom(80)])[1] == [0]
    name = f"PACS@127.0.0.1:{port}"
    assert wait_for(lambda: node.metrics.value("spinexr_pacs_dead_lettered_total",
                                               destination=name) == 3, timeout=15)
    assert [r[3] for r in node.queue.deliveries()] == ["dead"] * 3
    assert node.idle()
    assert wait_for(lambda: node.metrics.value("spinexr_pacs_queue_depth", queue="dead") == 3)
    assert [e[1] for e in node.queue.events("pacs_send")].count("dead_letter") == 3


def test_a_chest_film_is_acknowledged_skipped_and_audited(make_node):
    chest = phantom(90)
    chest.BodyPartExamined = "CHEST"
    chest.StudyDescription = "CHEST PA"
    chest.SeriesDescription = "PA"
    hand = phantom(91)
    hand.SeriesDescription = "HAND trauma"
    with pacs_running() as pacs:
        node = make_node(destinations=(Destination("PACS", "127.0.0.1", pacs.port),),
                         filter=FilterConfig(skip_words=("TRAUMA",)))
        assert send(node.port, [chest, hand, phantom(92)])[1] == [0, 0, 0]
        assert wait_for(lambda: len(pacs.received) == 3)
        assert wait_for(node.idle)
    assert node.metrics.value("spinexr_pacs_skipped_by_filter_total", rule="header") == 1
    assert node.metrics.value("spinexr_pacs_skipped_by_filter_total", rule="description") == 1
    assert node.queue.instance(str(chest.SOPInstanceUID))["state"] == "skipped"
    assert {e[1] for e in node.queue.events("pacs_filter")} == {"skipped:header",
                                                               "skipped:description"}
    assert not any((node.config.queue_dir / "incoming").iterdir())


def test_images_of_one_study_within_the_window_are_analysed_together(make_node, processor,
                                                                     monkeypatch):
    calls = []
    real = processor.process

    def spy(sources, options):
        calls.append(len(sources))
        return real(sources, options)

    monkeypatch.setattr(processor, "process", spy)
    study = "1.2.826.0.1.3680043.9.7777.1"
    images = [phantom(100 + i, study_uid=study) for i in range(3)]
    with pacs_running() as pacs:
        node = make_node(destinations=(Destination("PACS", "127.0.0.1", pacs.port),),
                         study_window_s=1.0)
        for ds in images:                      # three associations, as a modality might
            assert send(node.port, [ds])[1] == [0]
        assert wait_for(lambda: len(pacs.received) == 9)
    assert calls == [3]
    (event,) = node.queue.events("pacs_study")
    verdict, counts = event[1].split(":")
    assert verdict in ("abnormal", "normal") and counts.endswith("/3")
    summary = node.queue.study_summary(study)
    assert (verdict == "abnormal") == (summary["abnormal"] > 0)
    assert sum(v for k, v in summary.items() if k != "abnormal") == 3
