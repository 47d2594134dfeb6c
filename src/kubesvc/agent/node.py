"""The Node and Lease objects the agent keeps up to date (pure builders).

Field by field what the kubelet reports: addresses (InternalIP, Hostname),
podCIDR(s), capacity and allocatable, nodeInfo, the daemon endpoint the
apiserver uses for logs, and the four conditions with upstream's reasons.
The Lease in ``kube-node-lease`` is the cheap heartbeat (renewed every 10 s,
40 s duration), as upstream.
"""

from __future__ import annotations

import os
import platform
from pathlib import Path
from typing import Any

from kubesvc import __version__

Obj = dict[str, Any]
KUBELET_VERSION = "v1.32.0"
LEASE_DURATION = 40
LEASE_RENEW = 10.0
STATUS_UPDATE = 10.0
MAX_PODS = 110


def _read(path: str) -> str:
    try:
        return Path(path).read_text().strip()
    except OSError:
        return ""


def _memory_ki() -> int:
    for line in _read("/proc/meminfo").splitlines():
        if line.startswith("MemTotal:"):
            return int(line.split()[1])
    return 0


def _os_image() -> str:
    for line in _read("/etc/os-release").splitlines():
        if line.startswith("PRETTY_NAME="):
            return line.split("=", 1)[1].strip('"')
    return "Linux"


def node_labels(name: str) -> dict[str, str]:
    arch = {"x86_64": "amd64", "aarch64": "arm64"}.get(platform.machine(), platform.machine())
    return {"kubernetes.io/hostname": name, "kubernetes.io/os": "linux", "kubernetes.io/arch": arch,
            "beta.kubernetes.io/os": "linux", "beta.kubernetes.io/arch": arch}


def node_object(name: str, pod_cidr: str) -> Obj:
    return {"apiVersion": "v1", "kind": "Node",
            "metadata": {"name": name, "labels": node_labels(name),
                         "annotations": {"node.alpha.kubernetes.io/ttl": "0",
                                         "volumes.kubernetes.io/controller-managed-attach-detach": "true"}},
            "spec": {"podCIDR": pod_cidr, "podCIDRs": [pod_cidr]}}


def _condition(ctype: str, status: str, reason: str, message: str, now: str, prev: dict[str, Obj]) -> Obj:
    old = prev.get(ctype) or {}
    since = old.get("lastTransitionTime") if old.get("status") == status else now
    return {"type": ctype, "status": status, "reason": reason, "message": message,
            "lastHeartbeatTime": now, "lastTransitionTime": since or now}


def node_status(name: str, ip: str, port: int, now: str, prev: Obj | None = None) -> Obj:
    prev_conds = {c.get("type"): c for c in ((prev or {}).get("conditions") or [])}
    cpu = str(os.cpu_count() or 1)
    mem = f"{_memory_ki()}Ki"
    res = {"cpu": cpu, "memory": mem, "pods": str(MAX_PODS), "ephemeral-storage": "20Gi", "hugepages-2Mi": "0"}
    arch = node_labels(name)["kubernetes.io/arch"]
    return {
        "capacity": res, "allocatable": dict(res),
        "conditions": [
            _condition("MemoryPressure", "False", "KubeletHasSufficientMemory", "kubelet has sufficient memory available", now, prev_conds),
            _condition("DiskPressure", "False", "KubeletHasNoDiskPressure", "kubelet has no disk pressure", now, prev_conds),
            _condition("PIDPressure", "False", "KubeletHasSufficientPID", "kubelet has sufficient PID available", now, prev_conds),
            _condition("Ready", "True", "KubeletReady", "kubelet is posting ready status", now, prev_conds),
        ],
        "addresses": [{"type": "InternalIP", "address": ip}, {"type": "Hostname", "address": name}],
        "daemonEndpoints": {"kubeletEndpoint": {"Port": port}},
        "nodeInfo": {"machineID": _read("/etc/machine-id"), "systemUUID": _read("/etc/machine-id"),
                     "bootID": _read("/proc/sys/kernel/random/boot_id"), "kernelVersion": platform.release(),
                     "osImage": _os_image(), "containerRuntimeVersion": f"kubesvc://{__version__}",
                     "kubeletVersion": KUBELET_VERSION, "kubeProxyVersion": KUBELET_VERSION,
                     "operatingSystem": "linux", "architecture": arch},
    }


def lease_object(name: str, node_uid: str | None, renew: str) -> Obj:
    m: Obj = {"name": name, "namespace": "kube-node-lease"}
    if node_uid:
        m["ownerReferences"] = [{"apiVersion": "v1", "kind": "Node", "name": name, "uid": node_uid}]
    return {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "metadata": m,
            "spec": {"holderIdentity": name, "leaseDurationSeconds": LEASE_DURATION, "renewTime": renew}}
