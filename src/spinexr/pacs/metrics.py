"""Prometheus metrics of the DICOM node, in a registry of their own (one per node, so two
nodes in one process, as in the tests, do not collide). ``spinexr pacs listen
--metrics-port`` serves them over HTTP."""
from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


class NodeMetrics:
    """Counters: received (by outcome), analysed (by outcome), skipped by the filter (by
    rule), refused by the gate, sent / retried / dead-lettered (by destination), studies (by
    verdict); gauges: queue depth (by state); histogram: per-destination C-STORE latency."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.received = Counter("spinexr_pacs_received", "C-STORE requests by outcome",
                                ["outcome"], registry=r)
        self.analysed = Counter("spinexr_pacs_analysed", "images analysed, by gate outcome",
                                ["outcome"], registry=r)
        self.skipped = Counter("spinexr_pacs_skipped_by_filter",
                               "images acknowledged and skipped by the incoming filter",
                               ["rule"], registry=r)
        self.refused = Counter("spinexr_pacs_refused_by_gate",
                               "images the gate refused (not a spine radiograph, unreadable)",
                               registry=r)
        self.sent = Counter("spinexr_pacs_sent", "result objects delivered", ["destination"],
                            registry=r)
        self.retried = Counter("spinexr_pacs_retried", "failed deliveries that will be retried",
                               ["destination"], registry=r)
        self.dead = Counter("spinexr_pacs_dead_lettered",
                            "deliveries given up after the retry policy's time",
                            ["destination"], registry=r)
        self.studies = Counter("spinexr_pacs_studies", "study verdicts", ["verdict"], registry=r)
        self.depth = Gauge("spinexr_pacs_queue_depth", "images waiting for analysis "
                           "(received, analysing) and results waiting for delivery (pending)",
                           ["queue"], registry=r)
        self.latency = Histogram("spinexr_pacs_send_seconds",
                                 "seconds to deliver one result object, by destination",
                                 ["destination"], registry=r,
                                 buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30))

    def value(self, name: str, **labels: str) -> float:
        """A sample's current value (tests, benchmarks); 0.0 if it has none yet."""
        v = self.registry.get_sample_value(name, labels or None)
        return float(v or 0.0)


__all__ = ["NodeMetrics"]
