"""Upstream's ``workqueue_*`` metrics for every controller's work queue.

client-go's workqueue reports, per queue name: depth, adds, how long keys wait
in the queue and how long their processing takes, retries, and how much work
is in flight (``unfinished_work_seconds``, ``longest_running_processor_seconds``).
kube-controller-manager serves them on its /metrics beside the controllers' own;
so do we.  One registry per process (:data:`REGISTRY`), since queues are named
by their controller; the queue itself stays free of Prometheus (it takes a
:class:`~kubesvc.client.workqueue.QueueObserver`).
"""

from __future__ import annotations

import time

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from kubesvc.client.workqueue import WorkQueue

# client-go's buckets: 10 ns to 10 s in powers of ten
_BUCKETS = tuple(10.0 ** e for e in range(-8, 2))


class WorkQueueMetrics:
    """The metric families, labelled by queue name."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        r = self.registry
        self.depth = Gauge("workqueue_depth", "Current depth of workqueue", ["name"], registry=r)
        self.adds = Counter("workqueue_adds", "Total number of adds handled by workqueue", ["name"], registry=r)
        self.latency = Histogram("workqueue_queue_duration_seconds",
                                 "How long in seconds an item stays in workqueue before being requested.",
                                 ["name"], buckets=_BUCKETS, registry=r)
        self.work = Histogram("workqueue_work_duration_seconds",
                              "How long in seconds processing an item from workqueue takes.",
                              ["name"], buckets=_BUCKETS, registry=r)
        self.retries = Counter("workqueue_retries", "Total number of retries handled by workqueue", ["name"],
                               registry=r)
        self.unfinished = Gauge("workqueue_unfinished_work_seconds",
                                "How many seconds of work has been done that is in progress and hasn't been "
                                "observed by work_duration.", ["name"], registry=r)
        self.longest = Gauge("workqueue_longest_running_processor_seconds",
                             "How many seconds has the longest running processor for workqueue been running.",
                             ["name"], registry=r)

    def track(self, queue: WorkQueue) -> None:
        """Report ``queue`` under its name: counters as it goes, gauges read when scraped."""
        name = queue.name or "unnamed"
        queue.observer = _Observer(self, name)
        self.depth.labels(name).set_function(lambda: len(queue))
        self.unfinished.labels(name).set_function(lambda: _in_flight(queue)[0])
        self.longest.labels(name).set_function(lambda: _in_flight(queue)[1])


class _Observer:
    def __init__(self, m: WorkQueueMetrics, name: str) -> None:
        self._adds = m.adds.labels(name)
        self._latency = m.latency.labels(name)
        self._work = m.work.labels(name)
        self._retries = m.retries.labels(name)

    def added(self) -> None:
        self._adds.inc()

    def queued_for(self, seconds: float) -> None:
        self._latency.observe(seconds)

    def worked_for(self, seconds: float) -> None:
        self._work.observe(seconds)

    def retried(self) -> None:
        self._retries.inc()


def _in_flight(queue: WorkQueue) -> tuple[float, float]:
    """(total seconds of unfinished work, the longest single one)."""
    now = time.monotonic()
    ages = [now - t for t in list(queue.started_at.values())]
    return (sum(ages), max(ages)) if ages else (0.0, 0.0)


REGISTRY_METRICS = WorkQueueMetrics()
REGISTRY = REGISTRY_METRICS.registry
