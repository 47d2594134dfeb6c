"""The proxy's Prometheus figures, under upstream kube-proxy's metric names.

One registry per proxy instance (``kubesvc up`` may run one per node in a
single process).  Served by :mod:`.server` on the node's loopback.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

_SYNC_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)
_NPL_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 300)


class ProxyMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.sync_duration = Histogram("kubeproxy_sync_proxy_rules_duration_seconds",
                                       "Time to plan and apply one sync", buckets=_SYNC_BUCKETS, registry=r)
        self.full_duration = Histogram("kubeproxy_sync_full_proxy_rules_duration_seconds",
                                       "Time of full syncs", buckets=_SYNC_BUCKETS, registry=r)
        self.partial_duration = Histogram("kubeproxy_sync_partial_proxy_rules_duration_seconds",
                                          "Time of partial syncs", buckets=_SYNC_BUCKETS, registry=r)
        self.programming_latency = Histogram(
            "kubeproxy_network_programming_duration_seconds",
            "From an EndpointSlice's last-change-trigger-time to its rules being in the kernel",
            buckets=_NPL_BUCKETS, registry=r)
        self.syncs = Counter("kubeproxy_sync_proxy_rules_total", "Syncs by kind", ["kind"], registry=r)
        self.failures = Counter("kubeproxy_sync_proxy_rules_nftables_sync_failures_total",
                                "Transactions nft refused", registry=r)
        self.last_sync = Gauge("kubeproxy_sync_proxy_rules_last_timestamp_seconds",
                               "When the last successful sync finished", registry=r)
        self.tx_bytes = Histogram("kubesvc_proxy_transaction_bytes", "Size of each nft transaction",
                                  buckets=(256, 1024, 4096, 16384, 65536, 262144, 1 << 20, 1 << 23), registry=r)
        self.services = Gauge("kubesvc_proxy_services", "Services programmed", registry=r)
