"""Pod status from what the runtime knows: a pure function, as the kubelet's generateAPIPodStatus.

Inputs are plain records of each container (state, restarts, readiness), the
pod's addresses and the previous status (so a condition's
``lastTransitionTime`` only moves when its status does); the output is the
``status`` the API shows: phase, conditions, container statuses, IPs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

Obj = dict[str, Any]


@dataclass
class ContainerRecord:
    """What the runtime knows of one container (the CRI's ContainerStatus, roughly)."""

    name: str
    image: str
    state: str = "waiting"  # waiting | running | terminated
    reason: str = "ContainerCreating"
    message: str = ""
    exit_code: int = 0
    started_at: str | None = None
    finished_at: str | None = None
    restart_count: int = 0
    last_terminated: Obj | None = None
    ready: bool = False
    started: bool = False
    container_id: str = ""
    pid: int | None = None
    start_ticks: int | None = None  # of the process ``pid`` (see containers.proc_start_ticks)
    extra: Obj = field(default_factory=dict)

    def terminated_dict(self) -> Obj:
        d: Obj = {"exitCode": self.exit_code, "reason": self.reason, "startedAt": self.started_at,
                  "finishedAt": self.finished_at, "containerID": self.container_id}
        if self.message:
            d["message"] = self.message
        return d

    def state_dict(self) -> Obj:
        if self.state == "running":
            return {"running": {"startedAt": self.started_at}}
        if self.state == "terminated":
            return {"terminated": self.terminated_dict()}
        w: Obj = {"reason": self.reason}
        if self.message:
            w["message"] = self.message
        return {"waiting": w}


def container_status(r: ContainerRecord) -> Obj:
    st: Obj = {"name": r.name, "image": r.image, "imageID": f"kubesvc://{r.image}",
               "ready": r.ready, "restartCount": r.restart_count, "started": r.started and r.state == "running",
               "state": r.state_dict(), "lastState": {"terminated": r.last_terminated} if r.last_terminated else {}}
    if r.container_id:
        st["containerID"] = r.container_id
    return st


def phase(restart_policy: str, init_done: bool, init_failed: bool, records: list[ContainerRecord]) -> str:
    """Upstream's getPhase over the regular containers."""
    if init_failed and restart_policy == "Never":
        return "Failed"
    if not init_done:
        return "Pending"
    running = waiting = stopped = succeeded = 0
    for r in records:
        if r.state == "running":
            running += 1
        elif r.state == "terminated":
            stopped += 1
            succeeded += r.exit_code == 0
        elif r.last_terminated is not None:
            stopped += 1
            succeeded += r.last_terminated.get("exitCode") == 0
        else:
            waiting += 1
    if waiting:
        return "Pending"
    if running:
        return "Running"
    if stopped:
        if restart_policy == "Always":
            return "Running"
        if stopped == succeeded:
            return "Succeeded"
        if restart_policy == "Never":
            return "Failed"
        return "Running"
    return "Pending"


def qos_class(pod: Obj) -> str:
    cs = (pod.get("spec") or {}).get("containers") or []
    reqs = [(c.get("resources") or {}) for c in cs]
    if not any(r.get("requests") or r.get("limits") for r in reqs):
        return "BestEffort"
    guaranteed = all(
        all(k in (r.get("limits") or {}) for k in ("cpu", "memory"))
        and all((r.get("requests") or {}).get(k, (r.get("limits") or {})[k]) == (r.get("limits") or {})[k]
                for k in ("cpu", "memory"))
        for r in reqs)
    return "Guaranteed" if guaranteed else "Burstable"


def _cond(ctype: str, ok: bool, now: str, prev: dict[str, Obj], reason: str = "", message: str = "") -> Obj:
    status = "True" if ok else "False"
    old = prev.get(ctype)
    c: Obj = {"type": ctype, "status": status, "lastProbeTime": None,
              "lastTransitionTime": old.get("lastTransitionTime") if old and old.get("status") == status else now}
    if not ok and reason:
        c["reason"] = reason
        if message:
            c["message"] = message
    return c


def pod_status(pod: Obj, init: list[ContainerRecord], records: list[ContainerRecord], *, pod_ip: str | None,
               host_ip: str, start_time: str, now: str, sandbox_ready: bool = True) -> Obj:
    """The pod's whole ``status`` (merge-patched into the API as one piece)."""
    spec, prev_status = pod.get("spec") or {}, pod.get("status") or {}
    prev = {c.get("type"): c for c in prev_status.get("conditions") or []}
    policy = spec.get("restartPolicy") or "Always"
    init_done = all(r.state == "terminated" and r.exit_code == 0 for r in init)
    init_failed = any(r.state == "terminated" and r.exit_code != 0 for r in init)
    ph = phase(policy, init_done, init_failed, records)
    unready = [r.name for r in records if not r.ready]
    terminal = ph in ("Succeeded", "Failed")
    pending_init = [r.name for r in init if not (r.state == "terminated" and r.exit_code == 0)]
    ready_reason = "PodCompleted" if terminal else "ContainersNotReady"
    ready_msg = "" if terminal else f"containers with unready status: [{' '.join(unready)}]"
    ok = not unready and not terminal
    conditions = [
        _cond("PodReadyToStartContainers", sandbox_ready and not terminal, now, prev),
        _cond("Initialized", init_done, now, prev, "ContainersNotInitialized",
              f"containers with incomplete status: [{' '.join(pending_init)}]"),
        _cond("Ready", ok, now, prev, ready_reason, ready_msg),
        _cond("ContainersReady", ok, now, prev, ready_reason, ready_msg),
        prev.get("PodScheduled") or {"type": "PodScheduled", "status": "True", "lastProbeTime": None,
                                     "lastTransitionTime": start_time},
    ]
    out: Obj = {"phase": ph, "conditions": conditions, "hostIP": host_ip, "hostIPs": [{"ip": host_ip}],
                "startTime": start_time, "qosClass": qos_class(pod),
                "containerStatuses": [container_status(r) for r in records]}
    if pod_ip:
        out["podIP"] = pod_ip
        out["podIPs"] = [{"ip": pod_ip}]
    if init:
        out["initContainerStatuses"] = [container_status(r) for r in init]
    return out
