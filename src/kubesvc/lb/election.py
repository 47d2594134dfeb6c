"""Which node announces each LoadBalancer address: pure functions.

One node per address carries its traffic (the host routes the address to
that node; the node's proxy DNATs it to the pods).  A node may announce when
it is Ready, not labelled out of external load balancers, and (our own fast
check) its agent still answers; for externalTrafficPolicy Local it must also
hold a ready endpoint of every Service on the address, or the traffic would
be dropped there.  Among the eligible nodes the current announcer keeps the
address while it stays eligible (no needless moves); otherwise the winner is
the lowest hash of node name and address, so addresses spread over nodes and
every controller computes the same answer.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from collections.abc import Set as AbstractSet
from dataclasses import dataclass
from typing import Any

EXCLUDE_LABEL = "node.kubernetes.io/exclude-from-external-load-balancers"
Obj = dict[str, Any]


@dataclass(frozen=True)
class NodeView:
    name: str
    ip: str  # InternalIP: where the host routes announced addresses
    ready: bool
    excluded: bool
    agent_port: int  # status.daemonEndpoints.kubeletEndpoint.Port, for the liveness check


def node_view(node: Obj) -> NodeView:
    meta, status = node.get("metadata") or {}, node.get("status") or {}
    ready = any(c.get("type") == "Ready" and c.get("status") == "True" for c in status.get("conditions") or [])
    ip = next((a.get("address", "") for a in status.get("addresses") or [] if a.get("type") == "InternalIP"), "")
    port = (((status.get("daemonEndpoints") or {}).get("kubeletEndpoint") or {}).get("Port")) or 0
    return NodeView(name=str(meta.get("name") or ""), ip=str(ip),
                    ready=ready and not meta.get("deletionTimestamp"),
                    excluded=EXCLUDE_LABEL in (meta.get("labels") or {}), agent_port=int(port))


def ready_endpoint_nodes(slices: Iterable[Obj]) -> set[str]:
    """Nodes holding a ready endpoint in these EndpointSlices (ready unset counts as ready, as upstream)."""
    out: set[str] = set()
    for sl in slices:
        for ep in sl.get("endpoints") or []:
            if (ep.get("conditions") or {}).get("ready") is not False and ep.get("nodeName"):
                out.add(str(ep["nodeName"]))
    return out


def eligible(nodes: Iterable[NodeView], unhealthy: AbstractSet[str] = frozenset()) -> list[str]:
    """Nodes that may announce anything at all."""
    return sorted(n.name for n in nodes if n.ready and not n.excluded and n.ip and n.name not in unhealthy)


def elect(ip: str, candidates: Iterable[str], current: str | None = None) -> str | None:
    """The announcer of ``ip`` among ``candidates``: see the module docstring."""
    names = set(candidates)
    if current in names:
        return current
    if not names:
        return None
    return min(names, key=lambda n: (hashlib.sha256(f"{n}#{ip}".encode()).digest(), n))


def plan(services_by_ip: Mapping[str, Iterable[tuple[str, bool]]], nodes: Iterable[NodeView],
         local_nodes: Mapping[str, AbstractSet[str]], current: Mapping[str, str],
         unhealthy: AbstractSet[str] = frozenset()) -> dict[str, str]:
    """Announcer per address.

    ``services_by_ip``: address -> its Services as ``(key, externalTrafficPolicy is Local)``;
    ``local_nodes``: Service key -> nodes with a ready endpoint of it; ``current``: who
    announces each address now.  Addresses without an eligible node are left out.
    """
    base = set(eligible(nodes, unhealthy))
    out: dict[str, str] = {}
    for ip, services in services_by_ip.items():
        cands = set(base)
        for key, local in services:
            if local:
                cands &= local_nodes.get(key, set())
        winner = elect(ip, cands, current.get(ip))
        if winner is not None:
            out[ip] = winner
    return out
