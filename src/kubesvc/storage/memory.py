"""MemoryStore: the engine with nothing behind it, for tests and ``memory://``.

It deliberately runs the same batching path as the sqlite store (only the disk
write is a no-op), so a test that passes on memory exercises the same ordering,
revision and watch behaviour users get on sqlite.
"""

from __future__ import annotations

from .engine import DEFAULT_HISTORY, DEFAULT_WATCH_QUEUE, Engine, NullPersistence, Persistence


class MemoryStore(Engine):
    """An empty, non-durable store.  ``persistence`` lets tests inject a failing
    or slow backend; by default nothing is kept."""

    def __init__(
        self,
        *,
        history_size: int = DEFAULT_HISTORY,
        watch_queue_size: int = DEFAULT_WATCH_QUEUE,
        persistence: Persistence | None = None,
    ) -> None:
        super().__init__(
            persistence if persistence is not None else NullPersistence(),
            history_size=history_size,
            watch_queue_size=watch_queue_size,
        )
