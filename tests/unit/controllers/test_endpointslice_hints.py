"""Topology-aware hints through the pure reconcile step, after upstream's topologycache and reconciler tests.

A Service annotated ``service.kubernetes.io/topology-mode: Auto`` gets
``hints.forZones`` on its ready endpoints in proportion to each zone's
allocatable CPU, or none at all (with a Warning event saying why).  Each test
reconciles, plays the plan onto a list of slices as the API would, and checks
the hints, the events and that a second pass writes nothing.
"""

from __future__ import annotations

import copy
import itertools
from collections import Counter
from typing import Any

from kubesvc.controllers.endpointslice.reconciler import Plan, Reconciler
from kubesvc.controllers.endpointslice.topologycache import TopologyCache
from kubesvc.testing.endpointfixtures import pod, service

Obj = dict[str, Any]
AUTO = {"service.kubernetes.io/topology-mode": "Auto"}
_names = itertools.count(1)


def node(name: str, zone: str | None, cpu: str = "2", **labels: str) -> Obj:
    lab = dict(labels)
    if zone:
        lab["topology.kubernetes.io/zone"] = zone
    return {"metadata": {"name": name, "labels": lab, "resourceVersion": "1"},
            "status": {"allocatable": {"cpu": cpu}, "conditions": [{"type": "Ready", "status": "True"}]}}


def cluster(*nodes: Obj) -> tuple[dict[str, Obj], TopologyCache]:
    topo = TopologyCache()
    topo.set_nodes(nodes)
    return {n["metadata"]["name"]: n for n in nodes}, topo


def svc(annotations: dict[str, str] | None = AUTO, **kw: Any) -> Obj:
    s = service(**kw)
    s["metadata"]["annotations"] = dict(annotations or {})
    s["metadata"]["resourceVersion"] = str(next(_names))
    return s


def pods_on(*nodes: str, ready: bool = True) -> list[Obj]:
    return [pod(i, node=n, ready=ready) for i, n in enumerate(nodes, 1)]


def apply(slices: list[Obj], plan: Plan) -> list[Obj]:
    by_name = {s["metadata"]["name"]: s for s in slices}
    for s in plan.delete:
        del by_name[s["metadata"]["name"]]
    for s in [*plan.update, *plan.create]:
        s = copy.deepcopy(s)
        s["metadata"].setdefault("name", s["metadata"].get("generateName", "") + str(next(_names)))
        s["metadata"]["resourceVersion"] = str(next(_names))
        by_name[s["metadata"]["name"]] = s
    return list(by_name.values())


def hints(slices: list[Obj]) -> dict[str, str | None]:
    """Pod name -> the one zone it is hinted for (None: no hints)."""
    out: dict[str, str | None] = {}
    for s in slices:
        for ep in s["endpoints"]:
            zones = (ep.get("hints") or {}).get("forZones")
            out[ep["targetRef"]["name"]] = zones[0]["name"] if zones else None
    return out


def events(plan: Plan) -> list[tuple[str, str, str]]:
    return [(e.type, e.reason, e.message) for e in plan.events]


def sync(r: Reconciler, s: Obj, pods: list[Obj], slices: list[Obj], nodes: dict[str, Obj]) -> tuple[list[Obj], Plan]:
    plan = r.reconcile(s, pods, slices, nodes)
    return apply(slices, plan), plan


def settled(r: Reconciler, s: Obj, pods: list[Obj], slices: list[Obj], nodes: dict[str, Obj]) -> None:
    again = r.reconcile(s, pods, slices, nodes)
    assert again.writes == 0 and not again.events, f"not converged: {again}"


ENABLED = ("Normal", "TopologyAwareHintsEnabled", "Topology Aware Hints has been enabled, addressType: IPv4")


