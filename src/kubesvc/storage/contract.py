"""The storage contract every backend honours (sqlite, memory, later etcd).

It follows upstream's ``storage.Interface`` in spirit, trimmed to what an
apiserver with one global revision needs:

* keys are strings (``/registry/core/services/default/web``); values are JSON
  objects; the store writes ``metadata.resourceVersion`` itself, as the decimal
  revision of the write, so what is stored is exactly what the API returns;
* one global, strictly increasing revision counts every write (create, update,
  delete) across all keys;
* ``update`` and ``delete`` take an expected revision for compare-and-swap;
* ``list`` is a prefix scan with an optional predicate and limit/continue paging;
* ``watch`` streams every change under a prefix after a given revision, or
  raises :class:`TooOldRevision` when that revision was compacted away;
* a call returns only once its write is durable (for persistent backends).

Objects cross this boundary as :class:`Stored` records holding the encoded
bytes, so an object written once is encoded once, whoever reads or watches it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import orjson

Obj = dict[str, Any]
Predicate = Callable[[Obj], bool]


class StorageError(Exception):
    """Base of every storage failure."""


class KeyExists(StorageError):
    def __init__(self, key: str) -> None:
        super().__init__(f"key exists: {key}")
        self.key = key


class KeyNotFound(StorageError):
    def __init__(self, key: str) -> None:
        super().__init__(f"key not found: {key}")
        self.key = key


class RevisionConflict(StorageError):
    """Compare-and-swap failed: the key's revision (or uid) is not the expected one."""

    def __init__(self, key: str, expected: int | str | None, actual: int | str | None) -> None:
        super().__init__(f"conflict on {key}: expected {expected}, found {actual}")
        self.key = key
        self.expected = expected
        self.actual = actual


class TooOldRevision(StorageError):
    """The requested revision is older than the oldest one still kept (HTTP 410)."""

    def __init__(self, requested: int, oldest: int) -> None:
        super().__init__(f"too old resource version: {requested} ({oldest})")
        self.requested = requested
        self.oldest = oldest


class InvalidContinue(StorageError):
    """A continue token that could not be decoded."""


class StoreClosed(StorageError):
    """The store was closed; no more reads, writes or watch events."""


@dataclass(frozen=True, eq=False)
class Stored:
    """One stored object at one revision: its key, revision and JSON bytes.

    ``value`` is parsed lazily and shared; treat it as read-only.  Use
    :meth:`obj` for a private, mutable copy.
    """

    key: str
    revision: int
    data: bytes
    _parsed: list[Obj] = field(default_factory=list, repr=False)

    @property
    def value(self) -> Obj:
        if not self._parsed:
            self._parsed.append(orjson.loads(self.data))
        return self._parsed[0]

    def obj(self) -> Obj:
        return orjson.loads(self.data)


@dataclass(frozen=True)
class Event:
    """A change: ADDED, MODIFIED or DELETED.

    ``current`` is the object after the change (for DELETED: the last state,
    carrying the deletion's revision as its resourceVersion); ``previous`` is the
    state before the change (None for ADDED).
    """

    type: str
    current: Stored
    previous: Stored | None

    @property
    def revision(self) -> int:
        return self.current.revision

    @property
    def key(self) -> str:
        return self.current.key


@dataclass(frozen=True)
class ListResult:
    items: list[Stored]
    revision: int  # the store revision the list reflects
    continue_token: str | None = None  # set when limit cut the list short
    remaining: int | None = None  # items left after this page, when known


class Watch(Protocol):
    """A running watch: iterate for events; ``close()`` to stop early.

    Iteration ends when the watch is closed (by the caller, by the store closing,
    or because the watcher fell too far behind: then ``error`` says why).
    """

    error: StorageError | None

    def __aiter__(self) -> AsyncIterator[Event]: ...

    async def __anext__(self) -> Event: ...

    def drain(self) -> list[Event]:
        """Every event queued now, without waiting (a busy watch is served in batches)."""
        ...

    async def wait(self, timeout: float) -> bool:
        """Until an event is queued or the watch ends (True), or ``timeout`` seconds pass (False)."""
        ...

    @property
    def closed(self) -> bool:
        """Ended; what :meth:`drain` still returns is all there will be."""
        ...

    def close(self) -> None: ...


class Store(Protocol):
    """The contract.  All methods are safe to call concurrently from one event loop."""

    async def create(self, key: str, obj: Obj) -> Stored:
        """Store a new key; raise :class:`KeyExists` if present."""
        ...

    async def get(self, key: str) -> Stored:
        """Current value; raise :class:`KeyNotFound`."""
        ...

    async def update(self, key: str, obj: Obj, *, expected_revision: int | None = None) -> Stored:
        """Replace an existing key.  With ``expected_revision``, fail with
        :class:`RevisionConflict` unless the key's current revision equals it."""
        ...

    async def delete(
        self, key: str, *, expected_revision: int | None = None, expected_uid: str | None = None
    ) -> Stored:
        """Remove a key, with optional preconditions on revision and metadata.uid.
        Returns the last state with the deletion's revision."""
        ...

    async def list(
        self,
        prefix: str,
        *,
        predicate: Predicate | None = None,
        limit: int | None = None,
        continue_token: str | None = None,
    ) -> ListResult:
        """Keys under ``prefix`` in key order, filtered by ``predicate``.  ``limit``
        caps the page; the result's ``continue_token`` fetches the next one.
        A token older than the compacted revision raises :class:`TooOldRevision`.

        ``prefix`` names a directory: ``/a/b`` and ``/a/b/`` both cover
        ``/a/b/x`` but never ``/a/bc/x``.  Later pages read the current state
        after the last key returned (not a snapshot) and all pages report the
        first page's revision, so a watch from it misses nothing."""
        ...

    def watch(self, prefix: str, *, after_revision: int) -> Watch:
        """Events under ``prefix`` (a directory, as for :meth:`list`) with
        revision > ``after_revision``, in order.
        Raises :class:`TooOldRevision` if history before that is compacted."""
        ...

    @property
    def revision(self) -> int:
        """The newest committed revision."""
        ...

    @property
    def oldest_revision(self) -> int:
        """The oldest revision a watch may still start after."""
        ...

    def compact(self, revision: int) -> None:
        """Forget history up to ``revision`` (watches from before it get 410)."""
        ...

    async def close(self) -> None:
        """Flush pending writes, end every watch, release files."""
        ...
