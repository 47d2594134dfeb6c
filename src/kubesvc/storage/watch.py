"""Watch history and fan-out: the ring of recent events and the live watchers.

Split from the engine because it is a separate concern with its own rules:
events are kept in revision order in a bounded ring, so a watch can start a
little in the past; ``oldest`` is the revision just before the oldest kept
event (older starts get :class:`TooOldRevision`, upstream's 410).  Each event
is one shared :class:`Event` object, encoded once, pushed to every watcher
whose prefix covers its key.
"""

from __future__ import annotations

import asyncio
from collections import deque

from .contract import Event, StorageError, TooOldRevision


def dir_prefix(prefix: str) -> str:
    """Treat a prefix as a directory, so ``/a/b`` never matches ``/a/bc/x``."""
    return prefix if not prefix or prefix.endswith("/") else prefix + "/"


class EngineWatch:
    """One watcher: a bounded queue filled by the engine, drained by iteration.

    A watcher that lets its queue fill is closed with ``error`` set instead of
    slowing writers down; the client re-lists and watches again, as upstream's
    clients do after a watch ends."""

    def __init__(self, hub: WatchHub, prefix: str, after: int, max_queue: int) -> None:
        self.error: StorageError | None = None
        self.prefix = prefix
        self._hub = hub
        self._after = after
        self._max = max_queue
        self._queue: deque[Event] = deque()
        self._waiter: asyncio.Future[bool] | None = None
        self._closed = False

    def push(self, event: Event) -> None:
        if self._closed or event.revision <= self._after:
            return
        if len(self._queue) >= self._max:
            self.end(StorageError(f"watch on {self.prefix} fell behind ({self._max} events queued); closed"))
            return
        self._queue.append(event)
        self._wake()

    def end(self, error: StorageError | None = None, *, drain: bool = False) -> None:
        """Stop; with ``drain`` the events already queued are still delivered."""
        if self._closed:
            return
        self._closed = True
        self.error = error
        if not drain:
            self._queue.clear()
        self._hub.unregister(self)
        self._wake()

    def close(self) -> None:
        self.end()

    def _wake(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(True)

    def __aiter__(self) -> EngineWatch:
        return self

    @property
    def closed(self) -> bool:
        return self._closed

    def drain(self) -> list[Event]:
        out = list(self._queue)
        self._queue.clear()
        return out

    async def wait(self, timeout: float) -> bool:
        """A future and a timer, not ``asyncio.wait_for`` (a task per event, per watcher)."""
        if self._queue or self._closed:
            return True
        loop = asyncio.get_running_loop()
        fut = self._waiter = loop.create_future()
        timer = loop.call_later(timeout, _time_up, fut)
        try:
            return bool(await fut)
        finally:
            timer.cancel()
            self._waiter = None

    async def __anext__(self) -> Event:
        while True:
            if self._queue:
                return self._queue.popleft()
            if self._closed:
                raise StopAsyncIteration
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None


def _time_up(fut: asyncio.Future[bool]) -> None:
    if not fut.done():
        fut.set_result(False)


class WatchHub:
    """History ring plus watchers grouped by prefix (few distinct prefixes, many
    watchers each: an event checks each prefix once)."""

    def __init__(self, revision: int, history_size: int, watch_queue_size: int) -> None:
        self.oldest = revision
        self._history: deque[Event] = deque()
        self._history_size = max(1, history_size)
        self._watch_queue_size = max(1, watch_queue_size)
        self._watchers: dict[str, set[EngineWatch]] = {}

    def record(self, event: Event) -> None:
        """Keep ``event`` (the newest committed) and deliver it."""
        history = self._history
        history.append(event)
        if len(history) > self._history_size:
            self.oldest = history.popleft().revision
        key = event.key
        for prefix, watchers in list(self._watchers.items()):
            if key.startswith(prefix):
                for watcher in list(watchers):
                    watcher.push(event)

    def watch(self, prefix: str, after_revision: int) -> EngineWatch:
        """Replay kept events after ``after_revision``, then live ones.  Both
        happen in this synchronous call, so nothing falls between them."""
        if after_revision < self.oldest:
            raise TooOldRevision(after_revision, self.oldest)
        prefix = dir_prefix(prefix)
        watcher = EngineWatch(self, prefix, after_revision, self._watch_queue_size)
        replay: list[Event] = []
        for event in reversed(self._history):
            if event.revision <= after_revision:
                break
            if event.key.startswith(prefix):
                replay.append(event)
        watcher._queue.extend(reversed(replay))  # replay is not counted against the bound
        self._watchers.setdefault(prefix, set()).add(watcher)
        return watcher

    def unregister(self, watcher: EngineWatch) -> None:
        watchers = self._watchers.get(watcher.prefix)
        if watchers is not None:
            watchers.discard(watcher)
            if not watchers:
                del self._watchers[watcher.prefix]

    def compact(self, revision: int) -> None:
        """Drop kept events up to ``revision`` (the caller caps it at the current one)."""
        history = self._history
        while history and history[0].revision <= revision:
            history.popleft()
        self.oldest = max(self.oldest, revision)

    def end_all(self) -> None:
        """The store is closing: each watch delivers what it has queued, then ends."""
        for watchers in list(self._watchers.values()):
            for watcher in list(watchers):
                watcher.end(drain=True)
