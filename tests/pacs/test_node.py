"""The node end to end on loopback: a pynetdicom modality sends, an in-test PACS receives."""
from __future__ import annotations

import pytest
from pacs_helpers import MODALITY_AET, pacs_running, phantom, referenced_uids, send, wait_for
from pydicom.uid import (JPEG2000, ExplicitVRLittleEndian, ImplicitVRLittleEndian,
                         JPEG2000Lossless, JPEGLSLossless, RLELossless)

from spinexr.pacs import Destination

KINDS = {"sr", "gsps", "sc"}


def _dest(pacs) -> Destination:
    return Destination("PACS", "127.0.0.1", pacs.port)


def test_echo_answers_success(make_node):
    from pynetdicom import AE

    node = make_node()
    ae = AE(ae_title=MODALITY_AET)
    ae.add_requested_context("1.2.840.10008.1.1")
    assoc = ae.associate("127.0.0.1", node.port, ae_title="SPINEXR")
    assert assoc.is_established
    assert assoc.send_c_echo().Status == 0x0000
    assoc.release()


def test_images_in_five_transfer_syntaxes_come_back_as_sr_gsps_sc(make_node):
    syntaxes = [ExplicitVRLittleEndian, JPEG2000Lossless, JPEG2000, JPEGLSLossless, RLELossless]
    images = [phantom(10 + i, ts) for i, ts in enumerate(syntaxes)]
    with pacs_running() as pacs:
        node = make_node(destinations=(_dest(pacs),))
        assoc, statuses = send(node.port, images)
        assert assoc.is_released and statuses == [0x0000] * len(images)
        assert {str(cx.transfer_syntax[0]) for cx in assoc.accepted_contexts} >= \
            {str(ts) for ts in syntaxes}
        assert wait_for(lambda: len(pacs.received) == 3 * len(images)), pacs.uids()
    for src in images:
        got = pacs.by_source(str(src.SOPInstanceUID))
        assert set(got) == KINDS
        for ds in got.values():
            assert ds.StudyInstanceUID == src.StudyInstanceUID
            assert str(src.SOPInstanceUID) in referenced_uids(ds)
    assert node.idle()
    assert node.metrics.value("spinexr_pacs_sent_total", destination=_dest(pacs).name) == 15
    assert node.metrics.value("spinexr_pacs_received_total", outcome="queued") == 5


def test_implicit_little_endian_context_is_taken(make_node):
    ds = phantom(21)
    with pacs_running() as pacs:
        node = make_node(destinations=(_dest(pacs),))
        assoc, statuses = send(node.port, [ds],
                               contexts={str(ds.SOPClassUID): {ImplicitVRLittleEndian}})
        assert statuses == [0x0000]
        assert wait_for(lambda: len(pacs.received) == 3)


def test_duplicate_c_store_creates_no_second_analysis_or_results(make_node):
    ds = phantom(30)
    with pacs_running() as pacs:
        node = make_node(destinations=(_dest(pacs),))
        assert send(node.port, [ds])[1] == [0x0000]
        assert wait_for(lambda: len(pacs.received) == 3)
        assert send(node.port, [ds, ds])[1] == [0x0000, 0x0000]
        assert wait_for(node.idle)
        assert not wait_for(lambda: len(pacs.received) > 3, timeout=1.0)
    assert node.metrics.value("spinexr_pacs_received_total", outcome="duplicate") == 2
    assert node.metrics.value("spinexr_pacs_analysed_total", outcome="uncertain") + \
        node.metrics.value("spinexr_pacs_analysed_total", outcome="accepted") == 1
    assert [e[1] for e in node.queue.events("pacs_receive")] == ["queued", "duplicate",
                                                                  "duplicate"]


@pytest.mark.parametrize("sop_class", ["1.2.840.10008.5.1.4.1.1.2",          # CT Image Storage
                                       "1.2.826.0.1.3680043.9.9999.1"])      # unknown
def test_ct_and_unknown_sop_classes_are_refused_at_negotiation(make_node, sop_class):
    node = make_node()
    ds = phantom(40)
    assoc, _ = send(node.port, [], contexts={sop_class: {ExplicitVRLittleEndian},
                                             str(ds.SOPClassUID): {ExplicitVRLittleEndian}})
    assert assoc.is_released
    (rejected,) = assoc.rejected_contexts
    assert rejected.abstract_syntax == sop_class
    assert rejected.result == 0x03          # abstract-syntax-not-supported


def test_a_ct_data_set_over_a_dx_context_is_answered_a900(make_node):
    from pydicom.uid import UID
    from pynetdicom import AE

    from spinexr.pacs.listener import DATASET_MISMATCH

    node = make_node()
    dx = "1.2.840.10008.5.1.4.1.1.1.1"
    ae = AE(ae_title=MODALITY_AET)
    ae.add_requested_context(dx, ExplicitVRLittleEndian)
    assoc = ae.associate("127.0.0.1", node.port, ae_title="SPINEXR")
    ct = phantom(41)
    ct.SOPClassUID = "1.2.840.10008.5.1.4.1.1.2"
    # a misbehaving modality: the CT data set goes over the DX context (pynetdicom would pick
    # the context by the data set's class, so the choice is forced here)
    real = assoc._get_valid_context
    assoc._get_valid_context = lambda _ab, *a, **k: real(UID(dx), *a, **k)
    try:
        status = int(assoc.send_c_store(ct).Status)
    finally:
        assoc._get_valid_context = real
        assoc.release()
    assert status == DATASET_MISMATCH
    assert node.queue.counts() == {}


def test_unlisted_ae_title_is_rejected_at_association(make_node):
    node = make_node(allow_aets=("MODALITY",))
    ds = phantom(50)
    assoc, _ = send(node.port, [ds], aet="INTRUDER")
    assert assoc.is_rejected
    assert assoc.acceptor.primitive.result == 0x01             # rejected-permanent
    assert assoc.acceptor.primitive.diagnostic == 0x03         # calling AE not recognised
    assoc, statuses = send(node.port, [ds], aet="MODALITY")
    assert statuses == [0x0000]
    assert ("pacs_associate", "calling_aet_not_allowed", None) in node.queue.events()


def test_address_outside_the_allowed_networks_is_rejected(make_node):
    from spinexr.pacs.config import parse_networks

    node = make_node(allow_ips=parse_networks(["10.0.0.0/8"]))
    assoc, _ = send(node.port, [phantom(51)])
    assert assoc.is_rejected and assoc.acceptor.primitive.diagnostic == 0x01
