"""A rate-limited, coalescing runner (upstream's BoundedFrequencyRunner).

``run()`` asks for a sync; many asks between two syncs make one sync.  Syncs
are at least ``min_interval`` apart on average with a ``burst`` allowance
(a token bucket), at most ``max_interval`` apart (the periodic full resync),
and ``retry_after(d)`` schedules one sooner after a failure.  The decision is
in :class:`Schedule`, pure over times, so tests drive it with a fake clock;
:class:`Runner` is the thin asyncio loop around it.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Protocol

log = logging.getLogger(__name__)


class Clock(Protocol):
    def monotonic(self) -> float: ...

    async def sleep(self, seconds: float) -> None: ...


class SystemClock:
    def monotonic(self) -> float:
        return time.monotonic()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


class Schedule:
    """When the next sync may and must run."""

    def __init__(self, min_interval: float, max_interval: float, burst: int, now: float) -> None:
        self.min_interval, self.max_interval, self.burst = min_interval, max_interval, max(1, burst)
        self.tokens = float(self.burst)
        self.stamp = now
        self.last_run = now
        self.wanted = False
        self.retry_at: float | None = None

    def _refill(self, now: float) -> None:
        if self.min_interval > 0:
            self.tokens = min(self.burst, self.tokens + (now - self.stamp) / self.min_interval)
        else:
            self.tokens = float(self.burst)
        self.stamp = now

    def request(self) -> None:
        self.wanted = True

    def retry(self, now: float, delay: float) -> None:
        at = now + delay
        self.retry_at = at if self.retry_at is None else min(self.retry_at, at)

    def next_time(self, now: float) -> float:
        """The earliest time a sync should start (``now`` if it is due)."""
        self._refill(now)
        due = self.last_run + self.max_interval
        if self.retry_at is not None:
            due = min(due, self.retry_at)
        if self.wanted:
            due = now
        if due > now:
            return due
        if self.tokens >= 1:
            return now
        return now + (1 - self.tokens) * self.min_interval

    def ran(self, now: float) -> None:
        self._refill(now)
        self.tokens = max(0.0, self.tokens - 1)
        self.last_run = now
        self.wanted = False
        self.retry_at = None


class Runner:
    def __init__(self, fn: Callable[[], Awaitable[None]], *, min_interval: float = 1.0,
                 max_interval: float = 3600.0, burst: int = 2, clock: Clock | None = None) -> None:
        self.fn = fn
        self.clock = clock or SystemClock()
        self.schedule = Schedule(min_interval, max_interval, burst, self.clock.monotonic())
        self._wake = asyncio.Event()

    def run(self) -> None:
        self.schedule.request()
        self._wake.set()

    def retry_after(self, delay: float) -> None:
        self.schedule.retry(self.clock.monotonic(), delay)
        self._wake.set()

    async def loop(self) -> None:
        """Forever: wait until the schedule says go (or a request comes), then run ``fn`` once."""
        while True:
            now = self.clock.monotonic()
            at = self.schedule.next_time(now)
            if at > now:
                self._wake.clear()
                sleeper = asyncio.ensure_future(self.clock.sleep(at - now))
                waker = asyncio.ensure_future(self._wake.wait())
                try:
                    await asyncio.wait({sleeper, waker}, return_when=asyncio.FIRST_COMPLETED)
                finally:
                    sleeper.cancel()
                    waker.cancel()
                continue
            self.schedule.ran(now)
            try:
                await self.fn()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("sync failed")
