"""LoadBalancer addresses answering from the host, in kernel mode (root): ``kubesvc up --nodes 2``.

The host stands for the outside world: it reaches EXTERNAL-IP through the
route the controller installs to one Ready node, whose proxy DNATs to the
pods.  Failover: the announcing node's agent is killed, and the address must
answer through the other node within seconds.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import pytest
from lbhelpers import (
    curl,
    external_ip,
    kill_agent,
    lb_route,
    lb_routes_left,
    node_name_of_ip,
    root,
    start_kernel_cluster,
    wait_for,
)

from kubesvc.testing.cluster import Cluster

pytestmark = [pytest.mark.root, pytest.mark.e2e, pytest.mark.slow]


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    if not root():
        pytest.skip("needs root: kubesvc up --nodes builds network namespaces and host routes")
    c = start_kernel_cluster(tmp_path_factory.mktemp("lbk"))
    try:
        wait_for(lambda: c.kubectl("get", "nodes", "--no-headers").stdout.count(" Ready ") == 2, 60, "2 nodes")
        yield c
    finally:
        assert c.stop() == 0
    assert lb_routes_left() == [], "the lb controller left host routes behind"


def test_curl_from_the_host_reaches_nginx_through_external_ip(cluster: Cluster) -> None:
    """The seed's promise end to end: EXTERNAL-IP:port from outside reaches the pods."""
    cluster.kubectl("create", "deployment", "web", "--image=nginx", "--replicas=2")
    cluster.kubectl("expose", "deployment", "web", "--type=LoadBalancer", "--port=80")
    ip = wait_for(lambda: external_ip(cluster, "web"), 10, "an EXTERNAL-IP")
    assert ip == "172.18.255.200"
    via = wait_for(lambda: lb_route(ip), 10, "the host route")
    assert via in ("172.18.0.2", "172.18.0.3")
    rc, body = wait_for(lambda: (r := curl(f"http://{ip}/"))[0] == 0 and r, 60, "nginx through EXTERNAL-IP")
    assert "Welcome to nginx" in body
    events = cluster.kubectl("get", "events", "--field-selector", "involvedObject.name=web,reason=nodeAssigned",
                             "-o", "jsonpath={.items[*].message}").stdout
    assert f'announcing from node "{node_name_of_ip(via)}"' in events


def test_local_policy_announces_from_an_endpoint_node_and_keeps_the_client_address(cluster: Cluster) -> None:
    """externalTrafficPolicy Local: routed to the node with the pod, and the pod sees the host's address."""
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "echo", "labels": {"app": "echo"}},
           "spec": {"nodeName": "node-2", "containers": [{"name": "c", "image": "agnhost",
                                                           "args": ["netexec", "--http-port=8080"]}]}}
    cluster.kubectl("apply", "-f", "-", input=json.dumps(pod))
    svc = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "echo"},
           "spec": {"type": "LoadBalancer", "externalTrafficPolicy": "Local", "selector": {"app": "echo"},
                    "ports": [{"port": 8080, "targetPort": 8080}]}}
    cluster.kubectl("apply", "-f", "-", input=json.dumps(svc))
    ip = wait_for(lambda: external_ip(cluster, "echo"), 10, "an EXTERNAL-IP")
    wait_for(lambda: lb_route(ip) == "172.18.0.3", 60, "the route to node-2, where the endpoint is")
    rc, body = wait_for(lambda: (r := curl(f"http://{ip}:8080/clientip"))[0] == 0 and r, 60, "the echo pod")
    assert body.startswith("172.18.0.1:"), body  # the host's own address on kubesvc0: no SNAT


def test_failover_when_the_announcing_node_dies(cluster: Cluster) -> None:
    """Kill the agent of the node carrying the address: the route moves and traffic answers within 5 s."""
    ip = external_ip(cluster, "web")
    via = lb_route(ip)
    assert via and curl(f"http://{ip}/")[0] == 0
    kill_agent(node_name_of_ip(via))
    t0 = time.monotonic()
    new = wait_for(lambda: (v := lb_route(ip)) and v != via and v, 10, "the route to move")
    wait_for(lambda: curl(f"http://{ip}/", timeout=0.5)[0] == 0, 10, "traffic through the other node")
    took = time.monotonic() - t0
    assert new != via and took < 5.0, took