def test_even_zones_hint_each_endpoint_for_its_own_zone() -> None:
    nodes, topo = cluster(node("node-1", "zone-a"), node("node-2", "zone-b"))
    r, s = Reconciler(topology=topo), svc()
    pods = pods_on("node-1", "node-1", "node-2", "node-2")
    slices, plan = sync(r, s, pods, [], nodes)
    assert hints(slices) == {"pod-1": "zone-a", "pod-2": "zone-a", "pod-3": "zone-b", "pod-4": "zone-b"}
    assert events(plan) == [ENABLED]
    assert plan.topology == "Auto"
    settled(r, s, pods, slices, nodes)


def test_hints_follow_cpu_not_pods() -> None:
    """zone-a has 3/4 of the CPU: it is given 3 of the 4 endpoints, one of them from zone-b."""
    nodes, topo = cluster(node("node-1", "zone-a", "3"), node("node-2", "zone-b", "1"))
    r, s = Reconciler(topology=topo), svc()
    pods = pods_on("node-1", "node-1", "node-2", "node-2")
    slices, _ = sync(r, s, pods, [], nodes)
    got = hints(slices)
    assert Counter(got.values()) == {"zone-a": 3, "zone-b": 1}
    assert got["pod-1"] == got["pod-2"] == "zone-a"  # zone-a's own stay home
    settled(r, s, pods, slices, nodes)


def test_the_older_annotation_works_and_topology_mode_decides_when_both_are_set() -> None:
    nodes, topo = cluster(node("node-1", "zone-a"), node("node-2", "zone-b"))
    pods = pods_on("node-1", "node-2")
    old = svc({"service.kubernetes.io/topology-aware-hints": "auto"})
    slices, _ = sync(Reconciler(topology=TopologyCache()), old, pods, [], nodes)
    assert set(hints(slices).values()) == {None}  # no node facts in that cache: none given
    slices, _ = sync(Reconciler(topology=topo), old, pods, [], nodes)
    assert hints(slices) == {"pod-1": "zone-a", "pod-2": "zone-b"}
    both = svc({"service.kubernetes.io/topology-mode": "Disabled", "service.kubernetes.io/topology-aware-hints": "auto"})
    slices, plan = sync(Reconciler(topology=TopologyCache()), both, pods, [], nodes)
    assert set(hints(slices).values()) == {None} and plan.topology == "Disabled" and not plan.events


def test_too_few_endpoints_no_hints_and_a_warning() -> None:
    nodes, topo = cluster(node("node-1", "zone-a"), node("node-2", "zone-b"))
    r, s = Reconciler(topology=topo), svc()
    slices, plan = sync(r, s, pods_on("node-1"), [], nodes)
    assert hints(slices) == {"pod-1": None}
    assert events(plan) == [("Warning", "TopologyAwareHintsDisabled",
                             "Insufficient number of endpoints (1 endpoints, 2 zones), addressType: IPv4")]


def test_overload_threshold_refuses_lopsided_zones() -> None:
    nodes, topo = cluster(node("node-1", "zone-a"), node("node-2", "zone-b"))
    r, s = Reconciler(topology=topo), svc()
    slices, plan = sync(r, s, pods_on("node-1", "node-1", "node-2"), [], nodes)
    assert set(hints(slices).values()) == {None}
    assert events(plan)[0][2].startswith("Unable to allocate minimum required endpoints to each zone")


def test_a_node_without_zone_or_cpu_means_no_hints() -> None:
    nodes, topo = cluster(node("node-1", "zone-a"), node("node-2", "zone-b"), node("node-3", None))
    slices, plan = sync(Reconciler(topology=topo), svc(), pods_on("node-1", "node-2"), [], nodes)
    assert set(hints(slices).values()) == {None}
    assert events(plan) == [("Warning", "TopologyAwareHintsDisabled",
                             "Insufficient Node information: allocatable CPU or zone not specified on one or more "
                             "nodes, addressType: IPv4")]


def test_one_zone_only() -> None:
    nodes, topo = cluster(node("node-1", "zone-a"), node("node-2", "zone-a"))
    _, plan = sync(Reconciler(topology=topo), svc(), pods_on("node-1", "node-2"), [], nodes)
    assert events(plan) == [("Warning", "TopologyAwareHintsDisabled",
                             "Nodes only ready in one zone, addressType: IPv4")]


