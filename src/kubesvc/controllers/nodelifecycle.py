"""Node lifecycle: notice dead nodes, taint them, evict their pods; collect pods of deleted nodes.

As upstream's node-lifecycle controller (with taint-based eviction) plus the
orphan part of the pod GC:

* Health: a node's agent proves it is alive by renewing its Lease
  (``kube-node-lease/<node>``) and posting its Ready condition.  The
  controller records *its own* clock when it last saw either change (so
  clock skew between machines does not matter); after ``grace_period``
  (upstream 40 s) without one, the node's conditions become ``Unknown``
  ("Kubelet stopped posting node status.") and its pods stop being Ready.
* Taints follow the Ready condition: ``not-ready`` (False) or
  ``unreachable`` (Unknown), each ``NoSchedule`` and ``NoExecute``;
  ``spec.unschedulable`` adds ``unschedulable:NoSchedule``.  They go away
  when the node is Ready again.
* Eviction: a pod on a node with a ``NoExecute`` taint is deleted at once if
  it does not tolerate it, else when its ``tolerationSeconds`` run out,
  counted from the taint's ``timeAdded``.  Pods without their own toleration
  of not-ready/unreachable get ``eviction_delay`` (upstream's admission adds
  300 s tolerations to every pod; ``kubesvc up`` uses a short one).
  The pods' controllers then make new ones, which the scheduler places on
  live nodes.
* Pods bound to a node that no longer exists are deleted outright.
"""

from __future__ import annotations

import asyncio
import copy
import logging
import time
from collections.abc import Callable, Hashable, Iterable
from typing import Any

from kubesvc.api.meta import key_of, now_rfc3339
from kubesvc.api.resources import by_kind
from kubesvc.client.controller import Controller
from kubesvc.client.events import NORMAL, EventRecorder
from kubesvc.client.rest import ApiClient, ApiError
from kubesvc.client.sharedinformers import SharedInformerFactory

from . import nodehealth as nh
from .podutil import is_deleting, is_ready
from .scheduler import NODE_INDEX, index_node_name

log = logging.getLogger(__name__)
Obj = dict[str, Any]
PODS = by_kind("v1", "Pod")
NODES = by_kind("v1", "Node")
LEASES = by_kind("coordination.k8s.io/v1", "Lease")
LEASE_NAMESPACE = "kube-node-lease"


