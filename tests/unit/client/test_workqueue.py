"""Work queue semantics (client-go's): dedup, dirty-while-processing, backoff, delays, shutdown."""

from __future__ import annotations

import asyncio

import pytest

from kubesvc.client.workqueue import ExponentialRateLimiter, ShutDown, WorkQueue


async def test_queued_keys_are_deduplicated_in_order() -> None:
    """Adding a queued key again does not queue it twice; order is first-add order."""
    q = WorkQueue()
    for k in ["a", "b", "a", "c", "b"]:
        q.add(k)
    assert len(q) == 3
    assert [await q.get() for _ in range(3)] == ["a", "b", "c"]


async def test_key_readded_while_processing_is_processed_after_done() -> None:
    """A key re-added while a worker holds it is not handed out until done(), then exactly once more."""
    q = WorkQueue()
    q.add("a")
    key = await q.get()
    q.add("a")
    q.add("a")
    assert len(q) == 0 and q.is_processing("a")
    getter = asyncio.create_task(q.get())
    await asyncio.sleep(0.01)
    assert not getter.done()  # a second worker does not get "a" meanwhile
    q.done(key)
    assert await asyncio.wait_for(getter, 1) == "a"
    q.done("a")
    assert len(q) == 0


async def test_never_two_workers_on_one_key() -> None:
    """Many workers hammering few keys never process one key concurrently."""
    q = WorkQueue()
    active: set[str] = set()
    overlaps = 0
    processed = 0

    async def worker() -> None:
        nonlocal overlaps, processed
        while True:
            try:
                k = await q.get()
            except ShutDown:
                return
            overlaps += k in active
            active.add(k)
            await asyncio.sleep(0.001)
            if processed < 200:
                q.add(k)
            processed += 1
            active.discard(k)
            q.done(k)

    workers = [asyncio.create_task(worker()) for _ in range(8)]
    for k in "abc":
        q.add(k)
    while processed < 200:
        await asyncio.sleep(0.01)
    q.shutdown()
    await asyncio.gather(*workers)
    assert overlaps == 0


async def test_rate_limiter_doubles_to_cap_and_forget_resets() -> None:
    """5 ms doubling per failure, capped; forget() starts over; keys are independent."""
    rl = ExponentialRateLimiter(0.005, 0.04)
    assert [rl.when("a") for _ in range(6)] == [0.005, 0.01, 0.02, 0.04, 0.04, 0.04]
    assert rl.when("b") == 0.005 and rl.num_requeues("a") == 6
    rl.forget("a")
    assert rl.when("a") == 0.005
    big = ExponentialRateLimiter()
    for _ in range(100):
        d = big.when("x")
    assert d == 1000.0


async def test_add_rate_limited_and_add_after() -> None:
    """Rate-limited adds arrive after their delay; the earliest pending add_after wins."""
    q = WorkQueue(ExponentialRateLimiter(0.02, 1))
    q.add_rate_limited("a")
    assert len(q) == 0
    assert await asyncio.wait_for(q.get(), 1) == "a"
    q.done("a")
    loop = asyncio.get_running_loop()
    start = loop.time()
    q.add_after("b", 5)
    q.add_after("b", 0.03)
    q.add_after("b", 3)
    assert await asyncio.wait_for(q.get(), 1) == "b"
    assert loop.time() - start < 1
    q.done("b")
    await asyncio.sleep(0.05)
    assert len(q) == 0  # the later timers were merged away


async def test_shutdown_wakes_workers_and_drops_timers() -> None:
    """shutdown() raises ShutDown in waiting getters, refuses adds and cancels timers."""
    q = WorkQueue()
    getters = [asyncio.create_task(q.get()) for _ in range(3)]
    q.add_after("later", 10)
    await asyncio.sleep(0)
    q.shutdown()
    q.add("x")
    for g in getters:
        with pytest.raises(ShutDown):
            await g
    assert len(q) == 0 and q.shutting_down


async def test_cancelled_getter_passes_its_wakeup_on() -> None:
    """A worker cancelled right after being woken does not swallow the key."""
    q = WorkQueue()
    g1 = asyncio.create_task(q.get())
    g2 = asyncio.create_task(q.get())
    await asyncio.sleep(0)
    q.add("k")
    g1.cancel()
    results = await asyncio.gather(g1, g2, return_exceptions=True)
    assert "k" in results
