"""Pure facts about pods that several controllers need: active, ready, available.

Upstream keeps these in ``pkg/api/v1/pod`` and ``pkg/controller``; the
ReplicaSet, Deployment and node-lifecycle controllers must agree on them (a
pod the ReplicaSet counts as available is the one the Deployment's status
counts), so they live in one module.  Times are plain ``float`` epoch seconds
passed in by the caller, so every decision is testable without a clock.
"""

from __future__ import annotations

import math
from typing import Any

from kubesvc.api.meta import parse_time

Obj = dict[str, Any]


def _status(pod: Obj) -> Obj:
    return pod.get("status") or {}


def phase(pod: Obj) -> str:
    return str(_status(pod).get("phase") or "")


def is_deleting(obj: Obj) -> bool:
    return bool((obj.get("metadata") or {}).get("deletionTimestamp"))


def is_active(pod: Obj) -> bool:
    """Counted toward a controller's replicas: not finished and not being deleted."""
    return phase(pod) not in ("Succeeded", "Failed") and not is_deleting(pod)


def condition(pod: Obj, ctype: str) -> Obj | None:
    for c in _status(pod).get("conditions") or []:
        if c.get("type") == ctype:
            return c
    return None


def is_ready(pod: Obj) -> bool:
    c = condition(pod, "Ready")
    return c is not None and c.get("status") == "True"


def epoch(value: str | None) -> float | None:
    t = parse_time(value)
    return t.timestamp() if t is not None else None


def ready_since(pod: Obj) -> float | None:
    """When the pod last became Ready (the condition's lastTransitionTime), if it is ready."""
    c = condition(pod, "Ready")
    if c is None or c.get("status") != "True":
        return None
    return epoch(c.get("lastTransitionTime"))


def is_available(pod: Obj, min_ready_seconds: int, now: float) -> bool:
    """Ready for at least ``min_ready_seconds`` (upstream's IsPodAvailable)."""
    if not is_ready(pod):
        return False
    if min_ready_seconds <= 0:
        return True
    since = ready_since(pod)
    return since is not None and since + min_ready_seconds <= now


def max_restarts(pod: Obj) -> int:
    """The most restarts of any one container (what upstream ranks by)."""
    return max((int(c.get("restartCount") or 0) for c in _status(pod).get("containerStatuses") or []), default=0)


def deletion_cost(pod: Obj) -> int:
    """``controller.kubernetes.io/pod-deletion-cost``: lower goes first; invalid counts as 0."""
    raw = ((pod.get("metadata") or {}).get("annotations") or {}).get("controller.kubernetes.io/pod-deletion-cost")
    try:
        return int(raw) if raw is not None else 0
    except ValueError:
        return 0


_PHASE_ORDER = {"Pending": 0, "Unknown": 1, "Running": 2}


def _age_bucket(t: float | None, now: float) -> float:
    """Upstream's LogarithmicScaleDown: ages (in ns) within the same power of two tie.

    A missing time sorts as the youngest of all.
    """
    if t is None:
        return -math.inf
    age_ns = (now - t) * 1e9
    return float(int(math.log2(age_ns))) if age_ns > 0 else -1.0


def deletion_rank(pod: Obj, colocated: int, now: float) -> tuple[Any, ...]:
    """Sort key: pods earlier in the order are deleted first (upstream's ActivePodsWithRanks).

    Unscheduled before scheduled; Pending before Unknown before Running; not
    ready before ready; lower deletion cost; more pods of the same controller
    on the node (``colocated``) first; more recently ready; more restarts;
    newer.  Times compare in logarithmic buckets, as upstream does by default,
    so near-equal ages fall through to the next criterion.
    """
    spec = pod.get("spec") or {}
    ready = is_ready(pod)
    created = epoch((pod.get("metadata") or {}).get("creationTimestamp"))
    return (
        1 if spec.get("nodeName") else 0,
        _PHASE_ORDER.get(phase(pod), 3),
        1 if ready else 0,
        deletion_cost(pod),
        -colocated,
        _age_bucket(ready_since(pod), now) if ready else 0,
        -max_restarts(pod),
        _age_bucket(created, now),
        (pod.get("metadata") or {}).get("name") or "",
    )
