"""Storage: the Store contract and its backends; :func:`open_store` picks one by URL."""

from __future__ import annotations

from urllib.parse import unquote, urlsplit

from .contract import (
    Event,
    InvalidContinue,
    KeyExists,
    KeyNotFound,
    ListResult,
    RevisionConflict,
    StorageError,
    Store,
    StoreClosed,
    Stored,
    TooOldRevision,
    Watch,
)
from .engine import ADDED, DELETED, MODIFIED
from .memory import MemoryStore
from .sqlite import SqliteStore

__all__ = [
    "ADDED",
    "DELETED",
    "MODIFIED",
    "Event",
    "InvalidContinue",
    "KeyExists",
    "KeyNotFound",
    "ListResult",
    "MemoryStore",
    "RevisionConflict",
    "SqliteStore",
    "StorageError",
    "Store",
    "StoreClosed",
    "Stored",
    "TooOldRevision",
    "Watch",
    "open_store",
]


def open_store(url: str, **options: int) -> Store:
    """``memory://`` or ``sqlite:///abs/path/state.db``.  ``options`` (history_size,
    watch_queue_size) go to the backend.  Raises ValueError for other URLs."""
    parts = urlsplit(url)
    if parts.scheme == "memory":
        return MemoryStore(**options)
    if parts.scheme == "sqlite":
        path = unquote(parts.path)
        if parts.netloc or not path.startswith("/") or path == "/":
            raise ValueError(
                f"sqlite storage needs an absolute path: sqlite:///abs/path/state.db, got {url!r}"
            )
        return SqliteStore(path, **options)
    raise ValueError(f"unsupported storage URL {url!r} (use memory:// or sqlite:///abs/path/state.db)")
