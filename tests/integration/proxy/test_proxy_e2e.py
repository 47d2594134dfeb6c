"""``kubesvc proxy`` in a node namespace against a real ``kubesvc up``, objects written by hand."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from proxy_netlab import Lab, sh

from kubesvc.testing.cluster import Cluster, start_cluster

pytestmark = [pytest.mark.root, pytest.mark.e2e, pytest.mark.slow]

SERVICE = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web", "namespace": "default"},
           "spec": {"clusterIP": "10.0.0.50", "ports": [{"name": "http", "port": 80, "targetPort": 8080}]}}


def endpoint_slice(*ips: str) -> dict:
    return {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
            "metadata": {"name": "web-manual", "namespace": "default",
                         "labels": {"kubernetes.io/service-name": "web"},
                         "annotations": {"endpoints.kubernetes.io/last-change-trigger-time":
                                         time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}},
            "addressType": "IPv4", "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}],
            "endpoints": [{"addresses": [ip], "nodeName": "node-1", "conditions": {"ready": True}} for ip in ips]}


@pytest.fixture
def uplink(lab: Lab) -> Iterator[str]:
    """A veth from the host into the node namespace, so the node reaches the API server."""
    host_if, octet = f"ks-pxh{lab.tag}", int(lab.tag) % 250
    host_ip, node_ip = f"100.64.{octet}.1", f"100.64.{octet}.2"
    sh("ip", "link", "add", host_if, "type", "veth", "peer", "name", "up0", "netns", lab.node)
    try:
        sh("ip", "addr", "add", f"{host_ip}/30", "dev", host_if)
        sh("ip", "link", "set", host_if, "up")
        sh("ip", "-n", lab.node, "addr", "add", f"{node_ip}/30", "dev", "up0")
        sh("ip", "-n", lab.node, "link", "set", "up0", "up")
        yield host_ip
    finally:
        sh("ip", "link", "del", host_if, check=False)


@pytest.fixture
def cluster(uplink: str, tmp_path: Path) -> Iterator[Cluster]:
    c = start_cluster(tmp_path / "data", tmp_path / "cache", "--bind-address", uplink, "--nodes", "0",
                      "--dns-port", "0", "--storage", "memory://")
    try:
        yield c
    finally:
        c.stop()


def eventually(fn, timeout: float = 20) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while True:
        try:
            fn()
            return
        except AssertionError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def test_kubesvc_proxy_programs_hand_written_services(lab: Lab, cluster: Cluster) -> None:
    lab.add_pod("a", "10.244.1.5")
    lab.add_pod("b", "10.244.1.6")
    cluster.kubectl("apply", "-f", "-", input=json.dumps(SERVICE))
    cluster.kubectl("apply", "-f", "-", input=json.dumps(endpoint_slice("10.244.1.5", "10.244.1.6")))
    proxy = subprocess.Popen(["ip", "netns", "exec", lab.node, sys.executable, "-m", "kubesvc", "proxy",
                              "--kubeconfig", str(cluster.kubeconfig), "--node-name", "node-1",
                              "--cluster-cidr", "10.244.0.0/16"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        def both() -> None:
            seen = {lab.curl(lab.pod_ns("a"), "http://10.0.0.50/")[1].split(" ")[0] for _ in range(20)}
            assert seen == {"a", "b"}, seen

        eventually(both)
        cluster.kubectl("apply", "-f", "-", input=json.dumps(endpoint_slice("10.244.1.6")))

        def only_b() -> None:
            seen = {lab.curl(lab.pod_ns("a"), "http://10.0.0.50/")[1].split(" ")[0] for _ in range(10)}
            assert seen == {"b"}, seen

        eventually(only_b)
        cluster.kubectl("delete", "endpointslice", "web-manual")
        eventually(lambda: _assert_refused(lab))
        rc, metrics = lab.curl(lab.node, "http://127.0.0.1:10249/metrics")
        assert rc == 0 and "kubeproxy_network_programming_duration_seconds_count" in metrics
        assert "kubeproxy_sync_partial_proxy_rules_duration_seconds_count" in metrics
    finally:
        proxy.send_signal(signal.SIGTERM)
        try:
            proxy.wait(10)
        except subprocess.TimeoutExpired:
            proxy.kill()
            proxy.wait()
    assert proxy.returncode == 0, proxy.stderr.read().decode() if proxy.stderr else ""


def _assert_refused(lab: Lab) -> None:
    assert lab.curl(lab.pod_ns("a"), "http://10.0.0.50/")[0] == 7
