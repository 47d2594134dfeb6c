"""Node health, taints and eviction times, as pure functions (see :mod:`.nodelifecycle`)."""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass
from typing import Any

from .podutil import epoch
from .scheduling import NOT_READY, UNREACHABLE, UNSCHEDULABLE, tolerates

Obj = dict[str, Any]
PRESSURE_CONDITIONS = ("MemoryPressure", "DiskPressure", "PIDPressure")
MANAGED_TAINT_KEYS = (NOT_READY, UNREACHABLE, UNSCHEDULABLE)


@dataclass(frozen=True)
class Probe:
    """The last heartbeat seen for a node, and when (on the controller's clock) it was seen."""

    lease_renew: str | None
    heartbeat: str | None
    observed_at: float


def ready_condition(node: Obj) -> Obj | None:
    return next((c for c in (node.get("status") or {}).get("conditions") or [] if c.get("type") == "Ready"), None)


def observe(prev: Probe | None, node: Obj, lease: Obj | None, now: float) -> Probe:
    """A heartbeat is any change of the Lease's renewTime or the Ready condition's lastHeartbeatTime."""
    renew = ((lease or {}).get("spec") or {}).get("renewTime")
    beat = (ready_condition(node) or {}).get("lastHeartbeatTime")
    if prev is None or prev.lease_renew != renew or prev.heartbeat != beat:
        return Probe(renew, beat, now)
    return prev


def unknown_status(node: Obj, now: str) -> Obj | None:
    """The node status with its conditions turned Unknown, or None if they already are."""
    status = copy.deepcopy(node.get("status") or {})
    conds = status.setdefault("conditions", [])
    changed = False
    if ready_condition(node) is None:
        created = (node.get("metadata") or {}).get("creationTimestamp")
        conds.append({"type": "Ready", "status": "Unknown", "reason": "NodeStatusNeverUpdated",
                      "message": "Kubelet never posted node status.", "lastHeartbeatTime": created,
                      "lastTransitionTime": now})
        changed = True
    for c in conds:
        if c.get("type") in ("Ready", *PRESSURE_CONDITIONS) and c.get("status") != "Unknown":
            c.update(status="Unknown", reason="NodeStatusUnknown", message="Kubelet stopped posting node status.",
                     lastTransitionTime=now)
            changed = True
    return status if changed else None


def desired_taints(node: Obj, now: str) -> list[Obj]:
    """The node's taints with the condition taints set to what its Ready condition and spec say."""
    current = list((node.get("spec") or {}).get("taints") or [])
    ready = (ready_condition(node) or {}).get("status")
    want: list[tuple[str, str]] = []
    if ready == "False":
        want = [(NOT_READY, "NoSchedule"), (NOT_READY, "NoExecute")]
    elif ready == "Unknown":
        want = [(UNREACHABLE, "NoSchedule"), (UNREACHABLE, "NoExecute")]
    elif ready is None:
        want = [(NOT_READY, "NoSchedule")]
    if (node.get("spec") or {}).get("unschedulable"):
        want.append((UNSCHEDULABLE, "NoSchedule"))
    out = [t for t in current if t.get("key") not in MANAGED_TAINT_KEYS or (t.get("key"), t.get("effect")) in want]
    have = {(t.get("key"), t.get("effect")) for t in out}
    for key, effect in want:
        if (key, effect) not in have:
            out.append({"key": key, "effect": effect, **({"timeAdded": now} if effect == "NoExecute" else {})})
    return out


def eviction_time(pod: Obj, node: Obj, default_delay: float) -> float | None:
    """When (epoch seconds) ``pod`` must leave ``node`` for its NoExecute taints; None if never.

    An untolerated taint evicts at once; tolerated ones after the smallest
    ``tolerationSeconds`` of the matching tolerations, counted from the
    taint's ``timeAdded``.  Pods are treated as carrying upstream's default
    tolerations of not-ready and unreachable for ``default_delay`` seconds
    unless they tolerate those taints themselves.
    """
    taints = [t for t in (node.get("spec") or {}).get("taints") or [] if t.get("effect") == "NoExecute"]
    if not taints:
        return None
    tols = list((pod.get("spec") or {}).get("tolerations") or [])
    for key in (NOT_READY, UNREACHABLE):
        probe = {"key": key, "effect": "NoExecute"}
        if not any(tolerates(t, probe) for t in tols):
            tols.append({"key": key, "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": default_delay})
    soonest = math.inf
    for taint in taints:
        added = epoch(taint.get("timeAdded")) or 0.0
        matching = [t for t in tols if tolerates(t, taint)]
        if not matching:
            return added
        secs = min((float(t["tolerationSeconds"]) if t.get("tolerationSeconds") is not None else math.inf)
                   for t in matching)
        soonest = min(soonest, added + max(secs, 0.0))
    return None if soonest == math.inf else soonest
