"""The in-memory engine behind every backend: state, revisions, group commit, watch.

Why one engine: the memory and sqlite stores must behave identically (tests run
on memory, users on sqlite), so everything but the bytes-on-disk lives here and
a backend only supplies a :class:`Persistence`.

How a write flows:

1. On the event loop, synchronously: the compare-and-swap check runs against the
   committed state overlaid with writes that are accepted but not yet durable
   (``_pending``), then the write takes the next revision.  No ``await`` happens
   in between, so concurrent writers serialize without locks.
2. The write joins the queue.  One flusher task takes everything queued as a
   batch and hands it to ``Persistence.write_batch`` (in a worker thread for
   blocking backends): one transaction, one fsync, for the whole batch.  While
   it runs, the next batch accumulates: group commit.
3. Back on the loop, the batch is applied to the committed state in revision
   order, watch events are published, and the callers' futures resolve.  Reads
   only see committed state, so nobody observes a write before it is durable.

If persistence fails, every write of the batch fails with :class:`StorageError`
and its overlay entries are dropped; queued writes to the same keys fail too
(their checks assumed state that never became durable).  Their revisions are
skipped: revisions stay strictly increasing, with gaps.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import bisect
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Protocol

import orjson

from .contract import (
    Event,
    InvalidContinue,
    KeyExists,
    KeyNotFound,
    ListResult,
    Obj,
    Predicate,
    RevisionConflict,
    StorageError,
    StoreClosed,
    Stored,
    TooOldRevision,
)
from .watch import EngineWatch, WatchHub, dir_prefix

ADDED = "ADDED"
MODIFIED = "MODIFIED"
DELETED = "DELETED"

DEFAULT_HISTORY = 10_000
DEFAULT_WATCH_QUEUE = 10_000
MAX_BATCH = 2_000  # bounds one transaction's size and the latency of the writes behind it


@dataclass(eq=False, slots=True)
class Write:
    """One accepted write on its way to disk.  ``stored`` is the new state (for
    DELETED: the last state re-encoded with the deletion's revision)."""

    type: str
    stored: Stored
    previous: Stored | None
    future: asyncio.Future[Stored]

    @property
    def key(self) -> str:
        return self.stored.key

    @property
    def revision(self) -> int:
        return self.stored.revision


class Persistence(Protocol):
    """What a backend supplies: make a batch durable, atomically, or raise.

    ``blocking`` backends are called from one dedicated worker thread, so they
    may keep a thread-affine connection; others are called on the loop."""

    blocking: bool

    def write_batch(self, writes: Sequence[Write], revision: int) -> None: ...

    def close(self) -> None: ...


class NullPersistence:
    """Keeps nothing: the memory store.  Same code path, no disk."""

    blocking = False

    def write_batch(self, writes: Sequence[Write], revision: int) -> None:
        return None

    def close(self) -> None:
        return None


def encode(key: str, obj: Obj, revision: int) -> Stored:
    """Encode ``obj`` with its resourceVersion set; the caller's dict is not modified."""
    meta = obj.get("metadata") or {}
    try:
        data = orjson.dumps({**obj, "metadata": {**meta, "resourceVersion": str(revision)}})
    except (TypeError, orjson.JSONEncodeError) as e:
        raise StorageError(f"cannot encode {key}: {e}") from e
    return Stored(key, revision, data)


class Engine:
    """A complete :class:`~kubesvc.storage.contract.Store` over a :class:`Persistence`.

    ``items`` is the state loaded from disk, sorted by key or not; ``revision``
    the counter to continue from.  History is not persisted, so after a start
    ``oldest_revision == revision``."""

    def __init__(
        self,
        persistence: Persistence,
        *,
        items: Sequence[Stored] = (),
        revision: int = 0,
        history_size: int = DEFAULT_HISTORY,
        watch_queue_size: int = DEFAULT_WATCH_QUEUE,
    ) -> None:
        self._persistence = persistence
        self._committed: dict[str, Stored] = {s.key: s for s in items}
        self._keys: list[str] = sorted(self._committed)
        self._revision = revision  # newest committed
        self._next = revision  # newest assigned
        self._pending: dict[str, Write] = {}  # newest accepted, not yet durable write per key
        self._queue: list[Write] = []
        self._hub = WatchHub(revision, history_size, watch_queue_size)
        self._wakeup = asyncio.Event()
        self._flusher: asyncio.Task[None] | None = None
        self._executor = (
            ThreadPoolExecutor(1, thread_name_prefix="kubesvc-storage") if persistence.blocking else None
        )
        self._closing = False
        self._closed = False

    # ----- reads: committed state only -----

    @property
    def revision(self) -> int:
        return self._revision

    @property
    def oldest_revision(self) -> int:
        return self._hub.oldest

    async def get(self, key: str) -> Stored:
        self._check_open()
        stored = self._committed.get(key)
        if stored is None:
            raise KeyNotFound(key)
        return stored

    async def list(
        self,
        prefix: str,
        *,
        predicate: Predicate | None = None,
        limit: int | None = None,
        continue_token: str | None = None,
    ) -> ListResult:
        """Prefix scan in key order.

        Pages after the first continue from the *current* state after the last
        key returned: they are not a point-in-time snapshot (keys created
        behind the cursor are missed, keys changed ahead of it show their newer
        value).  So every page reports the *first* page's revision: a client
        that watches from it afterwards is replayed every change it may have
        missed while paging (some twice, which an informer's upsert absorbs)."""
        self._check_open()
        prefix = dir_prefix(prefix)
        keys = self._keys
        start = bisect.bisect_left(keys, prefix)
        list_rev = self._revision
        if continue_token is not None:
            list_rev, after = _decode_token(continue_token)
            if not after.startswith(prefix):
                raise InvalidContinue(f"continue token is not for prefix {prefix}")
            if list_rev < self._hub.oldest:
                raise TooOldRevision(list_rev, self._hub.oldest)
            if list_rev > self._revision:
                raise InvalidContinue("continue token from the future")
            start = bisect.bisect_right(keys, after)
        end = _prefix_end(keys, prefix)
        cap = limit if limit is not None and limit > 0 else None
        items: list[Stored] = []
        i = start
        while i < end and (cap is None or len(items) < cap):
            stored = self._committed[keys[i]]
            i += 1
            if predicate is None or predicate(stored.value):
                items.append(stored)
        token = None
        remaining: int | None = None
        if predicate is None:
            remaining = end - i
        else:  # look ahead for one more match so the last page carries no token
            while i < end and not predicate(self._committed[keys[i]].value):
                i += 1
            remaining = 0 if i >= end else None
        if items and remaining != 0:
            token = _encode_token(list_rev, items[-1].key)
        return ListResult(items, list_rev, token, remaining)

    # ----- writes -----

    async def create(self, key: str, obj: Obj) -> Stored:
        self._check_writable()
        if self._current(key) is not None:
            raise KeyExists(key)
        return await self._submit(ADDED, encode(key, obj, self._take_revision()), None)

    async def update(self, key: str, obj: Obj, *, expected_revision: int | None = None) -> Stored:
        self._check_writable()
        current = self._current(key)
        if current is None:
            raise KeyNotFound(key)
        if expected_revision is not None and current.revision != expected_revision:
            raise RevisionConflict(key, expected_revision, current.revision)
        return await self._submit(MODIFIED, encode(key, obj, self._take_revision()), current)

    async def delete(
        self, key: str, *, expected_revision: int | None = None, expected_uid: str | None = None
    ) -> Stored:
        self._check_writable()
        current = self._current(key)
        if current is None:
            raise KeyNotFound(key)
        if expected_revision is not None and current.revision != expected_revision:
            raise RevisionConflict(key, expected_revision, current.revision)
        if expected_uid is not None:
            uid = (current.value.get("metadata") or {}).get("uid")
            if uid != expected_uid:
                raise RevisionConflict(key, expected_uid, uid)
        return await self._submit(DELETED, encode(key, current.value, self._take_revision()), current)

    def _current(self, key: str) -> Stored | None:
        """The state a new write is checked against: pending overlay, then committed."""
        write = self._pending.get(key)
        if write is None:
            return self._committed.get(key)
        return None if write.type == DELETED else write.stored

    def _take_revision(self) -> int:
        self._next += 1
        return self._next

    async def _submit(self, type_: str, stored: Stored, previous: Stored | None) -> Stored:
        loop = asyncio.get_running_loop()
        write = Write(type_, stored, previous, loop.create_future())
        self._pending[stored.key] = write
        self._queue.append(write)
        if self._flusher is None:
            self._flusher = loop.create_task(self._flush_loop(), name="kubesvc-storage-flusher")
        self._wakeup.set()
        # The write is already accepted: a caller that is cancelled does not undo it.
        return await asyncio.shield(write.future)

    async def _flush_loop(self) -> None:
        """The single flusher: one batch in flight, the next one accumulating."""
        while True:
            if not self._queue:
                if self._closing:
                    return
                self._wakeup.clear()
                await self._wakeup.wait()
                continue
            batch = self._queue[:MAX_BATCH]
            del self._queue[:MAX_BATCH]
            try:
                if self._executor is not None:
                    loop = asyncio.get_running_loop()
                    await loop.run_in_executor(
                        self._executor, self._persistence.write_batch, batch, batch[-1].revision
                    )
                else:
                    self._persistence.write_batch(batch, batch[-1].revision)
            except Exception as e:  # noqa: BLE001 - any persistence failure fails the batch
                self._fail(batch, e)
            else:
                self._apply(batch)

    def _apply(self, batch: list[Write]) -> None:
        committed, keys = self._committed, self._keys
        for write in batch:
            key = write.key
            if write.type == DELETED:
                del committed[key]
                del keys[bisect.bisect_left(keys, key)]
            else:
                if key not in committed:
                    bisect.insort(keys, key)
                committed[key] = write.stored
            if self._pending.get(key) is write:
                del self._pending[key]
            self._revision = write.revision
            self._hub.record(Event(write.type, write.stored, write.previous))
        for write in batch:
            if not write.future.done():
                write.future.set_result(write.stored)

    def _fail(self, batch: list[Write], cause: Exception) -> None:
        failed_keys = {w.key for w in batch}
        dependent = [w for w in self._queue if w.key in failed_keys]
        if dependent:
            self._queue = [w for w in self._queue if w.key not in failed_keys]
        for write in (*batch, *dependent):
            if self._pending.get(write.key) is write:
                del self._pending[write.key]
            if not write.future.done():
                error = StorageError(f"write of {write.key} at revision {write.revision} failed: {cause}")
                error.__cause__ = cause
                write.future.set_exception(error)

    # ----- watch -----

    def watch(self, prefix: str, *, after_revision: int) -> EngineWatch:
        """See :meth:`WatchHub.watch`; refuses once the store is closed."""
        self._check_open()
        return self._hub.watch(prefix, after_revision)

    def compact(self, revision: int) -> None:
        self._hub.compact(min(revision, self._revision))

    # ----- lifecycle -----

    def _check_open(self) -> None:
        if self._closed:
            raise StoreClosed("store is closed")

    def _check_writable(self) -> None:
        if self._closing or self._closed:
            raise StoreClosed("store is closed")

    async def close(self) -> None:
        """Flush what was accepted, end every watch (after its queued events),
        and release the backend.  Idempotent."""
        if self._closed or self._closing:
            return
        self._closing = True
        if self._flusher is not None:
            self._wakeup.set()
            await self._flusher
        self._closed = True
        self._hub.end_all()
        if self._executor is not None:
            await asyncio.get_running_loop().run_in_executor(self._executor, self._persistence.close)
            self._executor.shutdown(wait=True)
        else:
            self._persistence.close()


def _prefix_end(keys: list[str], prefix: str) -> int:
    """Index just past the last key starting with ``prefix``."""
    if not prefix:
        return len(keys)
    upper = prefix[:-1] + chr(ord(prefix[-1]) + 1)
    return bisect.bisect_left(keys, upper)


def _encode_token(revision: int, start: str) -> str:
    return base64.urlsafe_b64encode(orjson.dumps({"rv": revision, "start": start})).decode()


def _decode_token(token: str) -> tuple[int, str]:
    try:
        data = orjson.loads(base64.urlsafe_b64decode(token.encode()))
    except (ValueError, binascii.Error, orjson.JSONDecodeError) as e:
        raise InvalidContinue(f"invalid continue token: {e}") from e
    if not isinstance(data, dict):
        raise InvalidContinue("invalid continue token")
    rv, start = data.get("rv"), data.get("start")
    if not isinstance(rv, int) or isinstance(rv, bool) or not isinstance(start, str):
        raise InvalidContinue("invalid continue token")
    return rv, start
