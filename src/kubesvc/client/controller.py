"""A small base for level-triggered reconcilers.

A controller owns some informers and one :class:`WorkQueue`.  Informer
handlers enqueue keys; ``workers`` tasks pull keys and call
``reconcile(key)``, which reads the caches, computes what should be, and
converges the cluster to it -- idempotently, because the same key may be
reconciled many times.  A reconcile that raises is logged and retried with
per-key exponential backoff; one that raises :class:`Requeue` is simply looked
at again later.  Every ``resync_period`` all keys from ``resync_keys()`` are
enqueued again, which repairs whatever a missed event or a bug left behind.
Nothing a reconcile does can crash the controller.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Hashable, Iterable

from .informer import Informer
from .rest import ApiClient, ApiError
from .sharedinformers import SharedInformerFactory
from .workqueue import ExponentialRateLimiter, ShutDown, WorkQueue

log = logging.getLogger(__name__)


class Requeue(Exception):
    """Raised by ``reconcile`` to look at the key again after ``after`` seconds (not an error)."""

    def __init__(self, after: float = 1.0, reason: str = "") -> None:
        super().__init__(reason or f"requeue after {after}s")
        self.after = after


class Controller:
    """Subclass, fill ``self.informers``, implement :meth:`reconcile` (and :meth:`resync_keys`)."""

    name = "controller"

    def __init__(self, *, workers: int = 2, resync_period: float | None = 300.0,
                 rate_limiter: ExponentialRateLimiter | None = None, sync_timeout: float | None = None) -> None:
        self.workers = workers
        self.resync_period = resync_period
        self.sync_timeout = sync_timeout
        self.queue = WorkQueue(rate_limiter or ExponentialRateLimiter(0.005, 60.0), name=self.name)
        from kubesvc.client.queuemetrics import REGISTRY_METRICS

        REGISTRY_METRICS.track(self.queue)  # workqueue_* on whatever /metrics serves the controllers
        self.informers: list[Informer] = []
        self.owns_informers = True  # False when they come from a factory someone else owns (and stops)
        self._tasks: list[asyncio.Task[None]] = []
        self.reconciles = 0
        self.failures = 0

    def informer_factory(self, client: ApiClient, factory: SharedInformerFactory | None) -> SharedInformerFactory:
        """The factory to take informers from: ``factory`` (shared; its owner stops it) or a private one.

        Objects from shared informers are read-only (see :mod:`kubesvc.client.sharedinformers`).
        """
        if factory is None:
            return SharedInformerFactory(client)
        self.owns_informers = False
        return factory

    async def reconcile(self, key: Hashable) -> None:
        raise NotImplementedError

    def resync_keys(self) -> Iterable[Hashable]:
        """Keys to look at again on every resync; by default, every object of the first informer."""
        return self.informers[0].store.keys() if self.informers else ()

    def enqueue(self, key: Hashable) -> None:
        self.queue.add(key)

    async def start(self) -> None:
        """Start informers, wait for their caches, then start workers and the resync loop."""
        for inf in self.informers:
            inf.start()
        await asyncio.wait_for(asyncio.gather(*(inf.wait_synced() for inf in self.informers)),
                               self.sync_timeout)
        for i in range(self.workers):
            self._tasks.append(asyncio.create_task(self._worker(), name=f"{self.name}-worker-{i}"))
        if self.resync_period:
            self._tasks.append(asyncio.create_task(self._resync_loop(), name=f"{self.name}-resync"))
        log.info("%s: started with %d workers", self.name, self.workers)

    async def stop(self) -> None:
        """Stop workers and the informers it owns; waits for them to finish unwinding."""
        self.queue.shutdown()
        tasks, self._tasks = self._tasks, []
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self.owns_informers:
            await asyncio.gather(*(inf.stop() for inf in self.informers), return_exceptions=True)

    async def run(self) -> None:
        """Start and run until cancelled (what ``kubesvc controllers`` awaits)."""
        await self.start()
        try:
            await asyncio.Event().wait()
        finally:
            await asyncio.shield(self.stop())

    async def _worker(self) -> None:
        while True:
            try:
                key = await self.queue.get()
            except ShutDown:
                return
            try:
                await self._process(key)
            finally:
                self.queue.done(key)

    async def _process(self, key: Hashable) -> None:
        start = time.monotonic()
        self.reconciles += 1
        try:
            await self.reconcile(key)
        except Requeue as r:
            self.queue.forget(key)
            self.queue.add_after(key, r.after)
        except asyncio.CancelledError:
            raise
        except Exception as e:
            self.failures += 1
            n = self.queue.num_requeues(key)
            log.warning("%s: reconcile %s failed (attempt %d): %r", self.name, key, n + 1, e,
                        exc_info=not _is_expected(e))
            self.queue.add_rate_limited(key)
        else:
            self.queue.forget(key)
        finally:
            log.debug("%s: reconciled %s in %.3fs", self.name, key, time.monotonic() - start)

    async def _resync_loop(self) -> None:
        assert self.resync_period
        while True:
            await asyncio.sleep(self.resync_period)
            for key in self.resync_keys():
                self.queue.add(key)


def _is_expected(e: Exception) -> bool:
    """API errors and conflicts are routine; only unexpected exceptions deserve a traceback."""
    return isinstance(e, ApiError | OSError | TimeoutError)
