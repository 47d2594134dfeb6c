"""The pure planner: (services, endpoints, node) → the desired :class:`Ruleset`.

No I/O and no clock: the same inputs give the same ruleset, so tests check it
by tracing packets through it (kubesvc.testing.fakenft) rather than by
reading rule text.  It plans one Service at a time (:func:`plan_service`) so
a partial sync replans only the Services that changed; :func:`plan` puts the
per-Service parts together with the shared chains of :mod:`.layout`.
"""

from __future__ import annotations

import ipaddress
from collections import Counter
from collections.abc import Callable, Mapping
from operator import attrgetter
from typing import Any

from . import layout as L
from .model import Endpoint, NodeInfo, ServicePort
from .ruleset import Chain, Element, Ruleset, ServiceRules, SetDef
from .topology import Pools, categorize

EndpointsByPort = Mapping[tuple[str, str], tuple[Endpoint, ...]]
PortIds = Callable[[str], int]  # service-port key → stable id in 1..MAX_PORT_ID


def plan(services: Mapping[str, tuple[ServicePort, ...]], endpoints: Mapping[str, EndpointsByPort],
         node: NodeInfo, ids: PortIds) -> Ruleset:
    """The whole desired table (a full sync plans this; a partial one, only changed Services)."""
    per_service = Plans({key: plan_service(ports, endpoints.get(key, {}), node, ids)
                         for key, ports in services.items() if ports})
    return assemble(per_service, node)


class Plans(dict[str, ServiceRules]):
    """Per-Service plans that keep what the shared chains depend on (pool sizes, any affinity)
    counted as plans come and go, so :func:`assemble` costs the same at 10 or 10,000 Services
    (a scan of 10,000 plans on every one-endpoint sync was a fifth of its time)."""

    def __init__(self, items: Mapping[str, ServiceRules] | None = None) -> None:
        super().__init__()
        self.sizes: Counter[int] = Counter()
        self.affinity = 0  # plans with chains: only sessionAffinity gives a Service chains
        for k, v in (items or {}).items():
            self[k] = v

    def _count(self, rules: ServiceRules, sign: int) -> None:
        self.sizes.update({n: sign for n in rules.pick_sizes})
        self.affinity += sign * bool(rules.chains)

    def __setitem__(self, key: str, rules: ServiceRules) -> None:
        old = super().get(key)
        if old is not None:
            self._count(old, -1)
        self._count(rules, 1)
        super().__setitem__(key, rules)

    def __delitem__(self, key: str) -> None:
        self._count(self[key], -1)
        super().__delitem__(key)

    def pop(self, key: str, *default: Any) -> Any:  # type: ignore[override]
        if key in self:
            self._count(self[key], -1)
        return super().pop(key, *default)

    def update(self, *a: Any, **kw: Any) -> None:  # type: ignore[override]
        for k, v in dict(*a, **kw).items():
            self[k] = v

    def clear(self) -> None:
        super().clear()
        self.sizes.clear()
        self.affinity = 0

    def shared(self) -> tuple[frozenset[int], bool]:
        return frozenset(n for n, c in self.sizes.items() if c > 0), self.affinity > 0


def assemble(per_service: dict[str, ServiceRules], node: NodeInfo) -> Ruleset:
    if isinstance(per_service, Plans):
        sizes, affinity = per_service.shared()
    else:
        groups = per_service.values()
        sizes = frozenset().union(*map(attrgetter("pick_sizes"), groups))
        affinity = any(map(attrgetter("chains"), groups))  # only sessionAffinity gives a Service chains
    return Ruleset(chains=L.static_chains(node.pod_cidr, node.cluster_cidr, sizes, affinity, node.nodeport_ips),
                   sets=dict(L.STATIC_SETS), services=per_service,
                   elements=frozenset((L.NODEPORT_IPS, ip, None) for ip in node.nodeport_ips or ()))


def plan_service(ports: tuple[ServicePort, ...], endpoints: EndpointsByPort, node: NodeInfo,
                 ids: PortIds) -> ServiceRules:
    """Everything one Service owns: its frontends, pools, endpoints and affinity parts."""
    out = ServiceRules()
    elements: set[Element] = set()
    sizes: set[int] = set()
    for sp in ports:
        pools = categorize(sp, endpoints.get((sp.port_name, sp.protocol), ()), node)
        _plan_port(sp, pools, node, ids(sp.key), elements, sizes, out)
    out.elements = frozenset(elements)
    out.pick_sizes = frozenset(sizes)
    return out


