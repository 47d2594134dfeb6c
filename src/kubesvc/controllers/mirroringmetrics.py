"""The mirroring controller's Prometheus figures, under upstream's names (endpointslicemirroring/metrics).

``endpoint_slice_mirroring_controller_*``: endpoints added, updated and
removed per sync, addresses skipped per sync (not an IP, or over the 1,000 per
subset), how long a sync takes, slice writes by operation, and gauges of the
endpoints mirrored, the slices holding them and the slices perfect packing
would need.  The figures of a sync come from the pure :func:`mirror_figures`
of :mod:`kubesvc.controllers.endpointslicemirroring`.
"""

from __future__ import annotations

from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Gauge, Histogram

from .endpointslice.metrics import ExactCounters

SUBSYSTEM = "endpoint_slice_mirroring_controller"
_PER_SYNC_BUCKETS = tuple(2.0 ** i for i in range(1, 16))  # ExponentialBuckets(2, 2, 15)
_DURATION_BUCKETS = tuple(0.001 * 2.0 ** i for i in range(15))  # ExponentialBuckets(0.001, 2, 15)


@dataclass(frozen=True)
class MirrorFigures:
    """One Endpoints sync, counted as upstream counts it."""

    added: int = 0
    updated: int = 0
    removed: int = 0
    invalid: int = 0  # addresses that are not IPs
    skipped: int = 0  # every address left out: invalid ones and those over the per-subset maximum
    endpoints: int = 0  # endpoints mirrored
    desired_slices: int = 0  # slices they need


class MirroringMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        r, s = self.registry, SUBSYSTEM
        self.added = Histogram(f"{s}_endpoints_added_per_sync", "Number of endpoints added on each Endpoints sync",
                               buckets=_PER_SYNC_BUCKETS, registry=r)
        self.updated = Histogram(f"{s}_endpoints_updated_per_sync",
                                 "Number of endpoints updated on each Endpoints sync", buckets=_PER_SYNC_BUCKETS,
                                 registry=r)
        self.removed = Histogram(f"{s}_endpoints_removed_per_sync",
                                 "Number of endpoints removed on each Endpoints sync", buckets=_PER_SYNC_BUCKETS,
                                 registry=r)
        self.skipped = Histogram(f"{s}_addresses_skipped_per_sync",
                                 "Number of addresses skipped on each Endpoints sync due to being invalid or "
                                 "exceeding MaxEndpointsPerSubset", buckets=_PER_SYNC_BUCKETS, registry=r)
        self.duration = Histogram(f"{s}_endpoints_sync_duration", "Duration of syncEndpoints() in seconds",
                                  buckets=_DURATION_BUCKETS, registry=r)
        self.endpoints_desired = Gauge(f"{s}_endpoints_desired", "Number of endpoints desired", registry=r)
        self.num_slices = Gauge(f"{s}_num_endpoint_slices", "Number of EndpointSlices", registry=r)
        self.desired_slices = Gauge(f"{s}_desired_endpoint_slices",
                                    "Number of EndpointSlices that would exist with perfect endpoint allocation",
                                    registry=r)
        self.changes = ExactCounters(f"{s}_changes", "Number of EndpointSlice changes", "operation")
        r.register(self.changes)  # type: ignore[arg-type]
        self._per_key: dict[str, tuple[int, int, int]] = {}
        self._totals = [0, 0, 0]

    def observe(self, key: str, f: MirrorFigures, slices_after: int) -> None:
        for hist, n in ((self.added, f.added), (self.updated, f.updated), (self.removed, f.removed),
                        (self.skipped, f.skipped)):
            hist.observe(n)
        self._set(key, (f.endpoints, slices_after, f.desired_slices))

    def wrote(self, operation: str) -> None:
        self.changes.inc(operation)

    def forget(self, key: str) -> None:
        self._set(key, None)

    def _set(self, key: str, figures: tuple[int, int, int] | None) -> None:
        old = self._per_key.pop(key, (0, 0, 0))
        if figures is not None and any(figures):
            self._per_key[key] = figures
        new = figures or (0, 0, 0)
        for i in range(3):
            self._totals[i] += new[i] - old[i]
        self.endpoints_desired.set(self._totals[0])
        self.num_slices.set(self._totals[1])
        self.desired_slices.set(self._totals[2])
