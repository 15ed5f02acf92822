"""The DICOM node: receive spine radiographs and MR from modalities and PACS, analyse them with
the one process step, send SR / GSPS / Secondary Capture back.

``spinexr pacs listen`` runs it (:mod:`spinexr.cli.pacs_cmd`). Pieces: :mod:`.config` (typed
settings), :mod:`.listener` (Storage SCP), :mod:`.filters` (incoming filter), :mod:`.queue`
(on-disk queue), :mod:`.forward` (C-STORE to the destinations), :mod:`.study` (study grouping
and verdicts), :mod:`.metrics`, :mod:`.node` (the wiring). pynetdicom is the ``pacs`` extra;
only :mod:`.listener`, :mod:`.forward` and :mod:`.node` import it.
"""
from spinexr.pacs.config import Destination, NodeConfig, RetryPolicy
from spinexr.pacs.filters import FilterConfig, FilterDecision, decide

__all__ = ["Destination", "FilterConfig", "FilterDecision", "NodeConfig", "RetryPolicy",
           "decide"]
