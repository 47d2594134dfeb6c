"""Remember this controller's own writes: read them back before the watch does, and ignore their echoes.

Upstream keeps an EndpointSliceTracker of the generations it wrote.  Here two
things follow from a write:

* until the informer's cache shows it, :meth:`OwnWrites.view` lays the write
  over what the cache says (a create added, an update newer, a delete gone),
  so the next sync never works from a stale cache -- no duplicate creates, no
  conflicts.  The cache itself is left alone: it may be shared with other
  controllers, which must see the watch events as they come;
* the watch event that carries exactly our version is our own echo and is
  ignored (:meth:`is_echo`), while an edit or a delete by anyone else is news
  and the owner is synced to repair it.
"""

from __future__ import annotations

import time
from typing import Any

from kubesvc.client.informer import object_key

Obj = dict[str, Any]
PATIENCE = 30.0  # seconds; a write the cache has not shown by then is left to the cache (and resync)


def _rv(obj: Obj) -> str:
    return str((obj.get("metadata") or {}).get("resourceVersion") or "")


def _newer_or_same(a: str, b: str) -> bool:
    """resourceVersion ``a`` is at least ``b`` (numeric when both are; else only equality is known)."""
    if a.isdigit() and b.isdigit():
        return int(a) >= int(b)
    return a == b


class OwnWrites:
    """Writes per owner key (a Service or Endpoints key) not yet seen in the cache."""

    def __init__(self) -> None:
        self._versions: dict[str, str] = {}
        self._deleted: set[str] = set()
        # owner -> object key -> (result, None when deleted; when written)
        self._pending: dict[str, dict[str, tuple[Obj | None, float]]] = {}

    def wrote(self, owner: str, obj: Obj) -> None:
        """Record a create or update result."""
        key = object_key(obj)
        self._versions[key] = _rv(obj)
        self._deleted.discard(key)
        self._pending.setdefault(owner, {})[key] = (obj, time.monotonic())

    def deleted(self, owner: str, obj: Obj) -> None:
        key = object_key(obj)
        self._versions.pop(key, None)
        self._deleted.add(key)
        self._pending.setdefault(owner, {})[key] = (None, time.monotonic())

    def drop(self, owner: str, obj: Obj) -> None:
        """Stop overlaying an object (the API said it is not there)."""
        self._pending.get(owner, {}).pop(object_key(obj), None)

    def view(self, owner: str, cached: list[Obj]) -> list[Obj]:
        """``cached`` (one owner's objects) with our writes the cache has not caught up with laid over it."""
        pending = self._pending.get(owner)
        if not pending:
            return cached
        out = {object_key(o): o for o in cached}
        expired = time.monotonic() - PATIENCE
        for key, (mine, at) in list(pending.items()):
            have = out.get(key)
            if at < expired:
                del pending[key]
            elif mine is None:
                if have is None:
                    del pending[key]  # the cache has seen the delete
                else:
                    del out[key]
            elif have is not None and _newer_or_same(_rv(have), _rv(mine)):
                del pending[key]  # the cache has caught up (or moved past us)
            else:
                out[key] = mine
        if not pending:
            del self._pending[owner]
        return list(out.values())

    def forget(self, owner: str) -> None:
        self._pending.pop(owner, None)

    def is_echo(self, obj: Obj) -> bool:
        """True for the watch event of our own last write of this object (or an older one)."""
        mine = self._versions.get(object_key(obj))
        rv = _rv(obj)
        return bool(rv) and mine is not None and _newer_or_same(mine, rv)

    def is_delete_echo(self, obj: Obj) -> bool:
        """True for the watch event of our own delete; any other delete also ends our overlay of it."""
        key = object_key(obj)
        if key in self._deleted:
            self._deleted.discard(key)
            return True
        self._versions.pop(key, None)
        for pending in self._pending.values():  # few owners have writes in flight at any time
            pending.pop(key, None)
        return False
