"""The EndpointSlice controller: the shell around :mod:`.reconciler`.

Keys are Service keys (``namespace/name``).  Four informers feed them:

* Services -- any change syncs that Service;
* Pods -- a change syncs only the Services that select the pod, found by
  index (:mod:`.index`), and only when a field that endpoints carry changed;
* EndpointSlices managed by this controller -- an edit or delete by anyone
  else syncs the Service named by the slice's label, which repairs it; our
  own writes' echoes are ignored (:mod:`.ownwrites`);
* Nodes -- a new node or a zone change syncs the Services of its pods; any
  change to the zones' share of Ready CPU recomputes the topology cache and
  syncs the Services whose topology-aware hints it upsets (or could now allow).

A sync reads only caches, asks the pure reconciler for a plan, and writes it.
The plan's Events go on the Service (``TopologyAwareHintsEnabled`` /
``TopologyAwareHintsDisabled``), as does ``FailedToUpdateEndpointSlices``
when the writes fail; its figures feed upstream's metrics (:mod:`.metrics`).
Updates carry the resourceVersion they were computed from, so a stale cache
yields a conflict and a retry, never a lost write.  Services without a
selector (and ExternalName ones) are left alone: their slices are someone
else's.  Slices of a deleted Service go with it through their ownerReference
(the garbage collector), as upstream.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Hashable, Iterable
from typing import Any

from kubesvc.api.resources import Resource, by_plural
from kubesvc.client.controller import Controller, Requeue
from kubesvc.client.events import WARNING, EventRecorder
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
from .metrics import EndpointSliceMetrics
from .model import (
    CONTROLLER_NAME,
    LABEL_MANAGED_BY,
    LABEL_SERVICE_NAME,
    LABEL_ZONE,
    hints_enabled,
    service_selector,
)
from .ownwrites import OwnWrites
from .reconciler import DEFAULT_MAX_ENDPOINTS_PER_SLICE, Plan, Reconciler
from .topologycache import TopologyCache
from .triggertime import TriggerTimeTracker
from .zoneallocation import cpu_millis, node_ready

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
EVENT_COMPONENT = "endpoint-slice-controller"  # upstream's event source


def index_slice_service(s: Obj) -> list[str]:
    """``namespace/service`` from the service-name label: a Service's slices in one lookup."""
    name = ((s.get("metadata") or {}).get("labels") or {}).get(LABEL_SERVICE_NAME)
    return [f"{s['metadata'].get('namespace', '')}/{name}"] if name else []


SLICE_INDEXERS: dict[str, IndexFunc] = {SLICE_SERVICE: index_slice_service}


