"""ReplicaSet planning: which pods go first, slow-start batches, pods from templates, status, expectations."""

from __future__ import annotations

from datetime import UTC, datetime

from kubesvc.api.meta import now_rfc3339
from kubesvc.api.selectors import from_label_selector_dict
from kubesvc.controllers import replicasetplan as plan
from kubesvc.controllers.expectations import Expectations
from kubesvc.controllers.refmanager import plan_claim

NOW = 1_700_000_000.0


def t(ago: float) -> str:
    return now_rfc3339(datetime.fromtimestamp(NOW - ago, UTC))


def pod(name: str, node: str = "n1", phase: str = "Running", ready: bool = True, created: float = 1000,
        ready_for: float = 1000, restarts: int = 0, labels: dict | None = None, owner: str | None = None,
        cost: int | None = None) -> dict:
    m: dict = {"name": name, "namespace": "default", "uid": f"uid-{name}", "creationTimestamp": t(created),
               "labels": labels if labels is not None else {"app": "x"}}
    if owner:
        m["ownerReferences"] = [{"kind": "ReplicaSet", "uid": owner, "controller": True, "name": owner}]
    if cost is not None:
        m["annotations"] = {"controller.kubernetes.io/pod-deletion-cost": str(cost)}
    conds = [{"type": "Ready", "status": "True" if ready else "False", "lastTransitionTime": t(ready_for)}]
    return {"metadata": m, "spec": {"nodeName": node},
            "status": {"phase": phase, "conditions": conds,
                       "containerStatuses": [{"restartCount": restarts}]}}


def names(ps: list[dict]) -> list[str]:
    return [p["metadata"]["name"] for p in ps]


def test_unscheduled_then_pending_then_not_ready_go_first() -> None:
    """Upstream's order: unassigned < Pending < Unknown < Running; not ready before ready."""
    ps = [pod("running"), pod("notready", ready=False), pod("pending", phase="Pending", ready=False),
          pod("unassigned", node=""), pod("unknown", phase="Unknown")]
    got = plan.pods_to_delete(ps, ps, 5, NOW)
    assert names(got) == ["unassigned", "pending", "unknown", "notready", "running"]


def test_deletion_cost_then_crowded_nodes_first() -> None:
    """Lower pod-deletion-cost first; then pods on nodes crowded with relatives."""
    ps = [pod("alone", node="n2"), pod("crowd1", node="n1"), pod("crowd2", node="n1"), pod("cheap", node="n2", cost=-5)]
    related = ps + [pod("other-rs", node="n1")]
    assert names(plan.pods_to_delete(ps, related, 2, NOW)) == ["cheap", "crowd1"]


def test_recently_ready_more_restarts_and_newer_go_first() -> None:
    """Ready for less time first (log buckets), then more restarts, then newer."""
    ps = [pod("old", ready_for=5000), pod("fresh", ready_for=10)]
    assert names(plan.pods_to_delete(ps, [], 1, NOW)) == ["fresh"]
    ps = [pod("calm", restarts=0), pod("flappy", restarts=3)]
    assert names(plan.pods_to_delete(ps, [], 1, NOW)) == ["flappy"]
    ps = [pod("older", created=100_000, ready_for=1000), pod("newer", created=2000, ready_for=1000)]
    assert names(plan.pods_to_delete(ps, [], 1, NOW)) == ["newer"]


def test_log_buckets_make_near_ages_tie() -> None:
    """1200 s and 1500 s ready fall into the same power-of-two bucket, so restarts decide."""
    ps = [pod("a", ready_for=1200, restarts=0), pod("b", ready_for=1500, restarts=2)]
    assert names(plan.pods_to_delete(ps, [], 1, NOW)) == ["b"]


def test_slow_start_batches() -> None:
    assert plan.slow_start_batches(0) == []
    assert plan.slow_start_batches(1) == [1]
    assert plan.slow_start_batches(10) == [1, 2, 4, 3]
    assert sum(plan.slow_start_batches(500)) == 500