def test_an_endpoint_without_zone_means_no_hints() -> None:
    """A pod on a control-plane node (not counted, no zone) has an endpoint with no zone."""
    cp = node("cp", None, **{"node-role.kubernetes.io/control-plane": ""})
    nodes, topo = cluster(node("node-1", "zone-a"), node("node-2", "zone-b"), cp)
    pods = pods_on("node-1", "node-1", "node-1", "node-2", "node-2", "node-2", "cp")
    slices, plan = sync(Reconciler(topology=topo), svc(), pods, [], nodes)
    assert set(hints(slices).values()) == {None}
    assert events(plan) == [("Warning", "TopologyAwareHintsDisabled",
                             "One or more endpoints do not have a zone specified, addressType: IPv4")]


def test_not_ready_endpoints_get_no_hints_and_do_not_count() -> None:
    nodes, topo = cluster(node("node-1", "zone-a"), node("node-2", "zone-b"))
    pods = [*pods_on("node-1", "node-2"), pod(3, node="node-1", ready=False)]
    slices, _ = sync(Reconciler(topology=topo), svc(), pods, [], nodes)
    assert hints(slices) == {"pod-1": "zone-a", "pod-2": "zone-b", "pod-3": None}


def test_hints_come_off_when_the_annotation_goes() -> None:
    nodes, topo = cluster(node("node-1", "zone-a"), node("node-2", "zone-b"))
    r = Reconciler(topology=topo)
    pods = pods_on("node-1", "node-2")
    slices, _ = sync(r, svc(), pods, [], nodes)
    plain = svc(None)
    slices, plan = sync(r, plain, pods, slices, nodes)
    assert hints(slices) == {"pod-1": None, "pod-2": None}
    assert len(plan.update) == 1
    assert events(plan) == [("Warning", "TopologyAwareHintsDisabled",
                             "Topology Aware Hints has been disabled, addressType: IPv4")]
    settled(r, plain, pods, slices, nodes)


def test_hints_come_off_when_they_can_no_longer_be_given() -> None:
    """Pods go until fewer endpoints than zones are left: the untouched slice is rewritten without hints."""
    nodes, topo = cluster(node("node-1", "zone-a"), node("node-2", "zone-b"))
    r, s = Reconciler(max_endpoints_per_slice=2, topology=topo), svc()
    pods = pods_on("node-1", "node-2", "node-1", "node-2")
    slices, _ = sync(r, s, pods, [], nodes)
    assert len(slices) == 2 and None not in hints(slices).values()
    slices, plan = sync(r, s, pods[:1], slices, nodes)
    assert hints(slices) == {"pod-1": None}
    assert events(plan)[0][1] == "TopologyAwareHintsDisabled"
    settled(r, s, pods[:1], slices, nodes)


def test_valid_hints_in_untouched_slices_stay_untouched() -> None:
    """Adding one pod per zone writes only the slice that takes them."""
    nodes, topo = cluster(node("node-1", "zone-a"), node("node-2", "zone-b"))
    r, s = Reconciler(max_endpoints_per_slice=2, topology=topo), svc()
    pods = pods_on("node-1", "node-2", "node-1", "node-2")
    slices, _ = sync(r, s, pods, [], nodes)
    more = [*pods, pod(5, node="node-1"), pod(6, node="node-2")]
    slices, plan = sync(r, s, more, slices, nodes)
    assert plan.writes == 1 and len(plan.create) == 1 and not plan.events
    assert Counter(hints(slices).values()) == {"zone-a": 3, "zone-b": 3}
    settled(r, s, more, slices, nodes)


