"""List+watch caches (informers) with client-go's reflector semantics.

A component never polls the API: it LISTs a resource once (paged), then
WATCHes from the list's resourceVersion and keeps an in-memory :class:`Store`
current.  The loop below is client-go's reflector in miniature:

* a watch that simply ends is resumed from the last resourceVersion seen
  (bookmarks advance it too), so nothing is missed and nothing is relisted;
* ``410 Gone`` -- as an HTTP status or as an ``ERROR`` event -- means the
  server no longer has that history: relist and diff the result against the
  store, delivering adds, updates and deletes for what changed meanwhile;
* any other failure backs off (jittered, capped) and retries.

Handlers run in event order on the informer's task; they should be quick (a
controller's handler only enqueues a key).  A periodic resync re-delivers
every cached object as an update so level-triggered consumers repair drift.

The objects handlers receive and the store returns are the cached ones, often
shared by several controllers (:mod:`kubesvc.client.sharedinformers`): treat
them as read-only and copy before changing anything.
"""

from __future__ import annotations

import asyncio
import builtins
import inspect
import logging
import random
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import aiohttp

from kubesvc.api.resources import Resource

from .rest import ApiClient, ApiError

log = logging.getLogger(__name__)

Obj = dict[str, Any]
IndexFunc = Callable[[Obj], Iterable[str]]
Handler = Callable[..., Any]


def object_key(obj: Obj) -> str:
    """``namespace/name``, or ``name`` when cluster-scoped: client-go's MetaNamespaceKeyFunc."""
    m = obj.get("metadata") or {}
    ns = m.get("namespace")
    return f"{ns}/{m.get('name', '')}" if ns else str(m.get("name", ""))


def split_key(key: str) -> tuple[str | None, str]:
    ns, sep, name = key.rpartition("/")
    return (ns if sep else None), name


def index_by_namespace(obj: Obj) -> list[str]:
    ns = (obj.get("metadata") or {}).get("namespace")
    return [ns] if ns else []


def index_by_owner_uid(obj: Obj) -> list[str]:
    refs = (obj.get("metadata") or {}).get("ownerReferences") or []
    return [r["uid"] for r in refs if r.get("uid")]


def index_by_label(label: str) -> IndexFunc:
    """Index objects by the value of one label (objects without it are not indexed)."""
    def index(obj: Obj) -> list[str]:
        labels = (obj.get("metadata") or {}).get("labels") or {}
        return [labels[label]] if label in labels else []
    return index


DEFAULT_INDEXERS: dict[str, IndexFunc] = {"namespace": index_by_namespace}


