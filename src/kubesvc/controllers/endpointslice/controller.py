"""The EndpointSlice controller: the shell around :mod:`.reconciler`.

Keys are Service keys (``namespace/name``).  Four informers feed them:

* Services -- any change syncs that Service;
* Pods -- a change syncs only the Services that select the pod, found by
  index (:mod:`.index`), and only when a field that endpoints carry changed;
* EndpointSlices managed by this controller -- an edit or delete by anyone
  else syncs the Service named by the slice's label, which repairs it; our
  own writes' echoes are ignored (:mod:`.ownwrites`);
* Nodes -- a new node or a zone change syncs the Services of its pods.

A sync reads only caches, asks the pure reconciler for a plan, and writes it.
Updates carry the resourceVersion they were computed from, so a stale cache
yields a conflict and a retry, never a lost write.  Services without a
selector (and ExternalName ones) are left alone: their slices are someone
else's.  Slices of a deleted Service go with it through their ownerReference
(the garbage collector), as upstream.
"""

from __future__ import annotations

import logging
from collections.abc import Hashable, Iterable
from typing import Any

from kubesvc.api.resources import Resource, by_plural
from kubesvc.client.controller import Controller, Requeue
from kubesvc.client.informer import IndexFunc, split_key
from kubesvc.client.rest import ApiClient, ApiError
from kubesvc.client.sharedinformers import SharedInformerFactory

from .index import (
    POD_INDEXERS,
    POD_NODE,
    SERVICE_INDEXERS,
    pods_for_service,
    services_for_pod,
    services_to_sync,
)
from .model import CONTROLLER_NAME, LABEL_MANAGED_BY, LABEL_SERVICE_NAME, LABEL_ZONE, service_selector
from .ownwrites import OwnWrites
from .reconciler import DEFAULT_MAX_ENDPOINTS_PER_SLICE, Plan, Reconciler
from .triggertime import TriggerTimeTracker

log = logging.getLogger(__name__)
Obj = dict[str, Any]
SLICE_SERVICE = "service"


def _res(group: str, version: str, plural: str) -> Resource:
    r = by_plural(group, version, plural)
    assert r is not None, plural
    return r


SERVICES = _res("", "v1", "services")
PODS = _res("", "v1", "pods")
NODES = _res("", "v1", "nodes")
SLICES = _res("discovery.k8s.io", "v1", "endpointslices")


def index_slice_service(s: Obj) -> list[str]:
    """``namespace/service`` from the service-name label: a Service's slices in one lookup."""
    name = ((s.get("metadata") or {}).get("labels") or {}).get(LABEL_SERVICE_NAME)
    return [f"{s['metadata'].get('namespace', '')}/{name}"] if name else []


SLICE_INDEXERS: dict[str, IndexFunc] = {SLICE_SERVICE: index_slice_service}