def test_hints_that_no_longer_fit_are_reallocated() -> None:
    """zone-b's CPU doubles: an unchanged slice's hints now overload zone-a's share and are redone."""
    r_nodes, topo = cluster(node("node-1", "zone-a"), node("node-2", "zone-b"))
    r, s = Reconciler(topology=topo), svc()
    pods = pods_on("node-1", "node-1", "node-1", "node-2", "node-2", "node-2")
    slices, _ = sync(r, s, pods, [], r_nodes)
    assert Counter(hints(slices).values()) == {"zone-a": 3, "zone-b": 3}
    bigger = [node("node-1", "zone-a", "1"), node("node-2", "zone-b", "2")]
    topo.set_nodes(bigger)
    assert topo.overloaded_services() == ["default/web"]
    slices, plan = sync(r, s, pods, slices, {n["metadata"]["name"]: n for n in bigger})
    assert Counter(hints(slices).values()) == {"zone-a": 2, "zone-b": 4}
    assert topo.overloaded_services() == []


def test_a_new_zone_overloads_every_hinted_service() -> None:
    nodes, topo = cluster(node("node-1", "zone-a"), node("node-2", "zone-b"))
    r, s = Reconciler(topology=topo), svc()
    sync(r, s, pods_on("node-1", "node-2"), [], nodes)
    assert topo.overloaded_services() == []
    assert topo.set_nodes([*nodes.values(), node("node-3", "zone-c")]) is True
    assert topo.overloaded_services() == ["default/web"]


def test_topology_mode_wins_over_traffic_distribution() -> None:
    nodes, topo = cluster(node("node-1", "zone-a", "3"), node("node-2", "zone-b", "1"))
    s = svc(traffic="PreferClose")
    slices, plan = sync(Reconciler(topology=topo), s, pods_on("node-1", "node-1", "node-2", "node-2"), [], nodes)
    assert Counter(hints(slices).values()) == {"zone-a": 3, "zone-b": 1}  # allocated, not each its own zone
    assert plan.traffic_distribution == "" and plan.topology == "Auto"


def test_without_a_topology_cache_auto_gives_no_hints_and_removes_old_ones() -> None:
    nodes, topo = cluster(node("node-1", "zone-a"), node("node-2", "zone-b"))
    pods = pods_on("node-1", "node-2")
    slices, _ = sync(Reconciler(topology=topo), svc(), pods, [], nodes)
    r = Reconciler()
    slices, plan = sync(r, svc(), pods, slices, nodes)
    assert hints(slices) == {"pod-1": None, "pod-2": None} and plan.topology == "Disabled"
    settled(r, svc(), pods, slices, nodes)


def test_cached_endpoints_are_never_edited() -> None:
    """Hints go on copies: the slices handed in (informer cache objects) stay as they were."""
    nodes, topo = cluster(node("node-1", "zone-a", "3"), node("node-2", "zone-b", "1"))
    r, s = Reconciler(topology=topo), svc()
    pods = pods_on("node-1", "node-1", "node-2", "node-2")
    slices, _ = sync(r, s, pods, [], nodes)
    frozen = copy.deepcopy(slices)
    r.reconcile(svc(None), pods, slices, nodes)
    topo.set_nodes([node("node-1", "zone-a"), node("node-2", "zone-b", "3")])
    r.reconcile(s, pods, slices, nodes)
    assert slices == frozen


def test_sync_stats_for_metrics() -> None:
    nodes, topo = cluster(node("node-1", "zone-a"), node("node-2", "zone-b"))
    r, s = Reconciler(max_endpoints_per_slice=2, topology=topo), svc()
    pods = pods_on("node-1", "node-2", "node-1")
    slices, plan = sync(r, s, pods, [], nodes)
    (st,) = plan.stats
    assert (st.address_type, st.added, st.removed, st.slices_changed) == ("IPv4", 3, 0, 2)
    assert list(st.efficiency.values()) == [(3, 2)]
    slices, plan = sync(r, s, pods[:1], slices, nodes)
    (st,) = plan.stats
    assert (st.added, st.removed) == (0, 2)
    slices, plan = sync(r, s, [], slices, nodes)
    assert plan.stats[0].efficiency == {(): (0, 1)}  # the placeholder