class NodeLifecycleController(Controller):
    """One key per node name; a monitor loop looks at every node each ``monitor_period``."""

    name = "nodelifecycle"

    def __init__(self, client: ApiClient, *, grace_period: float = 40.0, eviction_delay: float = 300.0,
                 monitor_period: float = 5.0, workers: int = 2, clock: Callable[[], float] = time.monotonic,
                 wall_clock: Callable[[], float] = time.time, recorder: EventRecorder | None = None,
                 factory: SharedInformerFactory | None = None) -> None:
        super().__init__(workers=workers, resync_period=monitor_period)
        self.factory = self.informer_factory(client, factory)
        assert PODS and NODES and LEASES
        self.client = client
        self.grace_period = grace_period
        self.eviction_delay = eviction_delay
        self.clock = clock
        self.wall = wall_clock
        self.recorder = recorder or EventRecorder(client, "node-controller")
        self.nodes = self.factory.informer(NODES)
        self.leases = self.factory.informer(LEASES, namespace=LEASE_NAMESPACE)
        self.pods = self.factory.informer(PODS, indexers={NODE_INDEX: index_node_name})
        self.informers += [self.nodes, self.leases, self.pods]
        self.health: dict[str, nh.Probe] = {}
        self.nodes.add_handler(self._node_event, lambda old, new: self._node_event(new), self._node_event)
        self.leases.add_handler(self._lease_event, lambda old, new: self._lease_event(new), None)

    async def stop(self) -> None:
        await super().stop()
        await self.recorder.close()

    def _node_event(self, node: Obj) -> None:
        self.enqueue(key_of(node))

    def _lease_event(self, lease: Obj) -> None:
        self.enqueue(key_of(lease).rpartition("/")[2])

    def resync_keys(self) -> Iterable[Hashable]:
        """Every node, and every node name pods are bound to (to collect pods of deleted nodes)."""
        names = set(self.nodes.store.keys())
        for p in self.pods.store.list():
            n = (p.get("spec") or {}).get("nodeName")
            if n:
                names.add(n)
        return sorted(names)

    async def reconcile(self, key: Hashable) -> None:
        name = str(key)
        node = self.nodes.store.get(name)
        if node is None:
            self.health.pop(name, None)
            await self._collect_orphans(name)
            return
        lease = self.leases.store.get_by(LEASE_NAMESPACE, name)
        now = self.clock()
        probe = nh.observe(self.health.get(name), node, lease, now)
        self.health[name] = probe
        node = copy.deepcopy(node)
        if now - probe.observed_at > self.grace_period:
            node = await self._mark_unknown(node)
        else:
            self.queue.add_after(name, probe.observed_at + self.grace_period - now + 0.05)
        node = await self._sync_taints(node)
        await self._evict(node)

    async def _mark_unknown(self, node: Obj) -> Obj:
        assert NODES
        status = nh.unknown_status(node, now_rfc3339())
        if status is None:
            return node
        node["status"] = status
        try:
            node = await self.client.update_status(NODES, node)
        except ApiError as e:
            if e.code == 404:
                return node
            raise
        self.recorder.record(node, NORMAL, "NodeNotReady", f"Node {node['metadata']['name']} status is now: NodeNotReady")
        await self._mark_pods_not_ready(node["metadata"]["name"])
        return node

    async def _mark_pods_not_ready(self, node_name: str) -> None:
        """Upstream's MarkPodsNotReady: Services stop sending traffic to a node that went silent."""
        assert PODS
        now = now_rfc3339()
        patches = []
        for p in self.pods.store.by_index(NODE_INDEX, node_name):
            if is_ready(p) and not is_deleting(p):
                cond = {"type": "Ready", "status": "False", "lastTransitionTime": now}
                m = p["metadata"]
                patches.append(self.client.patch(PODS, m["name"], {"status": {"conditions": [cond]}},
                                                 m["namespace"], patch_type="strategic", subresource="status"))
        for r in await asyncio.gather(*patches, return_exceptions=True):
            if isinstance(r, BaseException) and not (isinstance(r, ApiError) and r.code == 404):
                log.warning("nodelifecycle: marking a pod not ready failed: %r", r)

    async def _sync_taints(self, node: Obj) -> Obj:
        assert NODES
        want = nh.desired_taints(node, now_rfc3339())
        if want == ((node.get("spec") or {}).get("taints") or []):
            return node
        node.setdefault("spec", {})["taints"] = want
        if not want:
            node["spec"].pop("taints")
        try:
            return await self.client.replace(NODES, node)
        except ApiError as e:
            if e.code == 404:
                return node
            raise

    async def _evict(self, node: Obj) -> None:
        assert PODS
        name = node["metadata"]["name"]
        now = self.wall()
        soonest: float | None = None
        for p in self.pods.store.by_index(NODE_INDEX, name):
            if is_deleting(p):
                continue
            at = nh.eviction_time(p, node, self.eviction_delay)
            if at is None:
                continue
            if at > now:
                soonest = at if soonest is None else min(soonest, at)
                continue
            m = p["metadata"]
            self.recorder.record(p, NORMAL, "TaintManagerEviction", f"Marking for deletion Pod {m['namespace']}/{m['name']}")
            try:
                await self.client.delete(PODS, m["name"], m["namespace"], preconditions={"uid": m["uid"]})
            except ApiError as e:
                if e.code not in (404, 409):
                    raise
        if soonest is not None:
            self.queue.add_after(name, soonest - now + 0.05)

    async def _collect_orphans(self, node_name: str) -> None:
        """Pods bound to a node that is gone: confirm with a live read, then force-delete them."""
        assert PODS and NODES
        pods = self.pods.store.by_index(NODE_INDEX, node_name)
        if not pods:
            return
        try:
            await self.client.get(NODES, node_name)
            return  # the cache lags: the node exists
        except ApiError as e:
            if e.code != 404:
                raise
        for p in pods:
            m = p["metadata"]
            try:
                await self.client.delete(PODS, m["name"], m["namespace"], grace_period_seconds=0,
                                         preconditions={"uid": m["uid"]})
                log.info("nodelifecycle: deleted pod %s/%s of vanished node %s", m["namespace"], m["name"], node_name)
            except ApiError as e:
                if e.code not in (404, 409):
                    raise
