"""A third-party DICOM implementation on both ends: DCMTK's storescu / echoscu as the
modality and storescp as the PACS."""
from __future__ import annotations

import shutil
import subprocess
import time

import pytest
from pacs_helpers import free_port, phantom, referenced_uids, wait_for
from pydicom import dcmread
from pydicom.uid import JPEG2000Lossless

from spinexr.pacs import Destination

pytestmark = pytest.mark.skipif(
    not all(shutil.which(t) for t in ("storescu", "storescp", "echoscu")),
    reason="DCMTK's storescu/storescp/echoscu are not installed (make dicom-tools, or "
           "apt-get install -y dcmtk)")


@pytest.fixture
def storescp(tmp_path):
    """DCMTK's storescp on a free port, writing what it receives to a folder."""
    out = tmp_path / "storescp"
    out.mkdir()
    port = free_port()
    proc = subprocess.Popen(["storescp", "-aet", "PACS", "-od", str(out), str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 10
    while subprocess.run(["echoscu", "-aec", "PACS", "127.0.0.1", str(port)],
                         capture_output=True).returncode != 0:
        assert time.monotonic() < deadline, "storescp did not start"
        time.sleep(0.1)
    yield port, out
    proc.terminate()
    proc.wait(10)


def test_storescu_to_node_to_storescp(make_node, storescp, tmp_path):
    port, out = storescp
    node = make_node(destinations=(Destination("PACS", "127.0.0.1", port),))
    echo = subprocess.run(["echoscu", "-aet", "MODALITY", "-aec", "SPINEXR", "127.0.0.1",
                           str(node.port)], capture_output=True, text=True)
    assert echo.returncode == 0, echo.stderr
    plain, j2k = phantom(300), phantom(301, JPEG2000Lossless)
    files = []
    for name, ds in (("plain.dcm", plain), ("j2k.dcm", j2k)):
        ds.save_as(tmp_path / name, enforce_file_format=True)
        files.append(tmp_path / name)
    # deflated explicit VR little endian for the uncompressed one, JPEG 2000 as it is
    for flag, path in (("-xd", files[0]), ("-xv", files[1])):
        sent = subprocess.run(["storescu", flag, "-aet", "MODALITY", "-aec", "SPINEXR",
                               "127.0.0.1", str(node.port), str(path)],
                              capture_output=True, text=True)
        assert sent.returncode == 0, sent.stderr
    assert wait_for(lambda: len(list(out.iterdir())) == 6, timeout=90)
    received = [dcmread(p) for p in sorted(out.iterdir())]
    for src in (plain, j2k):
        mine = [d for d in received if str(src.SOPInstanceUID) in referenced_uids(d)]
        assert sorted(d.Modality for d in mine) == ["OT", "PR", "SR"]
        assert all(d.StudyInstanceUID == src.StudyInstanceUID for d in mine)
    assert node.metrics.value("spinexr_pacs_received_total", outcome="queued") == 2


def test_storescu_with_an_unlisted_ae_title_is_rejected(make_node, tmp_path):
    node = make_node(allow_aets=("MODALITY",))
    phantom(310).save_as(tmp_path / "x.dcm", enforce_file_format=True)
    sent = subprocess.run(["storescu", "-aet", "STRANGER", "-aec", "SPINEXR", "127.0.0.1",
                           str(node.port), str(tmp_path / "x.dcm")],
                          capture_output=True, text=True)
    assert sent.returncode != 0
    assert "Calling AE Title Not Recognized" in sent.stderr, sent.stderr