class EndpointSliceController(Controller):
    name = "endpointslice"

    def __init__(self, client: ApiClient, *, max_endpoints_per_slice: int = DEFAULT_MAX_ENDPOINTS_PER_SLICE,
                 workers: int = 4, resync_period: float | None = 300.0,
                 factory: SharedInformerFactory | None = None) -> None:
        super().__init__(workers=workers, resync_period=resync_period)
        self.factory = self.informer_factory(client, factory)
        self.client = client
        self.reconciler = Reconciler(max_endpoints_per_slice, CONTROLLER_NAME)
        self.triggers = TriggerTimeTracker()
        self.own = OwnWrites()
        self.services = self.factory.informer(SERVICES, indexers=SERVICE_INDEXERS)
        self.pods = self.factory.informer(PODS, indexers=POD_INDEXERS)
        self.nodes = self.factory.informer(NODES)
        self.slices = self.factory.informer(SLICES, label_selector=f"{LABEL_MANAGED_BY}={CONTROLLER_NAME}",
                                            indexers=SLICE_INDEXERS)
        self.informers += [self.services, self.pods, self.nodes, self.slices]
        self.services.add_handler(self._svc_event, lambda old, new: self._svc_event(new), self._svc_deleted)
        self.pods.add_handler(lambda p: self._pod_event(None, p), self._pod_event,
                              lambda p: self._pod_event(p, None))
        self.nodes.add_handler(self._node_added, self._node_updated, None)
        self.slices.add_handler(self._slice_changed, lambda old, new: self._slice_updated(old, new),
                                self._slice_deleted)
        self.slice_writes = 0  # creates + updates + deletes issued (for metrics and benchmarks)

    # ---------------------------------------------------------------- events

    def _svc_event(self, svc: Obj) -> None:
        m = svc.get("metadata") or {}
        self.enqueue(f"{m.get('namespace', '')}/{m.get('name', '')}")

    def _svc_deleted(self, svc: Obj) -> None:
        self.reconciler.forget((svc.get("metadata") or {}).get("uid", ""))
        self._svc_event(svc)

    def _pod_event(self, old: Obj | None, new: Obj | None) -> None:
        for key in services_to_sync(self.services.store, old, new):
            self.enqueue(key)

    def _node_added(self, node: Obj) -> None:
        self._sync_node_pods(node)

    def _node_updated(self, old: Obj, new: Obj) -> None:
        if _labels(old).get(LABEL_ZONE) != _labels(new).get(LABEL_ZONE):
            self._sync_node_pods(new)

    def _sync_node_pods(self, node: Obj) -> None:
        for pod in self.pods.store.by_index(POD_NODE, (node.get("metadata") or {}).get("name", "")):
            for key in services_for_pod(self.services.store, pod):
                self.enqueue(key)

    def _slice_changed(self, s: Obj) -> None:
        if not self.own.is_echo(s):
            for key in index_slice_service(s):
                self.enqueue(key)

    def _slice_updated(self, old: Obj, new: Obj) -> None:
        if _rv(old) == _rv(new) or self.own.is_echo(new):
            return
        for key in {*index_slice_service(old), *index_slice_service(new)}:
            self.enqueue(key)

    def _slice_deleted(self, s: Obj) -> None:
        if not self.own.is_delete_echo(s):
            for key in index_slice_service(s):
                self.enqueue(key)

    def resync_keys(self) -> Iterable[Hashable]:
        return self.services.store.keys()

    # ---------------------------------------------------------------- sync

    async def reconcile(self, key: Hashable) -> None:
        skey = str(key)
        svc = self.services.store.get(skey)
        if svc is None:
            self.triggers.forget(skey)
            self.own.forget(skey)
            return
        if (svc.get("spec") or {}).get("type") == "ExternalName" or service_selector(svc) is None:
            return
        pods = pods_for_service(self.pods.store, svc)
        existing = [s for s in self.own.view(skey, self.slices.store.by_index(SLICE_SERVICE, skey))
                    if not (s.get("metadata") or {}).get("deletionTimestamp")]
        trigger = self.triggers.compute(skey, svc, pods)
        plan = self.reconciler.reconcile(svc, pods, existing, self.nodes.store, trigger)
        ns, _ = split_key(skey)
        await self._apply(skey, ns or "", plan)
        if plan.errors:
            raise Requeue(5.0, "; ".join(plan.errors[:3]))

    async def _apply(self, owner: str, ns: str, plan: Plan) -> None:
        self.slice_writes += await apply_slice_plan(self.client, self.own, owner, ns, plan)


async def apply_slice_plan(client: ApiClient, own: OwnWrites, owner: str, ns: str, plan: Plan) -> int:
    """Write a plan, recording each result with ``own`` (see :mod:`.ownwrites`).  Returns writes made."""
    writes = 0
    for body in plan.create:
        try:
            created = await client.create(SLICES, body, ns)
        except ApiError as e:
            if e.reason == "Forbidden" and _terminating_namespace(e):
                return writes  # the namespace is going away; creates will keep failing, drop them
            raise
        writes += 1
        own.wrote(owner, created)
    for body in plan.update:
        try:
            own.wrote(owner, await client.replace(SLICES, body, ns))
        except ApiError as e:
            if e.code == 404:
                own.drop(owner, body)
            raise
        writes += 1
    for s in plan.delete:
        try:
            await client.delete(SLICES, s["metadata"]["name"], ns)
        except ApiError as e:
            if e.code != 404:
                raise
        writes += 1
        own.deleted(owner, s)
    return writes


def _terminating_namespace(e: ApiError) -> bool:
    causes = (e.details or {}).get("causes") or []
    return any(c.get("reason") == "NamespaceTerminating" for c in causes) or "terminat" in e.message


def _labels(obj: Obj) -> dict[str, str]:
    return (obj.get("metadata") or {}).get("labels") or {}


def _rv(obj: Obj) -> str:
    return str((obj.get("metadata") or {}).get("resourceVersion") or "")
