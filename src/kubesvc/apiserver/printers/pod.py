"""The Pod row: READY, STATUS and RESTARTS as upstream's printer derives them.

STATUS is not a stored field: it is worked out from the phase, the init
containers' progress, each container's waiting/terminated reason and the
deletion timestamp, in upstream's order, so ``kubectl get pods`` reads
``Init:0/1``, ``CrashLoopBackOff``, ``Completed`` or ``Terminating`` exactly as
it does against a real cluster.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from kubesvc.apiserver.printers.format import NONE, human_duration, parse_time, since

NODE_UNREACHABLE_REASON = "NodeLost"
_TERMINAL = ("Succeeded", "Failed")


def _restartable(container: dict[str, Any] | None) -> bool:
    """A sidecar: an init container with restartPolicy Always."""
    return bool(container) and container.get("restartPolicy") == "Always"


def _condition_true(conditions: list[dict[str, Any]], ctype: str) -> bool:
    return any(c.get("type") == ctype and c.get("status") == "True" for c in conditions)


def _later(current: datetime | None, candidate: Any) -> datetime | None:
    t = parse_time(candidate)
    if t is not None and (current is None or t > current):
        return t
    return current


def _last_terminated_at(status: dict[str, Any]) -> Any:
    term = (status.get("lastState") or {}).get("terminated")
    return term.get("finishedAt") if term else None


def _init_progress(pod: dict[str, Any], reason: str) -> tuple[str, bool, int, int, datetime | None,
                                                                 int, datetime | None]:
    """Walk init container statuses: the reason, whether still initializing, ready sidecars,
    restarts (all and sidecar-only) and the matching last-restart times."""
    spec, status = pod.get("spec") or {}, pod.get("status") or {}
    inits = {c.get("name"): c for c in spec.get("initContainers") or []}
    n_init = len(spec.get("initContainers") or [])
    restarts = sidecar_restarts = ready = 0
    last = sidecar_last = None
    initializing = False
    for i, cs in enumerate(status.get("initContainerStatuses") or []):
        restarts += int(cs.get("restartCount") or 0)
        last = _later(last, _last_terminated_at(cs))
        sidecar = _restartable(inits.get(cs.get("name")))
        if sidecar:
            sidecar_restarts += int(cs.get("restartCount") or 0)
            sidecar_last = _later(sidecar_last, _last_terminated_at(cs))
        state = cs.get("state") or {}
        term, waiting = state.get("terminated"), state.get("waiting")
        if term is not None and int(term.get("exitCode") or 0) == 0:
            continue
        if sidecar and cs.get("started"):
            if cs.get("ready"):
                ready += 1
            continue
        initializing = True
        if term is not None:
            if term.get("reason"):
                reason = "Init:" + term["reason"]
            elif term.get("signal"):
                reason = f"Init:Signal:{term['signal']}"
            else:
                reason = f"Init:ExitCode:{int(term.get('exitCode') or 0)}"
        elif waiting is not None and waiting.get("reason") and waiting["reason"] != "PodInitializing":
            reason = "Init:" + waiting["reason"]
        else:
            reason = f"Init:{i}/{n_init}"
        break
    return reason, initializing, ready, restarts, last, sidecar_restarts, sidecar_last


def pod_summary(pod: dict[str, Any], now: datetime) -> tuple[str, str, str]:
    """(READY, STATUS, RESTARTS) cells for one pod."""
    spec, status = pod.get("spec") or {}, pod.get("status") or {}
    conditions = status.get("conditions") or []
    total = len(spec.get("containers") or []) + sum(
        1 for c in spec.get("initContainers") or [] if _restartable(c))
    phase = status.get("phase") or ""
    reason = status.get("reason") or phase
    for c in conditions:
        if c.get("type") == "PodScheduled" and c.get("reason") == "SchedulingGated":
            reason = "SchedulingGated"

    reason, initializing, ready, restarts, last, sc_restarts, sc_last = _init_progress(pod, reason)
    if not initializing or _condition_true(conditions, "Initialized"):
        restarts, last = sc_restarts, sc_last
        has_running = False
        for cs in reversed(status.get("containerStatuses") or []):
            restarts += int(cs.get("restartCount") or 0)
            last = _later(last, _last_terminated_at(cs))
            state = cs.get("state") or {}
            waiting, term = state.get("waiting"), state.get("terminated")
            if waiting is not None and waiting.get("reason"):
                reason = waiting["reason"]
            elif term is not None and term.get("reason"):
                reason = term["reason"]
            elif term is not None:
                reason = (f"Signal:{term['signal']}" if term.get("signal")
                          else f"ExitCode:{int(term.get('exitCode') or 0)}")
            elif cs.get("ready") and state.get("running") is not None:
                has_running = True
                ready += 1
        if reason == "Completed" and has_running:
            reason = "Running" if _condition_true(conditions, "Ready") else "NotReady"

    deleting = bool((pod.get("metadata") or {}).get("deletionTimestamp"))
    if deleting and status.get("reason") == NODE_UNREACHABLE_REASON:
        reason = "Unknown"
    elif deleting and phase not in _TERMINAL:
        reason = "Terminating"

    restarts_cell = str(restarts)
    if restarts and last is not None:
        restarts_cell = f"{restarts} ({human_duration((now - last).total_seconds())} ago)"
    return f"{ready}/{total}", reason, restarts_cell


def pod_row(pod: dict[str, Any], now: datetime) -> list[Any]:
    """Name, Ready, Status, Restarts, Age, then the wide IP, Node, Nominated Node, Readiness Gates."""
    meta, spec, status = pod.get("metadata") or {}, pod.get("spec") or {}, pod.get("status") or {}
    ready, reason, restarts = pod_summary(pod, now)
    ips = status.get("podIPs") or []
    pod_ip = (ips[0].get("ip") if ips else "") or NONE
    gates_cell = NONE
    gates = spec.get("readinessGates") or []
    if gates:
        conditions = status.get("conditions") or []
        true = 0
        for gate in gates:
            for c in conditions:
                if c.get("type") == gate.get("conditionType"):
                    true += c.get("status") == "True"
                    break
        gates_cell = f"{true}/{len(gates)}"
    return [meta.get("name", ""), ready, reason, restarts, since(meta.get("creationTimestamp"), now),
            pod_ip, spec.get("nodeName") or NONE, status.get("nominatedNodeName") or NONE, gates_cell]


def pod_conditions(pod: dict[str, Any]) -> list[dict[str, str]] | None:
    """Row conditions upstream attaches to finished pods (kubectl may use them to dim rows)."""
    phase = (pod.get("status") or {}).get("phase")
    if phase == "Succeeded":
        return [{"type": "Completed", "status": "True", "reason": "Succeeded",
                 "message": "The pod has completed successfully."}]
    if phase == "Failed":
        return [{"type": "Completed", "status": "True", "reason": "Failed", "message": "The pod failed."}]
    return None
