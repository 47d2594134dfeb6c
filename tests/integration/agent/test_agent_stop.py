"""``kubesvc up`` stopping takes the whole node network with it: namespaces, bridge, agents, pods."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from agent_helpers import links, netns_names, pids_in, pod_ready, run_pod, wait_for

from kubesvc.agent.hostnet import LOCK_FILE
from kubesvc.testing.cluster import start_cluster

pytestmark = [pytest.mark.root, pytest.mark.slow]


def test_stop_removes_everything(tmp_path: Path) -> None:
    """After SIGTERM: no ks-node/ks-p namespaces of ours, no kubesvc0 of ours, no agents, no pod processes."""
    if os.geteuid() != 0:
        pytest.skip("needs root: nodes and pods are network namespaces")
    c = start_cluster(tmp_path / "data", tmp_path / "kcache", "--nodes", "2", timeout=180)
    try:
        wait_for(lambda: c.kubectl("get", "node", "node-2", check=False).returncode == 0, 30, "node-2")
        run_pod(c, "s1", "node-1", "nginx")
        run_pod(c, "s2", "node-2", "busybox", command=["sleep", "3600"])
        wait_for(lambda: pod_ready(c, "s1") and pod_ready(c, "s2"), 30, "pods Ready")
        agents = subprocess.run(["pgrep", "-f", f"kubesvc agent --kubeconfig {tmp_path}"],
                                capture_output=True, text=True).stdout.split()
        assert len(agents) == 2
        ours = {n for n in netns_names() if n.startswith(("ks-node-", "ks-p-"))}
        assert len(ours) >= 4
        pod_procs = set().union(*(pids_in(n) for n in ours if n.startswith("ks-p-")))
        assert pod_procs
    finally:
        assert c.stop(timeout=60) == 0
    assert not (ours & netns_names())
    assert not any(Path(f"/proc/{p}").exists() for p in agents)
    owner = LOCK_FILE.read_text().strip() if LOCK_FILE.exists() else ""
    if owner == str(c.proc.pid) or not owner:
        assert "kubesvc0" not in links()  # unless another cluster took the network since
    assert not any(Path(f"/proc/{p}").exists() for p in pod_procs)
