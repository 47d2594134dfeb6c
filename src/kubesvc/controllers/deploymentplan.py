"""What a Deployment should do next, as pure functions (upstream's sync.go, rolling.go, progress.go).

Each function takes the Deployment and its ReplicaSets as plain dicts and
returns sizes (``{rs name: replicas}``), names, or a status; the controller
(:mod:`.deployment`) applies them.  The rules, in upstream's words:

* rolling: grow the new ReplicaSet up to ``replicas + maxSurge`` pods in
  total; shrink old ones while at least ``replicas - maxUnavailable`` stay
  available, unhealthy old pods first;
* scaling an unfinished rollout shares the change out proportionally to each
  ReplicaSet's size, leftovers to the largest;
* status adds up the ReplicaSets' statuses; ``Available`` says whether the
  minimum is met, ``Progressing`` tracks the rollout against
  ``progressDeadlineSeconds``.
"""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from typing import Any

from kubesvc.api.meta import now_rfc3339

from . import deploymentutil as du
from .podutil import epoch

Obj = dict[str, Any]
AVAILABLE = "Available"
PROGRESSING = "Progressing"
REPLICA_FAILURE = "ReplicaFailure"
NEW_RS_AVAILABLE = "NewReplicaSetAvailable"
TIMED_OUT = "ProgressDeadlineExceeded"
RS_UPDATED = "ReplicaSetUpdated"
PAUSED = "DeploymentPaused"
RESUMED = "DeploymentResumed"


def ts(now: float) -> str:
    return now_rfc3339(datetime.fromtimestamp(now, UTC))


def _name(rs: Obj) -> str:
    return str((rs.get("metadata") or {}).get("name") or "")


# ---------------------------------------------------------------- scaling

def find_active_or_latest(new_rs: Obj | None, old_rss: list[Obj]) -> Obj | None:
    """The one ReplicaSet with pods, or the newest if none has any; None while several have pods."""
    if new_rs is None and not old_rss:
        return None
    olds = du.by_creation(old_rss, newest_first=True)
    act = du.active([*olds, new_rs])
    if not act:
        return new_rs if new_rs is not None else olds[0]
    return act[0] if len(act) == 1 else None


def _fraction(rs: Obj, d: Obj) -> int:
    if du.replicas(d) == 0:
        return -du.replicas(rs)
    total = du.replicas(d) + du.max_surge(d)
    annotated = du.int_annotation(rs, du.MAX_REPLICAS)
    if annotated is None:
        annotated = int((d.get("status") or {}).get("replicas") or 0)
    if annotated == 0:
        return 0
    exact = du.replicas(rs) * total / annotated
    return int(exact + 0.5) - du.replicas(rs)  # math.Round: half away from zero (all positive here)


def _proportion(rs: Obj, d: Obj, to_add: int, added: int) -> int:
    if du.replicas(rs) == 0 or to_add == 0 or to_add == added:
        return 0
    frac = _fraction(rs, d)
    allowed = to_add - added
    return min(frac, allowed) if to_add > 0 else max(frac, allowed)


def plan_scale(d: Obj, new_rs: Obj | None, old_rss: list[Obj]) -> dict[str, int]:
    """Sizes after a change of ``spec.replicas`` (upstream's ``scale``); {} when nothing to do."""
    want = du.replicas(d)
    one = find_active_or_latest(new_rs, old_rss)
    if one is not None:
        return {} if du.replicas(one) == want else {_name(one): want}
    if du.is_saturated(d, new_rs):
        return {_name(r): 0 for r in du.active(old_rss)}
    if not du.is_rolling(d):
        return {}
    rss = du.active([*old_rss, new_rs])
    allowed = want + du.max_surge(d) if want > 0 else 0
    to_add = allowed - du.spec_total(rss)
    if to_add > 0:  # bigger first, newer first among equals
        rss = sorted(du.by_creation(rss, newest_first=True), key=du.replicas, reverse=True)
    elif to_add < 0:  # bigger first, older first among equals
        rss = sorted(du.by_creation(rss), key=du.replicas, reverse=True)
    sizes: dict[str, int] = {}
    added = 0
    for rs in rss:
        p = _proportion(rs, d, to_add, added) if to_add else 0
        sizes[_name(rs)] = du.replicas(rs) + p
        added += p
    if to_add and rss:
        first = _name(rss[0])
        sizes[first] = max(sizes[first] + to_add - added, 0)
    return sizes


# ---------------------------------------------------------------- rolling update

def new_rs_target(d: Obj, all_rss: list[Obj], new_rs: Obj) -> int | None:
    """The new ReplicaSet's next size, or None when it is already right (reconcileNewReplicaSet)."""
    if du.replicas(new_rs) == du.replicas(d):
        return None
    if du.replicas(new_rs) > du.replicas(d):
        return du.replicas(d)
    n = du.new_rs_new_replicas(d, all_rss, new_rs)
    return None if n == du.replicas(new_rs) else n


def _available(rs: Obj) -> int:
    return int((rs.get("status") or {}).get("availableReplicas") or 0)


