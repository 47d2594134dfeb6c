"""Deployment planning: surge/unavailable math, hash, revisions, rolling steps, proportional scaling, status."""

from __future__ import annotations

import pytest

from kubesvc.controllers import deploymentplan as plan
from kubesvc.controllers import deploymentutil as du

NOW = 1_700_000_000.0


def deploy(replicas: int = 10, surge: int | str = "25%", unavailable: int | str = "25%", *,
           strategy: str = "RollingUpdate", generation: int = 1, status: dict | None = None,
           history: int | None = 10) -> dict:
    st: dict = {"type": strategy}
    if strategy == "RollingUpdate":
        st["rollingUpdate"] = {"maxSurge": surge, "maxUnavailable": unavailable}
    spec: dict = {"replicas": replicas, "strategy": st, "progressDeadlineSeconds": 600,
                  "selector": {"matchLabels": {"app": "x"}},
                  "template": {"metadata": {"labels": {"app": "x"}}, "spec": {"containers": [{"name": "c", "image": "v2"}]}}}
    if history is not None:
        spec["revisionHistoryLimit"] = history
    return {"metadata": {"name": "d", "namespace": "ns", "uid": "d1", "generation": generation},
            "spec": spec, "status": status or {}}


def rs(name: str, replicas: int, available: int | None = None, *, created: str = "2024-01-01T00:00:00Z",
       revision: int = 1, actual: int | None = None, max_replicas: int | None = None) -> dict:
    ann = {du.REVISION: str(revision)}
    if max_replicas is not None:
        ann[du.MAX_REPLICAS] = str(max_replicas)
    avail = replicas if available is None else available
    return {"metadata": {"name": name, "creationTimestamp": created, "annotations": ann, "uid": name,
                         "generation": 1},
            "spec": {"replicas": replicas, "template": {"metadata": {"labels": {"app": "x"}}, "spec": {}}},
            "status": {"replicas": replicas if actual is None else actual, "availableReplicas": avail,
                       "readyReplicas": avail, "observedGeneration": 1}}


@pytest.mark.parametrize(("surge", "unavailable", "desired", "want"), [
    ("25%", "25%", 10, (3, 2)),      # surge rounds up, unavailable down
    ("25%", "25%", 1, (1, 0)),
    (0, 0, 5, (0, 1)),               # both zero: one unavailable
    ("0%", "0%", 3, (0, 1)),
    (2, "50%", 5, (2, 2)),
    ("100%", 0, 3, (3, 0)),
])
def test_fenceposts(surge: int | str, unavailable: int | str, desired: int, want: tuple[int, int]) -> None:
    assert du.resolve_fenceposts(surge, unavailable, desired) == want


def test_max_unavailable_is_capped_and_zero_for_recreate() -> None:
    assert du.max_unavailable(deploy(2, 0, 5)) == 2
    assert du.max_unavailable(deploy(0)) == 0
    assert du.max_surge(deploy(strategy="Recreate")) == 0


def test_invalid_percent() -> None:
    with pytest.raises(ValueError):
        du.scaled_value("abc", 10, True)


def test_hash_is_stable_ignores_hash_label_and_honours_collision_count() -> None:
    t = {"metadata": {"labels": {"app": "x"}}, "spec": {"containers": [{"name": "c", "image": "nginx"}]}}
    h = du.compute_hash(t)
    assert h == du.compute_hash({"spec": t["spec"], "metadata": {"labels": {"app": "x"}}})
    assert h == du.compute_hash({**t, "metadata": {"labels": {"app": "x", du.HASH_LABEL: "zzz"}}})
    assert h != du.compute_hash(t, 1) and du.compute_hash(t, 1) != du.compute_hash(t, 2)
    assert set(h) <= set("bcdfghjklmnpqrstvwxz2456789") and 1 <= len(h) <= 10
    assert du.fnv32a(b"") == 0x811C9DC5 and du.fnv32a(b"a") == 0xE40C292C  # the FNV-1a test vectors
    assert du.safe_encode("09") == "4f"  # '0' is byte 48 -> 48 % 27 = 21 -> '4'; '9' is 57 -> 3 -> 'f'


