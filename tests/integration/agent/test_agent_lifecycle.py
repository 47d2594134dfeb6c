"""Nothing leaks: 100 pods come and go; a restarted agent adopts its pods; ``up`` stopping removes all."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
from agent_helpers import get_pod, links, netns_names, pids_in, pod_ready, run_pod, wait_for

from kubesvc.testing.cluster import Cluster

pytestmark = [pytest.mark.root, pytest.mark.slow]


def _census() -> dict[str, int]:
    """What pods leave behind on the machine, counted."""
    ns = netns_names()
    return {"netns": len([n for n in ns if n.startswith("ks-p-")]),
            "node1-links": len(links("ks-node-1")), "node2-links": len(links("ks-node-2")),
            "host-links": len(links()),
            "node-procs": len(pids_in("ks-node-1") | pids_in("ks-node-2")),
            "etc-netns": len([p for p in Path("/etc/netns").glob("ks-p-*")]) if Path("/etc/netns").exists() else 0}


def _settled_census() -> dict[str, int]:
    """The census once two readings agree: the node proxy briefly runs helpers (``conntrack -D``) in a
    node's namespace, and one caught in the "before" count read as a process that later leaked away."""
    last = _census()
    for _ in range(50):
        time.sleep(0.2)
        now = _census()
        if now == last:
            return now
        last = now
    return last


def _pods(n: int) -> str:
    items = [{"apiVersion": "v1", "kind": "Pod",
              "metadata": {"name": f"leak-{i}", "labels": {"leak": "1"}},
              "spec": {"nodeName": f"node-{1 + i % 2}", "terminationGracePeriodSeconds": 5,
                       "containers": [{"name": "c", "image": "registry.k8s.io/pause:3.10"}]}}
             for i in range(n)]
    return json.dumps({"apiVersion": "v1", "kind": "List", "items": items})


def _all_ready(c: Cluster, n: int) -> bool:
    out = json.loads(c.kubectl("get", "pods", "-l", "leak=1", "-o", "json").stdout)["items"]
    ready = [p for p in out if any(x["type"] == "Ready" and x["status"] == "True"
                                   for x in p.get("status", {}).get("conditions", []))]
    return len(ready) == n


def test_hundred_pods_created_and_deleted_leave_nothing(cluster: Cluster) -> None:
    """Counts of pod namespaces, veths, processes and /etc/netns entries are equal before and after."""
    before = _settled_census()
    cluster.kubectl("apply", "-f", "-", input=_pods(100), timeout=120)
    wait_for(lambda: _all_ready(cluster, 100), 120, "100 pods Ready")
    assert _census()["netns"] == before["netns"] + 100
    cluster.kubectl("delete", "pods", "-l", "leak=1", "--wait=true", timeout=180)
    wait_for(lambda: _census() == before, 20, f"census back to {before} (now {_census()})")


def test_restarted_agent_adopts_running_pods(cluster: Cluster) -> None:
    """SIGKILL the node-2 agent: its pod keeps running; a new agent adopts it (same IP, same process)."""
    from kubesvc.agent.hostnet import NodeNet
    from kubesvc.agent.podnet import pod_netns
    from kubesvc.agent.supervisor import agent_argv

    run_pod(cluster, "adopt1", "node-2", "busybox", command=["sleep", "3600"])
    pod = wait_for(lambda: pod_ready(cluster, "adopt1"), 30, "adopt1 Ready")
    netns = pod_netns(pod["metadata"]["uid"])
    procs = pids_in(netns)
    agents = [p for p in pids_in("ks-node-2") if "agent" in Path(f"/proc/{p}/cmdline").read_text()]
    assert len(agents) == 1
    os.kill(agents[0], signal.SIGKILL)
    wait_for(lambda: not Path(f"/proc/{agents[0]}").exists(), 5, "agent gone")
    assert pids_in(netns) == procs  # the pod outlives its agent
    node_dir = cluster.data_dir / "nodes" / "node-2"
    argv = [a for a in agent_argv(NodeNet(2), node_dir, cluster.data_dir / "nodes" / "agent-token")
            if a != "--exit-with-parent"]
    with open(node_dir / "agent-restarted.log", "ab") as log:
        subprocess.Popen(argv, stdout=log, stderr=log, start_new_session=True)
    # the new agent is inside ks-node-2, so `up` removes it with the node when it stops
    run_pod(cluster, "adopt2", "node-2", "busybox", command=["sleep", "3600"])
    wait_for(lambda: pod_ready(cluster, "adopt2"), 30, "a new pod on the new agent")
    again = get_pod(cluster, "adopt1")
    assert again is not None and again["status"]["podIP"] == pod["status"]["podIP"]
    assert again["status"]["containerStatuses"][0]["restartCount"] == 0
    assert pids_in(netns) == procs
    cluster.kubectl("delete", "pod", "adopt1", "adopt2", "--wait=true", timeout=60)
    assert netns not in netns_names() and not pids_in(netns)