def plan_old_scale_down(d: Obj, all_rss: list[Obj], old_rss: list[Obj], new_rs: Obj | None) -> dict[str, int]:
    """Old ReplicaSets' new sizes (reconcileOldReplicaSets): unhealthy pods first, then by age."""
    olds = du.by_creation(du.active(old_rss))
    if du.spec_total(olds) == 0:
        return {}
    min_available = du.replicas(d) - du.max_unavailable(d)
    new_unavailable = (du.replicas(new_rs) - _available(new_rs)) if new_rs is not None else 0
    max_down = du.spec_total(all_rss) - min_available - new_unavailable
    if max_down <= 0:
        return {}
    sizes = {_name(r): du.replicas(r) for r in olds}
    cleaned = 0
    for rs in olds:  # cleanupUnhealthyReplicas
        if cleaned >= max_down:
            break
        size, avail = sizes[_name(rs)], _available(rs)
        if size == 0 or size == avail:
            continue
        n = min(max_down - cleaned, size - avail)
        sizes[_name(rs)] = size - n
        cleaned += n
    all_available = du.available_total(all_rss)
    if all_available > min_available:  # scaleDownOldReplicaSetsForRollingUpdate
        total_down, done = all_available - min_available, 0
        for rs in olds:
            if done >= total_down:
                break
            size = sizes[_name(rs)]
            if size == 0:
                continue
            n = min(size, total_down - done)
            sizes[_name(rs)] = size - n
            done += n
    before = {_name(r): du.replicas(r) for r in olds}
    return {k: v for k, v in sizes.items() if v != before[k]}


def old_pods_running(new_rs: Obj | None, old_rss: list[Obj], pods_by_rs: dict[str, list[Obj]]) -> bool:
    """Recreate waits until no old pod runs (terminating ones included)."""
    if du.actual_total(old_rss) > 0:
        return True
    new_uid = (new_rs or {}).get("metadata", {}).get("uid")
    for uid, pods in pods_by_rs.items():
        if uid == new_uid:
            continue
        if any(((p.get("status") or {}).get("phase")) not in ("Failed", "Succeeded") for p in pods):
            return True
    return False


def rs_to_cleanup(d: Obj, old_rss: list[Obj]) -> list[Obj]:
    """Old, empty ReplicaSets beyond ``revisionHistoryLimit``, lowest revisions first."""
    limit = (d.get("spec") or {}).get("revisionHistoryLimit")
    if limit is None:
        return []
    alive = [r for r in old_rss if not (r.get("metadata") or {}).get("deletionTimestamp")]
    diff = len(alive) - int(limit)
    if diff <= 0:
        return []
    ordered = sorted(du.by_creation(alive), key=du.revision)
    out = []
    for rs in ordered[:diff]:
        st = rs.get("status") or {}
        gen = int((rs.get("metadata") or {}).get("generation") or 0)
        if int(st.get("replicas") or 0) or du.replicas(rs) or gen > int(st.get("observedGeneration") or 0):
            continue
        out.append(rs)
    return out


# ---------------------------------------------------------------- conditions and status

def get_condition(status: Obj, ctype: str) -> Obj | None:
    return next((c for c in status.get("conditions") or [] if c.get("type") == ctype), None)


def new_condition(ctype: str, status: str, reason: str, message: str, now: float) -> Obj:
    t = ts(now)
    return {"type": ctype, "status": status, "lastUpdateTime": t, "lastTransitionTime": t,
            "reason": reason, "message": message}


def set_condition(status: Obj, cond: Obj) -> None:
    """Upstream's SetDeploymentCondition: same status and reason is no change."""
    cur = get_condition(status, cond["type"])
    if cur is not None and cur.get("status") == cond["status"] and cur.get("reason") == cond["reason"]:
        return
    if cur is not None and cur.get("status") == cond["status"]:
        cond = {**cond, "lastTransitionTime": cur.get("lastTransitionTime")}
    status["conditions"] = [c for c in status.get("conditions") or [] if c.get("type") != cond["type"]] + [cond]


def remove_condition(status: Obj, ctype: str) -> None:
    status["conditions"] = [c for c in status.get("conditions") or [] if c.get("type") != ctype]


def calculate_status(d: Obj, all_rss: list[Obj], new_rs: Obj | None, now: float) -> Obj:
    available = du.available_total(all_rss)
    total = du.spec_total(all_rss)
    old = d.get("status") or {}
    st: Obj = {
        "observedGeneration": (d.get("metadata") or {}).get("generation") or 0,
        "replicas": du.actual_total(all_rss),
        "updatedReplicas": du.actual_total([new_rs]),
        "readyReplicas": du.ready_total(all_rss),
        "availableReplicas": available,
        "unavailableReplicas": max(total - available, 0),
        "conditions": copy.deepcopy(old.get("conditions") or []),
    }
    if old.get("collisionCount") is not None:
        st["collisionCount"] = old["collisionCount"]
    if available >= du.replicas(d) - du.max_unavailable(d):
        set_condition(st, new_condition(AVAILABLE, "True", "MinimumReplicasAvailable",
                                        "Deployment has minimum availability.", now))
    else:
        set_condition(st, new_condition(AVAILABLE, "False", "MinimumReplicasUnavailable",
                                        "Deployment does not have minimum availability.", now))
    return st