class EndpointSliceController(Controller):
    name = "endpointslice"

    def __init__(self, client: ApiClient, *, max_endpoints_per_slice: int = DEFAULT_MAX_ENDPOINTS_PER_SLICE,
                 workers: int = 4, resync_period: float | None = 300.0,
                 factory: SharedInformerFactory | None = None, recorder: EventRecorder | None = None,
                 metrics: EndpointSliceMetrics | None = None) -> None:
        super().__init__(workers=workers, resync_period=resync_period)
        self.factory = self.informer_factory(client, factory)
        self.client = client
        self.recorder = recorder or EventRecorder(client, EVENT_COMPONENT)
        self.metrics = metrics or EndpointSliceMetrics(max_endpoints_per_slice)
        self.topology = TopologyCache()
        self._topology_dirty = True
        self._topology_scheduled = False
        self.reconciler = Reconciler(max_endpoints_per_slice, CONTROLLER_NAME, topology=self.topology)
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
        self.nodes.add_handler(self._node_added, self._node_updated, lambda _: self._nodes_changed())
        self.slices.add_handler(self._slice_changed, lambda old, new: self._slice_updated(old, new),
                                self._slice_deleted)
        self.slice_writes = 0  # creates + updates + deletes issued (for metrics and benchmarks)

    async def stop(self) -> None:
        await super().stop()
        await self.recorder.close()

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
        self._nodes_changed()

    def _node_updated(self, old: Obj, new: Obj) -> None:
        if _labels(old).get(LABEL_ZONE) != _labels(new).get(LABEL_ZONE):
            self._sync_node_pods(new)
        if _topology_facts(old) != _topology_facts(new):
            self._nodes_changed()

    def _nodes_changed(self) -> None:
        """Recompute the zone picture once per burst of node events (a start lists every node)."""
        self._topology_dirty = True
        if self._topology_scheduled:
            return
        try:
            asyncio.get_running_loop().call_soon(self._check_topology)
            self._topology_scheduled = True
        except RuntimeError:
            pass  # no loop yet: the first sync computes it

    def _check_topology(self) -> None:
        """Upstream's checkNodeTopologyDistribution, plus: when the zones change, every Auto Service looks again.

        Upstream only requeues Services whose current hints overload a zone, so
        one refused hints for want of a second zone waits for its next sync;
        here a change of the zone ratios wakes it at once.
        """
        self._topology_scheduled = False
        if not self._topology_dirty:
            return
        self._topology_dirty = False
        changed = self.topology.set_nodes(self.nodes.store.list())
        keys = set(self.topology.overloaded_services())
        if changed:
            keys.update(self._auto_services())
        for key in sorted(keys):
            self.enqueue(key)

    def _auto_services(self) -> Iterable[str]:
        for svc in self.services.store.list():
            if hints_enabled(svc):
                m = svc.get("metadata") or {}
                yield f"{m.get('namespace', '')}/{m.get('name', '')}"

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
        try:
            await self._sync(str(key))
        except Requeue:
            self.metrics.synced("error")
            raise
        except asyncio.CancelledError:
            raise
        except Exception:
            self.metrics.synced("error")
            raise
        self.metrics.synced("success")

    async def _sync(self, skey: str) -> None:
        if self._topology_dirty:
            self._check_topology()
        svc = self.services.store.get(skey)
        if svc is None:
            self.triggers.forget(skey)
            self.own.forget(skey)
            self.topology.forget(skey)
            self.metrics.forget(skey)
            return
        if (svc.get("spec") or {}).get("type") == "ExternalName" or service_selector(svc) is None:
            self.metrics.forget(skey)
            return
        pods = pods_for_service(self.pods.store, svc)
        existing = [s for s in self.own.view(skey, self.slices.store.by_index(SLICE_SERVICE, skey))
                    if not (s.get("metadata") or {}).get("deletionTimestamp")]
        trigger = self.triggers.compute(skey, svc, pods)
        plan = self.reconciler.reconcile(svc, pods, existing, self.nodes.store, trigger)
        self.metrics.observe(skey, plan)
        ns, _ = split_key(skey)
        try:
            await self._apply(skey, ns or "", plan)
        except ApiError as e:
            self._failed(svc, str(e))
            raise
        finally:
            for ev in plan.events:
                self.recorder.record(svc, ev.type, ev.reason, ev.message)
        if plan.errors:
            self._failed(svc, "; ".join(plan.errors))
            raise Requeue(5.0, "; ".join(plan.errors[:3]))

    def _failed(self, svc: Obj, why: str) -> None:
        m = svc.get("metadata") or {}
        self.recorder.record(svc, WARNING, "FailedToUpdateEndpointSlices",
                             f"Error updating Endpoint Slices for Service {m.get('namespace')}/{m.get('name')}: {why}")

    async def _apply(self, owner: str, ns: str, plan: Plan) -> None:
        self.slice_writes += await apply_slice_plan(self.client, self.own, owner, ns, plan, self.metrics.wrote)


async def apply_slice_plan(client: ApiClient, own: OwnWrites, owner: str, ns: str, plan: Plan,
                           count: Callable[[str], None] | None = None) -> int:
    """Write a plan, recording each result with ``own`` (see :mod:`.ownwrites`).  Returns writes made.

    ``count`` hears of each write made (``create``, ``update``, ``delete``), for metrics.
    """
    writes = 0
    tally = count or (lambda _op: None)
    for body in plan.create:
        try:
            created = await client.create(SLICES, body, ns)
        except ApiError as e:
            if e.reason == "Forbidden" and _terminating_namespace(e):
                return writes  # the namespace is going away; creates will keep failing, drop them
            raise
        writes += 1
        tally("create")
        own.wrote(owner, created)
    for body in plan.update:
        try:
            own.wrote(owner, await client.replace(SLICES, body, ns))
        except ApiError as e:
            if e.code == 404:
                own.drop(owner, body)
            raise
        writes += 1
        tally("update")
    for s in plan.delete:
        try:
            await client.delete(SLICES, s["metadata"]["name"], ns)
        except ApiError as e:
            if e.code != 404:
                raise
        writes += 1
        tally("delete")
        own.deleted(owner, s)
    return writes


def _terminating_namespace(e: ApiError) -> bool:
    causes = (e.details or {}).get("causes") or []
    return any(c.get("reason") == "NamespaceTerminating" for c in causes) or "terminat" in e.message


def _labels(obj: Obj) -> dict[str, str]:
    return (obj.get("metadata") or {}).get("labels") or {}


def _topology_facts(node: Obj) -> tuple[bool, str | None, int, tuple[str, ...]]:
    """What the zone picture reads from a node: readiness, zone, allocatable CPU, control-plane role."""
    labels = _labels(node)
    cpu = cpu_millis(((node.get("status") or {}).get("allocatable") or {}).get("cpu"))
    roles = tuple(k for k in labels if k.startswith("node-role.kubernetes.io/"))
    return node_ready(node), labels.get(LABEL_ZONE), cpu, roles


def _rv(obj: Obj) -> str:
    return str((obj.get("metadata") or {}).get("resourceVersion") or "")
