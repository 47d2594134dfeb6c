"""LoadBalancer addresses against a running ``kubesvc up``, driven with kubectl (issue 8).

The cluster has no nodes (``--nodes 0``), so this is allocation only: the
address in status and under EXTERNAL-IP, pending with an Event when there is
none, requested addresses, release, sharing, pools as API objects, and a
restart that keeps every address.  Traffic and failover are in
tests/integration/lb (root).
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest

from kubesvc.testing.cluster import Cluster, start_cluster

pytestmark = pytest.mark.e2e
POOL = "172.18.255.200-172.18.255.202"  # three addresses: small enough to exhaust
T = TypeVar("T")


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    base = tmp_path_factory.mktemp("lb")
    c = start_cluster(base / "data", base / "kcache", "--dns-port", "0", "--storage", "memory://",
                      "--lb-pool", POOL)
    yield c
    assert c.stop() == 0


def eventually(fn: Callable[[], T], timeout: float = 10.0) -> T:
    deadline = time.monotonic() + timeout
    while True:
        try:
            return fn()
        except AssertionError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def lb_service(name: str, *, port: int = 80, annotations: dict[str, str] | None = None,
               **spec: Any) -> str:
    return json.dumps({"apiVersion": "v1", "kind": "Service",
                       "metadata": {"name": name, "annotations": annotations or {}},
                       "spec": {"type": "LoadBalancer", "selector": {"app": name},
                                "ports": [{"port": port, "targetPort": 8080}], **spec}})


def external_ip(c: Cluster, name: str) -> str:
    return c.kubectl("get", "svc", name, "-o", "jsonpath={.status.loadBalancer.ingress[*].ip}").stdout


def has_ip(c: Cluster, name: str, want: str | None = None) -> str:
    got = external_ip(c, name)
    assert got and (want is None or got == want), f"{name}: {got!r}"
    return got


def events(c: Cluster, name: str) -> str:
    return c.kubectl("get", "events", "--field-selector", f"involvedObject.name={name}",
                     "-o", "custom-columns=TYPE:.type,REASON:.reason,MESSAGE:.message").stdout


def delete(c: Cluster, *names: str) -> None:
    c.kubectl("delete", "svc", "--wait=false", "--ignore-not-found", *names)
    eventually(lambda: _assert_pool_assigned(c, 0))


def _assert_pool_assigned(c: Cluster, n: int) -> None:
    got = c.kubectl("get", "ipaddresspool", "default", "-o", "jsonpath={.status.assignedIPv4}").stdout
    assert got == str(n), got


def test_a_service_gets_the_first_address_shown_under_external_ip(cluster: Cluster) -> None:
    """The seed's promise: EXTERNAL-IP shows an address, from the default pool, with an IPAllocated Event."""
    cluster.kubectl("apply", "-f", "-", input=lb_service("web"))
    eventually(lambda: has_ip(cluster, "web", "172.18.255.200"))
    table = cluster.kubectl("get", "svc", "web").stdout
    assert "172.18.255.200" in table.splitlines()[1].split()[3], table
    status = json.loads(cluster.kubectl("get", "svc", "web", "-o", "json").stdout)["status"]
    assert status["loadBalancer"]["ingress"] == [{"ip": "172.18.255.200", "ipMode": "VIP"}]
    eventually(lambda: _assert_in("IPAllocated", events(cluster, "web")))
    delete(cluster, "web")


def _assert_in(needle: str, text: str) -> None:
    assert needle in text, text


def test_ipaddresspools_are_listed_by_kubectl(cluster: Cluster) -> None:
    """`up` wrote its --lb-pool flags to the default pool; kubectl lists and explains it."""
    out = cluster.kubectl("get", "ipaddresspools").stdout.splitlines()
    assert out[0].split() == ["NAME", "ADDRESSES", "AUTO-ASSIGN", "AGE"]
    assert out[1].split()[:3] == ["default", POOL, "true"]
    wide = cluster.kubectl("get", "ippool", "-o", "wide").stdout.splitlines()
    assert wide[0].split()[-2:] == ["ASSIGNED", "AVAILABLE"] and wide[1].split()[-2:] == ["0", "3"]
    assert "autoAssign" in cluster.kubectl("explain", "ipaddresspools.spec").stdout