class Store:
    """Objects by ``namespace/name`` plus secondary indexes kept in step on every write."""

    def __init__(self, indexers: dict[str, IndexFunc] | None = None) -> None:
        self._items: dict[str, Obj] = {}
        self._indexers: dict[str, IndexFunc] = dict(indexers or {})
        self._indices: dict[str, dict[str, set[str]]] = {n: {} for n in self._indexers}

    def add_indexer(self, name: str, fn: IndexFunc) -> None:
        """Add an index (built over what the store already holds); adding the same one again is a no-op.

        A different function under a name already taken raises ``ValueError``: users sharing a store
        must agree on what an index means.
        """
        have = self._indexers.get(name)
        if have is not None:
            if have is fn:
                return
            raise ValueError(f"indexer conflict: {name!r} is already indexed by {have!r}, not {fn!r}")
        self._indexers[name] = fn
        self._indices[name] = {}
        for key, obj in self._items.items():
            self._index(name, key, obj)

    def get(self, key: str) -> Obj | None:
        return self._items.get(key)

    def get_by(self, namespace: str | None, name: str) -> Obj | None:
        return self._items.get(f"{namespace}/{name}" if namespace else name)

    def list(self) -> builtins.list[Obj]:
        return list(self._items.values())

    def keys(self) -> builtins.list[str]:
        return list(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def __contains__(self, key: object) -> bool:
        return key in self._items

    def by_index(self, index: str, value: str) -> builtins.list[Obj]:
        return [self._items[k] for k in sorted(self._indices[index].get(value, ()))]

    def index_keys(self, index: str, value: str) -> builtins.list[str]:
        return sorted(self._indices[index].get(value, ()))

    def put(self, obj: Obj) -> Obj | None:
        """Insert or replace; returns the previous object."""
        key = object_key(obj)
        old = self._items.get(key)
        if old is not None:
            self._unindex(key, old)
        self._items[key] = obj
        for name in self._indexers:
            self._index(name, key, obj)
        return old

    def remove(self, key: str) -> Obj | None:
        old = self._items.pop(key, None)
        if old is not None:
            self._unindex(key, old)
        return old

    def _index(self, name: str, key: str, obj: Obj) -> None:
        for v in self._indexers[name](obj):
            self._indices[name].setdefault(v, set()).add(key)

    def _unindex(self, key: str, obj: Obj) -> None:
        for name, fn in self._indexers.items():
            idx = self._indices[name]
            for v in fn(obj):
                keys = idx.get(v)
                if keys is not None:
                    keys.discard(key)
                    if not keys:
                        del idx[v]


@dataclass
class _Handlers:
    on_add: Handler | None = None
    on_update: Handler | None = None
    on_delete: Handler | None = None


def _freeze(obj: Obj) -> Obj:
    from .sharedinformers import freeze
    return freeze(obj)  # type: ignore[no-any-return]


class _Relist(Exception):
    """The watch's history is gone (410): list again."""


class Informer:
    """One resource's list+watch cache.  ``start()`` it, ``await wait_synced()``, read ``store``."""

    def __init__(self, client: ApiClient, resource: Resource, *, namespace: str | None = None,
                 label_selector: str | None = None, field_selector: str | None = None,
                 resync_period: float | None = None, page_size: int = 500,
                 indexers: dict[str, IndexFunc] | None = None,
                 watch_timeout: tuple[int, int] = (300, 600), max_backoff: float = 30.0,
                 freeze: bool = False, transform: Callable[[Obj], Obj] | None = None) -> None:
        self.client = client
        self.resource = resource
        self.namespace = namespace
        self.label_selector = label_selector
        self.field_selector = field_selector
        self.resync_period = resync_period
        self.page_size = page_size
        self.watch_timeout = watch_timeout
        self.max_backoff = max_backoff
        self.freeze = freeze  # store deep-frozen objects (a debug mode: see sharedinformers)
        # client-go's SetTransform: what is cached and handed to handlers is transform(obj), which
        # must keep metadata.namespace and .name (the store's key); a slim transform saves memory
        self.transform = transform
        self.store = Store({**DEFAULT_INDEXERS, **(indexers or {})})
        self.last_resource_version = ""
        self._handlers: list[_Handlers] = []
        self._synced = asyncio.Event()
        self._tasks: list[asyncio.Future[Any]] = []
        self.relists = 0  # how many times the cache was rebuilt from a LIST (for tests and metrics)

    def add_handler(self, on_add: Handler | None = None, on_update: Handler | None = None,
                    on_delete: Handler | None = None) -> None:
        """Handlers may be plain functions or coroutines; each gets the cached objects.

        A handler added after sync first sees an add for every cached object, as client-go does.
        """
        h = _Handlers(on_add, on_update, on_delete)
        self._handlers.append(h)
        if self.has_synced and on_add:
            for obj in self.store.list():
                result = on_add(obj)
                if inspect.isawaitable(result):
                    self._tasks.append(asyncio.ensure_future(result))

    @property
    def has_synced(self) -> bool:
        return self._synced.is_set()

    async def wait_synced(self, timeout: float | None = None) -> None:
        await asyncio.wait_for(self._synced.wait(), timeout)

    def start(self) -> None:
        if self._tasks:
            return
        name = f"informer-{self.resource.qualified}"
        self._tasks.append(asyncio.create_task(self.run(), name=name))
        if self.resync_period:
            self._tasks.append(asyncio.create_task(self._resync_loop(), name=name + "-resync"))

    async def stop(self) -> None:
        tasks, self._tasks = self._tasks, []
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    # ---------------------------------------------------------------- reflector

    async def run(self) -> None:
        """List, then watch forever; see the module docstring for the retry rules."""
        failures = 0
        need_list = True
        while True:
            try:
                if need_list:
                    await self._list_and_replace()
                    need_list = False
                await self._watch_once()
                failures = 0
            except _Relist:
                log.info("%s: watch history expired, relisting", self.resource.qualified)
                need_list = True
            except asyncio.CancelledError:
                raise
            except (ApiError, aiohttp.ClientError, OSError, TimeoutError, ValueError) as e:
                if isinstance(e, ApiError) and e.code == 410:
                    need_list = True
                    continue
                failures += 1
                delay = min(self.max_backoff, 0.1 * 2 ** min(failures, 10)) * random.uniform(0.8, 1.2)
                log.warning("%s: list/watch failed (%s); retrying in %.1fs", self.resource.qualified, e, delay)
                await asyncio.sleep(delay)

    async def _list_and_replace(self) -> None:
        page = await self.client.list_all(
            self.resource, self.namespace, page_size=self.page_size,
            label_selector=self.label_selector, field_selector=self.field_selector)
        items = page.get("items") or []
        self.relists += 1
        await self._replace(items)
        self.last_resource_version = (page.get("metadata") or {}).get("resourceVersion") or ""
        self._synced.set()

    async def _replace(self, items: list[Obj]) -> None:
        """Swap the store for a fresh LIST, delivering the difference as events."""
        seen = set()
        for obj in items:
            obj.setdefault("kind", self.resource.kind)
            obj.setdefault("apiVersion", self.resource.api_version)
            seen.add(object_key(obj))
            if self.transform is not None:
                obj = self.transform(obj)
            if self.freeze:
                obj = _freeze(obj)
            old = self.store.put(obj)
            if old is not None:
                await self._dispatch("on_update", old, obj)
            else:
                await self._dispatch("on_add", obj)
        for key in [k for k in self.store.keys() if k not in seen]:
            old = self.store.remove(key)
            if old is not None:
                await self._dispatch("on_delete", old)

    async def _watch_once(self) -> None:
        timeout = random.randint(*self.watch_timeout)
        async for etype, obj in self.client.watch(
            self.resource, self.namespace, resource_version=self.last_resource_version,
            label_selector=self.label_selector, field_selector=self.field_selector,
            timeout_seconds=timeout, allow_bookmarks=True,
        ):
            if etype == "ERROR":
                if obj.get("code") == 410:
                    raise _Relist()
                raise ApiError(obj)
            await self._apply(etype, obj)

    async def _apply(self, etype: str, obj: Obj) -> None:
        rv = (obj.get("metadata") or {}).get("resourceVersion")
        if etype == "BOOKMARK":
            if rv:
                self.last_resource_version = rv
            return
        if self.transform is not None and etype in ("ADDED", "MODIFIED", "DELETED"):
            obj = self.transform(obj)
        if etype in ("ADDED", "MODIFIED"):
            if self.freeze:
                obj = _freeze(obj)
            old = self.store.put(obj)
            if old is None:
                await self._dispatch("on_add", obj)
            else:
                await self._dispatch("on_update", old, obj)
        elif etype == "DELETED":
            if self.freeze:
                obj = _freeze(obj)
            self.store.remove(object_key(obj))
            await self._dispatch("on_delete", obj)
        else:
            log.warning("%s: unknown watch event type %r", self.resource.qualified, etype)
            return
        if rv:
            self.last_resource_version = rv

    async def _dispatch(self, which: str, *args: Obj) -> None:
        for h in self._handlers:
            fn = getattr(h, which)
            if fn is None:
                continue
            try:
                result = fn(*args)
                if inspect.isawaitable(result):
                    await result
            except Exception:
                log.exception("%s: %s handler failed", self.resource.qualified, which)

    async def _resync_loop(self) -> None:
        assert self.resync_period
        await self._synced.wait()
        while True:
            await asyncio.sleep(self.resync_period)
            await self.resync()

    async def resync(self) -> None:
        """Re-deliver every cached object as an update (old is new), like client-go's resync."""
        for obj in self.store.list():
            await self._dispatch("on_update", obj, obj)

