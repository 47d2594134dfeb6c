"""Which endpoints a node's proxy uses for a Service, given topology hints (upstream's CategorizeEndpoints tests).

Hints are honoured only when every ready endpoint carries some and one of
them names this node's zone; otherwise all ready endpoints serve, so a
half-written or stale set of hints never black-holes a zone.
"""

from __future__ import annotations

import pytest

from kubesvc.proxy.model import Endpoint, NodeInfo, ServicePort, slice_view
from kubesvc.proxy.topology import categorize

SP = ServicePort("default", "web", "http", "tcp", 80, "10.0.0.5")


def ep(ip: str, zones: tuple[str, ...] | None, *, ready: bool = True, node: str = "node-2",
       terminating: bool = False) -> Endpoint:
    return Endpoint(ip, 8080, ready=ready, serving=ready or terminating, terminating=terminating,
                    node_name=node, zone_hints=zones)


def ips(eps: tuple[Endpoint, ...]) -> set[str]:
    return {e.ip for e in eps}


@pytest.mark.parametrize(("endpoints", "zone", "want"), [
    pytest.param([ep("a1", ("a",)), ep("b1", ("b",))], "a", {"a1"}, id="hinted: our zone only"),
    pytest.param([ep("a1", ("a",)), ep("b1", ("b",)), ep("b2", ("a",))], "a", {"a1", "b2"},
                 id="an endpoint lent to our zone"),
    pytest.param([ep("ab", ("a", "b")), ep("b1", ("b",))], "a", {"ab"}, id="hinted for several zones"),
    pytest.param([ep("a1", ("a",)), ep("b1", None)], "a", {"a1", "b1"}, id="one ready endpoint without hints: all"),
    pytest.param([ep("a1", ("a",)), ep("b1", ("b",))], "c", {"a1", "b1"}, id="none for our zone: all"),
    pytest.param([ep("a1", ("a",)), ep("b1", ("b",))], "", {"a1", "b1"}, id="node without a zone: all"),
    pytest.param([ep("a1", ("a",)), ep("b1", ("b",)), ep("x", None, ready=False)], "a", {"a1"},
                 id="a not-ready endpoint's missing hints do not matter"),
    pytest.param([ep("a1", None), ep("b1", None)], "a", {"a1", "b1"}, id="no hints anywhere"),
    pytest.param([ep("t1", ("b",), ready=False, terminating=True), ep("t2", None, ready=False, terminating=True)],
                 "a", {"t1", "t2"}, id="nothing ready: serving-terminating ones, hints aside"),
])
def test_cluster_endpoints_follow_zone_hints(endpoints: list[Endpoint], zone: str, want: set[str]) -> None:
    pools = categorize(SP, tuple(endpoints), NodeInfo("node-1", zone=zone))
    assert ips(pools.cluster) == want


def test_hints_do_not_narrow_node_local_traffic() -> None:
    """internal/externalTrafficPolicy Local means this node's endpoints, whatever zone they are hinted for."""
    endpoints = (ep("here", ("b",), node="node-1"), ep("a1", ("a",)))
    pools = categorize(SP, endpoints, NodeInfo("node-1", zone="a"))
    assert ips(pools.local) == {"here"} and ips(pools.cluster) == {"a1"}


@pytest.mark.parametrize(("hints", "want"), [
    ({"forZones": [{"name": "a"}, {"name": "b"}]}, ("a", "b")),
    ({"forZones": []}, None),
    ({"forNodes": [{"name": "node-1"}]}, None),
    (None, None),
])
def test_slice_hints_parsed(hints: dict[str, object] | None, want: tuple[str, ...] | None) -> None:
    e: dict[str, object] = {"addresses": ["10.244.1.5"], "conditions": {"ready": True}}
    if hints is not None:
        e["hints"] = hints
    view = slice_view({"metadata": {"name": "web-1", "namespace": "default",
                                    "labels": {"kubernetes.io/service-name": "web"}},
                       "addressType": "IPv4", "ports": [{"name": "http", "port": 8080}], "endpoints": [e]})
    assert view is not None and view.endpoints[0].zone_hints == want
