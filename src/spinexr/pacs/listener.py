"""The node's Storage SCP (pynetdicom): C-ECHO, and C-STORE of spine radiographs and MR.

Negotiation accepts the projection-radiography SOP classes (CR, DX for presentation and for
processing) and MR Image Storage, each in the common transfer syntaxes; a presentation context
for any other SOP class (CT, an unknown or private one) is rejected with result 3
(abstract-syntax-not-supported), and a C-STORE whose data set does not belong to an accepted
class is answered 0122H (SOP Class not supported) or A900H (data set does not match the SOP
class). An association from a calling AE title or an IP address outside the allow-lists is
rejected before negotiation (A-ASSOCIATE-RJ, permanent, service-user: reason 3 "calling AE title
not recognised", or reason 1 "no reason given" for an address). A handler never raises to
pynetdicom: an unexpected error answers A700H (out of resources), so the sender retries.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Callable

from pydicom import Dataset
from pynetdicom import AE, evt

from spinexr.pacs.config import NodeConfig, ip_allowed

log = logging.getLogger("spinexr.pacs")

VERIFICATION = "1.2.840.10008.1.1"
#: SOP classes the node stores and analyses.
SOP_CLASSES: dict[str, str] = {
    "1.2.840.10008.5.1.4.1.1.1": "CR Image Storage",
    "1.2.840.10008.5.1.4.1.1.1.1": "Digital X-Ray Image Storage - For Presentation",
    "1.2.840.10008.5.1.4.1.1.1.1.1": "Digital X-Ray Image Storage - For Processing",
    "1.2.840.10008.5.1.4.1.1.4": "MR Image Storage",
}
#: Transfer syntaxes accepted for them (pydicom + pylibjpeg/gdcm/pyjpegls decode them all).
TRANSFER_SYNTAXES: tuple[str, ...] = (
    "1.2.840.10008.1.2.1",        # Explicit VR Little Endian
    "1.2.840.10008.1.2",          # Implicit VR Little Endian
    "1.2.840.10008.1.2.1.99",     # Deflated Explicit VR Little Endian
    "1.2.840.10008.1.2.4.90",     # JPEG 2000 Lossless
    "1.2.840.10008.1.2.4.91",     # JPEG 2000
    "1.2.840.10008.1.2.4.70",     # JPEG Lossless SV1
    "1.2.840.10008.1.2.4.57",     # JPEG Lossless (process 14)
    "1.2.840.10008.1.2.4.50",     # JPEG Baseline (process 1)
    "1.2.840.10008.1.2.4.51",     # JPEG Extended (process 2 & 4)
    "1.2.840.10008.1.2.4.80",     # JPEG-LS Lossless
    "1.2.840.10008.1.2.4.81",     # JPEG-LS Near-Lossless
    "1.2.840.10008.1.2.5",        # RLE Lossless
)

# C-STORE statuses (PS3.4 B.2.3) and A-ASSOCIATE-RJ parameters (PS3.8 9.3.4).
SUCCESS, OUT_OF_RESOURCES, SOP_CLASS_NOT_SUPPORTED = 0x0000, 0xA700, 0x0122
DATASET_MISMATCH, CANNOT_UNDERSTAND = 0xA900, 0xC000
REJECT_PERMANENT, SOURCE_SERVICE_USER = 0x01, 0x01
REASON_NONE, REASON_CALLING_AET = 0x01, 0x03


@dataclass(frozen=True)
class Received:
    """A C-STORE request the node accepted to look at: the data set (pixel data still
    encoded) and its bytes as a DICOM file (preamble and file meta included)."""

    dataset: Dataset
    data: bytes
    calling_aet: str
    address: str


#: What the node does with a received image: returns the C-STORE status.
Receiver = Callable[[Received], int]


def build_ae(config: NodeConfig) -> AE:
    """The application entity with the node's supported contexts."""
    ae = AE(ae_title=config.ae_title)
    ae.maximum_associations = config.max_associations
    ae.network_timeout = config.network_timeout_s
    ae.acse_timeout = config.network_timeout_s
    ae.dimse_timeout = config.network_timeout_s
    ae.add_supported_context(VERIFICATION)
    for uid in SOP_CLASSES:
        ae.add_supported_context(uid, list(TRANSFER_SYNTAXES))
    return ae


def handlers(config: NodeConfig, receive: Receiver,
             on_reject: Callable[[str, str], None] | None = None) -> list:
    """pynetdicom event handlers: the allow-lists, C-ECHO and C-STORE."""

    def requested(event) -> None:
        assoc = event.assoc
        aet = str(assoc.requestor.primitive.calling_ae_title).strip()
        address = str(assoc.requestor.address)
        reason = None
        if config.allow_aets and aet not in config.allow_aets:
            reason, code = "calling_aet_not_allowed", REASON_CALLING_AET
        elif not ip_allowed(address, config.allow_ips):
            reason, code = "address_not_allowed", REASON_NONE
        if reason is not None:
            log.warning("association rejected", extra={"fields": {
                "calling_aet": aet, "address": address, "reason": reason}})
            if on_reject is not None:
                on_reject(aet, reason)
            assoc.acse.send_reject(REJECT_PERMANENT, SOURCE_SERVICE_USER, code)
            assoc.kill()        # as pynetdicom's own rejections: the DUL sends the PDU first

    def store(event) -> int:
        try:
            cx_class = str(event.context.abstract_syntax)
            if cx_class not in SOP_CLASSES:
                return SOP_CLASS_NOT_SUPPORTED
            try:
                ds = event.dataset
                ds.file_meta = event.file_meta
            except Exception:  # noqa: BLE001 - a data set pydicom cannot parse
                return CANNOT_UNDERSTAND
            if str(ds.get("SOPClassUID", "")) != cx_class:
                return DATASET_MISMATCH
            data = event.encoded_dataset(include_meta=True)
            return receive(Received(ds, data, str(event.assoc.requestor.ae_title).strip(),
                                    str(event.assoc.requestor.address)))
        except Exception:  # noqa: BLE001 - never crash the association; the sender retries
            log.exception("C-STORE handler failed")
            return OUT_OF_RESOURCES

    return [(evt.EVT_REQUESTED, requested), (evt.EVT_C_ECHO, lambda event: SUCCESS),
            (evt.EVT_C_STORE, store)]


__all__ = ["Received", "Receiver", "SOP_CLASSES", "TRANSFER_SYNTAXES", "build_ae", "handlers"]
