"""The scheduler: bind each unscheduled pod to a node through ``pods/binding``.

It handles pods with ``spec.schedulerName: default-scheduler`` and no
``spec.nodeName``.  The choice is pure (:mod:`.scheduling`); this module
keeps the caches and the one thing upstream calls the *assume* step: a pod
is counted on its node the moment it is chosen, before the binding reaches
the API and comes back through the watch, so concurrent workers and a
lagging cache still spread a controller's replicas evenly.  A pod that fits
nowhere gets ``PodScheduled=False/Unschedulable`` and a ``FailedScheduling``
event, and is retried whenever a node changes (and every ``retry_after``).
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Hashable, Iterable
from typing import Any

from kubesvc.api.meta import controller_of, key_of, now_rfc3339
from kubesvc.api.resources import by_kind
from kubesvc.client.controller import Controller, Requeue
from kubesvc.client.events import NORMAL, WARNING, EventRecorder
from kubesvc.client.rest import ApiClient, ApiError
from kubesvc.client.sharedinformers import SharedInformerFactory

from .endpointslice.index import POD_NODE, index_pod_node
from .podutil import is_active
from .scheduling import Load, choose_node, fit_error, node_view

log = logging.getLogger(__name__)
Obj = dict[str, Any]
PODS = by_kind("v1", "Pod")
NODES = by_kind("v1", "Node")
SCHEDULER_NAME = "default-scheduler"
# The same index (name and function) as the EndpointSlice controller's, so a shared pod informer keeps one.
NODE_INDEX = POD_NODE
index_node_name = index_pod_node


def _owner_uid(pod: Obj) -> str:
    ref = controller_of(pod)
    return str(ref.get("uid")) if ref else ""


def _decrement(counter: Counter[Any], key: Any) -> None:
    if counter[key] <= 1:
        del counter[key]
    else:
        counter[key] -= 1


def wants_scheduling(pod: Obj) -> bool:
    spec = pod.get("spec") or {}
    return (not spec.get("nodeName") and (spec.get("schedulerName") or SCHEDULER_NAME) == SCHEDULER_NAME
            and is_active(pod))


class Scheduler(Controller):
    """``Scheduler(client).run()``: one key per pod waiting for a node."""

    name = "scheduler"

    def __init__(self, client: ApiClient, *, workers: int = 8, resync_period: float | None = 60.0,
                 retry_after: float = 30.0, recorder: EventRecorder | None = None,
                 factory: SharedInformerFactory | None = None) -> None:
        super().__init__(workers=workers, resync_period=resync_period)
        self.factory = self.informer_factory(client, factory)
        assert PODS and NODES
        self.client = client
        self.retry_after = retry_after
        self.recorder = recorder or EventRecorder(client, SCHEDULER_NAME)
        self.pods = self.factory.informer(PODS, indexers={NODE_INDEX: index_node_name})
        self.nodes = self.factory.informer(NODES)
        self.informers += [self.pods, self.nodes]
        self.assumed: dict[str, tuple[str, str]] = {}  # pod key -> (node, owner uid), until the watch shows it
        self.unschedulable: set[str] = set()
        # Active bound pods counted per node and per (node, owner uid), kept in step by the pod handlers,
        # so a scheduling decision costs O(nodes), not O(pods).
        self._placed: dict[str, tuple[str, str]] = {}  # pod key -> (node, owner uid)
        self._per_node: Counter[str] = Counter()
        self._per_owner: Counter[tuple[str, str]] = Counter()
        self.bound = 0
        self.pods.add_handler(self._pod_changed, lambda old, new: self._pod_changed(new), self._pod_deleted)
        self.nodes.add_handler(self._node_changed, self._node_updated, None)

    async def stop(self) -> None:
        await super().stop()
        await self.recorder.close()

    def _count(self, key: str, pod: Obj | None) -> None:
        old = self._placed.pop(key, None)
        if old is not None:
            _decrement(self._per_node, old[0])
            if old[1]:
                _decrement(self._per_owner, old)
        node = ((pod or {}).get("spec") or {}).get("nodeName")
        if pod is not None and node and is_active(pod):
            placed = (node, _owner_uid(pod))
            self._placed[key] = placed
            self._per_node[node] += 1
            if placed[1]:
                self._per_owner[placed] += 1

    def _pod_changed(self, pod: Obj) -> None:
        key = key_of(pod)
        self._count(key, pod)
        if (pod.get("spec") or {}).get("nodeName"):
            self.assumed.pop(key, None)
            self.unschedulable.discard(key)
        elif wants_scheduling(pod):
            self.enqueue(key)

    def _pod_deleted(self, pod: Obj) -> None:
        self._count(key_of(pod), None)
        self.assumed.pop(key_of(pod), None)
        self.unschedulable.discard(key_of(pod))

    def _node_changed(self, node: Obj) -> None:
        for key in list(self.unschedulable):
            self.enqueue(key)

    def _node_updated(self, old: Obj, new: Obj) -> None:
        if node_view(old) != node_view(new):
            self._node_changed(new)

    def resync_keys(self) -> Iterable[Hashable]:
        return [key_of(p) for p in self.pods.store.list() if wants_scheduling(p)]

    def node_load(self, owner_uid: str) -> dict[str, Load]:
        """Pods per node (active ones, plus those assumed but not yet seen bound)."""
        totals: Counter[str] = Counter()
        same: Counter[str] = Counter()
        for node in self.nodes.store.keys():
            if n := self._per_node.get(node):
                totals[node] = n
            if owner_uid and (n := self._per_owner.get((node, owner_uid))):
                same[node] = n
        for node, uid in self.assumed.values():
            totals[node] += 1
            if owner_uid and uid == owner_uid:
                same[node] += 1
        return {n: Load(totals[n], same[n]) for n in totals | same}

    async def reconcile(self, key: Hashable) -> None:
        pod_key = str(key)
        pod = self.pods.store.get(pod_key)
        if pod is None or not wants_scheduling(pod) or pod_key in self.assumed:
            return
        owner = _owner_uid(pod)
        nodes = [node_view(n) for n in self.nodes.store.list()]
        chosen, reasons = choose_node(pod, nodes, self.node_load(owner))
        if chosen is None:
            await self._unschedulable(pod, fit_error(len(nodes), reasons))
            raise Requeue(self.retry_after, "unschedulable")
        self.assumed[pod_key] = (chosen, owner)
        self.unschedulable.discard(pod_key)
        try:
            await self._bind(pod, chosen)
        except ApiError as e:
            self.assumed.pop(pod_key, None)
            if e.code in (404, 409):  # gone, or bound by someone else meanwhile
                return
            raise
        self.bound += 1
        m = pod["metadata"]
        self.recorder.record(pod, NORMAL, "Scheduled", f"Successfully assigned {m['namespace']}/{m['name']} to {chosen}")

    async def _bind(self, pod: Obj, node: str) -> None:
        assert PODS
        m = pod["metadata"]
        binding = {"apiVersion": "v1", "kind": "Binding",
                   "metadata": {"name": m["name"], "namespace": m["namespace"], "uid": m.get("uid")},
                   "target": {"apiVersion": "v1", "kind": "Node", "name": node}}
        await self.client.create(PODS, binding, m["namespace"], subresource="binding", name=m["name"])

    async def _unschedulable(self, pod: Obj, message: str) -> None:
        """Condition and event, written only when the verdict changed (the event's count says how often)."""
        assert PODS
        self.unschedulable.add(key_of(pod))
        self.recorder.record(pod, WARNING, "FailedScheduling", message)
        cur = next((c for c in (pod.get("status") or {}).get("conditions") or [] if c.get("type") == "PodScheduled"),
                   None)
        if cur and cur.get("status") == "False" and cur.get("message") == message:
            return
        cond = {"type": "PodScheduled", "status": "False", "reason": "Unschedulable", "message": message,
                "lastProbeTime": None, "lastTransitionTime": now_rfc3339()}
        m = pod["metadata"]
        try:
            await self.client.patch(PODS, m["name"], {"status": {"conditions": [cond]}}, m["namespace"],
                                    patch_type="strategic", subresource="status")
        except ApiError as e:
            if e.code != 404:
                raise