def test_pod_from_template() -> None:
    """generateName `<rs>-`, template labels/annotations, controller ownerReference."""
    rs = {"apiVersion": "apps/v1", "kind": "ReplicaSet",
          "metadata": {"name": "web-abc", "namespace": "ns", "uid": "u1"},
          "spec": {"template": {"metadata": {"labels": {"app": "web"}, "annotations": {"a": "b"}},
                                "spec": {"containers": [{"name": "c", "image": "nginx"}]}}}}
    p = plan.pod_from_template(rs)
    assert p["metadata"]["generateName"] == "web-abc-"
    assert p["metadata"]["labels"] == {"app": "web"} and p["metadata"]["annotations"] == {"a": "b"}
    assert p["metadata"]["ownerReferences"] == [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web-abc",
                                                 "uid": "u1", "controller": True, "blockOwnerDeletion": True}]
    assert p["spec"]["containers"][0]["image"] == "nginx"


def test_status_counts_and_min_ready_seconds() -> None:
    """Available needs Ready for minReadySeconds; fully labelled needs every template label."""
    rs = {"metadata": {"generation": 4}, "spec": {"minReadySeconds": 30,
                                                   "template": {"metadata": {"labels": {"app": "x", "tier": "fe"}}}}}
    ps = [pod("a", ready_for=60, labels={"app": "x", "tier": "fe"}), pod("b", ready_for=5),
          pod("c", ready=False)]
    st = plan.calculate_status(rs, ps, None, NOW)
    assert st == {"replicas": 3, "fullyLabeledReplicas": 1, "readyReplicas": 2, "availableReplicas": 1,
                  "observedGeneration": 4}


def test_replica_failure_condition_set_and_cleared() -> None:
    rs = {"metadata": {}, "spec": {}}
    st = plan.calculate_status(rs, [], ("FailedCreate", "quota"), NOW)
    assert st["conditions"][0]["type"] == "ReplicaFailure" and st["conditions"][0]["reason"] == "FailedCreate"
    rs["status"] = st
    assert "conditions" not in plan.calculate_status(rs, [], None, NOW)


def test_status_changed_ignores_zero_noise() -> None:
    rs = {"status": {"replicas": 2, "observedGeneration": 1}}
    assert not plan.status_changed(rs, {"replicas": 2, "readyReplicas": 0, "observedGeneration": 1})
    assert plan.status_changed(rs, {"replicas": 2, "readyReplicas": 1, "observedGeneration": 1})


def test_expectations_block_until_observed_or_expired() -> None:
    """Creations are counted down; deletions tracked by pod key; a stale record expires."""
    clock = [0.0]
    e = Expectations(ttl=10, clock=lambda: clock[0])
    assert e.satisfied("rs")
    e.expect_creations("rs", 2)
    assert not e.satisfied("rs")
    e.creation_observed("rs")
    assert not e.satisfied("rs")
    e.creation_observed("rs")
    assert e.satisfied("rs")
    e.expect_deletions("rs", ["ns/a", "ns/b"])
    e.deletion_observed("rs", "ns/a")
    e.deletion_observed("rs", "ns/zzz")
    assert e.pending("rs") == (0, 1) and not e.satisfied("rs")
    clock[0] = 11
    assert e.satisfied("rs")


def test_claim_adopts_orphans_and_releases_mismatches() -> None:
    """Ours and matching: kept; orphans matching: adopted; ours not matching: released; others': ignored."""
    owner = {"metadata": {"uid": "rs1"}}
    sel = from_label_selector_dict({"matchLabels": {"app": "x"}})
    mine = pod("mine", owner="rs1")
    orphan = pod("orphan")
    strayed = pod("strayed", owner="rs1", labels={"app": "y"})
    theirs = pod("theirs", owner="rs2")
    other_orphan = pod("nomatch", labels={"app": "z"})
    c = plan_claim(owner, sel, [mine, orphan, strayed, theirs, other_orphan])
    assert (names(c.owned), names(c.adopt), names(c.release)) == (["mine"], ["orphan"], ["strayed"])
    owner["metadata"]["deletionTimestamp"] = "x"
    c = plan_claim(owner, sel, [mine, orphan, strayed])
    assert (names(c.owned), names(c.adopt), names(c.release)) == (["mine", "strayed"], [], [])
