"""The LoadBalancer controller: addresses for Services of type LoadBalancer, and who announces them.

An API client like any other (informers on Services, IPAddressPools, Nodes
and EndpointSlices), level-triggered through one work queue.  One worker:
allocation is a sequence of decisions over shared bookkeeping, and doing
them in queue order keeps the answers deterministic (the first Service gets
the first address) at a cost of one status write per change.

Keys: ``namespace/name`` reconciles one Service; three sentinels stand for
the cluster-wide jobs -- reload the pools (then reprocess every Service),
recompute the announcements (after any node, endpoint or address change),
and write the pools' usage counts (debounced).

A restart rebuilds the bookkeeping from the stored objects before any worker
runs: the addresses already in status are re-assigned first
(:func:`kubesvc.lb.service.restore_order`), so nobody loses theirs to a
Service that happened to be reconciled earlier.
"""

from __future__ import annotations

import copy
import ipaddress
import logging
from collections.abc import Hashable, Iterable
from typing import Any

from kubesvc.api.resources import by_kind
from kubesvc.client.controller import Controller
from kubesvc.client.events import NORMAL, WARNING, EventRecorder
from kubesvc.client.informer import object_key
from kubesvc.client.rest import ApiClient, is_not_found
from kubesvc.client.sharedinformers import SharedInformerFactory
from kubesvc.lb import election
from kubesvc.lb.allocator import AllocationError, Allocator
from kubesvc.lb.announce import AgentProber, RouteAnnouncer
from kubesvc.lb.pools import IPAddress, Pool, PoolError, pool_from_object
from kubesvc.lb.service import (
    OUR_CLASS,
    LBService,
    ingress,
    is_ours,
    requested_ip,
    restore_order,
    status_ip,
    view,
)

log = logging.getLogger(__name__)
Obj = dict[str, Any]

SERVICES = by_kind("v1", "Service")
NODES = by_kind("v1", "Node")
SLICES = by_kind("discovery.k8s.io/v1", "EndpointSlice")
POOLS = by_kind("kubesvc.io/v1", "IPAddressPool")
POOLS_KEY = ("pools",)
ANNOUNCE_KEY = ("announce",)
POOL_STATUS_KEY = ("pool-status",)
COMPONENT = "kubesvc-lb-controller"
SERVICE_NAME_LABEL = "kubernetes.io/service-name"
SLICE_INDEX = "lb-service"  # namespace/name of the slice's Service (a name of ours: indexes are shared)


def _slice_service(obj: Obj) -> list[str]:
    m = obj.get("metadata") or {}
    name = (m.get("labels") or {}).get(SERVICE_NAME_LABEL)
    return [f"{m.get('namespace', '')}/{name}"] if name else []


