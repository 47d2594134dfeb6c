"""Helpers for the node agent tests (kubectl, waits, namespaces, links, processes)."""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Callable
from typing import Any

from kubesvc.testing.cluster import Cluster


def nodes_ready(c: Cluster) -> int:
    out = c.kubectl("get", "nodes", "-o", "json", check=False)
    if out.returncode != 0:
        return 0
    n = 0
    for node in json.loads(out.stdout)["items"]:
        conds = {x["type"]: x["status"] for x in node.get("status", {}).get("conditions", [])}
        n += conds.get("Ready") == "True"
    return n


def wait_for(cond: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        v = cond()
        if v:
            return v
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.2)


def get_pod(c: Cluster, name: str) -> dict[str, Any] | None:
    out = c.kubectl("get", "pod", name, "-o", "json", check=False)
    return json.loads(out.stdout) if out.returncode == 0 else None


def pod_ready(c: Cluster, name: str) -> dict[str, Any] | None:
    pod = get_pod(c, name)
    if not pod:
        return None
    conds = {x["type"]: x["status"] for x in pod.get("status", {}).get("conditions", [])}
    return pod if conds.get("Ready") == "True" and pod["status"].get("podIP") else None


def run_pod(c: Cluster, name: str, node: str, image: str, *, command: list[str] | None = None,
            args: list[str] | None = None, extra: dict[str, Any] | None = None,
            spec: dict[str, Any] | None = None) -> None:
    container: dict[str, Any] = {"name": "c", "image": image, **(extra or {})}
    if command is not None:
        container["command"] = command
    if args is not None:
        container["args"] = args
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "labels": {"test": name}},
           "spec": {"nodeName": node, "containers": [container], **(spec or {})}}
    c.kubectl("apply", "-f", "-", input=json.dumps(pod))


def netns_names() -> set[str]:
    out = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    return {line.split()[0] for line in out.splitlines() if line.strip()}


def links(netns: str | None = None) -> set[str]:
    argv = ["ip"] + (["-n", netns] if netns else []) + ["-o", "link", "show"]
    out = subprocess.run(argv, capture_output=True, text=True).stdout
    return {line.split(": ")[1].split("@")[0] for line in out.splitlines() if ": " in line}


def pids_in(netns: str) -> set[int]:
    out = subprocess.run(["ip", "netns", "pids", netns], capture_output=True, text=True).stdout
    return {int(x) for x in out.split()}
