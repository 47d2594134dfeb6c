"""What a ReplicaSet should do, as pure functions over plain objects.

Kept apart from the controller so each rule is a table test: which pods go
first when scaling down, the batch sizes of a scale-up, the pod a template
stamps out, and the status a set of pods adds up to.
"""

from __future__ import annotations

import copy
from collections import Counter
from collections.abc import Iterable
from typing import Any

from kubesvc.api.meta import now_rfc3339

from .podutil import deletion_rank, is_available, is_ready
from .refmanager import controller_ref

Obj = dict[str, Any]
BURST_REPLICAS = 500  # upstream's burstReplicas: at most this many creates/deletes per sync
FAILURE = "ReplicaFailure"


def pods_to_delete(pods: list[Obj], related: Iterable[Obj], n: int, now: float) -> list[Obj]:
    """The ``n`` pods to remove first, ranked as upstream's getPodsToDelete.

    ``related`` are the active pods of every ReplicaSet sharing this one's
    controller (a Deployment's old and new sets): a pod on a node crowded
    with its relatives goes before one that is alone, which keeps the
    Deployment spread while it rolls.
    """
    if n <= 0:
        return []
    on_node = Counter((p.get("spec") or {}).get("nodeName") or "" for p in related)
    ranked = sorted(pods, key=lambda p: deletion_rank(p, on_node[(p.get("spec") or {}).get("nodeName") or ""], now))
    return ranked[:n]


def slow_start_batches(n: int, initial: int = 1) -> list[int]:
    """Batch sizes 1, 2, 4, ... summing to ``n``: a failing create stops a burst early."""
    out: list[int] = []
    size = initial
    left = n
    while left > 0:
        b = min(size, left)
        out.append(b)
        left -= b
        size *= 2
    return out


def pod_from_template(rs: Obj) -> Obj:
    """A new pod as the ReplicaSet's template describes it, controlled by the ReplicaSet."""
    m = rs.get("metadata") or {}
    tmpl = copy.deepcopy((rs.get("spec") or {}).get("template") or {})
    tm = tmpl.get("metadata") or {}
    meta: Obj = {"generateName": f"{m.get('name')}-", "namespace": m.get("namespace"),
                 "ownerReferences": [controller_ref(rs)]}
    for k in ("labels", "annotations", "finalizers"):
        if tm.get(k):
            meta[k] = tm[k]
    return {"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": tmpl.get("spec") or {}}


def _conditions_with_failure(rs: Obj, failure: tuple[str, str] | None) -> list[Obj]:
    conds = [dict(c) for c in (rs.get("status") or {}).get("conditions") or []]
    has = any(c.get("type") == FAILURE for c in conds)
    if failure is not None and not has:
        reason, message = failure
        conds.append({"type": FAILURE, "status": "True", "lastTransitionTime": now_rfc3339(),
                      "reason": reason, "message": message})
    elif failure is None and has:
        conds = [c for c in conds if c.get("type") != FAILURE]
    return conds


def calculate_status(rs: Obj, pods: list[Obj], failure: tuple[str, str] | None, now: float) -> Obj:
    """The status ``pods`` (active, claimed) add up to; ``failure`` is (reason, message) of a failed sync."""
    spec = rs.get("spec") or {}
    tmpl_labels = ((spec.get("template") or {}).get("metadata") or {}).get("labels") or {}
    min_ready = int(spec.get("minReadySeconds") or 0)
    fully = sum(1 for p in pods if _has_labels((p.get("metadata") or {}).get("labels") or {}, tmpl_labels))
    status: Obj = {
        "replicas": len(pods),
        "fullyLabeledReplicas": fully,
        "readyReplicas": sum(1 for p in pods if is_ready(p)),
        "availableReplicas": sum(1 for p in pods if is_available(p, min_ready, now)),
        "observedGeneration": (rs.get("metadata") or {}).get("generation") or 0,
    }
    conds = _conditions_with_failure(rs, failure)
    if conds:
        status["conditions"] = conds
    return status


def _has_labels(labels: dict[str, str], want: dict[str, str]) -> bool:
    return all(labels.get(k) == v for k, v in want.items())


def _normal(status: Obj) -> Obj:
    """Zero counts are omitted on the wire; compare statuses without that noise."""
    return {k: v for k, v in status.items() if v not in (0, None, [])}


def status_changed(rs: Obj, new: Obj) -> bool:
    return _normal(rs.get("status") or {}) != _normal(new)