class LoadBalancerController(Controller):
    """See the module docstring.  ``announcer`` is given only in kernel mode."""

    name = "loadbalancer"

    def __init__(self, client: ApiClient, *, our_class: str = OUR_CLASS, static_pools: Iterable[Pool] = (),
                 pool_objects: bool = True, service_cidr: str | None = None,
                 announcer: RouteAnnouncer | None = None, prober: AgentProber | None = None,
                 resync_period: float = 60.0, factory: SharedInformerFactory | None = None) -> None:
        super().__init__(workers=1, resync_period=resync_period)
        assert SERVICES and NODES and SLICES and POOLS
        self.client = client
        self.our_class = our_class
        self.static_pools = list(static_pools)
        self.service_cidr = service_cidr
        self.alloc = Allocator(self.static_pools)
        self.recorder = EventRecorder(client, COMPONENT)
        self.announcer = announcer
        self.prober = prober if prober is not None else (AgentProber(self._announce_later) if announcer else None)
        self.announced: dict[str, str] = {}  # address -> node name
        f = self.informer_factory(client, factory)  # shared with the other controllers in `up`, if given
        self.services = f.informer(SERVICES)
        self.nodes = f.informer(NODES)
        self.slices = f.informer(SLICES, indexers={SLICE_INDEX: _slice_service})
        self.pools = f.informer(POOLS) if pool_objects else None
        self.informers = [self.services, self.nodes, self.slices] + ([self.pools] if self.pools else [])
        self.services.add_handler(self._on_service, lambda old, new: self._on_service(new), self._on_service)
        self.nodes.add_handler(self._on_node, self._on_node_update, self._on_node)
        self.slices.add_handler(self._on_slice, lambda old, new: self._on_slice(new), self._on_slice)
        if self.pools is not None:
            self.pools.add_handler(self._on_pool, lambda old, new: self._on_pool(new), self._on_pool)

    # ------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        for inf in self.informers:
            inf.start()
        for inf in self.informers:
            await inf.wait_synced()
        self._load_pools()
        self.restore()
        if self.announcer is not None:
            await self.announcer.start()
        if self.prober is not None:
            self.prober.start(self._probe_targets)
        await super().start()
        self.enqueue(ANNOUNCE_KEY)
        self.enqueue(POOL_STATUS_KEY)

    async def stop(self) -> None:
        await super().stop()
        if self.prober is not None:
            await self.prober.stop()
        if self.announcer is not None:
            await self.announcer.stop()
        await self.recorder.close()

    def restore(self) -> None:
        """Re-assign what the stored Services hold, holders first (see the module docstring)."""
        views = [view(s, self.our_class) for s in self.services.store.list()]
        for s in restore_order(views):
            ip = status_ip(s)
            if ip is not None:
                try:
                    self.alloc.assign(s.request, ip)
                except AllocationError as e:
                    log.info("lb: %s cannot keep %s: %s", s.key, ip, e)
        self.alloc.check()

    def resync_keys(self) -> list[Hashable]:
        return [*self.services.store.keys(), POOLS_KEY, ANNOUNCE_KEY, POOL_STATUS_KEY]

    # ------------------------------------------------------------- handlers

    def _on_service(self, svc: Obj) -> None:
        key = object_key(svc)
        self.enqueue(key)
        if self.alloc.ip_of(key) is not None:  # its policy or ports may change who announces it
            self.enqueue(ANNOUNCE_KEY)

    def _on_pool(self, pool: Obj) -> None:
        self.enqueue(POOLS_KEY)

    def _on_node(self, node: Obj) -> None:
        self.enqueue(ANNOUNCE_KEY)

    def _on_node_update(self, old: Obj, new: Obj) -> None:
        if election.node_view(old) != election.node_view(new):  # not every heartbeat
            self.enqueue(ANNOUNCE_KEY)

    def _on_slice(self, sl: Obj) -> None:
        for key in _slice_service(sl):
            if self.alloc.ip_of(key) is not None:
                self.enqueue(ANNOUNCE_KEY)

    def _announce_later(self) -> None:
        self.enqueue(ANNOUNCE_KEY)

    # ------------------------------------------------------------- reconcile

    async def reconcile(self, key: Hashable) -> None:
        if key == POOLS_KEY:
            self._load_pools()
            for k in self.services.store.keys():
                self.enqueue(k)
            self.queue.add_after(POOL_STATUS_KEY, 0.2)
        elif key == ANNOUNCE_KEY:
            await self.announce()
        elif key == POOL_STATUS_KEY:
            await self._write_pool_status()
        else:
            await self.sync_service(str(key))

    def _load_pools(self) -> None:
        pools = list(self.static_pools)
        names = {p.name for p in pools}
        for obj in self.pools.store.list() if self.pools else []:
            try:
                pool = pool_from_object(obj, self.service_cidr) if self.service_cidr else pool_from_object(obj)
            except PoolError as e:
                self.recorder.record(obj, WARNING, "InvalidPool", f"Pool ignored: {e}")
                continue
            if pool.name not in names:
                pools.append(pool)
        for key in self.alloc.set_pools(pools):
            log.info("lb: %s lost its address: it left every pool", key)

    async def sync_service(self, key: str) -> None:
        svc = self.services.store.get(key)
        if svc is None or not is_ours(svc, self.our_class):
            freed = self.alloc.unassign(key)
            if freed is not None:  # deleted, or no longer ours (the apiserver clears status on type change)
                log.info("lb: released %s from %s", freed, key)
                self._changed()
            return
        s = view(svc, self.our_class)
        before = self.alloc.ip_of(key)
        error = ""
        try:
            want = requested_ip(s)
            if want is not None:
                self.alloc.assign(s.request, want)
            ip = self.alloc.allocate(s.request) if want is None else want
        except AllocationError as e:
            self.alloc.unassign(key)
            ip, error = None, str(e)
        if ip != before:
            self._changed()
        if [i.get("ip") for i in ingress(ip)] != list(s.status_ips):
            if not await self._write_status(svc, ip):
                return
        if error:
            self.recorder.record(svc, WARNING, "AllocationFailed", f"Failed to allocate IP for {key}: {error}")
        elif ip is not None and ip != before:
            pool = self.alloc.pool_of(ip)
            self.recorder.record(svc, NORMAL, "IPAllocated",
                                 f"Assigned IP [\"{ip}\"] from pool {pool.name if pool else '?'}")

    async def _write_status(self, svc: Obj, ip: IPAddress | None) -> bool:
        """PUT the new status on a copy (the cache is shared); a conflict raises and is retried."""
        body = copy.deepcopy(svc)
        status = body.setdefault("status", {})
        status["loadBalancer"] = {"ingress": ingress(ip)} if ip is not None else {}
        try:
            await self.client.update_status(SERVICES, body)  # type: ignore[arg-type]
        except Exception as e:
            if is_not_found(e):
                self.alloc.unassign(object_key(svc))
                self._changed()
                return False
            raise
        return True

    def _changed(self) -> None:
        self.enqueue(ANNOUNCE_KEY)
        self.queue.add_after(POOL_STATUS_KEY, 0.2)

    # ----------------------------------------------------------- announcing

    def _probe_targets(self) -> list[tuple[str, str, int]]:
        if not self.alloc.holders():
            return []
        views = (election.node_view(n) for n in self.nodes.store.list())
        return [(v.name, v.ip, v.agent_port) for v in views]

    def desired_announcements(self) -> dict[str, str]:
        """Address -> announcing node, from the caches (pure apart from reading them)."""
        by_ip: dict[str, list[tuple[str, bool]]] = {}
        local_nodes: dict[str, set[str]] = {}
        for key, ip in self.alloc.holders().items():
            svc = self.services.store.get(key)
            if svc is None:
                continue
            s: LBService = view(svc, self.our_class)
            by_ip.setdefault(str(ip), []).append((key, s.etp_local))
            if s.etp_local:
                local_nodes[key] = election.ready_endpoint_nodes(self.slices.store.by_index(SLICE_INDEX, key))
        nodes = [election.node_view(n) for n in self.nodes.store.list()]
        unhealthy = self.prober.unhealthy if self.prober else set()
        return election.plan(by_ip, nodes, local_nodes, self.announced, unhealthy)

    async def announce(self) -> None:
        if self.announcer is None:
            return
        plan = self.desired_announcements()
        node_ips = {v.name: v.ip for v in (election.node_view(n) for n in self.nodes.store.list())}
        previous, self.announced = self.announced, dict(plan)
        await self.announcer.sync({ip: node_ips[node] for ip, node in plan.items()})
        for ip, node in sorted(plan.items()):
            if previous.get(ip) != node:
                log.info("lb: %s announced from %s", ip, node)
                for key in self.alloc.users(ipaddress.ip_address(ip)):
                    svc = self.services.store.get(key)
                    if svc is not None:
                        self.recorder.record(svc, NORMAL, "nodeAssigned",
                                             f"announcing from node \"{node}\" with protocol \"route\"")
        for ip in sorted(set(previous) - set(plan)):
            log.info("lb: %s no longer announced (no eligible node, or released)", ip)

    async def _write_pool_status(self) -> None:
        if self.pools is None:
            return
        counts = self.alloc.counts()
        for obj in self.pools.store.list():
            name = (obj.get("metadata") or {}).get("name")
            want = counts.get(str(name))
            if want is None or obj.get("status") == want:
                continue
            body = copy.deepcopy(obj)
            body["status"] = want
            try:
                await self.client.update_status(POOLS, body)  # type: ignore[arg-type]
            except Exception as e:
                if not is_not_found(e):
                    raise
