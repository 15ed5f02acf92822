"""Helpers of the DICOM node tests: phantom DICOMs, a modality (SCU), a PACS (SCP)."""
from __future__ import annotations

import io
import threading
import time
from contextlib import contextmanager

from pydicom import Dataset, dcmread

MODALITY_AET = "MODALITY"
PACS_AET = "PACS"


def phantom(seed: int, transfer_syntax: str | None = None, *, study_uid: str | None = None,
            size=(256, 200)) -> Dataset:
    """A small synthetic spine radiograph (DX or CR) in ``transfer_syntax``."""
    from pydicom.uid import ExplicitVRLittleEndian

    from spinexr.phantom import XrayConfig, generate_xray, xray_to_dicom

    ds = xray_to_dicom(generate_xray(seed, XrayConfig(size=size)),
                       transfer_syntax=transfer_syntax or ExplicitVRLittleEndian)
    if study_uid:
        ds.StudyInstanceUID = study_uid
    return dcmread(io.BytesIO(to_bytes(ds)))     # as a modality would hold it: read from bytes


def to_bytes(ds: Dataset) -> bytes:
    buf = io.BytesIO()
    ds.save_as(buf, enforce_file_format=True)
    return buf.getvalue()


def send(port: int, datasets, *, aet: str = MODALITY_AET, called: str = "SPINEXR",
         contexts=None):
    """C-STORE ``datasets`` to 127.0.0.1:``port``; returns (association, [status codes])."""
    from pynetdicom import AE

    ae = AE(ae_title=aet)
    ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = 10
    if contexts is None:
        contexts = {}
        for ds in datasets:
            contexts.setdefault(str(ds.SOPClassUID), set()).add(
                str(ds.file_meta.TransferSyntaxUID))
    for sop_class, syntaxes in contexts.items():
        for ts in sorted(syntaxes):     # one context per syntax: the SCP picks one per context
            ae.add_requested_context(sop_class, ts)
    assoc = ae.associate("127.0.0.1", port, ae_title=called)
    statuses = []
    if assoc.is_established:
        for ds in datasets:
            status = assoc.send_c_store(ds)
            statuses.append(int(status.Status) if status else None)
        assoc.release()
    return assoc, statuses


class Pacs:
    """An in-test Storage SCP playing the PACS: keeps every object it receives."""

    def __init__(self, port: int = 0) -> None:
        self.port = port
        self.received: list[Dataset] = []
        self.lock = threading.Lock()
        self.server = None

    def start(self) -> "Pacs":
        from pynetdicom import AE, AllStoragePresentationContexts, evt
        from pynetdicom.sop_class import Verification

        ae = AE(ae_title=PACS_AET)
        ae.supported_contexts = AllStoragePresentationContexts
        ae.add_supported_context(Verification)

        def store(event):
            ds = event.dataset
            ds.file_meta = event.file_meta
            with self.lock:
                self.received.append(dcmread(io.BytesIO(to_bytes(ds))))
            return 0x0000

        self.server = ae.start_server(("127.0.0.1", self.port), block=False,
                                      evt_handlers=[(evt.EVT_C_STORE, store)])
        self.port = self.server.server_address[1]
        return self

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server = None

    def uids(self) -> list[str]:
        with self.lock:
            return [str(d.SOPInstanceUID) for d in self.received]

    def by_source(self, sop_uid: str) -> dict[str, Dataset]:
        """Objects referring to the source instance ``sop_uid``, by kind (sr, gsps, sc)."""
        kinds = {"1.2.840.10008.5.1.4.1.1.88.33": "sr", "1.2.840.10008.5.1.4.1.1.11.1": "gsps",
                 "1.2.840.10008.5.1.4.1.1.7": "sc"}
        out = {}
        with self.lock:
            for d in self.received:
                if sop_uid in referenced_uids(d):
                    out[kinds.get(str(d.SOPClassUID), str(d.SOPClassUID))] = d
        return out


def referenced_uids(ds: Dataset) -> set[str]:
    """Every Referenced SOP Instance UID anywhere in ``ds``."""
    found: set[str] = set()

    def walk(d: Dataset) -> None:
        for elem in d:
            if elem.keyword == "ReferencedSOPInstanceUID":
                found.add(str(elem.value))
            elif elem.VR == "SQ":
                for item in elem.value:
                    walk(item)

    walk(ds)
    return found


def wait_for(predicate, timeout: float = 90.0, interval: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return bool(predicate())


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def pacs_running(port: int = 0):
    p = Pacs(port).start()
    try:
        yield p
    finally:
        p.stop()
