"""Recording v1 Events through the API, the way client-go's recorder does.

Components explain themselves to users through Events (``kubectl describe``
lists them): a scheduler's ``FailedScheduling``, a ReplicaSet's
``SuccessfulCreate``.  Recording must never slow down or fail the work it
describes, so :meth:`EventRecorder.record` only schedules the write and
returns; writes run in the background, a few at a time, and failures are
logged, never raised.  A repeat of the same event (same object, type,
reason and message) bumps ``count`` and ``lastTimestamp`` on the first one
instead of creating another, as client-go's event correlator does.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import time
from collections import OrderedDict
from typing import Any

from kubesvc.api.meta import now_rfc3339
from kubesvc.api.resources import by_kind

from .rest import ApiClient, ApiError

log = logging.getLogger(__name__)
Obj = dict[str, Any]
EVENTS = by_kind("v1", "Event")
NORMAL = "Normal"
WARNING = "Warning"


def involved(obj: Obj) -> Obj:
    """The ObjectReference an Event points at."""
    m = obj.get("metadata") or {}
    ref = {"kind": obj.get("kind"), "namespace": m.get("namespace"), "name": m.get("name"),
           "uid": m.get("uid"), "apiVersion": obj.get("apiVersion"), "resourceVersion": m.get("resourceVersion")}
    return {k: v for k, v in ref.items() if v}


def build_event(ref: Obj, etype: str, reason: str, message: str, component: str, host: str = "") -> Obj:
    """A new v1 Event for ``ref``, named as client-go names them (``<object>.<hex nanos>``)."""
    now = now_rfc3339()
    source = {"component": component, **({"host": host} if host else {})}
    return {
        "apiVersion": "v1", "kind": "Event",
        "metadata": {"name": f"{ref.get('name', 'unknown')}.{time.time_ns():x}",
                     "namespace": ref.get("namespace") or "default"},
        "involvedObject": ref, "reason": reason, "message": message, "type": etype,
        "source": source, "firstTimestamp": now, "lastTimestamp": now, "count": 1,
        "eventTime": None, "reportingComponent": component, "reportingInstance": host or socket.gethostname(),
    }


class EventRecorder:
    """``recorder.record(pod, "Warning", "FailedScheduling", msg)``; ``await recorder.close()`` at the end."""

    def __init__(self, client: ApiClient, component: str, *, host: str = "", concurrency: int = 8,
                 cache_size: int = 4096, correlate_window: float = 600.0) -> None:
        self.client = client
        self.component = component
        self.host = host
        self._sem = asyncio.Semaphore(concurrency)
        self._tasks: set[asyncio.Task[None]] = set()
        self._seen: OrderedDict[tuple[str, ...], tuple[str, str, int, float]] = OrderedDict()
        self._cache_size = cache_size
        self._window = correlate_window
        self.written = 0
        self._locks: dict[tuple[str, ...], asyncio.Lock] = {}

    def record(self, obj: Obj, etype: str, reason: str, message: str) -> None:
        """Schedule the write; never blocks, never raises."""
        try:
            task = asyncio.get_running_loop().create_task(self._write(involved(obj), etype, reason, message))
        except RuntimeError:
            return  # no loop: nothing to record with
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def flush(self) -> None:
        """Wait for the writes scheduled so far (tests and shutdown)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def close(self) -> None:
        await self.flush()

    async def _write(self, ref: Obj, etype: str, reason: str, message: str) -> None:
        assert EVENTS is not None
        key = (str(ref.get("uid") or ref.get("name")), etype, reason, message)
        lock = self._locks.setdefault(key, asyncio.Lock())  # repeats wait for the first write
        try:
            async with lock, self._sem:
                await self._write_locked(key, ref, etype, reason, message)
        finally:
            if not lock.locked() and self._locks.get(key) is lock:
                del self._locks[key]

    async def _write_locked(self, key: tuple[str, ...], ref: Obj, etype: str, reason: str, message: str) -> None:
        try:
            prev = self._seen.get(key)
            if prev is not None and time.monotonic() - prev[3] < self._window:
                ns, name, count, _ = prev
                patch = {"count": count + 1, "lastTimestamp": now_rfc3339()}
                try:
                    await self.client.patch(EVENTS, name, patch, ns)
                    self._remember(key, (ns, name, count + 1, prev[3]))
                    self.written += 1
                    return
                except ApiError as e:
                    if e.code != 404:
                        raise
            ev = build_event(ref, etype, reason, message, self.component, self.host)
            created = await self.client.create(EVENTS, ev, ev["metadata"]["namespace"])
            m = created.get("metadata") or ev["metadata"]
            self._remember(key, (m["namespace"], m["name"], 1, time.monotonic()))
            self.written += 1
        except asyncio.CancelledError:
            raise
        except Exception as e:  # an event must never break the caller
            log.debug("event %s/%s for %s not recorded: %r", reason, etype, ref.get("name"), e)

    def _remember(self, key: tuple[str, ...], value: tuple[str, str, int, float]) -> None:
        self._seen[key] = value
        self._seen.move_to_end(key)
        while len(self._seen) > self._cache_size:
            self._seen.popitem(last=False)
