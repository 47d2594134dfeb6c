"""One informer per watched thing, shared by every controller in a process (client-go's SharedInformerFactory).

Each controller used to build its own informers, so ``kubesvc up`` ran eight
pod watches, each decoding every pod event and keeping its own copy of every
pod.  A :class:`SharedInformerFactory` hands out one :class:`Informer` per
``(resource, namespace, label selector, field selector)``: one watch, one
decode, one cache; every user adds its handlers and indexers to it.

* ``factory.informer(resource, ..., indexers={...})`` returns the shared
  informer, creating it on first use.  Indexers accumulate: a later user's
  indexers are added to the existing store (and index what it already holds).
  One index name means one function; registering a different function under a
  name already taken is an error (as client-go's indexer conflict is).
* Handlers from several users run in the order they were added, each on every
  event; one handler raising does not keep the others from running.  A
  handler added after the informer synced first sees an add for every cached
  object.
* ``start()`` starts every informer made so far (starting one again is a
  no-op, so controllers may start the informers they use, too);
  ``wait_synced()`` waits for all of them; ``stop()`` stops them.  Whoever
  made the factory owns it and stops it; a controller given a factory leaves
  its informers running when it stops.

**Objects delivered to handlers and held in the stores are shared and
read-only.**  Never change one in place: copy what you mean to send
(``copy.deepcopy(obj)``, or build a new dict) and write the copy through the
API; the cache changes when the watch says so.  ``freeze=True`` (or the
environment variable ``KUBESVC_INFORMER_FREEZE=1``, which the unit tests set)
stores deep-frozen copies instead, so that any in-place change raises
:class:`FrozenObjectError` at the line that makes it.  Frozen objects are
``dict``/``list`` subclasses: reading, ``orjson.dumps``, ``dict(obj)``,
``copy.copy`` and ``copy.deepcopy`` (both give plain, mutable containers)
work as before.
"""

from __future__ import annotations

import asyncio
import os
from typing import Any

from kubesvc.api.resources import Resource

from .informer import IndexFunc, Informer
from .rest import ApiClient

FREEZE_ENV = "KUBESVC_INFORMER_FREEZE"


def freeze_default() -> bool:
    return os.environ.get(FREEZE_ENV, "").lower() in ("1", "true", "yes")


class FrozenObjectError(TypeError):
    """Something tried to change an object out of a shared informer cache."""


def _refuse(*_a: Any, **_kw: Any) -> Any:
    raise FrozenObjectError("informer caches are shared and read-only: copy the object before changing it")


class FrozenDict(dict[str, Any]):
    """A dict that refuses changes; copies of it are plain dicts."""

    __slots__ = ()
    __setitem__ = __delitem__ = clear = popitem = update = __ior__ = _refuse

    def setdefault(self, key: str, default: Any = None) -> Any:
        if key not in self:
            _refuse()
        return self[key]

    def pop(self, key: str, *default: Any) -> Any:
        if key in self:
            _refuse()
        if default:
            return default[0]
        raise KeyError(key)

    def __copy__(self) -> dict[str, Any]:
        return dict(self)

    def __deepcopy__(self, memo: dict[int, Any]) -> dict[str, Any]:
        return thaw(self)

    def __reduce__(self) -> Any:
        return (dict, (dict(self),))


class FrozenList(list[Any]):
    """A list that refuses changes; copies of it are plain lists."""

    __slots__ = ()
    __setitem__ = __delitem__ = append = extend = insert = pop = remove = clear = _refuse
    sort = reverse = __iadd__ = __imul__ = _refuse

    def __copy__(self) -> list[Any]:
        return list(self)

    def __deepcopy__(self, memo: dict[int, Any]) -> list[Any]:
        return thaw(self)

    def __reduce__(self) -> Any:
        return (list, (list(self),))


def freeze(obj: Any) -> Any:
    """A deep-frozen copy of a JSON-shaped value."""
    if isinstance(obj, dict):
        return FrozenDict({k: freeze(v) for k, v in obj.items()})
    if isinstance(obj, list):
        return FrozenList(freeze(v) for v in obj)
    return obj


def thaw(obj: Any) -> Any:
    """A plain, mutable deep copy of a (possibly frozen) JSON-shaped value."""
    if isinstance(obj, dict):
        return {k: thaw(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [thaw(v) for v in obj]
    return obj


InformerKey = tuple[str, str, str, str | None, str | None, str | None]


class SharedInformerFactory:
    """Shared informers for one client; see the module docstring."""

    def __init__(self, client: ApiClient, *, freeze: bool | None = None, page_size: int = 500) -> None:
        self.client = client
        self.freeze = freeze_default() if freeze is None else freeze
        self.page_size = page_size
        self._informers: dict[InformerKey, Informer] = {}

    def informer(self, resource: Resource, *, namespace: str | None = None, label_selector: str | None = None,
                 field_selector: str | None = None, indexers: dict[str, IndexFunc] | None = None) -> Informer:
        """The shared informer for this resource and selection, with ``indexers`` added to it."""
        key = (resource.group, resource.version, resource.plural, namespace or None,
               label_selector or None, field_selector or None)
        inf = self._informers.get(key)
        if inf is None:
            inf = Informer(self.client, resource, namespace=namespace, label_selector=label_selector,
                           field_selector=field_selector, page_size=self.page_size, freeze=self.freeze)
            self._informers[key] = inf
        for name, fn in (indexers or {}).items():
            inf.store.add_indexer(name, fn)
        return inf

    @property
    def informers(self) -> list[Informer]:
        return list(self._informers.values())

    def start(self) -> None:
        """Start every informer made so far (those already running are left alone)."""
        for inf in self._informers.values():
            inf.start()

    @property
    def has_synced(self) -> bool:
        return all(inf.has_synced for inf in self._informers.values())

    async def wait_synced(self, timeout: float | None = None) -> None:
        await asyncio.wait_for(asyncio.gather(*(inf.wait_synced() for inf in self._informers.values())), timeout)

    async def stop(self) -> None:
        await asyncio.gather(*(inf.stop() for inf in self._informers.values()), return_exceptions=True)


def own_or_shared(client: ApiClient, factory: SharedInformerFactory | None) -> tuple[SharedInformerFactory, bool]:
    """``(factory, owned)``: the one given (owned by the caller), or a new private one."""
    if factory is not None:
        return factory, False
    return SharedInformerFactory(client), True


__all__ = ["FREEZE_ENV", "FrozenDict", "FrozenList", "FrozenObjectError", "SharedInformerFactory",
           "freeze", "own_or_shared", "thaw"]
