"""Table tests of the pure EndpointSlice reconcile step, after upstream's reconciler_test.go.

Each test builds a Service, pods, nodes and existing slices as plain dicts,
asks the reconciler for a plan, and checks the writes: how many, which slices,
what they hold.  ``apply`` plays a plan onto a list of slices (as the API
would) so tests can check convergence: a second reconcile writes nothing.
"""

from __future__ import annotations

import copy
import itertools
from typing import Any

import pytest

from kubesvc.client.informer import Store
from kubesvc.controllers.endpointslice.index import (
    POD_INDEXERS,
    SERVICE_INDEXERS,
    pods_for_service,
    services_for_pod,
    services_to_sync,
)
from kubesvc.controllers.endpointslice.model import (
    ANNOTATION_TRIGGER_TIME,
    LABEL_HEADLESS,
    LABEL_MANAGED_BY,
    LABEL_SERVICE_NAME,
)
from kubesvc.controllers.endpointslice.ownwrites import OwnWrites
from kubesvc.controllers.endpointslice.reconciler import Plan, Reconciler
from kubesvc.controllers.endpointslice.triggertime import TriggerTimeTracker
from kubesvc.testing.endpointfixtures import NODES, SVC_UID, pod, service

Obj = dict[str, Any]
_names = itertools.count(1)


def apply(slices: list[Obj], plan: Plan) -> list[Obj]:
    """What the API would hold after the plan: creates get names, updates replace, deletes go."""
    by_name = {s["metadata"]["name"]: s for s in slices}
    for s in plan.delete:
        del by_name[s["metadata"]["name"]]
    for s in plan.update:
        assert s["metadata"]["name"] in by_name, "update of a slice that does not exist"
        by_name[s["metadata"]["name"]] = _stored(s)
    for s in plan.create:
        assert "name" not in s["metadata"]
        s = _stored(s)
        s["metadata"]["name"] = s["metadata"]["generateName"] + str(next(_names))
        by_name[s["metadata"]["name"]] = s
    return list(by_name.values())


def _stored(s: Obj) -> Obj:
    out = copy.deepcopy(s)
    rv = int(out["metadata"].get("resourceVersion") or 0)
    out["metadata"]["resourceVersion"] = str(rv + 1)
    return out


def converge(r: Reconciler, svc: Obj, pods: list[Obj], slices: list[Obj] | None = None) -> list[Obj]:
    """Reconcile until the plan is empty (at most twice: one write round, then nothing)."""
    slices = slices or []
    plan = r.reconcile(svc, pods, slices, NODES)
    slices = apply(slices, plan)
    again = r.reconcile(svc, pods, slices, NODES)
    assert again.writes == 0, f"not converged: {again}"
    return slices


def addrs(s: Obj) -> list[str]:
    return [a for e in s["endpoints"] for a in e["addresses"]]


# ---------------------------------------------------------------- placeholder

def test_no_pods_gives_one_empty_placeholder() -> None:
    """A selector that matches nothing still yields one slice, with no ports and no endpoints."""
    plan = Reconciler().reconcile(service(), [], [], NODES)
    assert (len(plan.create), len(plan.update), len(plan.delete)) == (1, 0, 0)
    s = plan.create[0]
    assert s["ports"] == [] and s["endpoints"] == [] and s["addressType"] == "IPv4"
    assert s["metadata"]["generateName"] == "web-"
    assert s["metadata"]["labels"] == {LABEL_SERVICE_NAME: "web",
                                       LABEL_MANAGED_BY: "endpointslice-controller.k8s.io"}
    assert s["metadata"]["ownerReferences"] == [{"apiVersion": "v1", "kind": "Service", "name": "web",
                                                 "uid": SVC_UID, "controller": True, "blockOwnerDeletion": True}]


def test_existing_placeholder_is_kept() -> None:
    r = Reconciler()
    converge(r, service(), [])


def test_placeholder_is_reused_when_pods_appear() -> None:
    """The first endpoint goes into the placeholder: one update, no create and delete."""
    r = Reconciler()
    slices = converge(r, service(), [])
    plan = r.reconcile(service(), [pod(1)], slices, NODES)
    assert (len(plan.create), len(plan.update), len(plan.delete)) == (0, 1, 0)
    assert plan.update[0]["metadata"]["name"] == slices[0]["metadata"]["name"]
    assert plan.update[0]["ports"] == [{"name": "http", "port": 8080, "protocol": "TCP"}]


