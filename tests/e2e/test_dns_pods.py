"""Cluster DNS as pods use it: from inside pods on two real nodes, through 10.0.0.10 (root).

The pods' resolv.conf names 10.0.0.10 with the search path of their namespace
and ``ndots:5``; the data plane carries 10.0.0.10:53 to the DNS server's
endpoint.  Names outside the cluster are forwarded to an upstream of the
test's own (dnsmasq on loopback, ``up --dns-upstream``), so the outside name
resolves the same way on a machine without Internet access.  The cluster runs
``--dns-pods verified``: pod names exist only for pods' own addresses.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import time
from collections.abc import Iterator

import pytest

from kubesvc.testing.cluster import Cluster, free_port, start_cluster

pytestmark = [pytest.mark.e2e, pytest.mark.root, pytest.mark.slow,
              pytest.mark.skipif(os.geteuid() != 0, reason="nodes and pods are network namespaces (root)")]

Z = "svc.cluster.local"
OUTSIDE, OUTSIDE_IP = "outside.example.test", "192.0.2.80"
CLUSTER_IP = "10.0.10.10"


@pytest.fixture(scope="module")
def upstream(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    """An upstream resolver for names outside the cluster: dnsmasq, authoritative for example.test."""
    exe = shutil.which("dnsmasq") or "/usr/sbin/dnsmasq"
    if not os.path.exists(exe):
        pytest.fail("dnsmasq is not installed (dnsmasq-base; .ci/setup installs it)")
    base = tmp_path_factory.mktemp("upstream")
    hosts = base / "hosts"
    hosts.write_text(f"{OUTSIDE_IP} {OUTSIDE}\n")
    os.chmod(base, 0o755)
    os.chmod(hosts, 0o644)
    port = free_port()
    proc = subprocess.Popen([exe, "--keep-in-foreground", "--no-resolv", "--no-hosts", f"--addn-hosts={hosts}",
                             "--listen-address=127.0.0.1", "--bind-interfaces", f"--port={port}",
                             "--local=/example.test/", "--pid-file=", "--user=root"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        yield port
    finally:
        proc.terminate()
        proc.wait(10)


def _pod(name: str, node: str, image: str, labels: dict[str, str], command: list[str] | None = None) -> dict:
    container: dict = {"name": "c", "image": image}
    if command:
        container["command"] = command
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "labels": labels},
            "spec": {"nodeName": node, "containers": [container]}}


def _svc(name: str, **spec: object) -> dict:
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name}, "spec": spec}


OBJECTS = [
    _pod("client", "node-1", "curlimages/curl", {"role": "client"}, ["sleep", "3600"]),
    _pod("web-1", "node-1", "nginx", {"app": "web"}),
    _pod("web-2", "node-2", "nginx", {"app": "web"}),
    _svc("clusterip-service", clusterIP=CLUSTER_IP, selector={"app": "web"}, ports=[{"name": "http", "port": 80}]),
    _svc("headless-service", clusterIP="None", selector={"app": "web"}, ports=[{"name": "http", "port": 80}]),
    _svc("externalname-service", type="ExternalName", externalName=OUTSIDE),
]


def _ready_ips(c: Cluster) -> dict[str, str]:
    items = json.loads(c.kubectl("get", "pods", "-o", "json").stdout)["items"]
    out = {}
    for pod in items:
        conds = {x["type"]: x["status"] for x in pod.get("status", {}).get("conditions", [])}
        if conds.get("Ready") == "True" and pod["status"].get("podIP"):
            out[pod["metadata"]["name"]] = pod["status"]["podIP"]
    return out


@pytest.fixture(scope="module")
def pods(tmp_path_factory: pytest.TempPathFactory, upstream: int) -> Iterator[tuple[Cluster, dict[str, str]]]:
    """Two nodes, a client pod, two web pods behind a ClusterIP and a headless Service, an ExternalName."""
    base = tmp_path_factory.mktemp("dnspods")
    c = start_cluster(base / "data", base / "kcache", "--nodes", "2", "--dns-pods", "verified",
                      "--dns-upstream", f"127.0.0.1:{upstream}", timeout=180)
    ours: set[str] = set()
    try:
        c.kubectl("wait", "--for=condition=Ready", "node/node-1", "node/node-2", "--timeout=60s")
        c.kubectl("apply", "-f", "-", input=json.dumps({"apiVersion": "v1", "kind": "List", "items": OBJECTS}))
        c.kubectl("wait", "--for=condition=Ready", "pod/client", "pod/web-1", "pod/web-2", "--timeout=60s")
        ours = _netns()
        yield c, _ready_ips(c)
    finally:
        rc = c.stop(timeout=60)
        assert rc == 0, f"kubesvc up exited with {rc}:\n" + "".join(c.output)
    assert not {n for n in ours & _netns() if n.startswith("ks-p-")}, "pod namespaces left behind"


def _netns() -> set[str]:
    out = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    return {line.split()[0] for line in out.splitlines() if line.startswith("ks-")}


def in_pod(c: Cluster, *argv: str) -> str:
    p = c.kubectl("exec", "client", "--", *argv, check=False, timeout=30)
    assert p.returncode == 0 or argv[0] == "dig", f"{argv} failed ({p.returncode}): {p.stdout}{p.stderr}"
    return p.stdout


def dig(c: Cluster, *args: str) -> tuple[str, list[tuple[str, str]], str]:
    """dig from the client pod with its own resolv.conf: (status, [(type, data)], server that answered)."""
    out = in_pod(c, "dig", "+tries=2", "+time=3", *args)
    status = re.search(r"status: (\w+)", out)
    server = re.search(r"SERVER: ([\d.]+)#53", out)
    answer = out.split("ANSWER SECTION:\n")[1].split("\n\n")[0] if "ANSWER SECTION:" in out else ""
    records = [(f[3], f[4]) for f in (line.split() for line in answer.splitlines()) if len(f) >= 5]
    return (status.group(1) if status else "no answer: " + out), sorted(records), server.group(1) if server else ""


def test_pod_resolv_conf_points_at_cluster_dns(pods: tuple[Cluster, dict[str, str]]) -> None:
    c, _ = pods
    conf = in_pod(c, "cat", "/etc/resolv.conf")
    assert "nameserver 10.0.0.10" in conf.splitlines()
    assert f"search default.{Z} {Z} cluster.local" in conf and "ndots:5" in conf


@pytest.mark.parametrize("name,ip", [("clusterip-service", CLUSTER_IP), ("clusterip-service.default", CLUSTER_IP),
                                     ("kube-dns.kube-system", "10.0.0.10"), (f"clusterip-service.default.{Z}.",
                                                                            CLUSTER_IP)])
def test_service_names_through_the_search_path(pods: tuple[Cluster, dict[str, str]], name: str, ip: str) -> None:
    """Short names resolve from a pod in `default`, answered by 10.0.0.10 through the data plane."""
    c, _ = pods
    assert dig(c, "+search", name) == ("NOERROR", [("A", ip)], "10.0.0.10")


def test_glibc_resolves_like_an_application(pods: tuple[Cluster, dict[str, str]]) -> None:
    """getent goes through the pod's libc resolver: search path, ndots, then the absolute name."""
    c, _ = pods
    assert in_pod(c, "getent", "hosts", "clusterip-service").split()[:2] == [CLUSTER_IP, f"clusterip-service.default.{Z}"]
    assert in_pod(c, "getent", "hosts", OUTSIDE).split()[:2] == [OUTSIDE_IP, OUTSIDE]


