"""The garbage collector: ownerReferences, cascading deletion, orphaning.

Upstream's GC (pkg/controller/garbagecollector) keeps a graph of every object
and its owners and runs two queues; this one keeps the same facts in informer
caches -- one per kind, each indexed by owner UID -- plus a UID -> identity map,
and runs one queue of :class:`Item` s with two actions:

``delete`` (upstream's attemptToDeleteItem) -- look at one object:

* being deleted with the ``foregroundDeletion`` finalizer: once no dependent
  with ``blockOwnerDeletion`` is left, remove the finalizer (the apiserver
  then deletes it); otherwise nudge those dependents.
* otherwise classify its ownerReferences by asking whether each owner exists
  *with the same UID* (a cache hit, else a live GET; absent UIDs are
  remembered): *solid*, *dangling*, or *waiting* (owner being deleted in
  the foreground).  Any solid owner keeps the object, and references to
  dangling or waiting owners are removed from it.  No solid owner: delete it
  (foreground if it has dependents of its own while an owner waits, which
  first clears ``blockOwnerDeletion`` on those references to break cycles).

``orphan`` (attemptToOrphan) -- an owner being deleted with the ``orphan``
finalizer: strip references to it from every dependent, then remove the
finalizer.

Owner kinds the collector cannot resolve are treated as present: it never
deletes on a guess.  A cluster-scoped object naming a namespaced owner is left
alone, as upstream does.  Every write carries a UID or resourceVersion
precondition, so a stale cache can make the GC late but never wrong.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Hashable, Iterable, Iterator
from dataclasses import dataclass
from functools import partial
from typing import Any

from kubesvc.api.resources import RESOURCES, Resource
from kubesvc.client.controller import Controller
from kubesvc.client.informer import Informer, index_by_owner_uid
from kubesvc.client.rest import ApiClient, ApiError
from kubesvc.client.sharedinformers import SharedInformerFactory

log = logging.getLogger(__name__)

Obj = dict[str, Any]
OWNER_INDEX = "owner-uid"
ORPHAN = "orphan"
FOREGROUND = "foregroundDeletion"


@dataclass(frozen=True)
class Node:
    """One object's identity in the ownership graph."""

    resource: Resource
    namespace: str | None
    name: str
    uid: str

    def __str__(self) -> str:
        where = f"{self.namespace}/" if self.namespace else ""
        return f"{self.resource.qualified} {where}{self.name} ({self.uid})"


@dataclass(frozen=True)
class Item:
    action: str  # "delete" or "orphan"
    node: Node


def node_of(resource: Resource, obj: Obj) -> Node:
    m = obj.get("metadata") or {}
    return Node(resource, m.get("namespace") or None, m.get("name", ""), m.get("uid", ""))


def _refs(obj: Obj) -> list[Obj]:
    return (obj.get("metadata") or {}).get("ownerReferences") or []


def _finalizers(obj: Obj) -> list[str]:
    return (obj.get("metadata") or {}).get("finalizers") or []


def _deleting(obj: Obj) -> bool:
    return bool((obj.get("metadata") or {}).get("deletionTimestamp"))


