"""Analyses done outside the web service's queue, recorded in its store: the DICOM node
(``spinexr pacs listen``) writes here, so its results show in the service's history, UI and
audit log exactly like uploads.

Idempotent by design: the node derives the analysis id from the source SOP Instance UID, and a
second :meth:`StoreRecorder.record` of the same id (a restart between recording and the node's
own bookkeeping) replaces the renditions instead of adding an analysis.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Protocol

from spinexr.process import Processed
from spinexr.service.pipeline import MEDIA_TYPES, display_files
from spinexr.service.store import Store


class _Entry(Protocol):       # spinexr.pacs.node.Recorded, without importing the pacs layer
    analysis_id: str
    owner: str
    sha256: str
    size: int
    processed: Processed
    explain: tuple[str, ...]


class StoreRecorder:
    """Records the DICOM node's analyses and audit entries in the service's :class:`Store`."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def record(self, entry: _Entry) -> None:
        done = entry.processed
        info = done.analysis.pack
        if self.store.get(entry.analysis_id) is None:
            self.store.create_analysis(id=entry.analysis_id, owner=entry.owner,
                                       sha256=entry.sha256, size=entry.size,
                                       pack_name=info.name, pack_version=info.version,
                                       explain=",".join(entry.explain))
        status, doc, files, error = outcome_of(done)
        self.store.finish(entry.analysis_id, status, doc, files, error=error)

    def audit(self, actor: str, action: str, outcome: str, *, analysis_id: str | None = None,
              sha256: str | None = None, subject: str | None = None) -> None:
        self.store.audit(actor, action, outcome, analysis_id=analysis_id, sha256=sha256,
                         subject=subject)

    def delivery_failed(self, analysis_id: str, destination: str, reason: str) -> None:
        """Mark a dead-lettered delivery on the analysis (the UI shows its error code)."""
        row = self.store.get(analysis_id)
        if row is not None:
            self.store.set_status(analysis_id, row["status"], error=(
                "delivery_failed", f"results not delivered to {destination}: {reason}"))


def outcome_of(done: Processed) -> tuple[str, dict[str, Any] | None,
                                         dict[str, tuple[str, bytes]],
                                         tuple[str, str] | None]:
    """``(status, result document, renditions, error)`` of a processed source, as the service
    stores an upload's: refused reads keep only result.json; analysed images also get the
    browser UI's image.png and heatmaps."""
    doc = json.loads(done.files["result.json"]) if "result.json" in done.files else None
    if done.read_error is not None:
        return "refused", doc, {"result.json": ("application/json",
                                                done.files.get("result.json", b"{}"))}, \
            done.read_error
    files = {name: (MEDIA_TYPES.get(Path(name).suffix, "application/octet-stream"), data)
             for name, data in done.files.items()}
    files.update(display_files(done.analysis, done.image))
    return ("done" if done.analysis.gate.accepted else "refused"), doc, files, None


__all__ = ["StoreRecorder", "outcome_of"]