def test_last_pod_gone_turns_slice_back_into_placeholder() -> None:
    r = Reconciler()
    slices = converge(r, service(), [pod(1)])
    plan = r.reconcile(service(), [], slices, NODES)
    assert (len(plan.create), len(plan.update), len(plan.delete)) == (0, 1, 0)
    assert plan.update[0]["endpoints"] == [] and plan.update[0]["ports"] == []


# ---------------------------------------------------------------- endpoint fields

def test_endpoint_fields() -> None:
    """Addresses, conditions, targetRef, nodeName and zone come from the pod and its node."""
    plan = Reconciler().reconcile(service(), [pod(1, node="node-2")], [], NODES)
    (ep,) = plan.create[0]["endpoints"]
    assert ep == {"addresses": ["10.244.0.2"],
                  "conditions": {"ready": True, "serving": True, "terminating": False},
                  "targetRef": {"kind": "Pod", "namespace": "default", "name": "pod-1", "uid": "uid-1"},
                  "nodeName": "node-2", "zone": "zone-b"}


@pytest.mark.parametrize(("ready", "terminating", "publish", "want"), [
    (True, False, False, (True, True, False)),
    (False, False, False, (False, False, False)),
    (True, True, False, (False, True, True)),
    (False, True, False, (False, False, True)),
    (False, False, True, (True, False, False)),
    (True, True, True, (True, True, True)),
])
def test_conditions(ready: bool, terminating: bool, publish: bool, want: tuple[bool, bool, bool]) -> None:
    """ready = publishNotReadyAddresses or (serving and not terminating); serving = pod Ready."""
    plan = Reconciler().reconcile(service(publish=publish), [pod(1, ready=ready, terminating=terminating)], [], NODES)
    c = plan.create[0]["endpoints"][0]["conditions"]
    assert (c["ready"], c["serving"], c["terminating"]) == want


@pytest.mark.parametrize("p", [
    pod(1, ip=""), pod(1, phase="Succeeded"), pod(1, phase="Failed"), pod(1, labels={"app": "web"}, ip=""),
])
def test_pods_left_out(p: Obj) -> None:
    """No IP yet, or finished: no endpoint (the Service gets the placeholder)."""
    plan = Reconciler().reconcile(service(), [p], [], NODES)
    assert len(plan.create) == 1 and plan.create[0]["endpoints"] == []


@pytest.mark.parametrize(("hostname", "subdomain", "want"), [
    ("h1", "web", "h1"), ("h1", "other", None), ("", "web", None),
])
def test_hostname_only_when_subdomain_names_the_service(hostname: str, subdomain: str, want: str | None) -> None:
    plan = Reconciler().reconcile(service(), [pod(1, hostname=hostname, subdomain=subdomain)], [], NODES)
    assert plan.create[0]["endpoints"][0].get("hostname") == want


def test_node_not_found_skips_pod_and_reports() -> None:
    plan = Reconciler().reconcile(service(), [pod(1, node="gone"), pod(2)], [], NODES)
    assert addrs(plan.create[0]) == ["10.244.0.3"]
    assert plan.errors == ["skipping Pod pod-1 for Service default/web: Node gone Not Found"]


def test_node_not_found_kept_with_publish_not_ready() -> None:
    plan = Reconciler().reconcile(service(publish=True), [pod(1, node="gone")], [], NODES)
    assert addrs(plan.create[0]) == ["10.244.0.2"] and not plan.errors
    assert "zone" not in plan.create[0]["endpoints"][0]


def test_prefer_close_sets_zone_hints_on_ready_endpoints() -> None:
    plan = Reconciler().reconcile(service(traffic="PreferClose"), [pod(1), pod(2, ready=False)], [], NODES)
    eps = {e["targetRef"]["name"]: e for e in plan.create[0]["endpoints"]}
    assert eps["pod-1"]["hints"] == {"forZones": [{"name": "zone-a"}]}
    assert "hints" not in eps["pod-2"]


