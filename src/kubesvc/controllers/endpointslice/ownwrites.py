"""Remember this controller's own writes, so their watch echoes do not wake it again.

Upstream keeps an EndpointSliceTracker of the generations it wrote.  Here a
write's result goes straight into the informer's store (so the next sync sees
it even before the watch delivers it: no duplicate creates from a stale cache)
and its resourceVersion is remembered; the watch event that carries exactly
that version is our own echo and is ignored.  Anything else -- an edit or a
delete by someone else -- is news, and the owner is synced to repair it.
"""

from __future__ import annotations

from typing import Any

from kubesvc.client.informer import Store, object_key

Obj = dict[str, Any]


class OwnWrites:
    def __init__(self) -> None:
        self._versions: dict[str, str] = {}
        self._deleted: set[str] = set()

    def wrote(self, store: Store, obj: Obj) -> None:
        """Record a create or update result and put it in the cache."""
        key = object_key(obj)
        self._versions[key] = str((obj.get("metadata") or {}).get("resourceVersion") or "")
        self._deleted.discard(key)
        store.put(obj)

    def deleted(self, store: Store, obj: Obj) -> None:
        key = object_key(obj)
        self._versions.pop(key, None)
        self._deleted.add(key)
        store.remove(key)

    def is_echo(self, obj: Obj) -> bool:
        """True for the watch event of our own last write of this object."""
        key = object_key(obj)
        rv = str((obj.get("metadata") or {}).get("resourceVersion") or "")
        mine = self._versions.get(key)
        if not rv or mine is None:
            return False
        if rv.isdigit() and mine.isdigit():
            return int(rv) <= int(mine)  # an older version than ours is stale news, ours supersedes it
        return rv == mine

    def is_delete_echo(self, obj: Obj) -> bool:
        key = object_key(obj)
        if key in self._deleted:
            self._deleted.discard(key)
            return True
        return False