def test_pool_exhaustion_leaves_pending_with_a_warning_and_recovers(cluster: Cluster) -> None:
    """Three addresses, four Services: the fourth stays <pending> with AllocationFailed, until one is freed."""
    for n in range(4):
        cluster.kubectl("apply", "-f", "-", input=lb_service(f"ex{n}"))
    for n in range(3):
        eventually(lambda n=n: has_ip(cluster, f"ex{n}"))  # type: ignore[misc]
    row = cluster.kubectl("get", "svc", "ex3", "--no-headers").stdout.split()
    assert row[3] == "<pending>", row
    eventually(lambda: _assert_in("no available IPv4 address in pool default", events(cluster, "ex3")))
    assert "AllocationFailed" in cluster.kubectl("describe", "svc", "ex3").stdout
    freed = external_ip(cluster, "ex1")
    cluster.kubectl("delete", "svc", "ex1")
    eventually(lambda: has_ip(cluster, "ex3", freed))
    delete(cluster, "ex0", "ex2", "ex3")


def test_requested_addresses(cluster: Cluster) -> None:
    """spec.loadBalancerIP and the annotation are honoured when free and in a pool, refused with an Event otherwise."""
    cluster.kubectl("apply", "-f", "-", input=lb_service("want", loadBalancerIP="172.18.255.202"))
    eventually(lambda: has_ip(cluster, "want", "172.18.255.202"))
    cluster.kubectl("apply", "-f", "-", input=lb_service(
        "want2", annotations={"kubesvc.io/loadBalancerIPs": "172.18.255.201"}))
    eventually(lambda: has_ip(cluster, "want2", "172.18.255.201"))
    cluster.kubectl("apply", "-f", "-", input=lb_service(
        "outside", annotations={"metallb.universe.tf/loadBalancerIPs": "192.168.77.7"}))
    cluster.kubectl("apply", "-f", "-", input=lb_service("taken", loadBalancerIP="172.18.255.202"))
    eventually(lambda: _assert_in("192.168.77.7 is not in any address pool", events(cluster, "outside")))
    eventually(lambda: _assert_in("172.18.255.202 is already in use by default/want", events(cluster, "taken")))
    assert external_ip(cluster, "outside") == "" and external_ip(cluster, "taken") == ""
    cluster.kubectl("delete", "svc", "want")  # the address is free now: the one asking for it gets it
    eventually(lambda: has_ip(cluster, "taken", "172.18.255.202"))
    delete(cluster, "want2", "outside", "taken")


def test_type_change_releases_the_address(cluster: Cluster) -> None:
    """LoadBalancer -> ClusterIP clears status (EXTERNAL-IP <none>) and frees the address for others."""
    cluster.kubectl("apply", "-f", "-", input=lb_service("flip"))
    addr = eventually(lambda: has_ip(cluster, "flip"))
    cluster.kubectl("patch", "svc", "flip", "-p", '{"spec":{"type":"ClusterIP"}}')
    assert cluster.kubectl("get", "svc", "flip", "--no-headers").stdout.split()[3] == "<none>"
    eventually(lambda: _assert_pool_assigned(cluster, 0))
    cluster.kubectl("apply", "-f", "-", input=lb_service("next"))
    eventually(lambda: has_ip(cluster, "next", addr))
    cluster.kubectl("patch", "svc", "flip", "-p", '{"spec":{"type":"LoadBalancer"}}')
    assert eventually(lambda: has_ip(cluster, "flip")) != addr
    delete(cluster, "flip", "next")


def test_sharing_needs_the_same_key_and_distinct_ports(cluster: Cluster) -> None:
    """Same key, other port: one address; same key, same port, or no key: another address."""
    key = {"kubesvc.io/allow-shared-ip": "team-a"}
    cluster.kubectl("apply", "-f", "-", input=lb_service("sh-http", port=80, annotations=key))
    cluster.kubectl("apply", "-f", "-", input=lb_service("sh-https", port=443, annotations=key))
    a = eventually(lambda: has_ip(cluster, "sh-http"))
    eventually(lambda: has_ip(cluster, "sh-https", a))
    cluster.kubectl("apply", "-f", "-", input=lb_service("sh-clash", port=80, annotations=key,
                                                          loadBalancerIP=a))
    eventually(lambda: _assert_in(f"port 80/TCP on {a} is already used by default/sh-http",
                                  events(cluster, "sh-clash")))
    cluster.kubectl("apply", "-f", "-", input=lb_service("sh-other", port=8443,
                                                          annotations={"kubesvc.io/allow-shared-ip": "team-b"}))
    assert eventually(lambda: has_ip(cluster, "sh-other")) != a
    eventually(lambda: _assert_in(a, cluster.kubectl("get", "svc", "sh-https").stdout))
    delete(cluster, "sh-http", "sh-https", "sh-clash", "sh-other")