def test_ipv6_service_takes_ipv6_addresses_only() -> None:
    p = pod(1)
    p["status"]["podIPs"] = [{"ip": "10.244.0.2"}, {"ip": "fd00::2"}]
    plan = Reconciler().reconcile(service(families=["IPv6"], cluster_ip="fd00:10::20"), [p], [], NODES)
    assert plan.create[0]["addressType"] == "IPv6" and addrs(plan.create[0]) == ["fd00::2"]


def test_dual_stack_gives_a_slice_per_family() -> None:
    p = pod(1)
    p["status"]["podIPs"] = [{"ip": "10.244.0.2"}, {"ip": "fd00::2"}]
    plan = Reconciler().reconcile(service(families=["IPv4", "IPv6"]), [p], [], NODES)
    assert sorted((s["addressType"], tuple(addrs(s))) for s in plan.create) == [
        ("IPv4", ("10.244.0.2",)), ("IPv6", ("fd00::2",))]


# ---------------------------------------------------------------- ports

NAMED = [{"name": "http", "port": 80, "targetPort": "web", "protocol": "TCP"}]


def test_named_target_port_resolving_differently_splits_slices() -> None:
    """Pods whose named port is 3000 or 3001 go to two slices; a pod without the name gets no ports."""
    pods = [pod(1, ports=[{"name": "web", "containerPort": 3000, "protocol": "TCP"}]),
            pod(2, ports=[{"name": "web", "containerPort": 3001, "protocol": "TCP"}]),
            pod(3, ports=[{"name": "web", "containerPort": 3000, "protocol": "TCP"}]),
            pod(4, ports=[{"name": "other", "containerPort": 9, "protocol": "TCP"}])]
    plan = Reconciler().reconcile(service(ports=NAMED), pods, [], NODES)
    got = sorted((tuple(p["port"] for p in s["ports"]), tuple(sorted(addrs(s)))) for s in plan.create)
    assert got == [((), ("10.244.0.5",)), ((3000,), ("10.244.0.2", "10.244.0.4")), ((3001,), ("10.244.0.3",))]


def test_named_target_port_matches_protocol_too() -> None:
    udp = [{"name": "dns", "port": 53, "targetPort": "dns", "protocol": "UDP"}]
    p = pod(1, ports=[{"name": "dns", "containerPort": 5353, "protocol": "TCP"},
                      {"name": "dns", "containerPort": 5354, "protocol": "UDP"}])
    plan = Reconciler().reconcile(service(ports=udp), [p], [], NODES)
    assert plan.create[0]["ports"] == [{"name": "dns", "port": 5354, "protocol": "UDP"}]


def test_headless_without_ports() -> None:
    svc = service(ports=[], cluster_ip="None")
    plan = Reconciler().reconcile(svc, [pod(1)], [], NODES)
    s = plan.create[0]
    assert s["ports"] == [] and addrs(s) == ["10.244.0.2"]
    assert s["metadata"]["labels"][LABEL_HEADLESS] == ""


def test_ports_change_rewrites_slice_in_place() -> None:
    """A targetPort change moves every endpoint to a new port group: recycled as one update."""
    r = Reconciler()
    slices = converge(r, service(), [pod(1), pod(2)])
    svc2 = service(ports=[{"name": "http", "port": 80, "targetPort": 9090, "protocol": "TCP"}])
    plan = r.reconcile(svc2, [pod(1), pod(2)], slices, NODES)
    assert (len(plan.create), len(plan.update), len(plan.delete)) == (0, 1, 0)
    assert plan.update[0]["ports"][0]["port"] == 9090 and len(plan.update[0]["endpoints"]) == 2


# ---------------------------------------------------------------- placement and churn

def test_250_pods_make_three_slices() -> None:
    slices = converge(Reconciler(), service(), [pod(i) for i in range(250)])
    assert sorted(len(s["endpoints"]) for s in slices) == [50, 100, 100]


def test_1000_pods_make_ten_full_slices_and_one_flip_is_one_update() -> None:
    r = Reconciler()
    pods = [pod(i) for i in range(1000)]
    slices = converge(r, service(), pods)
    assert [len(s["endpoints"]) for s in slices] == [100] * 10
    pods[417] = pod(417, ready=False)
    plan = r.reconcile(service(), pods, slices, NODES)
    assert (len(plan.create), len(plan.update), len(plan.delete)) == (0, 1, 0)
    flipped = [e for e in plan.update[0]["endpoints"] if e["targetRef"]["name"] == "pod-417"]
    assert flipped[0]["conditions"]["ready"] is False


