"""Send result objects (SR, GSPS, Secondary Capture) to a Storage SCP by C-STORE.

One association per call carries a batch. Each SOP class is proposed with the object's own
transfer syntax first, then explicit and implicit VR little endian; pynetdicom re-encodes an
uncompressed object into whichever uncompressed syntax the destination accepted, and a
compressed one the destination did not accept is decompressed first. Success and warning
statuses (0000H, Bxxx) count as delivered; anything else is a failure for the caller's retry.
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from pydicom import dcmread
from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian
from pynetdicom import AE

from spinexr.pacs.config import Destination

log = logging.getLogger("spinexr.pacs")


@dataclass(frozen=True)
class Outgoing:
    """A result object to send: its SOP Instance UID, SOP Class UID and file."""

    uid: str
    sop_class: str
    path: Path


@dataclass(frozen=True)
class SendResult:
    """``ok``: delivered (status 0000H or a warning); ``status``: the C-STORE status, ``None``
    when none came back; ``error``: why not; ``seconds``: time for this object."""

    ok: bool
    status: int | None = None
    error: str = ""
    seconds: float = 0.0


def send(destination: Destination, items: Sequence[Outgoing], *, calling_aet: str,
         timeout_s: float = 30.0) -> dict[str, SendResult]:
    """C-STORE ``items`` to ``destination`` over one association; a result per UID."""
    datasets, results = {}, {}
    for item in items:
        try:
            datasets[item.uid] = dcmread(item.path)
        except Exception as exc:  # noqa: BLE001 - a missing or damaged queue file
            results[item.uid] = SendResult(False, error=f"cannot read the queued object "
                                                        f"({type(exc).__name__})")
    if not datasets:
        return results
    ae = AE(ae_title=calling_aet)
    ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = timeout_s
    ae.connection_timeout = timeout_s
    syntaxes: dict[str, list[str]] = {}
    for ds in datasets.values():
        own = str(ds.file_meta.TransferSyntaxUID)
        offered = syntaxes.setdefault(str(ds.SOPClassUID), [])
        for ts in (own, ExplicitVRLittleEndian, ImplicitVRLittleEndian):
            if ts not in offered:
                offered.append(ts)
    for sop_class, offered in syntaxes.items():
        ae.add_requested_context(sop_class, offered)
    assoc = ae.associate(destination.host, destination.port, ae_title=destination.ae_title)
    if not assoc.is_established:
        why = "rejected" if assoc.is_rejected else "aborted" if assoc.is_aborted else \
            "could not connect"
        error = f"association with {destination.name} {why}"
        results.update({uid: SendResult(False, error=error) for uid in datasets})
        return results
    try:
        for uid, ds in datasets.items():
            results[uid] = _store_one(assoc, ds, destination)
    finally:
        if assoc.is_established:
            assoc.release()
    return results


def _store_one(assoc, ds, destination: Destination) -> SendResult:
    t0 = time.perf_counter()
    accepted = [cx for cx in assoc.accepted_contexts if cx.abstract_syntax == ds.SOPClassUID]
    if not accepted:
        return SendResult(False, error=f"{destination.name} accepts no presentation context "
                                       f"for SOP class {ds.SOPClassUID}")
    own = ds.file_meta.TransferSyntaxUID
    if own.is_compressed and not any(cx.transfer_syntax[0] == own for cx in accepted):
        ds.decompress()
    try:
        status = assoc.send_c_store(ds)
    except Exception as exc:  # noqa: BLE001 - pynetdicom raises on a lost association
        return SendResult(False, error=f"C-STORE to {destination.name} failed "
                                       f"({type(exc).__name__}: {exc})")
    seconds = time.perf_counter() - t0
    code = int(getattr(status, "Status", -1)) if status else None
    if code is None or code == -1:
        return SendResult(False, None, f"no C-STORE response from {destination.name}", seconds)
    if code == 0 or (code & 0xF000) == 0xB000:
        return SendResult(True, code, "", seconds)
    return SendResult(False, code, f"{destination.name} answered status 0x{code:04X}", seconds)


__all__ = ["Outgoing", "SendResult", "send"]
