"""Which endpoints serve which traffic (upstream's CategorizeEndpoints).

Pure: given one service port's endpoints and the node, return the endpoints
for cluster-policy traffic and for local-policy traffic.  Ready endpoints are
preferred; only when none is ready anywhere (or, for the local set, on this
node) do serving-and-terminating ones take over, so a rolling update never
turns into refused connections.
"""

from __future__ import annotations

from dataclasses import dataclass

from .model import Endpoint, NodeInfo, ServicePort


@dataclass(frozen=True)
class Pools:
    """The two endpoint sets one service port dispatches to."""

    cluster: tuple[Endpoint, ...]
    local: tuple[Endpoint, ...]
    any_usable: bool  # some endpoint anywhere can take traffic: drop, not reject, if a set is empty
    local_ready: int  # the health check's count: ready endpoints on this node


def _zone_filter(ready: list[Endpoint], node: NodeInfo) -> list[Endpoint]:
    """PreferSameZone: used only if every ready endpoint carries hints and one names our zone."""
    if not node.zone or not ready or any(e.zone_hints is None for e in ready):
        return ready
    same = [e for e in ready if node.zone in (e.zone_hints or ())]
    return same or ready


def categorize(sp: ServicePort, endpoints: tuple[Endpoint, ...], node: NodeInfo) -> Pools:
    ready = [e for e in endpoints if e.ready]
    cluster = _zone_filter(ready, node) if ready else [e for e in endpoints if e.serving and e.terminating]
    local_ready = [e for e in ready if e.node_name == node.name]
    local = local_ready or [e for e in endpoints
                            if e.node_name == node.name and e.serving and e.terminating]
    return Pools(tuple(cluster), tuple(local), bool(cluster), len(local_ready))