class GarbageCollector(Controller):
    """``GarbageCollector(ApiClient.from_kubeconfig(path)).run()``."""

    name = "garbagecollector"

    def __init__(self, client: ApiClient, *, resources: Iterable[Resource] = RESOURCES, workers: int = 4,
                 resync_period: float | None = 300.0, absent_cache_size: int = 1000,
                 factory: SharedInformerFactory | None = None) -> None:
        super().__init__(workers=workers, resync_period=resync_period)
        self.factory = self.informer_factory(client, factory)
        self.client = client
        self.resources = [r for r in resources if {"list", "watch", "delete"} <= set(r.verbs)]
        self._uids: dict[str, Node] = {}
        self._absent: OrderedDict[str, None] = OrderedDict()
        self._absent_size = absent_cache_size
        self._by_resource: dict[str, Informer] = {}
        for res in self.resources:
            inf = self.factory.informer(res, indexers={OWNER_INDEX: index_by_owner_uid})
            inf.add_handler(partial(self._on_add, res), partial(self._on_update, res), partial(self._on_delete, res))
            self.informers.append(inf)
            self._by_resource[res.qualified] = inf

    # ---------------------------------------------------------------- events -> items

    def _on_add(self, res: Resource, obj: Obj) -> None:
        node = node_of(res, obj)
        self._uids[node.uid] = node
        if _refs(obj):
            self.enqueue(Item("delete", node))
        self._deletion_transitions(node, obj)

    def _on_update(self, res: Resource, old: Obj, new: Obj) -> None:
        node = node_of(res, new)
        self._uids[node.uid] = node
        old_uids = {r.get("uid") for r in _refs(old)}
        new_uids = {r.get("uid") for r in _refs(new)}
        # Look again when the references changed, or when an owner we could watch is not in
        # the caches (it may be absent).  Owners of kinds we cannot resolve never make us look.
        unseen = any(r.get("uid") not in self._uids and self._resolve(r.get("apiVersion", ""), r.get("kind", ""))
                     for r in _refs(new))
        if _refs(old) != _refs(new) or unseen:
            self.enqueue(Item("delete", node))
        for uid in old_uids - new_uids:  # an owner waiting on us may be free now
            owner = self._uids.get(uid or "")
            if owner is not None:
                self.enqueue(Item("delete", owner))
        self._deletion_transitions(node, new)

    def _on_delete(self, res: Resource, obj: Obj) -> None:
        node = node_of(res, obj)
        if self._uids.get(node.uid) == node:
            del self._uids[node.uid]
        self._mark_absent(node.uid)
        for dep in self._dependents(node.uid):
            self.enqueue(Item("delete", dep))
        for ref in _refs(obj):
            owner = self._uids.get(ref.get("uid", ""))
            if owner is not None:
                self.enqueue(Item("delete", owner))

    def _deletion_transitions(self, node: Node, obj: Obj) -> None:
        if not _deleting(obj):
            return
        if ORPHAN in _finalizers(obj):
            self.enqueue(Item("orphan", node))
        if FOREGROUND in _finalizers(obj):
            self.enqueue(Item("delete", node))
            for dep in self._dependents(node.uid):
                self.enqueue(Item("delete", dep))

    def resync_keys(self) -> Iterator[Hashable]:
        for inf in self.informers:
            for obj in inf.store.list():
                node = node_of(inf.resource, obj)
                if _refs(obj) or (_deleting(obj) and FOREGROUND in _finalizers(obj)):
                    yield Item("delete", node)
                if _deleting(obj) and ORPHAN in _finalizers(obj):
                    yield Item("orphan", node)

    # ---------------------------------------------------------------- graph reads

    def _dependent_objects(self, uid: str) -> list[tuple[Node, Obj]]:
        out = []
        for inf in self.informers:
            for obj in inf.store.by_index(OWNER_INDEX, uid):
                out.append((node_of(inf.resource, obj), obj))
        return out

    def _dependents(self, uid: str) -> list[Node]:
        return [n for n, _ in self._dependent_objects(uid)]

    def _mark_absent(self, uid: str) -> None:
        self._absent[uid] = None
        self._absent.move_to_end(uid)
        while len(self._absent) > self._absent_size:
            self._absent.popitem(last=False)

    def _resolve(self, api_version: str, kind: str) -> Resource | None:
        for r in (*self.resources, *RESOURCES):
            if r.api_version == api_version and r.kind == kind:
                return r
        return None

    async def _live(self, node: Node) -> Obj | None:
        """The object as the server has it now, or None if gone or replaced (other UID)."""
        try:
            obj = await self.client.get(node.resource, node.name, node.namespace)
        except ApiError as e:
            if e.code == 404:
                return None
            raise
        return obj if (obj.get("metadata") or {}).get("uid") == node.uid else None

    # ---------------------------------------------------------------- reconcile

    async def reconcile(self, key: Hashable) -> None:
        assert isinstance(key, Item)
        if key.action == "orphan":
            await self._orphan_dependents(key.node)
        else:
            await self._attempt_to_delete(key.node)

    async def _attempt_to_delete(self, node: Node) -> None:
        obj = await self._live(node)
        if obj is None:
            return
        if _deleting(obj):
            if FOREGROUND in _finalizers(obj):
                await self._process_deleting_dependents(node)
            return
        refs = _refs(obj)
        if not refs:
            return
        states: dict[str, list[Obj]] = {"solid": [], "dangling": [], "waiting": [], "invalid": []}
        for ref in refs:
            states[await self._owner_state(node, ref)].append(ref)
        if states["invalid"]:
            log.warning("%s: cluster-scoped object names a namespaced owner; leaving it", node)
            return
        if states["solid"]:
            gone = {r.get("uid", "") for r in states["dangling"] + states["waiting"]}
            if gone:
                await self._remove_owner_refs(node, gone)
            return
        if states["waiting"] and self._dependents(node.uid):
            await self._unblock_owner_refs(node, {r.get("uid", "") for r in states["waiting"]})
            policy = "Foreground"
        elif ORPHAN in _finalizers(obj):
            policy = "Orphan"
        elif FOREGROUND in _finalizers(obj):
            policy = "Foreground"
        else:
            policy = "Background"
        log.info("%s: all owners are gone; deleting (%s)", node, policy)
        await self._delete(node, policy)

    async def _owner_state(self, node: Node, ref: Obj) -> str:
        """solid, dangling, waiting (owner deleting in foreground) or invalid."""
        uid = ref.get("uid", "")
        if uid in self._absent:
            return "dangling"
        res = self._resolve(ref.get("apiVersion", ""), ref.get("kind", ""))
        if res is None:
            return "solid"  # a kind we cannot look up: never delete on a guess
        if res.namespaced and node.namespace is None:
            return "invalid"
        ns = node.namespace if res.namespaced else None
        inf = self._by_resource.get(res.qualified)
        owner = inf.store.get_by(ns, ref.get("name", "")) if inf else None
        if owner is None or owner["metadata"].get("uid") != uid:
            owner = await self._get_owner(res, ns, ref.get("name", ""))
        if owner is None or owner["metadata"].get("uid") != uid:
            self._mark_absent(uid)
            return "dangling"
        if _deleting(owner) and FOREGROUND in _finalizers(owner):
            return "waiting"
        return "solid"

    async def _get_owner(self, res: Resource, ns: str | None, name: str) -> Obj | None:
        try:
            return await self.client.get(res, name, ns)
        except ApiError as e:
            # Only "that object is not found" means absent; a 404 for the whole
            # resource type (not served) must not delete anything.
            if e.code == 404 and e.details.get("name") == name:
                return None
            raise

    async def _process_deleting_dependents(self, node: Node) -> None:
        blocking = [(n, o) for n, o in self._dependent_objects(node.uid)
                    if any(r.get("uid") == node.uid and r.get("blockOwnerDeletion") for r in _refs(o))]
        if not blocking:
            await self._remove_finalizer(node, FOREGROUND)
            return
        for dep, obj in blocking:
            if not (_deleting(obj) and FOREGROUND in _finalizers(obj)):
                self.enqueue(Item("delete", dep))

    async def _orphan_dependents(self, node: Node) -> None:
        obj = await self._live(node)
        if obj is None or not _deleting(obj) or ORPHAN not in _finalizers(obj):
            return
        for dep in self._dependents(node.uid):
            await self._remove_owner_refs(dep, {node.uid})
        await self._remove_finalizer(node, ORPHAN)

    # ---------------------------------------------------------------- writes

    async def _delete(self, node: Node, policy: str) -> None:
        try:
            await self.client.delete(node.resource, node.name, node.namespace, propagation_policy=policy,
                                     preconditions={"uid": node.uid})
        except ApiError as e:
            if e.code not in (404, 409):  # gone already, or replaced by a namesake
                raise

    async def _rewrite_refs(self, node: Node, change: Any) -> None:
        """Merge-patch the ownerReferences list to ``change(refs)``, guarded by UID and resourceVersion."""
        for _ in range(3):
            obj = await self._live(node)
            if obj is None:
                return
            refs = _refs(obj)
            new = change(refs)
            if new == refs:
                return
            patch = {"metadata": {"ownerReferences": new or None, "uid": node.uid,
                                  "resourceVersion": obj["metadata"].get("resourceVersion")}}
            try:
                await self.client.patch(node.resource, node.name, patch, node.namespace, patch_type="merge")
                return
            except ApiError as e:
                if e.code == 404:
                    return
                if e.code != 409:
                    raise
        raise RuntimeError(f"{node}: ownerReferences kept changing under us")

    async def _remove_owner_refs(self, node: Node, uids: set[str]) -> None:
        await self._rewrite_refs(node, lambda refs: [r for r in refs if r.get("uid") not in uids])

    async def _unblock_owner_refs(self, node: Node, uids: set[str]) -> None:
        def unblock(refs: list[Obj]) -> list[Obj]:
            return [{**r, "blockOwnerDeletion": False} if r.get("uid") in uids and r.get("blockOwnerDeletion")
                    else r for r in refs]
        await self._rewrite_refs(node, unblock)

    async def _remove_finalizer(self, node: Node, finalizer: str) -> None:
        for _ in range(3):
            obj = await self._live(node)
            if obj is None or finalizer not in _finalizers(obj):
                return
            rest = [f for f in _finalizers(obj) if f != finalizer]
            patch = {"metadata": {"finalizers": rest or None,
                                  "resourceVersion": obj["metadata"].get("resourceVersion")}}
            try:
                await self.client.patch(node.resource, node.name, patch, node.namespace, patch_type="merge")
                log.info("%s: removed finalizer %s", node, finalizer)
                return
            except ApiError as e:
                if e.code == 404:
                    return
                if e.code != 409:
                    raise
        raise RuntimeError(f"{node}: finalizers kept changing under us")
