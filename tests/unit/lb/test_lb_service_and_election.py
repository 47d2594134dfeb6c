"""The Service view, restart order, node election and the announcement plan (all pure)."""

from __future__ import annotations

import ipaddress
from typing import Any

import pytest

from kubesvc.lb import election
from kubesvc.lb.allocator import AllocationError
from kubesvc.lb.service import OUR_CLASS, ingress, is_ours, requested_ip, restore_order, status_ip, view


def svc(name: str, *, ann: dict[str, str] | None = None, spec: dict[str, Any] | None = None,
        status_ip_: str = "", created: str = "2026-01-01T00:00:00Z") -> dict[str, Any]:
    s: dict[str, Any] = {"type": "LoadBalancer", "ports": [{"port": 80, "protocol": "TCP"}], **(spec or {})}
    st = {"loadBalancer": {"ingress": [{"ip": status_ip_, "ipMode": "VIP"}]}} if status_ip_ else {}
    return {"metadata": {"name": name, "namespace": "ns", "annotations": ann or {}, "creationTimestamp": created},
            "spec": s, "status": st}


@pytest.mark.parametrize(("spec", "ours"), [
    ({}, True),
    ({"loadBalancerClass": OUR_CLASS}, True),
    ({"loadBalancerClass": "example.com/other"}, False),
    ({"type": "NodePort"}, False),
    ({"type": "ClusterIP"}, False),
])
def test_which_services_are_ours(spec: dict[str, Any], ours: bool) -> None:
    """Type LoadBalancer with no class or ours; another class is left to its controller."""
    assert is_ours(svc("a", spec=spec)) is ours


@pytest.mark.parametrize(("ann", "spec", "want"), [
    ({}, {}, None),
    ({}, {"loadBalancerIP": "172.18.255.210"}, "172.18.255.210"),
    ({"kubesvc.io/loadBalancerIPs": "172.18.255.211"}, {"loadBalancerIP": "172.18.255.210"}, "172.18.255.211"),
    ({"metallb.universe.tf/loadBalancerIPs": "fd00::1, 172.18.255.212"}, {}, "172.18.255.212"),
])
def test_requested_address_sources(ann: dict[str, str], spec: dict[str, Any], want: str | None) -> None:
    """Our annotation, then MetalLB's, then spec.loadBalancerIP; the IPv4 entry of a dual list."""
    got = requested_ip(view(svc("a", ann=ann, spec=spec)))
    assert (str(got) if got else None) == want


def test_bad_requested_address_is_an_allocation_error() -> None:
    """A typo in the annotation becomes the Warning event's message."""
    with pytest.raises(AllocationError, match="not an IP address"):
        requested_ip(view(svc("a", ann={"kubesvc.io/loadBalancerIPs": "172.18.255.x"})))


def test_view_builds_the_allocation_request() -> None:
    """Ports, sharing key and (for Local) the selector as backend key."""
    v = view(svc("a", ann={"kubesvc.io/allow-shared-ip": "k", "kubesvc.io/address-pool": "p"},
                 spec={"externalTrafficPolicy": "Local", "selector": {"b": "2", "a": "1"},
                       "ports": [{"port": 53, "protocol": "UDP"}, {"port": 53}]}))
    assert v.request.ports == frozenset({("UDP", 53), ("TCP", 53)})
    assert (v.request.sharing_key, v.request.backend_key, v.request.pool) == ("k", "a=1,b=2", "p")
    assert view(svc("b", spec={"selector": {"a": "1"}})).request.backend_key == ""
    assert ingress(ipaddress.ip_address("1.2.3.4")) == [{"ip": "1.2.3.4", "ipMode": "VIP"}] and ingress(None) == []