def test_max_endpoints_per_slice_is_a_constructor_argument() -> None:
    slices = converge(Reconciler(max_endpoints_per_slice=3), service(), [pod(i) for i in range(7)])
    assert sorted(len(s["endpoints"]) for s in slices) == [1, 3, 3]


def test_readiness_flip_updates_in_place() -> None:
    r = Reconciler()
    slices = converge(r, service(), [pod(1), pod(2)])
    plan = r.reconcile(service(), [pod(1, ready=False), pod(2)], slices, NODES)
    assert (len(plan.create), len(plan.update), len(plan.delete)) == (0, 1, 0)
    assert plan.update[0]["metadata"]["resourceVersion"] == slices[0]["metadata"]["resourceVersion"]


def test_pod_resource_version_alone_changes_nothing() -> None:
    r = Reconciler()
    slices = copy.deepcopy(converge(r, service(), [pod(1)]))
    slices[0]["endpoints"][0]["targetRef"]["resourceVersion"] = "99"
    assert r.reconcile(service(), [pod(1)], slices, NODES).writes == 0


def test_new_endpoints_fill_the_slice_closest_to_full() -> None:
    """Existing slices of 95 and 40; 5 new endpoints fit the 95 one exactly (upstream's getSliceToFill)."""
    r = Reconciler()
    a = converge(r, service(), [pod(i) for i in range(95)])
    b = converge(r, service(), [pod(i) for i in range(1000, 1040)])
    pods = [pod(i) for i in [*range(95), *range(1000, 1040), *range(2000, 2005)]]
    plan = r.reconcile(service(), pods, a + b, NODES)
    assert (len(plan.create), len(plan.update), len(plan.delete)) == (0, 1, 0)
    assert plan.update[0]["metadata"]["name"] == a[0]["metadata"]["name"]
    assert len(plan.update[0]["endpoints"]) == 100


def test_new_endpoints_go_first_to_a_slice_already_being_updated() -> None:
    r = Reconciler()
    a = converge(r, service(), [pod(i) for i in range(10)])
    b = converge(r, service(), [pod(i) for i in range(1000, 1090)])
    # a pod leaves slice b (which must be written anyway): the new pod joins b, not a
    pods = [pod(i) for i in [*range(10), *range(1000, 1089), 3000]]
    plan = r.reconcile(service(), pods, a + b, NODES)
    assert (len(plan.create), len(plan.update), len(plan.delete)) == (0, 1, 0)
    assert plan.update[0]["metadata"]["name"] == b[0]["metadata"]["name"]


def test_emptied_slice_is_deleted_not_rewritten() -> None:
    r = Reconciler()
    a = converge(r, service(), [pod(i) for i in range(5)])
    b = converge(r, service(), [pod(i) for i in range(100, 105)])
    plan = r.reconcile(service(), [pod(i) for i in range(5)], a + b, NODES)
    assert (len(plan.create), len(plan.update), len(plan.delete)) == (0, 0, 1)
    assert plan.delete[0]["metadata"]["name"] == b[0]["metadata"]["name"]


# ---------------------------------------------------------------- repair, ownership, labels

def test_hand_edited_endpoints_are_repaired() -> None:
    r = Reconciler()
    slices = copy.deepcopy(converge(r, service(), [pod(1)]))  # an edit arrives as a new object
    slices[0]["endpoints"].append({"addresses": ["1.2.3.4"], "conditions": {"ready": True}})
    slices[0]["endpoints"][0]["conditions"]["ready"] = False
    plan = r.reconcile(service(), [pod(1)], slices, NODES)
    assert len(plan.update) == 1 and addrs(plan.update[0]) == ["10.244.0.2"]
    assert plan.update[0]["endpoints"][0]["conditions"]["ready"] is True