def _plan_port(sp: ServicePort, pools: Pools, node: NodeInfo, pid: int, elements: set[Element],
               sizes: set[int], out: ServiceRules) -> None:
    m = L.mark
    local_pid = pid | L.LOCAL_POOL_BIT
    proto = sp.protocol
    elements.add((L.CLUSTER_IPS, sp.cluster_ip, None))
    elements.add((L.SERVICE_IPS, f"{sp.cluster_ip} . {proto} . {sp.port}", m(local_pid if sp.itp_local else pid)))
    externals = (*sp.external_ips, *sp.lb_ips)
    for ip in externals:
        elements.add((L.EXTERNAL_IPS, f"{ip} . {proto} . {sp.port}", m(pid)))
    if sp.node_port:
        elements.add((L.NODEPORTS, f"{proto} . {sp.node_port}", m(pid)))
    if sp.etp_local and (externals or sp.node_port):
        elements.add((L.ETP_LOCAL, m(pid), None))
    if sp.source_ranges:
        _plan_firewall(sp, node, elements)
    pool_list = [(pid, pools.cluster, "")]
    if sp.itp_local or sp.etp_local:
        pool_list.append((local_pid, pools.local, "local-"))
    for pool_id, eps, prefix in pool_list:
        verdict = _pool_verdict(sp, pool_id, eps, pools.any_usable, prefix, node, elements, out)
        elements.add((L.POOLS, m(pool_id), verdict))
        if eps:
            sizes.add(len(eps))


def _pool_verdict(sp: ServicePort, pool_id: int, eps: tuple[Endpoint, ...], any_usable: bool, prefix: str,
                  node: NodeInfo, elements: set[Element], out: ServiceRules) -> str:
    """Fill one pool's endpoint elements; return what ``pools`` says for it."""
    if not eps:
        return f"goto {L.REJECT}" if not any_usable else "drop"
    m = L.mark(pool_id)
    for i, ep in enumerate(eps):
        elements.add((f"{L.ENDPOINTS}-{sp.protocol}", f"{m} . {i}", f"{ep.ip} . {ep.port}"))
        if ep.node_name in ("", node.name):  # only a pod on this node can hairpin through it
            elements.add((L.HAIRPIN, f"{m} . {ep.ip} . {ep.ip}", None))
    if not sp.affinity_timeout:
        return f"goto {L.pick_chain(len(eps))}"
    return f"goto {_plan_affinity(sp, pool_id, eps, prefix, elements, out)}"


def _affinity_set(sp: ServicePort, ep: Endpoint) -> str:
    return f"affinity-{L.short_hash(sp.key + '|' + ep.addr)}"


def _plan_affinity(sp: ServicePort, pool_id: int, eps: tuple[Endpoint, ...], prefix: str,
                   elements: set[Element], out: ServiceRules) -> str:
    """ClientIP affinity as upstream: one timed set of client addresses per endpoint.

    A lookup chain per pool sends a known client to its endpoint, otherwise to
    the random pick; a record chain (run after DNAT) adds or refreshes the
    client in the chosen endpoint's set.
    """
    suffix = f"{L.short_hash(sp.key)}-{sp.namespace}/{sp.name}/{sp.protocol}/{sp.port_name or sp.port}"
    lookup = f"affinity-{prefix}{suffix}"
    record = f"affinity-record-{suffix}"
    rules = []
    for ep in eps:
        name = _affinity_set(sp, ep)
        out.sets[name] = SetDef(name, f"type ipv4_addr; flags dynamic,timeout; timeout {sp.affinity_timeout}s;",
                                dynamic=True)
        rules.append(f"ip saddr @{name} {L.L4} dnat to {ep.ip}:{ep.port}")
    rules.append(f"goto {L.pick_chain(len(eps))}")
    out.chains[lookup] = Chain(lookup, tuple(rules))
    prev = out.chains.get(record)
    recorded = set(prev.rules) if prev else set()
    recorded |= {f"ip daddr {ep.ip} th dport {ep.port} update @{_affinity_set(sp, ep)} {{ ip saddr }}" for ep in eps}
    out.chains[record] = Chain(record, tuple(sorted(recorded)))
    elements.add((L.AFFINITY_RECORD, L.mark(pool_id), f"goto {record}"))
    return lookup


def _plan_firewall(sp: ServicePort, node: NodeInfo, elements: set[Element]) -> None:
    """loadBalancerSourceRanges guard the LB IPs only (not NodePorts, as upstream)."""
    ranges = []
    for r in sp.source_ranges:
        try:
            ranges.append(ipaddress.ip_network(r.strip(), strict=False))
        except ValueError:
            continue
    v4 = [r for r in ranges if isinstance(r, ipaddress.IPv4Network)]
    if any(ipaddress.ip_address(ip) in r for r in v4 for ip in node.ips):
        v4 += [ipaddress.IPv4Network(ip) for ip in sp.lb_ips]  # node-to-VIP traffic that loops back
    # an interval set refuses overlapping elements: collapse them first
    allowed = [str(n) if n.prefixlen < 32 else str(n.network_address) for n in ipaddress.collapse_addresses(v4)]
    for ip in sp.lb_ips:
        front = f"{ip} . {sp.protocol} . {sp.port}"
        elements.add((L.FIREWALL_IPS, front, None))
        for a in allowed:
            elements.add((L.FIREWALL_ALLOW, f"{front} . {a}", None))