def test_restore_order_puts_holders_first_then_oldest() -> None:
    """After a restart, Services with an address in status are re-assigned before anyone allocates."""
    views = [view(svc("new-pending", created="2026-01-03T00:00:00Z")),
             view(svc("old-pending", created="2026-01-01T00:00:00Z")),
             view(svc("holder", status_ip_="172.18.255.205", created="2026-01-02T00:00:00Z")),
             view(svc("other-class", spec={"loadBalancerClass": "x/y"}, status_ip_="172.18.255.200"))]
    assert [v.key for v in restore_order(views)] == ["ns/holder", "ns/old-pending", "ns/new-pending"]
    assert str(status_ip(views[2])) == "172.18.255.205" and status_ip(views[0]) is None


def node(name: str, ip: str, *, ready: bool = True, labels: dict[str, str] | None = None) -> dict[str, Any]:
    return {"metadata": {"name": name, "labels": labels or {}},
            "status": {"conditions": [{"type": "Ready", "status": "True" if ready else "False"}],
                       "addresses": [{"type": "InternalIP", "address": ip}],
                       "daemonEndpoints": {"kubeletEndpoint": {"Port": 10250}}}}


NODES = [election.node_view(node("node-1", "172.18.0.2")), election.node_view(node("node-2", "172.18.0.3")),
         election.node_view(node("node-3", "172.18.0.4", ready=False)),
         election.node_view(node("node-4", "172.18.0.5", labels={election.EXCLUDE_LABEL: ""}))]


def test_node_view_and_eligibility() -> None:
    """Ready, not excluded, with an address, and (when probed) answering."""
    assert NODES[0] == election.NodeView("node-1", "172.18.0.2", True, False, 10250)
    assert election.eligible(NODES) == ["node-1", "node-2"]
    assert election.eligible(NODES, {"node-1"}) == ["node-2"]


def test_elect_is_sticky_deterministic_and_spreads() -> None:
    """The current announcer keeps the address; otherwise a stable hash picks, spreading addresses."""
    cands = ["node-1", "node-2"]
    assert election.elect("172.18.255.200", cands, "node-2") == "node-2"
    first = election.elect("172.18.255.200", cands)
    assert first == election.elect("172.18.255.200", list(reversed(cands)))
    winners = {election.elect(f"172.18.255.{n}", cands) for n in range(200, 230)}
    assert winners == set(cands)
    assert election.elect("172.18.255.200", [], "node-1") is None


def test_ready_endpoint_nodes() -> None:
    """Ready (or unset) endpoints count; not-ready and node-less ones do not."""
    slices = [{"endpoints": [{"nodeName": "node-1", "conditions": {"ready": True}},
                             {"nodeName": "node-2", "conditions": {"ready": False}},
                             {"nodeName": "node-3", "conditions": {}}, {"conditions": {"ready": True}}]}]
    assert election.ready_endpoint_nodes(slices) == {"node-1", "node-3"}


def test_plan_follows_local_endpoints_and_failures() -> None:
    """Local needs a ready endpoint on the node; a node that fails makes the address move."""
    by_ip = {"172.18.255.200": [("ns/cluster", False)], "172.18.255.201": [("ns/local", True)]}
    local = {"ns/local": {"node-2"}}
    plan = election.plan(by_ip, NODES, local, {})
    assert plan["172.18.255.201"] == "node-2"
    current = election.plan(by_ip, NODES, local, {"172.18.255.200": "node-1"})["172.18.255.200"]
    assert current == "node-1"
    moved = election.plan(by_ip, NODES, local, {"172.18.255.200": "node-1"}, {"node-1"})
    assert moved["172.18.255.200"] == "node-2"
    assert "172.18.255.201" not in election.plan(by_ip, NODES, {"ns/local": {"node-3"}}, {})  # not Ready


def test_shared_address_needs_a_node_good_for_every_service() -> None:
    """Two Local Services on one address: the node must hold endpoints of both."""
    by_ip = {"172.18.255.200": [("ns/a", True), ("ns/b", True)]}
    assert election.plan(by_ip, NODES, {"ns/a": {"node-1", "node-2"}, "ns/b": {"node-2"}}, {}) == {
        "172.18.255.200": "node-2"}
    assert election.plan(by_ip, NODES, {"ns/a": {"node-1"}, "ns/b": {"node-2"}}, {}) == {}