def test_another_load_balancer_class_is_left_alone(cluster: Cluster) -> None:
    """A Service for some other controller stays pending and gets no Event from us."""
    cluster.kubectl("apply", "-f", "-", input=lb_service("foreign", loadBalancerClass="example.com/lb"))
    cluster.kubectl("apply", "-f", "-", input=lb_service("ours", loadBalancerClass="kubesvc.io/lb"))
    eventually(lambda: has_ip(cluster, "ours"))
    assert external_ip(cluster, "foreign") == "" and events(cluster, "foreign").count("\n") <= 1
    delete(cluster, "foreign", "ours")


def test_bad_pools_are_refused_by_the_api(cluster: Cluster) -> None:
    """Overlapping the cluster's own networks or malformed: a clear API error."""
    bad = json.dumps({"apiVersion": "kubesvc.io/v1", "kind": "IPAddressPool", "metadata": {"name": "bad"},
                      "spec": {"addresses": ["172.18.0.0/24", "10.244.0.0/16", "not-an-ip"]}})
    p = cluster.kubectl("apply", "-f", "-", input=bad, check=False)
    assert p.returncode != 0
    for needle in ("overlaps the node addresses", "overlaps the pod CIDR", "must be a CIDR"):
        assert needle in p.stderr, p.stderr


def test_pool_objects_add_addresses(cluster: Cluster) -> None:
    """A second pool, created with kubectl, serves what the first cannot."""
    pool = json.dumps({"apiVersion": "kubesvc.io/v1", "kind": "IPAddressPool", "metadata": {"name": "extra"},
                       "spec": {"addresses": ["192.168.99.10/32"]}})
    for n in range(3):
        cluster.kubectl("apply", "-f", "-", input=lb_service(f"po{n}"))
    for n in range(3):
        eventually(lambda n=n: has_ip(cluster, f"po{n}"))  # type: ignore[misc]
    cluster.kubectl("apply", "-f", "-", input=lb_service("po3"))
    cluster.kubectl("apply", "-f", "-", input=pool)
    eventually(lambda: has_ip(cluster, "po3", "192.168.99.10"))
    cluster.kubectl("delete", "svc", "po0", "po1", "po2", "po3")
    cluster.kubectl("delete", "ipaddresspool", "extra")
    eventually(lambda: _assert_pool_assigned(cluster, 0))


def test_bad_lb_pool_flag_is_one_line(tmp_path: Path) -> None:
    """`kubesvc up --lb-pool` with a bad range stops at once with one clear line."""
    p = subprocess.run([sys.executable, "-m", "kubesvc", "up", "--data-dir", str(tmp_path), "--nodes", "0",
                        "--port", "0", "--lb-pool", "10.244.0.0/24"], capture_output=True, text=True, timeout=30)
    assert p.returncode == 1
    assert p.stderr.strip().splitlines()[-1] == ("kubesvc: invalid --lb-pool: 10.244.0.0-10.244.0.255 overlaps "
                                                 "the pod CIDR (10.244.0.0/16)")


def test_restart_keeps_addresses(tmp_path: Path) -> None:
    """Addresses in stored status survive `up` stopping and starting; newcomers get only free ones."""
    c = start_cluster(tmp_path / "data", tmp_path / "kc", "--dns-port", "0", "--lb-pool", POOL)
    try:
        for n in ("r0", "r1", "r2"):
            c.kubectl("apply", "-f", "-", input=lb_service(n))
        before = {n: eventually(lambda n=n: has_ip(c, n)) for n in ("r0", "r1", "r2")}  # type: ignore[misc]
        c.kubectl("delete", "svc", "r0")
    finally:
        assert c.stop() == 0
    c = start_cluster(tmp_path / "data", tmp_path / "kc", "--dns-port", "0", "--lb-pool", POOL, port=c.port)
    try:
        c.kubectl("apply", "-f", "-", input=lb_service("r3"))
        eventually(lambda: has_ip(c, "r3", before["r0"]))
        assert external_ip(c, "r1") == before["r1"] and external_ip(c, "r2") == before["r2"]
        time.sleep(0.5)  # a restart re-assigns silently: still the one IPAllocated Event from the first run
        evs = json.loads(c.kubectl("get", "events", "--field-selector", "involvedObject.name=r1,reason=IPAllocated",
                                   "-o", "json").stdout)["items"]
        assert [e.get("count") for e in evs] == [1], evs
    finally:
        assert c.stop() == 0