def test_new_rs_annotations_revision_and_history() -> None:
    d = deploy(4)
    d["metadata"]["annotations"] = {"kubernetes.io/change-cause": "why", du.REVISION: "7",
                                     du.LAST_APPLIED: "{}"}
    new = {"metadata": {}}
    assert du.set_new_rs_annotations(d, new, 3, exists=False)
    assert new["metadata"]["annotations"] == {"kubernetes.io/change-cause": "why", du.REVISION: "3",
                                              du.DESIRED_REPLICAS: "4", du.MAX_REPLICAS: "5"}
    assert du.set_new_rs_annotations(d, new, 5, exists=True)
    assert new["metadata"]["annotations"][du.REVISION] == "5"
    assert new["metadata"]["annotations"][du.REVISION_HISTORY] == "3"
    assert not du.set_new_rs_annotations(d, new, 5, exists=True)


def test_find_new_rs_by_template_and_max_revision() -> None:
    d = deploy()
    a, b = rs("a", 1, revision=1), rs("b", 1, revision=4)
    b["spec"]["template"] = {**d["spec"]["template"],
                             "metadata": {"labels": {"app": "x", du.HASH_LABEL: "h"}}}
    assert du.find_new_rs(d, [a, b]) is b
    assert du.max_revision([a, b]) == 4


def test_new_rs_new_replicas_respects_surge() -> None:
    d = deploy(10, 3, 0)
    old, new = rs("old", 10), rs("new", 0)
    assert du.new_rs_new_replicas(d, [old, new], new) == 3
    new["spec"]["replicas"] = 3
    assert du.new_rs_new_replicas(d, [old, new], new) == 3  # already at 13 = 10 + 3


def test_rolling_scale_down_respects_max_unavailable() -> None:
    """10 replicas, surge 3, unavailable 2: old can drop only to keep 8 available."""
    d = deploy(10, 3, 2)
    old, new = rs("old", 10, created="2024-01-01T00:00:00Z"), rs("new", 3, 0, created="2024-01-02T00:00:00Z")
    assert plan.plan_old_scale_down(d, [old, new], [old], new) == {"old": 8}
    new = rs("new", 3, 3, created="2024-01-02T00:00:00Z")
    assert plan.plan_old_scale_down(d, [old, new], [old], new) == {"old": 5}


def test_rolling_scale_down_removes_unhealthy_old_first() -> None:
    """Old pods that are not available go before anything healthy does."""
    d = deploy(4, 1, 0)
    sick = rs("sick", 2, 0, created="2024-01-01T00:00:00Z")
    ok = rs("ok", 2, 2, created="2024-01-02T00:00:00Z")
    new = rs("new", 1, 0, created="2024-01-03T00:00:00Z")
    assert plan.plan_old_scale_down(d, [sick, ok, new], [sick, ok], new) == {}  # new pod not up yet: wait
    new = rs("new", 1, 1, created="2024-01-03T00:00:00Z")
    assert plan.plan_old_scale_down(d, [sick, ok, new], [sick, ok], new) == {"sick": 1}


def test_new_rs_target() -> None:
    d = deploy(4, 1, 1)
    old, new = rs("old", 4), rs("new", 0)
    assert plan.new_rs_target(d, [old, new], new) == 1
    assert plan.new_rs_target(d, [old, rs("n", 4)], rs("n", 4)) is None
    assert plan.new_rs_target(d, [rs("n", 6)], rs("n", 6)) == 4


def test_proportional_scaling_mid_rollout() -> None:
    """Scaling 10 -> 20 during a rollout shares the 10 extra (plus surge) by size."""
    d = deploy(20, 3, 2, status={"replicas": 13})
    old = rs("old", 8, created="2024-01-01T00:00:00Z", max_replicas=13)
    new = rs("new", 5, created="2024-01-02T00:00:00Z", max_replicas=13)
    sizes = plan.plan_scale(d, new, [old])
    assert sizes == {"old": 14, "new": 9}  # 20 + maxSurge 3, by 8/13 and 5/13 of it


def test_scale_single_active_rs_and_saturation() -> None:
    d = deploy(5)
    only = rs("only", 3)
    assert plan.plan_scale(d, only, [rs("empty", 0)]) == {"only": 5}
    d = deploy(3)
    new = rs("new", 3, 3)
    new["metadata"]["annotations"][du.DESIRED_REPLICAS] = "3"
    assert plan.plan_scale(d, new, [rs("old", 1)]) == {"old": 0}


