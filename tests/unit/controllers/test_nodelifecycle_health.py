"""Node health: heartbeats seen on our clock, Unknown conditions, condition taints, eviction times."""

from __future__ import annotations

from kubesvc.controllers import nodehealth as nh
from kubesvc.controllers.deploymentplan import ts

NOW = 1_700_000_000.0


def node(ready: str | None = "True", taints: list | None = None, unschedulable: bool = False) -> dict:
    conds = [{"type": "Ready", "status": ready, "lastHeartbeatTime": "t0"}] if ready else []
    spec: dict = {"taints": taints} if taints else {}
    if unschedulable:
        spec["unschedulable"] = True
    return {"metadata": {"name": "n", "creationTimestamp": "c"}, "spec": spec, "status": {"conditions": conds}}


def test_observe_only_moves_on_change() -> None:
    p = nh.observe(None, node(), {"spec": {"renewTime": "r1"}}, 10)
    assert nh.observe(p, node(), {"spec": {"renewTime": "r1"}}, 20).observed_at == 10
    assert nh.observe(p, node(), {"spec": {"renewTime": "r2"}}, 20).observed_at == 20


def test_unknown_status() -> None:
    st = nh.unknown_status(node(), "now")
    ready = st["conditions"][0]
    assert (ready["status"], ready["reason"], ready["message"]) == (
        "Unknown", "NodeStatusUnknown", "Kubelet stopped posting node status.")
    assert ready["lastHeartbeatTime"] == "t0"
    assert nh.unknown_status({"status": st}, "later") is None
    never = nh.unknown_status(node(ready=None), "now")["conditions"][0]
    assert (never["reason"], never["message"]) == ("NodeStatusNeverUpdated", "Kubelet never posted node status.")


def test_taints_follow_ready_condition() -> None:
    keys = lambda ts_: {(t["key"], t["effect"]) for t in ts_}  # noqa: E731
    assert nh.desired_taints(node("True"), "now") == []
    assert keys(nh.desired_taints(node("Unknown"), "now")) == {
        ("node.kubernetes.io/unreachable", "NoSchedule"), ("node.kubernetes.io/unreachable", "NoExecute")}
    assert keys(nh.desired_taints(node("False", unschedulable=True), "now")) == {
        ("node.kubernetes.io/not-ready", "NoSchedule"), ("node.kubernetes.io/not-ready", "NoExecute"),
        ("node.kubernetes.io/unschedulable", "NoSchedule")}
    other = {"key": "mine", "effect": "NoSchedule"}
    stale = {"key": "node.kubernetes.io/unreachable", "effect": "NoExecute", "timeAdded": "x"}
    assert nh.desired_taints(node("True", taints=[other, stale]), "now") == [other]
    kept = nh.desired_taints(node("Unknown", taints=[stale]), "now")
    assert stale in kept  # timeAdded is kept


def test_eviction_time() -> None:
    taint = {"key": "node.kubernetes.io/unreachable", "effect": "NoExecute", "timeAdded": ts(NOW)}
    n = node("Unknown", taints=[taint])
    assert nh.eviction_time({"spec": {}}, n, 5) == NOW + 5  # the default toleration
    tol = {"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute",
           "tolerationSeconds": 60}
    assert nh.eviction_time({"spec": {"tolerations": [tol]}}, n, 5) == NOW + 60
    forever = {"operator": "Exists"}
    assert nh.eviction_time({"spec": {"tolerations": [forever]}}, n, 5) is None
    hard = node("True", taints=[{"key": "evict-me", "effect": "NoExecute", "timeAdded": ts(NOW)}])
    assert nh.eviction_time({"spec": {}}, hard, 5) == NOW
    assert nh.eviction_time({"spec": {}}, node("True"), 5) is None
