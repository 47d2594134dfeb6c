"""A rate-limited work queue of keys, with client-go's workqueue semantics.

Controllers are level-triggered: an event only says *which* key to look at
again, so the queue stores keys, not events, and three sets keep it honest
(as in client-go's ``Type``):

* ``queue`` -- keys waiting, in order, each at most once (adds of a queued
  key are merged);
* ``dirty`` -- keys that need processing (queued, or re-added while a worker
  holds them);
* ``processing`` -- keys a worker holds.  A key is never handed to two
  workers at once; one re-added meanwhile is queued again on ``done()``.

Retries go through :class:`ExponentialRateLimiter` (per key, 5 ms doubling to
a cap) and ``add_after`` timers, deduplicated so a key waits on one timer.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Hashable
from typing import Protocol


class ShutDown(Exception):
    """The queue was shut down and has nothing left to hand out."""


class ExponentialRateLimiter:
    """Per-key backoff ``base * 2**failures`` capped at ``cap`` (client-go's item limiter)."""

    def __init__(self, base: float = 0.005, cap: float = 1000.0) -> None:
        self.base = base
        self.cap = cap
        self._failures: dict[Hashable, int] = {}

    def when(self, key: Hashable) -> float:
        n = self._failures.get(key, 0)
        self._failures[key] = n + 1
        if n > 60:  # 2**60 * base is already past any cap; avoid huge floats
            return self.cap
        return min(self.cap, self.base * (2 ** n))

    def forget(self, key: Hashable) -> None:
        self._failures.pop(key, None)

    def num_requeues(self, key: Hashable) -> int:
        return self._failures.get(key, 0)


class QueueObserver(Protocol):
    """What a queue reports as it goes (upstream's workqueue metrics; see :mod:`.queuemetrics`)."""

    def added(self) -> None: ...
    def queued_for(self, seconds: float) -> None: ...
    def worked_for(self, seconds: float) -> None: ...
    def retried(self) -> None: ...


class WorkQueue:
    """Keys to process; ``await get()``, work, then always ``done(key)``."""

    def __init__(self, rate_limiter: ExponentialRateLimiter | None = None, name: str = "",
                 observer: QueueObserver | None = None) -> None:
        self.name = name
        self.observer = observer
        self._added_at: dict[Hashable, float] = {}  # when each queued key was added (for queue_duration)
        self.started_at: dict[Hashable, float] = {}  # keys being processed, since when
        self.rate_limiter = rate_limiter or ExponentialRateLimiter()
        self._queue: deque[Hashable] = deque()
        self._dirty: set[Hashable] = set()
        self._processing: set[Hashable] = set()
        self._getters: deque[asyncio.Future[None]] = deque()
        self._waiting: dict[Hashable, tuple[float, asyncio.TimerHandle]] = {}
        self._shutting_down = False

    def __len__(self) -> int:
        return len(self._queue)

    @property
    def shutting_down(self) -> bool:
        return self._shutting_down

    def is_processing(self, key: Hashable) -> bool:
        return key in self._processing

    def add(self, key: Hashable) -> None:
        if self._shutting_down or key in self._dirty:
            return
        self._dirty.add(key)
        if self.observer is not None:
            self.observer.added()
            self._added_at[key] = time.monotonic()
        if key in self._processing:
            return  # queued again by done()
        self._queue.append(key)
        self._wake_one()

    def add_after(self, key: Hashable, delay: float) -> None:
        """Add ``key`` after ``delay`` seconds; an earlier pending timer for it wins."""
        if self._shutting_down:
            return
        if delay <= 0:
            self.add(key)
            return
        loop = asyncio.get_running_loop()
        deadline = loop.time() + delay
        pending = self._waiting.get(key)
        if pending is not None:
            if pending[0] <= deadline:
                return
            pending[1].cancel()
        handle = loop.call_at(deadline, self._fire, key)
        self._waiting[key] = (deadline, handle)

    def _fire(self, key: Hashable) -> None:
        self._waiting.pop(key, None)
        self.add(key)

    def add_rate_limited(self, key: Hashable) -> None:
        if self.observer is not None:
            self.observer.retried()
        self.add_after(key, self.rate_limiter.when(key))

    def forget(self, key: Hashable) -> None:
        """Stop tracking ``key``'s failures: its next retry starts from the base delay."""
        self.rate_limiter.forget(key)

    def num_requeues(self, key: Hashable) -> int:
        return self.rate_limiter.num_requeues(key)

    async def get(self) -> Hashable:
        """The next key, waiting if none; raises :class:`ShutDown` once shut down and drained."""
        while not self._queue:
            if self._shutting_down:
                raise ShutDown()
            fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            self._getters.append(fut)
            try:
                await fut
            except asyncio.CancelledError:
                if fut in self._getters:
                    self._getters.remove(fut)
                elif self._queue:
                    self._wake_one()  # we were woken but won't take it: pass it on
                raise
        key = self._queue.popleft()
        self._processing.add(key)
        self._dirty.discard(key)
        if self.observer is not None:
            now = time.monotonic()
            self.observer.queued_for(now - self._added_at.pop(key, now))
            self.started_at[key] = now
        return key

    def done(self, key: Hashable) -> None:
        """Mark ``key`` finished; if it was re-added meanwhile, it is queued again now."""
        self._processing.discard(key)
        started = self.started_at.pop(key, None)
        if self.observer is not None and started is not None:
            self.observer.worked_for(time.monotonic() - started)
        if key in self._dirty:
            self._queue.append(key)
            self._wake_one()

    def shutdown(self) -> None:
        """Refuse new keys, drop pending timers, and wake every waiting worker."""
        self._shutting_down = True
        for _, handle in self._waiting.values():
            handle.cancel()
        self._waiting.clear()
        while self._getters:
            fut = self._getters.popleft()
            if not fut.done():
                fut.set_result(None)

    def _wake_one(self) -> None:
        while self._getters:
            fut = self._getters.popleft()
            if not fut.done():
                fut.set_result(None)
                return