def test_cleanup_keeps_revision_history_limit() -> None:
    d = deploy(history=1)
    olds = [rs("r1", 0, revision=1), rs("r2", 0, revision=2), rs("r3", 0, revision=3), rs("busy", 1, revision=0)]
    got = [r["metadata"]["name"] for r in plan.rs_to_cleanup(d, olds)]
    assert got == ["r1", "r2"]  # lowest revisions first; a set with pods is never deleted
    assert plan.rs_to_cleanup(deploy(history=None), olds) == []


def test_status_and_conditions_complete() -> None:
    """Everything updated and available: Available and NewReplicaSetAvailable with upstream's messages."""
    d = deploy(3)
    new = rs("d-abc", 3, 3)
    st = plan.rollout_status(d, [new], new, NOW)
    assert (st["replicas"], st["updatedReplicas"], st["availableReplicas"], st["unavailableReplicas"]) == (3, 3, 3, 0)
    conds = {c["type"]: c for c in st["conditions"]}
    assert conds["Available"]["message"] == "Deployment has minimum availability."
    assert conds["Progressing"]["reason"] == "NewReplicaSetAvailable"
    assert conds["Progressing"]["message"] == 'ReplicaSet "d-abc" has successfully progressed.'


def test_status_progressing_and_unavailable() -> None:
    d = deploy(4, 1, 0, status={"replicas": 4, "updatedReplicas": 0})
    old, new = rs("old", 4, 4), rs("d-new", 1, 0)
    st = plan.rollout_status(d, [old, new], new, NOW)
    conds = {c["type"]: c for c in st["conditions"]}
    assert conds["Progressing"]["reason"] == "ReplicaSetUpdated"
    assert conds["Progressing"]["message"] == 'ReplicaSet "d-new" is progressing.'
    d = deploy(4, 1, 0)
    st = plan.calculate_status(d, [rs("x", 4, 1)], None, NOW)
    assert {c["type"]: c for c in st["conditions"]}["Available"]["reason"] == "MinimumReplicasUnavailable"


def test_timed_out_after_progress_deadline() -> None:
    d = deploy(2)
    d["spec"]["progressDeadlineSeconds"] = 10
    d["status"] = {"replicas": 2, "updatedReplicas": 2, "conditions": [plan.new_condition("Progressing", "True", "ReplicaSetUpdated",
                                                                     "x", NOW - 60)]}
    st = plan.rollout_status(d, [rs("d-a", 2, 0)], rs("d-a", 2, 0), NOW)
    cond = plan.get_condition(st, "Progressing")
    assert cond is not None and cond["reason"] == "ProgressDeadlineExceeded"
    assert cond["message"] == 'ReplicaSet "d-a" has timed out progressing.'


def test_set_condition_keeps_transition_time() -> None:
    st: dict = {}
    plan.set_condition(st, plan.new_condition("Available", "True", "A", "m", NOW - 100))
    plan.set_condition(st, plan.new_condition("Available", "True", "B", "m", NOW))
    assert st["conditions"][0]["reason"] == "B"
    assert st["conditions"][0]["lastTransitionTime"] == plan.ts(NOW - 100)


def test_paused_and_resumed_conditions() -> None:
    d = deploy()
    d["spec"]["paused"] = True
    st = plan.paused_conditions(d, NOW)
    assert st is not None and plan.get_condition(st, "Progressing")["reason"] == "DeploymentPaused"
    d["status"] = st
    assert plan.paused_conditions(d, NOW) is None
    d["spec"]["paused"] = False
    assert plan.get_condition(plan.paused_conditions(d, NOW), "Progressing")["message"] == "Deployment is resumed"


def test_recreate_waits_for_old_pods() -> None:
    new = rs("new", 0)
    assert plan.old_pods_running(new, [rs("old", 0, actual=1)], {})
    assert plan.old_pods_running(new, [rs("old", 0, actual=0)], {"old": [{"status": {"phase": "Running"}}]})
    assert not plan.old_pods_running(new, [rs("old", 0, actual=0)], {"old": [{"status": {"phase": "Succeeded"}}],
                                                                      "new": [{"status": {}}]})
