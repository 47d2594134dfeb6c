"""The controller base: retries with backoff, Requeue, resync, never crashing."""

from __future__ import annotations

import asyncio
from collections.abc import Hashable, Iterable

from kubesvc.client.controller import Controller, Requeue
from kubesvc.client.workqueue import ExponentialRateLimiter


class Flaky(Controller):
    name = "flaky"

    def __init__(self, **kw: object) -> None:
        super().__init__(rate_limiter=ExponentialRateLimiter(0.001, 0.01), **kw)  # type: ignore[arg-type]
        self.calls: dict[Hashable, int] = {}
        self.done: set[Hashable] = set()

    async def reconcile(self, key: Hashable) -> None:
        n = self.calls[key] = self.calls.get(key, 0) + 1
        if key == "fails-twice" and n <= 2:
            raise RuntimeError("not yet")
        if key == "requeue" and n == 1:
            raise Requeue(0.01)
        self.done.add(key)

    def resync_keys(self) -> Iterable[Hashable]:
        return ["resynced"]


async def test_retry_requeue_and_resync() -> None:
    """A failing key is retried until it succeeds; Requeue comes back; resync enqueues keys."""
    c = Flaky(workers=3, resync_period=0.05)
    await c.start()
    try:
        for k in ("ok", "fails-twice", "requeue"):
            c.enqueue(k)
        async with asyncio.timeout(3):
            while c.done != {"ok", "fails-twice", "requeue", "resynced"}:
                await asyncio.sleep(0.01)
        assert c.calls["fails-twice"] == 3 and c.calls["requeue"] == 2
        assert c.failures == 2
        assert c.queue.num_requeues("fails-twice") == 0  # forgotten after success
    finally:
        await c.stop()


async def test_run_stops_cleanly_when_cancelled() -> None:
    """run() is what a CLI awaits; cancelling it stops every task it started."""
    c = Flaky(workers=2, resync_period=None)
    task = asyncio.create_task(c.run())
    await asyncio.sleep(0.02)
    c.enqueue("ok")
    await asyncio.sleep(0.02)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    assert "ok" in c.done