def test_hand_edited_ports_are_repaired_by_update() -> None:
    r = Reconciler()
    slices = copy.deepcopy(converge(r, service(), [pod(1)]))
    slices[0]["ports"] = [{"name": "x", "port": 1, "protocol": "TCP"}]
    plan = r.reconcile(service(), [pod(1)], slices, NODES)
    assert (len(plan.create), len(plan.update), len(plan.delete)) == (0, 1, 0)
    assert plan.update[0]["ports"] == [{"name": "http", "port": 8080, "protocol": "TCP"}]


def test_slices_of_another_owner_are_deleted() -> None:
    """A slice left by an earlier Service of the same name (other UID) is deleted, never reused."""
    old = converge(Reconciler(), service(uid="old-uid"), [pod(1)])
    plan = Reconciler().reconcile(service(), [pod(1)], old, NODES)
    assert (len(plan.create), len(plan.update), len(plan.delete)) == (1, 0, 1)


def test_slices_of_a_dropped_address_type_are_deleted() -> None:
    r = Reconciler()
    v6 = converge(r, service(families=["IPv6"], cluster_ip="fd00::1"), [])
    plan = r.reconcile(service(), [pod(1)], v6, NODES)
    assert [s["addressType"] for s in plan.delete] == ["IPv6"] and len(plan.create) == 1


def test_service_labels_are_copied_and_reserved_ones_ignored() -> None:
    r = Reconciler()
    svc = service(labels={"team": "a", LABEL_SERVICE_NAME: "spoof"})
    slices = converge(r, svc, [pod(1)])
    assert slices[0]["metadata"]["labels"] == {"team": "a", LABEL_SERVICE_NAME: "web",
                                               LABEL_MANAGED_BY: "endpointslice-controller.k8s.io"}
    plan = r.reconcile(service(labels={"team": "b"}), [pod(1)], slices, NODES)
    assert len(plan.update) == 1 and plan.update[0]["metadata"]["labels"]["team"] == "b"


def test_no_creates_while_service_is_being_deleted() -> None:
    svc = service()
    svc["metadata"]["deletionTimestamp"] = "2024-01-01T00:02:00Z"
    assert Reconciler().reconcile(svc, [pod(1)], [], NODES).create == []


def test_trigger_time_is_stamped_on_writes_only() -> None:
    r = Reconciler()
    plan = r.reconcile(service(), [pod(1)], [], NODES, trigger_time="2024-01-01T00:00:10Z")
    assert plan.create[0]["metadata"]["annotations"] == {ANNOTATION_TRIGGER_TIME: "2024-01-01T00:00:10Z"}
    slices = apply([], plan)
    plan = r.reconcile(service(), [pod(1, ready=False)], slices, NODES)
    assert ANNOTATION_TRIGGER_TIME not in plan.update[0]["metadata"]["annotations"]


def test_cached_slices_are_never_mutated() -> None:
    r = Reconciler()
    slices = converge(r, service(labels={"a": "1"}), [pod(i) for i in range(3)])
    frozen = copy.deepcopy(slices)
    r.reconcile(service(labels={"a": "2"}), [pod(i) for i in range(5)], slices, NODES)
    assert slices == frozen


# ---------------------------------------------------------------- trigger time and index

def test_trigger_time_is_the_earliest_change_since_last_sync() -> None:
    t = TriggerTimeTracker()
    svc = service()
    pods = [pod(1, ready_at="2024-01-01T00:00:05Z"), pod(2, ready_at="2024-01-01T00:00:07Z")]
    assert t.compute("default/web", svc, pods) == "2024-01-01T00:00:00Z"  # first sync: the Service's creation
    assert t.compute("default/web", svc, pods) == ""  # nothing moved
    pods[1] = pod(2, ready=False, ready_at="2024-01-01T00:00:09Z")
    pods.append(pod(3, ready_at="2024-01-01T00:00:08Z"))
    assert t.compute("default/web", svc, pods) == "2024-01-01T00:00:08Z"


def _stores(services: list[Obj], pods: list[Obj]) -> tuple[Store, Store]:
    ss, ps = Store(SERVICE_INDEXERS), Store(POD_INDEXERS)
    for s in services:
        ss.put(s)
    for p in pods:
        ps.put(p)
    return ss, ps


