"""Table tests of the zone arithmetic behind topology-aware hints, after upstream's topologycache tests."""

from __future__ import annotations

from typing import Any

import pytest

from kubesvc.controllers.endpointslice.zoneallocation import (
    INSUFFICIENT_NODE_INFO,
    NODES_READY_IN_ONE_ZONE_ONLY,
    Allocation,
    allocate,
    cpu_millis,
    giving_and_receiving,
    service_overloaded,
    zone_cpu_ratios,
)

Obj = dict[str, Any]


def node(name: str, zone: str | None, cpu: str | None = "2", *, ready: bool = True,
         labels: dict[str, str] | None = None) -> Obj:
    lab = dict(labels or {})
    if zone is not None:
        lab["topology.kubernetes.io/zone"] = zone
    status: Obj = {"conditions": [{"type": "Ready", "status": "True" if ready else "False"}]}
    if cpu is not None:
        status["allocatable"] = {"cpu": cpu, "memory": "8Gi"}
    return {"metadata": {"name": name, "labels": lab}, "status": status}


@pytest.mark.parametrize(("quantity", "millis"), [
    ("4", 4000), ("3500m", 3500), ("0.5", 500), ("1e3m", 1000), ("100u", 1), ("2k", 2_000_000),
    ("", 0), (None, 0), ("junk", 0), ("-1", 0), (8, 8000),
])
def test_cpu_millis(quantity: Any, millis: int) -> None:
    assert cpu_millis(quantity) == millis


@pytest.mark.parametrize(("nodes", "want"), [
    pytest.param([node("n1", "a"), node("n2", "b", "2000m")], {"a": 0.5, "b": 0.5}, id="equal cpu"),
    pytest.param([node("n1", "a", "4"), node("n2", "b"), node("n3", "b")], {"a": 0.5, "b": 0.5},
                 id="cpu summed per zone"),
    pytest.param([node("n1", "a", "3"), node("n2", "b", "1")], {"a": 0.75, "b": 0.25}, id="proportional"),
    pytest.param([node("n1", "a"), node("n2", "b"), node("n3", None)], None, id="a node without a zone spoils it"),
    pytest.param([node("n1", "a"), node("n2", "b"), node("n3", "c", None)], None, id="a node without cpu"),
    pytest.param([node("n1", "a"), node("n2", "b"), node("n3", "c", "0")], None, id="a node with zero cpu"),
    pytest.param([node("n1", "a"), node("n2", "b"), node("n3", None, ready=False)], {"a": 0.5, "b": 0.5},
                 id="not-ready nodes do not count"),
    pytest.param([node("n1", "a"), node("n2", "b"), node("n3", "c", ready=False)], {"a": 0.5, "b": 0.5},
                 id="a zone of only not-ready nodes is no zone"),
    pytest.param([node("n1", "a"), node("n2", "b"),
                  node("cp", None, labels={"node-role.kubernetes.io/control-plane": ""})], {"a": 0.5, "b": 0.5},
                 id="control-plane nodes do not count"),
    pytest.param([node("n1", "a"), node("m", "c", "8", labels={"node-role.kubernetes.io/master": ""})],
                 {"a": 1.0}, id="nor do masters; one zone is returned as such"),
    pytest.param([], None, id="no nodes"),
])
def test_zone_cpu_ratios(nodes: list[Obj], want: dict[str, float] | None) -> None:
    assert zone_cpu_ratios(nodes) == want


@pytest.mark.parametrize(("ratios", "endpoints", "want"), [
    pytest.param(None, 10, INSUFFICIENT_NODE_INFO, id="no node info"),
    pytest.param({"a": 1.0}, 10, NODES_READY_IN_ONE_ZONE_ONLY, id="one zone"),
    pytest.param({"a": 0.2, "b": 0.4, "c": 0.4}, 2, "Insufficient number of endpoints (2 endpoints, 3 zones)",
                 id="fewer endpoints than zones"),
    pytest.param({"a": 0.5, "b": 0.5}, 3,
                 "Unable to allocate minimum required endpoints to each zone without exceeding overload threshold "
                 "(3 endpoints, 2 zones)", id="minimums exceed the endpoints"),
    pytest.param({"a": 0.5, "b": 0.5}, 4, {"a": Allocation(2, 2, 2.0), "b": Allocation(2, 2, 2.0)}, id="even"),
    pytest.param({"a": 0.75, "b": 0.25}, 4, {"a": Allocation(3, 3, 3.0), "b": Allocation(1, 1, 1.0)},
                 id="proportional to cpu"),
    pytest.param({"a": 0.2, "b": 0.4, "c": 0.4}, 10,
                 {"a": Allocation(2, 2, 2.0), "b": Allocation(4, 4, 4.0), "c": Allocation(4, 4, 4.0)},
                 id="three zones"),
    pytest.param({"a": 0.5, "b": 0.5}, 20, {"a": Allocation(9, 11, 10.0), "b": Allocation(9, 11, 10.0)},
                 id="room to spare: the maximum takes it"),
    pytest.param({"a": 0.9, "b": 0.1}, 2, "Unable to allocate minimum required endpoints to each zone without "
                 "exceeding overload threshold (2 endpoints, 2 zones)", id="a small zone still needs one"),
    pytest.param({"a": 0.9, "b": 0.1}, 10, {"a": Allocation(8, 9, 9.0), "b": Allocation(1, 2, 1.0)},
                 id="desired never below the minimum"),
])
def test_allocate(ratios: dict[str, float] | None, endpoints: int, want: Any) -> None:
    assert allocate(ratios, endpoints) == want


@pytest.mark.parametrize(("desired", "allocated", "giving", "receiving"), [
    pytest.param({"a": 3.0, "b": 1.0}, {"a": 2, "b": 2}, {"b": 1}, {"a": 1}, id="one moves"),
    pytest.param({"a": 1.5, "b": 1.5}, {"a": 2, "b": 1}, {}, {}, id="half an endpoint is not worth moving"),
    pytest.param({"a": 2.5, "b": 2.5}, {"a": 4, "b": 1}, {"a": 1}, {"b": 1}, id="stops once within a half"),
    pytest.param({"a": 4.0, "b": 4.0, "c": 2.0}, {"a": 6, "b": 2, "c": 2}, {"a": 2}, {"b": 2}, id="to the neediest"),
    pytest.param({"a": 2.0, "b": 2.0}, {"a": 2, "b": 2}, {}, {}, id="balanced"),
])
def test_giving_and_receiving(desired: dict[str, float], allocated: dict[str, int],
                              giving: dict[str, int], receiving: dict[str, int]) -> None:
    allocations = {z: Allocation(0, 100, d) for z, d in desired.items()}
    assert giving_and_receiving(allocations, allocated) == (giving, receiving)


@pytest.mark.parametrize(("allocated", "ratios", "overloaded"), [
    pytest.param({}, {"a": 0.5, "b": 0.5}, False, id="no hints, nothing to overload"),
    pytest.param({"a": 2, "b": 2}, None, True, id="node info gone"),
    pytest.param({"a": 2, "b": 2}, {"a": 0.5, "b": 0.5}, False, id="fits"),
    pytest.param({"a": 3, "b": 1}, {"a": 0.5, "b": 0.5}, True, id="a zone below its minimum"),
    pytest.param({"a": 2, "b": 2}, {"a": 0.4, "b": 0.4, "c": 0.2}, True, id="a new zone has none"),
])
def test_service_overloaded(allocated: dict[str, int], ratios: dict[str, float] | None, overloaded: bool) -> None:
    assert service_overloaded(allocated, ratios) is overloaded
