"""Helpers for the kernel-mode LoadBalancer tests and benchmark: curl, routes, agents."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from kubesvc.testing.cluster import Cluster

T = TypeVar("T")


def root() -> bool:
    return os.geteuid() == 0


def wait_for(cond: Callable[[], T], timeout: float, what: str, interval: float = 0.05) -> T:
    deadline = time.monotonic() + timeout
    while True:
        v = cond()
        if v:
            return v
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


def curl(url: str, timeout: float = 1.0) -> tuple[int, str]:
    """(curl exit code, body) from the host, the outside world."""
    p = subprocess.run(["curl", "-s", "-m", str(timeout), url], capture_output=True, text=True)
    return p.returncode, p.stdout


def lb_route(ip: str) -> str:
    """The node IP the host routes ``ip`` to, or ``""``."""
    out = subprocess.run(["ip", "route", "show", f"{ip}/32"], capture_output=True, text=True).stdout
    m = re.search(r"via (\S+)", out)
    return m.group(1) if m else ""


def external_ip(c: Cluster, svc: str) -> str:
    return c.kubectl("get", "svc", svc, "-o", "jsonpath={.status.loadBalancer.ingress[0].ip}").stdout


def node_name_of_ip(node_ip: str) -> str:
    """node-N sits at 172.18.0.(N+1)."""
    return f"node-{int(node_ip.rsplit('.', 1)[1]) - 1}"


def kill_agent(node: str) -> int:
    """SIGKILL the agent of ``node`` (its pods and proxy live on: a kubelet crash)."""
    out = subprocess.run(["ip", "netns", "pids", f"ks-{node}"], capture_output=True, text=True).stdout
    for pid in (int(x) for x in out.split()):
        try:
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"agent" in cmd and b"kubesvc" in b" ".join(cmd):
            os.kill(pid, signal.SIGKILL)
            return pid
    raise AssertionError(f"no agent process found in ks-{node}")


def lb_routes_left() -> list[str]:
    out = subprocess.run(["ip", "route", "show", "proto", "250"], capture_output=True, text=True).stdout
    return [line for line in out.splitlines() if line.strip()]


def start_kernel_cluster(base: Path, *extra: str, env: dict[str, Any] | None = None) -> Cluster:
    from kubesvc.testing.cluster import start_cluster

    old = dict(os.environ)
    os.environ.update({k: str(v) for k, v in (env or {}).items()})
    try:  # --nodes waits up to 120 s for another cluster network on this machine to go
        return start_cluster(base / "data", base / "kcache", "--nodes", "2", "--dns-port", "0",
                             "--storage", "memory://", *extra, timeout=180)
    finally:
        os.environ.clear()
        os.environ.update(old)
