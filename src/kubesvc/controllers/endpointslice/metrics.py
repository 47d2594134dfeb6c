"""The EndpointSlice controller's Prometheus figures, under upstream's names (endpointslice/metrics).

``endpoint_slice_controller_*``: endpoints added and removed per sync, slices
changed per sync (by topology mode and trafficDistribution), slice writes by
operation, syncs by result, and three gauges kept from a per-Service cache as
upstream keeps them: endpoints desired, slices there are, and slices there
would be with perfect packing (their gap is the churn-versus-packing trade the
reconciler makes).

Upstream's ``changes`` and ``syncs`` counters carry no ``_total`` suffix, which
prometheus_client always adds to a counter; they are exposed under their exact
names as untyped samples (Prometheus treats them alike), beside
``changes_total``, upstream's newer name for the same count, as a counter.

Each controller has its own registry unless it is given one, so it can be
served alone or with the other controllers of a process (:mod:`kubesvc.controllers.metricsserver`).
"""

from __future__ import annotations

import math
from collections.abc import Iterator

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import Metric

from .reconciler import Plan

SUBSYSTEM = "endpoint_slice_controller"
_PER_SYNC_BUCKETS = tuple(2.0 ** i for i in range(1, 16))  # upstream's ExponentialBuckets(2, 2, 15)


class ExactCounters:
    """Counters exposed under names without ``_total`` (see the module docstring)."""

    def __init__(self, name: str, doc: str, label: str) -> None:
        self.name, self.doc, self.label = name, doc, label
        self.values: dict[str, float] = {}

    def inc(self, value: str, by: float = 1.0) -> None:
        self.values[value] = self.values.get(value, 0.0) + by

    def collect(self) -> Iterator[Metric]:
        m = Metric(self.name, self.doc, "unknown")
        for value, n in sorted(self.values.items()):
            m.add_sample(self.name, {self.label: value}, n)
        yield m


class EndpointSliceMetrics:
    """One controller's figures; :meth:`observe` takes each plan, :meth:`wrote` each write."""

    def __init__(self, max_endpoints_per_slice: int = 100, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        self.max = max_endpoints_per_slice
        r, s = self.registry, SUBSYSTEM
        self.added = Histogram(f"{s}_endpoints_added_per_sync", "Number of endpoints added on each Service sync",
                               buckets=_PER_SYNC_BUCKETS, registry=r)
        self.removed = Histogram(f"{s}_endpoints_removed_per_sync",
                                 "Number of endpoints removed on each Service sync", buckets=_PER_SYNC_BUCKETS,
                                 registry=r)
        self.changed_per_sync = Histogram(f"{s}_endpointslices_changed_per_sync",
                                          "Number of EndpointSlices changed on each Service sync",
                                          ["topology", "traffic_distribution"], registry=r)
        self.endpoints_desired = Gauge(f"{s}_endpoints_desired", "Number of endpoints desired", registry=r)
        self.num_slices = Gauge(f"{s}_num_endpoint_slices", "Number of EndpointSlices", registry=r)
        self.desired_slices = Gauge(f"{s}_desired_endpoint_slices",
                                    "Number of EndpointSlices that would exist with perfect endpoint allocation",
                                    registry=r)
        self.by_traffic = Gauge(f"{s}_services_count_by_traffic_distribution",
                                "Number of Services using some specific trafficDistribution",
                                ["traffic_distribution"], registry=r)
        self.changes_total = Counter(f"{s}_changes", "Number of EndpointSlice changes", ["operation"], registry=r)
        self.changes = ExactCounters(f"{s}_changes", "Number of EndpointSlice changes", "operation")
        self.syncs = ExactCounters(f"{s}_syncs", "Number of EndpointSlice syncs", "result")
        r.register(self.changes)  # type: ignore[arg-type]
        r.register(self.syncs)  # type: ignore[arg-type]
        # per Service: (endpoints, slices, desired slices) and the trafficDistribution label; running totals
        self._services: dict[str, tuple[int, int, int]] = {}
        self._traffic: dict[str, str] = {}
        self._totals = [0, 0, 0]
        self._traffic_counts: dict[str, int] = {}

    # ---------------------------------------------------------------- inputs

    def observe(self, service_key: str, plan: Plan) -> None:
        """A sync's plan: per-sync histograms, and the Service's share of the gauges."""
        endpoints = slices = desired = 0
        for st in plan.stats:
            self.added.observe(st.added)
            self.removed.observe(st.removed)
            self.changed_per_sync.labels(plan.topology, plan.traffic_distribution).observe(st.slices_changed)
            for n_endpoints, n_slices in st.efficiency.values():
                endpoints += n_endpoints
                slices += n_slices
                desired += desired_slices(n_endpoints, self.max)
        self._set_service(service_key, (endpoints, slices, max(desired, 1) if plan.stats else 0))
        self._set_traffic(service_key, plan.traffic_distribution)

    def wrote(self, operation: str) -> None:
        """One slice write: ``create``, ``update`` or ``delete``."""
        self.changes.inc(operation)
        self.changes_total.labels(operation).inc()

    def synced(self, result: str) -> None:
        """A finished sync: ``success`` or ``error``."""
        self.syncs.inc(result)

    def forget(self, service_key: str) -> None:
        """The Service is gone (or no longer ours): its endpoints and slices leave the gauges."""
        self._set_service(service_key, None)
        self._set_traffic(service_key, "")

    # ---------------------------------------------------------------- gauges (kept as running totals)

    def _set_service(self, service_key: str, figures: tuple[int, int, int] | None) -> None:
        old = self._services.pop(service_key, (0, 0, 0))
        if figures is not None:
            self._services[service_key] = figures
        new = figures or (0, 0, 0)
        if new == old:
            return
        for i in range(3):
            self._totals[i] += new[i] - old[i]
        self.endpoints_desired.set(self._totals[0])
        self.num_slices.set(self._totals[1])
        self.desired_slices.set(self._totals[2])

    def _set_traffic(self, service_key: str, label: str) -> None:
        old = self._traffic.pop(service_key, "")
        if label:
            self._traffic[service_key] = label
        if old == label:
            return
        for lab, d in ((old, -1), (label, 1)):
            if lab:
                self._traffic_counts[lab] = self._traffic_counts.get(lab, 0) + d
                self.by_traffic.labels(lab).set(self._traffic_counts[lab])


def desired_slices(endpoints: int, max_per_slice: int) -> int:
    """Slices needed with perfect packing (a Service with none still has its placeholder, counted by the caller)."""
    return math.ceil(endpoints / max_per_slice) if endpoints else 0
