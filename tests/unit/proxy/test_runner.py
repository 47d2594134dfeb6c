"""The rate-limited coalescing runner, with a fake clock."""

from __future__ import annotations

import asyncio

from kubesvc.proxy.runner import Runner, Schedule


class FakeClock:
    """Virtual time: ``sleep`` returns when ``advance`` passes its deadline."""

    def __init__(self) -> None:
        self.now = 0.0
        self._sleepers: list[tuple[float, asyncio.Future[None]]] = []

    def monotonic(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._sleepers.append((self.now + seconds, fut))
        await fut

    async def advance(self, seconds: float) -> None:
        self.now += seconds
        for at, fut in list(self._sleepers):
            if at <= self.now and not fut.done():
                fut.set_result(None)
        self._sleepers = [(a, f) for a, f in self._sleepers if not f.done()]
        for _ in range(5):
            await asyncio.sleep(0)


def test_requests_run_at_once_within_the_burst_then_wait_for_a_token() -> None:
    s = Schedule(min_interval=1.0, max_interval=100, burst=2, now=0)
    for t in (0.0, 0.1):
        s.request()
        assert s.next_time(t) == t
        s.ran(t)
    s.request()
    assert abs(s.next_time(0.2) - 1.0) < 1e-9  # tokens refill at one per min_interval


def test_idle_runs_at_max_interval_and_retry_comes_sooner() -> None:
    s = Schedule(min_interval=1.0, max_interval=60, burst=1, now=0)
    assert s.next_time(0) == 60
    s.retry(0, 5)
    assert s.next_time(0) == 5


async def test_many_requests_between_syncs_coalesce_into_one() -> None:
    clock = FakeClock()
    calls: list[float] = []

    async def fn() -> None:
        calls.append(clock.now)

    r = Runner(fn, min_interval=1.0, max_interval=1000, burst=1, clock=clock)
    task = asyncio.create_task(r.loop())
    await clock.advance(0)
    r.run()
    await clock.advance(0)
    assert calls == [0.0]
    for _ in range(10):
        r.run()
        await clock.advance(0.05)
    assert calls == [0.0]  # rate-limited: waiting for the next token
    await clock.advance(0.6)
    assert calls == [0.0, 1.0] or calls == [0.0, clock.now] or len(calls) == 2
    await clock.advance(5)
    assert len(calls) == 2  # the ten requests made one sync
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


async def test_a_failing_fn_does_not_stop_the_loop() -> None:
    clock = FakeClock()
    calls = 0

    async def fn() -> None:
        nonlocal calls
        calls += 1
        raise RuntimeError("boom")

    r = Runner(fn, min_interval=0, max_interval=1000, burst=1, clock=clock)
    task = asyncio.create_task(r.loop())
    r.run()
    await clock.advance(0)
    r.retry_after(2)
    await clock.advance(2)
    assert calls == 2
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
