"""Scheduler core: filters in upstream's order, tolerations, affinity, spreading, FitError text."""

from __future__ import annotations

from collections import Counter

from kubesvc.controllers.scheduling import (
    Load,
    affinity_matches,
    choose_node,
    filter_node,
    fit_error,
    node_view,
    tolerates,
)


def node(name: str, *, ready: str = "True", labels: dict | None = None, taints: list | None = None,
         unschedulable: bool = False) -> dict:
    spec: dict = {}
    if taints:
        spec["taints"] = taints
    if unschedulable:
        spec["unschedulable"] = True
    return {"metadata": {"name": name, "labels": labels or {}}, "spec": spec,
            "status": {"conditions": [{"type": "Ready", "status": ready}]}}


def pod(**spec: object) -> dict:
    return {"metadata": {"name": "p"}, "spec": {"containers": [{"name": "c"}], **spec}}


def test_spreads_by_owner_then_total_then_name() -> None:
    nodes = [node_view(node("a")), node_view(node("b")), node_view(node("c"))]
    assert choose_node(pod(), nodes, {})[0] == "a"
    assert choose_node(pod(), nodes, {"a": Load(1, 1)})[0] == "b"
    assert choose_node(pod(), nodes, {"a": Load(5, 0), "b": Load(1, 1), "c": Load(9, 0)})[0] == "a"


def test_not_ready_nodes_count_as_tainted() -> None:
    v = node_view(node("a", ready="Unknown"))
    assert filter_node(pod(), v) == "node(s) had untolerated taint {node.kubernetes.io/unreachable: }"
    v = node_view(node("a", ready="False"))
    assert filter_node(pod(), v) == "node(s) had untolerated taint {node.kubernetes.io/not-ready: }"
    tol = [{"key": "node.kubernetes.io/not-ready", "operator": "Exists"}]
    assert filter_node(pod(tolerations=tol), v) is None


def test_taints_and_tolerations() -> None:
    taint = {"key": "dedicated", "value": "gpu", "effect": "NoSchedule"}
    v = node_view(node("a", taints=[taint]))
    assert filter_node(pod(), v) == "node(s) had untolerated taint {dedicated: gpu}"
    assert filter_node(pod(tolerations=[{"key": "dedicated", "value": "gpu", "effect": "NoSchedule"}]), v) is None
    assert filter_node(pod(tolerations=[{"key": "dedicated", "value": "cpu"}]), v) is not None
    assert filter_node(pod(tolerations=[{"operator": "Exists"}]), v) is None
    soft = node_view(node("b", taints=[{"key": "x", "effect": "PreferNoSchedule"}]))
    assert filter_node(pod(), soft) is None
    assert not tolerates({"key": "k", "operator": "Exists", "effect": "NoExecute"}, {"key": "k", "effect": "NoSchedule"})


def test_unschedulable_comes_first_and_can_be_tolerated() -> None:
    v = node_view(node("a", unschedulable=True, labels={}))
    assert filter_node(pod(nodeSelector={"x": "y"}), v) == "node(s) were unschedulable"
    tol = [{"key": "node.kubernetes.io/unschedulable", "operator": "Exists", "effect": "NoSchedule"}]
    assert filter_node(pod(tolerations=tol), v) is None


def test_node_selector_and_required_affinity() -> None:
    v = node_view(node("a", labels={"disk": "ssd", "cores": "8"}))
    assert affinity_matches({"nodeSelector": {"disk": "ssd"}}, v)
    assert not affinity_matches({"nodeSelector": {"disk": "hdd"}}, v)
    def req(*exprs: dict) -> dict:
        return {"affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
            "nodeSelectorTerms": [{"matchExpressions": list(exprs)}]}}}}
    assert affinity_matches(req({"key": "cores", "operator": "Gt", "values": ["4"]}), v)
    assert not affinity_matches(req({"key": "disk", "operator": "NotIn", "values": ["ssd"]}), v)
    assert affinity_matches(req({"key": "gpu", "operator": "DoesNotExist"}), v)
    fields = {"affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
        "nodeSelectorTerms": [{"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["a"]}]}]}}}}
    assert affinity_matches(fields, v)


def test_fit_error_text() -> None:
    nodes = [node_view(node("a", labels={})), node_view(node("b", unschedulable=True))]
    chosen, reasons = choose_node(pod(nodeSelector={"disk": "ssd"}), nodes, {})
    assert chosen is None
    assert fit_error(2, reasons) == (
        "0/2 nodes are available: 1 node(s) didn't match Pod's node affinity/selector, "
        "1 node(s) were unschedulable. preemption: 0/2 nodes are available: "
        "2 Preemption is not helpful for scheduling.")
    assert fit_error(0, Counter()) == "no nodes available to schedule pods"
