"""workqueue_* metrics follow a queue's adds, waits, work and retries, as client-go's do."""

from __future__ import annotations

import asyncio

from prometheus_client import generate_latest

from kubesvc.client.queuemetrics import WorkQueueMetrics
from kubesvc.client.workqueue import WorkQueue


def _value(m: WorkQueueMetrics, sample: str, name: str = "things") -> float:
    for fam in m.registry.collect():
        for s in fam.samples:
            if s.name == sample and s.labels.get("name") == name:
                return float(s.value)
    raise KeyError(sample)


async def test_adds_depth_durations_and_retries() -> None:
    m = WorkQueueMetrics()
    q = WorkQueue(name="things")
    m.track(q)
    q.add("a")
    q.add("a")  # merged: not a second add
    q.add("b")
    assert _value(m, "workqueue_adds_total") == 2
    assert _value(m, "workqueue_depth") == 2
    await asyncio.sleep(0.02)
    key = await q.get()
    assert _value(m, "workqueue_queue_duration_seconds_count") == 1
    assert _value(m, "workqueue_queue_duration_seconds_sum") >= 0.015
    assert _value(m, "workqueue_depth") == 1
    await asyncio.sleep(0.02)
    assert _value(m, "workqueue_longest_running_processor_seconds") >= 0.015
    assert _value(m, "workqueue_unfinished_work_seconds") >= 0.015
    q.add_rate_limited(key)
    q.done(key)
    assert _value(m, "workqueue_retries_total") == 1
    assert _value(m, "workqueue_work_duration_seconds_count") == 1
    assert _value(m, "workqueue_longest_running_processor_seconds") == 0
    assert b'workqueue_depth{name="things"}' in generate_latest(m.registry)
    q.shutdown()
