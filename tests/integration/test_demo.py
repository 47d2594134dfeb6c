"""`kubesvc demo`, the README's main command, runs clean and leaves nothing behind (root)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

pytestmark = [pytest.mark.root, pytest.mark.slow,
              pytest.mark.skipif(os.geteuid() != 0, reason="kernel mode needs root (network namespaces)")]


def _netns() -> set[str]:
    out = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    return {line.split()[0] for line in out.splitlines() if line.startswith("ks-")}


def test_demo_walks_the_seed_and_cleans_up() -> None:
    before = _netns()
    p = subprocess.run([sys.executable, "-m", "kubesvc", "demo", "--requests", "6"],
                       capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-3000:]
    out = p.stdout
    for expected in (
        "deployment.apps/nginx-for-service created",
        "service/my-service created",
        "service/clusterip-service created",
        "10.0.10.10",
        "172.18.255.200",
        "http://clusterip-service/: 6/6 requests answered",
        ":30080/ (node-2): 6/6 requests answered",
        "IN CNAME clusterip-service.default.svc.cluster.local.",
        "refused at once (no endpoints)",
        "ClusterIP after the replacement (from the client pod): 6/6 requests answered",
        "done: nothing is left running",
    ):
        assert expected in out, f"missing {expected!r} in:\n{out}"
    assert "Traceback" not in out + p.stderr
    assert _netns() == before
    assert subprocess.run(["ip", "link", "show", "kubesvc0"], capture_output=True).returncode != 0
