"""The proxy: trackers feed a coalescing runner, which plans and applies.

Informer handlers only record changes (:mod:`.changes`) and ask the runner for
a sync.  A sync replans the Services that changed (all of them on a full
sync), assembles the desired ruleset, applies it in one transaction, then
does the follow-ups that need the rules in place: stale UDP conntrack
entries, health-check servers, metrics.  Planning and nft run in a worker
thread so the event loop never blocks.  Nothing is programmed until
Services and EndpointSlices have both synced.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace

from . import conntrack
from .applier import Applier, SyncResult
from .changes import EndpointsByPort, EndpointsTracker, ServiceTracker
from .layout import MAX_PORT_ID
from .metrics import ProxyMetrics
from .model import NodeInfo, Obj, ServicePort, node_info
from .nftables import NftBackend
from .nodeports import interface_addresses, nodeport_ips
from .planner import Plans, assemble, plan_service
from .programmed import ProgrammedLog
from .runner import Runner
from .server import HealthCheck, HealthServers
from .topology import categorize

log = logging.getLogger(__name__)


class PortIds:
    """Stable small ids for service ports (they ride in the packet mark)."""

    def __init__(self) -> None:
        self.ids: dict[str, int] = {}
        self._free: list[int] = []
        self._next = 1

    def __call__(self, key: str) -> int:
        pid = self.ids.get(key)
        if pid is None:
            if self._free:
                pid = self._free.pop()
            else:
                if self._next > MAX_PORT_ID:
                    raise RuntimeError("out of service-port ids")
                pid, self._next = self._next, self._next + 1
            self.ids[key] = pid
        return pid

    def release(self, key: str) -> None:
        pid = self.ids.pop(key, None)
        if pid is not None:
            self._free.append(pid)


@dataclass
class ProxyConfig:
    node_name: str
    cluster_cidr: str = ""
    netns: str | None = None  # run nft/conntrack and listeners in this namespace (None: where we are)
    min_sync_interval: float = 0.05
    full_sync_interval: float = 300.0
    burst: int = 4
    health_host: str = "0.0.0.0"
    nodeport_addresses: tuple[str, ...] = ()  # --nodeport-addresses, validated; () = every local address


@dataclass
class _Applied:
    """What the kernel holds per Service, for diffs that need the old endpoints."""

    ports: dict[str, tuple[ServicePort, ...]] = field(default_factory=dict)
    endpoints: dict[str, EndpointsByPort] = field(default_factory=dict)


class Proxier:
    def __init__(self, config: ProxyConfig, backend: NftBackend, metrics: ProxyMetrics | None = None,
                 health: HealthServers | None = None,
                 local_addresses: Callable[[], Awaitable[tuple[str, ...]]] | None = None) -> None:
        self.config = config
        self.local_addresses = local_addresses or (lambda: interface_addresses(config.netns))
        self._local: tuple[str, ...] | None = None  # the namespace's addresses, read on full syncs
        self.applier = Applier(backend)
        self.metrics = metrics or ProxyMetrics()
        self.health = health
        self.services = ServiceTracker()
        self.endpoints = EndpointsTracker()
        self.node = NodeInfo(config.node_name, cluster_cidr=config.cluster_cidr)
        self.ids = PortIds()
        self.plans = Plans()
        self._planned_from: dict[str, tuple[tuple[ServicePort, ...], EndpointsByPort, NodeInfo]] = {}
        self.applied = _Applied()
        self.synced = {"services": False, "endpointslices": False}
        self.node_changed = True
        self.last_full = 0.0
        self.last_success = 0.0
        self.last_result: SyncResult | None = None
        self.programmed = ProgrammedLog()
        self._versions_pending: dict[str, str] = {}  # slice versions a failed sync took: the retry carries them
        self.runner = Runner(self.sync, min_interval=config.min_sync_interval,
                             max_interval=min(60.0, config.full_sync_interval), burst=config.burst)

    # ------------------------------------------------------------ event handlers

    def on_service(self, old: Obj | None, new: Obj | None) -> None:
        if self.services.update(old, new):
            self.runner.run()

    def on_slice(self, old: Obj | None, new: Obj | None) -> None:
        if self.endpoints.update(old, new):
            self.runner.run()

    def on_node(self, _old: Obj | None, new: Obj | None) -> None:
        info = node_info(new, self.config.node_name, self.config.cluster_cidr)
        if info != self.node:
            self.node, self.node_changed = info, True
            self.runner.run()

    def mark_synced(self, what: str) -> None:
        self.synced[what] = True
        self.runner.run()

    @property
    def healthy(self) -> bool:
        return self.last_success > 0 and time.monotonic() - self.last_success < 2 * self.config.full_sync_interval

    # ---------------------------------------------------------------------- sync

    async def sync(self) -> None:
        if not all(self.synced.values()):
            return
        svc_keys = self.services.take()
        ep_keys, triggers, versions = self.endpoints.take()
        versions = self._versions_pending | versions
        changed = svc_keys | ep_keys
        full = (self.applier.need_full or self.node_changed
                or time.monotonic() - self.last_full >= self.config.full_sync_interval)
        started = time.monotonic()
        node = await self._with_nodeport_ips(full)
        # the worker thread reads snapshots: handlers keep mutating the trackers meanwhile
        snap = (dict(self.services.current), dict(self.endpoints.current), node)
        try:
            result = await asyncio.to_thread(self._plan_and_apply, changed, full, *snap)
        except Exception as e:
            self.metrics.failures.inc()
            self._versions_pending = versions
            log.warning("sync failed (%s); keeping the last good rules, full sync in 1s", e)
            self.runner.retry_after(1.0)
            return
        took = time.monotonic() - started
        self.last_result, self.last_success = result, time.monotonic()
        if result.full:
            self.last_full, self.node_changed = self.last_success, False
        self._observe(result, took, triggers)
        self._versions_pending = {}
        self.programmed.record(result.applied_at, result.full, len(self.plans), versions)
        await self._after_sync(changed, result.full)

    async def _with_nodeport_ips(self, full: bool) -> NodeInfo:
        """The node as planned: with ``--nodeport-addresses``, the local addresses it selects
        (the namespace's addresses are read again on every full sync, as upstream)."""
        if not self.config.nodeport_addresses:
            return self.node
        if full or self._local is None:
            try:
                self._local = await self.local_addresses()
            except OSError as e:
                log.warning("cannot list the node's addresses for --nodeport-addresses: %s", e)
                self._local = self._local or ()
        return replace(self.node, nodeport_ips=nodeport_ips(self.config.nodeport_addresses,
                                                            self.node.primary_ip, self._local))

    def _plan_and_apply(self, changed: set[str], full: bool, services: dict[str, tuple[ServicePort, ...]],
                        endpoints: dict[str, EndpointsByPort], node: NodeInfo) -> SyncResult:
        """Runs in a worker thread: replans, assembles, applies."""
        keys = set(services) | set(self.plans) if full else changed
        for key in keys:
            ports = services.get(key, ())
            live = {p.key for p in ports}
            for sp in self.applied.ports.get(key, ()):
                if sp.key not in live:
                    self.ids.release(sp.key)
            if ports:
                eps = endpoints.get(key, {})
                # a full sync repairs the kernel, not the plans: a Service planned from these very
                # inputs keeps its plan (and the nft text rendered from it)
                if key not in self.plans or self._planned_from.get(key) != (ports, eps, node):
                    self.plans[key] = plan_service(ports, eps, node, self.ids)
                    self._planned_from[key] = (ports, eps, node)
            else:
                self.plans.pop(key, None)
                self._planned_from.pop(key, None)
        desired = assemble(self.plans, node)
        return self.applier.sync(desired, None if full else keys)

    def _observe(self, result: SyncResult, took: float, triggers: list[float]) -> None:
        m = self.metrics
        m.sync_duration.observe(took)
        (m.full_duration if result.full else m.partial_duration).observe(took)
        m.syncs.labels("full" if result.full else "partial").inc()
        m.tx_bytes.observe(result.size)
        m.last_sync.set(time.time())
        m.services.set(len(self.plans))
        for t in triggers:
            m.programming_latency.observe(max(0.0, result.applied_at - t))

    async def _after_sync(self, changed: set[str], full: bool) -> None:
        keys = set(self.services.current) | set(self.applied.ports) if full else changed
        filters: list[conntrack.Filter] = []
        for key in keys:
            old = self._port_endpoints(self.applied.ports.get(key, ()), self.applied.endpoints.get(key, {}))
            ports = self.services.current.get(key, ())
            eps = self.endpoints.current.get(key, {})
            filters += conntrack.stale_udp(old, self._port_endpoints(ports, eps))
            if ports:
                self.applied.ports[key], self.applied.endpoints[key] = ports, eps
            else:
                self.applied.ports.pop(key, None)
                self.applied.endpoints.pop(key, None)
        if filters:
            await conntrack.clear(filters, self.config.netns)
        if self.health is not None:
            await self.health.update(self.health_checks())

    def _port_endpoints(self, ports: tuple[ServicePort, ...], eps: EndpointsByPort) -> list[tuple[ServicePort, tuple]]:
        out = []
        for sp in ports:
            pools = categorize(sp, eps.get((sp.port_name, sp.protocol), ()), self.node)
            out.append((sp, tuple({e.addr: e for e in (*pools.cluster, *pools.local)}.values())))
        return out

    def health_checks(self) -> dict[int, HealthCheck]:
        """Health-check node port → check, for ETP Local Services (ready local endpoints)."""
        out: dict[int, HealthCheck] = {}
        for key, ports in self.services.current.items():
            for sp in ports:
                if not (sp.etp_local and sp.health_check_node_port):
                    continue
                local: set[str] = set()  # ready local endpoints of the Service, over all its ports
                for p in ports:
                    eps = self.endpoints.current.get(key, {}).get((p.port_name, p.protocol), ())
                    local |= {e.ip for e in eps if e.ready and e.node_name == self.node.name}
                out[sp.health_check_node_port] = HealthCheck(sp.namespace, sp.name, sp.health_check_node_port,
                                                             len(local))
                break
        return out