def test_pod_finds_only_its_services_by_index() -> None:
    svcs = [service("web", selector={"app": "web"}), service("api", selector={"app": "api"}),
            service("both", selector={"app": "web", "tier": "front"}), service("none", selector={})]
    ss, ps = _stores(svcs, [pod(1, labels={"app": "web", "tier": "front"}), pod(2, labels={"app": "api"})])
    assert services_for_pod(ss, pod(1, labels={"app": "web", "tier": "front"})) == {"default/web", "default/both"}
    assert [p["metadata"]["name"] for p in pods_for_service(ps, svcs[2])] == ["pod-1"]
    assert pods_for_service(ps, svcs[3]) == []


def test_pod_update_syncs_services_only_when_endpoints_can_change() -> None:
    ss, _ = _stores([service("web", selector={"app": "web"}), service("api", selector={"app": "api"})], [])
    old = pod(1)
    new = copy.deepcopy(old)
    new["metadata"]["resourceVersion"] = "2"
    new["metadata"]["annotations"] = {"x": "y"}
    assert services_to_sync(ss, old, new) == set()
    flipped = copy.deepcopy(new)
    flipped["status"]["conditions"][0]["status"] = "False"
    assert services_to_sync(ss, old, flipped) == {"default/web"}
    moved = copy.deepcopy(new)
    moved["metadata"]["labels"] = {"app": "api"}
    assert services_to_sync(ss, old, moved) == {"default/web", "default/api"}


def _versioned(pods: list[Obj], rv: int = 10) -> list[Obj]:
    for i, p in enumerate(pods):
        p["metadata"]["resourceVersion"] = str(rv + i)
    return pods


def test_memo_reuses_unchanged_pods_and_recomputes_changed_ones() -> None:
    """With resourceVersions, a sync recomputes only pods (or nodes) whose version moved."""
    r = Reconciler()
    svc = service()
    svc["metadata"]["resourceVersion"] = "5"
    nodes = copy.deepcopy(NODES)
    nodes["node-1"]["metadata"]["resourceVersion"] = "1"
    pods = _versioned([pod(i) for i in range(5)])
    slices = apply([], r.reconcile(svc, pods, [], nodes))
    assert r.reconcile(svc, pods, slices, nodes).writes == 0
    pods[2] = _versioned([pod(2, ready=False)], rv=99)[0]
    plan = r.reconcile(svc, pods, slices, nodes)
    assert len(plan.update) == 1 and not next(
        e for e in plan.update[0]["endpoints"] if e["targetRef"]["name"] == "pod-2")["conditions"]["ready"]
    slices = apply(slices, plan)
    nodes["node-1"]["metadata"]["labels"]["topology.kubernetes.io/zone"] = "zone-z"
    nodes["node-1"]["metadata"]["resourceVersion"] = "2"
    plan = r.reconcile(svc, pods, slices, nodes)
    assert {e["zone"] for e in plan.update[0]["endpoints"]} == {"zone-z"}


def _obj(name: str, rv: str) -> Obj:
    return {"metadata": {"name": name, "namespace": "default", "resourceVersion": rv}}


def test_own_writes_overlay_a_stale_cache_until_it_catches_up() -> None:
    """A create, update or delete is seen by the next sync before the watch brings it; echoes are ignored."""
    own = OwnWrites()
    own.wrote("default/web", _obj("a", "5"))
    own.wrote("default/web", _obj("b", "7"))
    own.deleted("default/web", _obj("c", "3"))
    view = own.view("default/web", [_obj("b", "6"), _obj("c", "3")])
    assert sorted((o["metadata"]["name"], o["metadata"]["resourceVersion"]) for o in view) == [("a", "5"), ("b", "7")]
    assert own.is_echo(_obj("b", "7")) and own.is_echo(_obj("b", "6")) and not own.is_echo(_obj("b", "8"))
    caught_up = [_obj("a", "5"), _obj("b", "9")]
    assert own.view("default/web", caught_up) == caught_up
    assert own.view("default/other", [_obj("x", "1")]) == [_obj("x", "1")]


def test_a_delete_by_someone_else_ends_the_overlay() -> None:
    own = OwnWrites()
    own.wrote("default/web", _obj("a", "5"))
    assert own.is_delete_echo(_obj("a", "5")) is False
    assert own.view("default/web", []) == []
    own.deleted("default/web", _obj("a", "5"))
    assert own.is_delete_echo(_obj("a", "5")) is True