def test_headless_service_is_the_ready_pods(pods: tuple[Cluster, dict[str, str]]) -> None:
    c, ips = pods
    want = sorted(("A", ips[p]) for p in ("web-1", "web-2"))
    assert dig(c, "+search", "headless-service") == ("NOERROR", want, "10.0.0.10")
    status, srv, _ = dig(c, "+search", "SRV", "_http._tcp.headless-service")
    assert status == "NOERROR" and len(srv) == 2


def test_external_name_is_a_cname_chased_upstream(pods: tuple[Cluster, dict[str, str]]) -> None:
    c, _ = pods
    assert dig(c, "+search", "externalname-service") == (
        "NOERROR", [("A", OUTSIDE_IP), ("CNAME", f"{OUTSIDE}.")], "10.0.0.10")


def test_outside_name_is_forwarded(pods: tuple[Cluster, dict[str, str]]) -> None:
    c, _ = pods
    assert dig(c, OUTSIDE) == ("NOERROR", [("A", OUTSIDE_IP)], "10.0.0.10")
    assert dig(c, "nothing." + OUTSIDE)[0] == "NXDOMAIN"  # upstream's own answer, relayed


def test_pod_names_verified(pods: tuple[Cluster, dict[str, str]]) -> None:
    """`pods verified`: a-b-c-d.<ns>.pod exists only for a pod's own address in its own namespace."""
    c, ips = pods
    dashed = ips["client"].replace(".", "-")
    assert dig(c, f"{dashed}.default.pod.cluster.local") == ("NOERROR", [("A", ips["client"])], "10.0.0.10")
    assert dig(c, f"{dashed}.kube-system.pod.cluster.local")[0] == "NXDOMAIN"
    assert dig(c, "10-244-250-250.default.pod.cluster.local")[0] == "NXDOMAIN"


def test_reachable_from_node_namespace(pods: tuple[Cluster, dict[str, str]]) -> None:
    """From a node's network namespace: the server on the host bridge, and 10.0.0.10 via the node's proxy."""
    c, _ = pods
    found = [m for m in (re.search(r"kubesvc dns: serving on 172\.18\.0\.1:(\d+)", line) for line in c.output) if m]
    assert found, "kubesvc up did not report DNS on the host bridge:\n" + "".join(c.output)
    exec_ = ["ip", "netns", "exec", "ks-node-1", "dig", "+short", "+tries=2", "+time=3"]
    direct = subprocess.run([*exec_, "@172.18.0.1", "-p", found[0].group(1), f"kube-dns.kube-system.{Z}"],
                            capture_output=True, text=True, timeout=30).stdout.split()
    assert direct == ["10.0.0.10"]
    via_service = subprocess.run([*exec_, "@10.0.0.10", f"kubernetes.default.{Z}"],
                                 capture_output=True, text=True, timeout=30).stdout.split()
    assert via_service == ["10.0.0.1"]


def test_deleted_pod_leaves_its_names(pods: tuple[Cluster, dict[str, str]]) -> None:
    """Deleting a pod takes away its pod name and its headless address (the Pod and slice watches)."""
    c, ips = pods
    dashed = ips["web-2"].replace(".", "-")
    assert dig(c, f"{dashed}.default.pod.cluster.local")[0] == "NOERROR"
    c.kubectl("delete", "pod", "web-2", "--wait=true", "--timeout=60s")
    deadline = time.monotonic() + 10
    while True:
        gone = dig(c, f"{dashed}.default.pod.cluster.local")[0] == "NXDOMAIN"
        headless = dig(c, "+search", "headless-service")[1]
        if gone and headless == [("A", ips["web-1"])]:
            break
        assert time.monotonic() < deadline, f"still answered after the delete: {gone=} {headless=}"
        time.sleep(0.2)
