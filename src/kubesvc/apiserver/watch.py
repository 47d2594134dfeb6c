"""Watch: a chunked stream of ``{"type": ..., "object": ...}`` lines.

ResourceVersion semantics follow upstream:

* unset or ``"0"``: the current objects first, as synthetic ADDED events, then
  every change after the revision that list reflected (the official Python
  client relies on this: it opens watches with no resourceVersion);
* ``"N"``: every change after revision N, or an ERROR event carrying a 410
  Expired Status when N is older than the kept history.

Selector filtering turns a MODIFIED event into ADDED or DELETED when the
object starts or stops matching, as upstream's watch cache does.  Events reach
the wire as the stored bytes of the object, encoded once at write time; only
Table watchers (``kubectl get -w``) re-render rows.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import orjson
from aiohttp import web

from kubesvc.api import errors
from kubesvc.api.resources import Resource
from kubesvc.storage.contract import Predicate, StorageError, Store, Stored, TooOldRevision

BOOKMARK_INTERVAL = 60.0
DEFAULT_TIMEOUT = 1800.0

RowRenderer = Callable[[Resource, Stored], dict[str, Any]]


@dataclass(frozen=True)
class WatchRequest:
    resource: Resource
    prefix: str
    resource_version: str | None
    predicate: Predicate | None
    timeout: float
    bookmarks: bool
    send_initial: bool  # synthetic ADDED for current state first


def filter_event(etype: str, cur: Stored, prev: Stored | None, pred: Predicate | None) -> str | None:
    """The event type a filtered watcher sees, or None to skip (pure)."""
    if pred is None:
        return etype
    if etype == "ADDED":
        return "ADDED" if pred(cur.value) else None
    if etype == "DELETED":
        return "DELETED" if prev is None or pred(prev.value) else None
    now_m = pred(cur.value)
    was_m = prev is not None and pred(prev.value)
    if now_m and was_m:
        return "MODIFIED"
    if now_m:
        return "ADDED"
    if was_m:
        return "DELETED"
    return None


def _line(etype: str, data: bytes) -> bytes:
    return b'{"type":"' + etype.encode() + b'","object":' + data + b"}\n"


def _status_line(err: errors.StatusError) -> bytes:
    return _line("ERROR", orjson.dumps(err.status()))


async def serve_watch(
    request: web.Request,
    store: Store,
    wr: WatchRequest,
    list_initial: Callable[[], Awaitable[tuple[list[Stored], int]]],
    render: RowRenderer | None,
    content_type: str,
) -> web.StreamResponse:
    """Run one watch until timeout, client disconnect, or the store ends it."""
    initial: list[Stored] = []
    if wr.send_initial:
        initial, after = await list_initial()
    else:
        try:
            after = int(wr.resource_version or 0)
        except ValueError:
            raise errors.bad_request(f'invalid resourceVersion "{wr.resource_version}"') from None
    try:
        watch = store.watch(wr.prefix, after_revision=after)
    except TooOldRevision as e:
        watch = None
        too_old: errors.StatusError | None = errors.gone(f"too old resource version: {e.requested} ({e.oldest})")
    else:
        too_old = None

    resp = web.StreamResponse(status=200, headers={"Content-Type": content_type, "Cache-Control": "no-cache"})
    resp.enable_chunked_encoding()
    await resp.prepare(request)

    def encode(etype: str, stored: Stored) -> bytes:
        if render is not None:
            return _line(etype, orjson.dumps(render(wr.resource, stored)))
        return _line(etype, stored.data)

    try:
        if too_old is not None:
            await resp.write(_status_line(too_old))
            return resp
        assert watch is not None
        for st in initial:
            if wr.predicate is None or wr.predicate(st.value):
                await resp.write(encode("ADDED", st))
        await _pump(resp, watch, wr, encode, after)
    except (ConnectionResetError, asyncio.CancelledError):
        pass
    finally:
        if watch is not None:
            watch.close()
    try:
        await resp.write_eof()
    except (ConnectionResetError, RuntimeError):
        pass
    return resp


async def _pump(
    resp: web.StreamResponse, watch: Any, wr: WatchRequest, encode: Callable[[str, Stored], bytes], after: int
) -> None:
    """Events as they come, every event queued meanwhile in one write; bookmarks when idle."""
    deadline = time.monotonic() + wr.timeout
    last_rv = after
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return
        events = watch.drain()
        if events:
            lines = []
            for ev in events:
                last_rv = ev.revision
                etype = filter_event(ev.type, ev.current, ev.previous, wr.predicate)
                if etype is not None:
                    lines.append(encode(etype, ev.current))
            if lines:
                await resp.write(b"".join(lines))
            continue
        if watch.closed:
            err = getattr(watch, "error", None)
            if isinstance(err, StorageError):
                await resp.write(_status_line(errors.gone(f"watch closed: {err}")))
            return
        wait = min(remaining, BOOKMARK_INTERVAL) if wr.bookmarks else remaining
        if not await watch.wait(wait) and wr.bookmarks and time.monotonic() < deadline:
            await resp.write(_bookmark(wr.resource, last_rv))


def _bookmark(res: Resource, rv: int) -> bytes:
    obj = {"kind": res.kind, "apiVersion": res.api_version, "metadata": {"resourceVersion": str(rv)}}
    return _line("BOOKMARK", orjson.dumps(obj))
