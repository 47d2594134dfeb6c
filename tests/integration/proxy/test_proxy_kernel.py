"""The planned ruleset in a real kernel: real connections through a node namespace."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import pytest
from proxy_netlab import CLIENT_IP, NODE_IP, Lab, sh

from kubesvc.proxy import conntrack
from kubesvc.proxy.applier import Applier, SyncResult
from kubesvc.proxy.model import NodeInfo, merge_slices, service_ports, slice_view
from kubesvc.proxy.nftables import Nft
from kubesvc.proxy.nodeports import interface_addresses, nodeport_ips
from kubesvc.proxy.planner import plan
from kubesvc.proxy.proxier import PortIds

pytestmark = pytest.mark.root
NODE = NodeInfo("node-1", (NODE_IP,), "10.244.1.0/24", "10.244.0.0/16")


def svc(name: str, ip: str, port: int = 80, **spec: Any) -> dict[str, Any]:
    status = spec.pop("status", {})
    ports = [{"name": "http", "port": port, "protocol": "TCP", **({"nodePort": spec.pop("nodePort")} if "nodePort" in spec else {})}]
    return {"metadata": {"namespace": "default", "name": name},
            "spec": {"type": spec.pop("type", "ClusterIP"), "clusterIP": ip, "ports": ports, **spec}, "status": status}


def eps(name: str, *pods: tuple[str, str]) -> dict[str, Any]:
    return {"metadata": {"namespace": "default", "name": f"{name}-1", "labels": {"kubernetes.io/service-name": name}},
            "addressType": "IPv4", "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}],
            "endpoints": [{"addresses": [ip], "nodeName": node, "conditions": {"ready": True}} for ip, node in pods]}


class Kernel:
    def __init__(self, lab: Lab) -> None:
        self.nft = Nft(netns=lab.node)
        self.applier = Applier(self.nft)
        self.ids = PortIds()
        self.services: dict[str, dict[str, Any]] = {}
        self.slices: dict[str, dict[str, Any]] = {}
        self.node = NODE

    def sync(self, changed: set[str] | None = None) -> SyncResult:
        ports = {f"default/{k}": service_ports(s) for k, s in self.services.items()}
        endpoints = {f"default/{k}": merge_slices([v for v in [slice_view(s)] if v]) for k, s in self.slices.items()}
        return self.applier.sync(plan(ports, endpoints, self.node, self.ids), changed)


@pytest.fixture
def kernel(lab: Lab) -> Iterator[Kernel]:
    lab.add_pod("a", "10.244.1.5")
    lab.add_pod("b", "10.244.1.6")
    k = Kernel(lab)
    yield k
    k.nft.close()


def names(lab: Lab, ns: str, url: str, n: int = 20) -> Counter[str]:
    out: Counter[str] = Counter()
    for _ in range(n):
        rc, body = lab.curl(ns, url)
        out[body.split()[0] if rc == 0 and body else f"rc={rc}"] += 1
    return out


def test_cluster_ip_spreads_across_endpoints_from_pods_and_from_the_node(lab: Lab, kernel: Kernel) -> None:
    kernel.services["web"] = svc("web", "10.0.0.5")
    kernel.slices["web"] = eps("web", ("10.244.1.5", "node-1"), ("10.244.1.6", "node-1"))
    kernel.sync()
    assert set(names(lab, lab.pod_ns("a"), "http://10.0.0.5/")) == {"a", "b"}
    assert set(names(lab, lab.node, "http://10.0.0.5/")) == {"a", "b"}
    rc, body = lab.curl(lab.pod_ns("b"), "http://10.0.0.5/")
    assert rc == 0 and body.split()[1] in ("10.244.1.6", "10.244.1.1")  # source kept (or hairpin-masqueraded)


def test_no_endpoints_and_missing_ports_are_refused_at_once(lab: Lab, kernel: Kernel) -> None:
    kernel.services["web"] = svc("web", "10.0.0.5")
    kernel.sync()
    for url in ("http://10.0.0.5/", "http://10.0.0.5:81/"):
        start = time.monotonic()
        rc, _ = lab.curl(lab.pod_ns("a"), url)
        assert rc == 7 and time.monotonic() - start < 1.5  # connection refused, not a time-out


def test_node_port_from_outside_is_masqueraded(lab: Lab, kernel: Kernel) -> None:
    kernel.services["web"] = svc("web", "10.0.0.5", type="NodePort", nodePort=30080)
    kernel.slices["web"] = eps("web", ("10.244.1.5", "node-1"), ("10.244.1.6", "node-1"))
    kernel.sync()
    assert set(names(lab, lab.client, f"http://{NODE_IP}:30080/")) == {"a", "b"}
    rc, body = lab.curl(lab.client, f"http://{NODE_IP}:30080/")
    assert rc == 0 and body.split()[1] != CLIENT_IP


def test_nodeport_addresses_limit_node_ports_to_the_chosen_address(lab: Lab, kernel: Kernel) -> None:
    """--nodeport-addresses 172.18.0.2/32 on a node that also has 172.18.0.9: the addresses are
    read from the namespace itself, and only the chosen one answers on the NodePort."""
    second = "172.18.0.9"
    sh("ip", "-n", lab.node, "addr", "add", f"{second}/24", "dev", "vc")
    local = asyncio.run(interface_addresses(lab.node))
    assert {NODE_IP, second, "127.0.0.1"} <= set(local)
    kernel.node = replace(NODE, nodeport_ips=nodeport_ips((f"{NODE_IP}/32",), NODE_IP, local))
    kernel.services["web"] = svc("web", "10.0.0.5", type="NodePort", nodePort=30080)
    kernel.slices["web"] = eps("web", ("10.244.1.5", "node-1"), ("10.244.1.6", "node-1"))
    kernel.sync()
    assert set(names(lab, lab.client, f"http://{NODE_IP}:30080/", 6)) == {"a", "b"}
    assert lab.curl(lab.client, f"http://{second}:30080/")[0] == 7  # nothing listens there: refused by the node
    kernel.node = NODE  # back to every address
    kernel.sync()
    assert set(names(lab, lab.client, f"http://{second}:30080/", 6)) == {"a", "b"}


def test_conntrack_tcp_be_liberal_is_set_in_the_node_namespace_only(lab: Lab) -> None:
    key = conntrack.TCP_BE_LIBERAL
    host_before = sh("sysctl", "-n", key).stdout.strip()
    assert sh("ip", "netns", "exec", lab.node, "sysctl", "-n", key).stdout.strip() == "0"
    assert asyncio.run(conntrack.set_tcp_be_liberal(lab.node))
    assert sh("ip", "netns", "exec", lab.node, "sysctl", "-n", key).stdout.strip() == "1"
    assert sh("sysctl", "-n", key).stdout.strip() == host_before


def test_etp_local_preserves_the_client_source(lab: Lab, kernel: Kernel) -> None:
    kernel.services["web"] = svc("web", "10.0.0.5", type="LoadBalancer", nodePort=30080, externalTrafficPolicy="Local",
                                 status={"loadBalancer": {"ingress": [{"ip": "172.18.255.200"}]}})
    kernel.slices["web"] = eps("web", ("10.244.1.5", "node-1"), ("10.244.1.6", "node-2"))
    kernel.sync()
    for url in (f"http://{NODE_IP}:30080/", "http://172.18.255.200/"):
        seen = names(lab, lab.client, url, 10)
        assert set(seen) == {"a"}, seen
        rc, body = lab.curl(lab.client, url)
        assert rc == 0 and body == f"a {CLIENT_IP}"


def test_session_affinity_sticks(lab: Lab, kernel: Kernel) -> None:
    kernel.services["web"] = svc("web", "10.0.0.5", sessionAffinity="ClientIP",
                                 sessionAffinityConfig={"clientIP": {"timeoutSeconds": 60}})
    kernel.slices["web"] = eps("web", ("10.244.1.5", "node-1"), ("10.244.1.6", "node-1"))
    kernel.sync()
    assert len(names(lab, lab.client, "http://10.0.0.5/", 15)) == 1


def test_hairpin_a_pod_reaches_itself_through_its_service(lab: Lab, kernel: Kernel) -> None:
    kernel.services["web"] = svc("web", "10.0.0.5")
    kernel.slices["web"] = eps("web", ("10.244.1.5", "node-1"))
    kernel.sync()
    rc, body = lab.curl(lab.pod_ns("a"), "http://10.0.0.5/")
    assert rc == 0 and body == "a 10.244.1.1"  # masqueraded to the node side of its veth


def test_a_partial_sync_touches_only_the_changed_service(lab: Lab, kernel: Kernel) -> None:
    for i in range(5):
        kernel.services[f"s{i}"] = svc(f"s{i}", f"10.0.0.{10 + i}")
        kernel.slices[f"s{i}"] = eps(f"s{i}", ("10.244.1.5", "node-1"))
    kernel.sync()
    before = kernel.nft._run(["list", "table", "ip", "kubesvc"])
    kernel.slices["s2"] = eps("s2", ("10.244.1.5", "node-1"), ("10.244.1.6", "node-1"))
    result = kernel.sync({"default/s2"})
    pid = f"0x{kernel.ids.ids['default/s2:http/tcp']:08x}"
    touched = [line for line in result.text.splitlines() if "element" in line]
    assert touched and all(pid in line for line in touched)
    assert not result.full and result.size < 1000  # a few elements (+ the shared pick-2 chain, new here)
    after = kernel.nft._run(["list", "table", "ip", "kubesvc"])
    gone = set(before.split()) - set(after.split())
    assert gone <= {"}", "{"}  # nothing of the other services was removed
    assert set(names(lab, lab.pod_ns("a"), "http://10.0.0.12/")) == {"a", "b"}
    assert set(names(lab, lab.pod_ns("a"), "http://10.0.0.11/", 5)) == {"a"}