def complete(d: Obj, st: Obj) -> bool:
    n = du.replicas(d)
    return (st.get("updatedReplicas") == n and st.get("replicas") == n and st.get("availableReplicas") == n
            and int(st.get("observedGeneration") or 0) >= int((d.get("metadata") or {}).get("generation") or 0))


def progressing(d: Obj, st: Obj) -> bool:
    old = d.get("status") or {}

    def g(s: Obj, k: str) -> int:
        return int(s.get(k) or 0)
    return (g(st, "updatedReplicas") > g(old, "updatedReplicas")
            or g(st, "replicas") - g(st, "updatedReplicas") < g(old, "replicas") - g(old, "updatedReplicas")
            or g(st, "readyReplicas") > g(old, "readyReplicas")
            or g(st, "availableReplicas") > g(old, "availableReplicas"))


def has_deadline(d: Obj) -> bool:
    pds = (d.get("spec") or {}).get("progressDeadlineSeconds")
    return pds is not None and pds < 2**31 - 1


def timed_out(d: Obj, st: Obj, now: float) -> bool:
    if not has_deadline(d):
        return False
    cond = get_condition(st, PROGRESSING)
    if cond is None or cond.get("reason") == NEW_RS_AVAILABLE:
        return False
    if cond.get("reason") == TIMED_OUT:
        return True
    since = epoch(cond.get("lastUpdateTime"))
    return since is not None and since + int(d["spec"]["progressDeadlineSeconds"]) < now


def rollout_status(d: Obj, all_rss: list[Obj], new_rs: Obj | None, now: float) -> Obj:
    """The status with Progressing and ReplicaFailure as upstream's syncRolloutStatus sets them."""
    st = calculate_status(d, all_rss, new_rs, now)
    if not has_deadline(d):
        remove_condition(st, PROGRESSING)
    cur = get_condition(d.get("status") or {}, PROGRESSING)
    is_complete = (st["replicas"] == st["updatedReplicas"] and cur is not None
                   and cur.get("reason") == NEW_RS_AVAILABLE)
    what = f'ReplicaSet "{_name(new_rs)}"' if new_rs is not None else f'Deployment "{_name(d)}"'
    if has_deadline(d) and not is_complete:
        if complete(d, st):
            set_condition(st, new_condition(PROGRESSING, "True", NEW_RS_AVAILABLE,
                                            f"{what} has successfully progressed.", now))
        elif progressing(d, st):
            cond = new_condition(PROGRESSING, "True", RS_UPDATED, f"{what} is progressing.", now)
            if cur is not None:
                if cur.get("status") == "True":
                    cond["lastTransitionTime"] = cur.get("lastTransitionTime")
                remove_condition(st, PROGRESSING)
            set_condition(st, cond)
        elif timed_out(d, st, now):
            set_condition(st, new_condition(PROGRESSING, "False", TIMED_OUT,
                                            f"{what} has timed out progressing.", now))
    failures = [c for rs in ([new_rs] if new_rs else []) + [r for r in all_rss if r is not new_rs]
                for c in (rs.get("status") or {}).get("conditions") or [] if c.get("type") == REPLICA_FAILURE]
    if failures:
        f = failures[0]
        set_condition(st, {"type": REPLICA_FAILURE, "status": f.get("status"), "reason": f.get("reason"),
                           "message": f.get("message"), "lastUpdateTime": f.get("lastTransitionTime"),
                           "lastTransitionTime": f.get("lastTransitionTime")})
    else:
        remove_condition(st, REPLICA_FAILURE)
    return st


def paused_conditions(d: Obj, now: float) -> Obj | None:
    """The status with a Paused/Resumed Progressing condition, or None if nothing changes."""
    if not has_deadline(d):
        return None
    st = copy.deepcopy(d.get("status") or {})
    cond = get_condition(st, PROGRESSING)
    if cond is not None and cond.get("reason") == TIMED_OUT:
        return None
    paused_now = cond is not None and cond.get("reason") == PAUSED
    if (d.get("spec") or {}).get("paused") and not paused_now:
        set_condition(st, new_condition(PROGRESSING, "Unknown", PAUSED, "Deployment is paused", now))
        return st
    if not (d.get("spec") or {}).get("paused") and paused_now:
        set_condition(st, new_condition(PROGRESSING, "Unknown", RESUMED, "Deployment is resumed", now))
        return st
    return None


def requeue_after(d: Obj, st: Obj, now: float) -> float | None:
    """When a stuck rollout should be looked at to time it out (requeueStuckDeployment)."""
    cond = get_condition(st, PROGRESSING)
    if not has_deadline(d) or cond is None or cond.get("status") != "True" or complete(d, st):
        return None
    since = epoch(cond.get("lastUpdateTime"))
    if since is None:
        return None
    return max(since + int(d["spec"]["progressDeadlineSeconds"]) - now, 1.0)


def normal_status(st: Obj) -> Obj:
    """For change detection: zero counts and empty lists are omitted on the wire."""
    return {k: v for k, v in st.items() if v not in (0, None, [])}
