"""Planner behaviour, checked by tracing packets through the planned table (not by rule text)."""

from __future__ import annotations

from proxy_builders import (
    NODE,
    NODE_IP,
    endpoint,
    endpoint_slice,
    endpoints_of,
    program,
    reach,
    service,
    verdicts,
)

from kubesvc.proxy.model import NodeInfo
from kubesvc.testing.nfttrace import Outcome

POD = "10.244.1.50"  # a client pod on this node
OUTSIDE = "172.18.0.1"  # the host: outside the cluster
EPS = ("10.244.1.5", "10.244.2.5")


def two_endpoints(**kw: object) -> list[dict]:
    return [endpoint_slice("web", endpoint(EPS[0], "node-1"), endpoint(EPS[1], "node-2"), **kw)]


def test_cluster_ip_from_pod_reaches_every_ready_endpoint_without_masquerade() -> None:
    """A pod's connection to clusterIP:port can reach each ready endpoint, source preserved."""
    fake = program([service()], two_endpoints())
    out = reach(fake, POD, "10.0.0.5")
    assert out == {Outcome("ACCEPT", "10.244.1.5:8080", False), Outcome("ACCEPT", "10.244.2.5:8080", False)}


def test_cluster_ip_from_the_node_itself_is_dnatted_and_masqueraded() -> None:
    """The output hook: host processes reach the ClusterIP too (masqueraded: not from the pod CIDR)."""
    fake = program([service()], two_endpoints())
    out = reach(fake, NODE_IP, "10.0.0.5", from_node=True)
    assert endpoints_of(out) == {"10.244.1.5:8080", "10.244.2.5:8080"}
    assert all(o.masquerade for o in out)


def test_unready_endpoints_are_not_used() -> None:
    fake = program([service()], [endpoint_slice("web", endpoint(EPS[0]), endpoint(EPS[1], ready=False))])
    assert endpoints_of(reach(fake, POD, "10.0.0.5")) == {"10.244.1.5:8080"}


def test_serving_terminating_endpoints_are_used_only_when_none_is_ready() -> None:
    term = endpoint(EPS[1], ready=False, serving=True, terminating=True)
    fake = program([service()], [endpoint_slice("web", term)])
    assert endpoints_of(reach(fake, POD, "10.0.0.5")) == {"10.244.2.5:8080"}
    fake = program([service()], [endpoint_slice("web", term, endpoint(EPS[0]))])
    assert endpoints_of(reach(fake, POD, "10.0.0.5")) == {"10.244.1.5:8080"}


def test_no_endpoints_is_rejected_not_dropped() -> None:
    fake = program([service()], [endpoint_slice("web", endpoint(EPS[0], ready=False, serving=False))])
    assert verdicts(reach(fake, POD, "10.0.0.5")) == {"REJECT"}
    assert verdicts(reach(fake, NODE_IP, "10.0.0.5", from_node=True)) == {"REJECT"}


def test_a_port_the_service_lacks_is_rejected() -> None:
    fake = program([service()], two_endpoints())
    assert verdicts(reach(fake, POD, "10.0.0.5", dport=81)) == {"REJECT"}
    assert reach(fake, POD, "10.0.0.99") == {Outcome("ACCEPT")}  # not a service address: untouched


def test_udp_and_sctp_ports() -> None:
    ports = [{"name": "dns", "port": 53, "protocol": "UDP"}, {"name": "sig", "port": 9, "protocol": "SCTP"}]
    sl = endpoint_slice("web", endpoint(EPS[0]), ports=[{"name": "dns", "port": 5353, "protocol": "UDP"},
                                                       {"name": "sig", "port": 99, "protocol": "SCTP"}])
    fake = program([service(ports=ports)], [sl])
    assert endpoints_of(reach(fake, POD, "10.0.0.5", 53, "udp")) == {"10.244.1.5:5353"}
    assert endpoints_of(reach(fake, POD, "10.0.0.5", 9, "sctp")) == {"10.244.1.5:99"}
    assert verdicts(reach(fake, POD, "10.0.0.5", 53, "tcp")) == {"REJECT"}


def test_node_port_on_node_ips_but_not_loopback() -> None:
    ports = [{"name": "http", "port": 80, "protocol": "TCP", "nodePort": 30080}]
    fake = program([service(type="NodePort", ports=ports)], two_endpoints())
    out = reach(fake, OUTSIDE, NODE_IP, 30080)
    assert endpoints_of(out) == {"10.244.1.5:8080", "10.244.2.5:8080"} and all(o.masquerade for o in out)
    assert endpoints_of(reach(fake, NODE_IP, NODE_IP, 30080, from_node=True)) == {"10.244.1.5:8080", "10.244.2.5:8080"}
    assert reach(fake, "127.0.0.1", "127.0.0.1", 30080, from_node=True) == {Outcome("ACCEPT")}
    assert reach(fake, OUTSIDE, "172.18.0.3", 30080) == {Outcome("ACCEPT")}  # not our address


def test_external_ips_and_load_balancer_ingress() -> None:
    lb = service(type="LoadBalancer", externalIPs=["192.0.2.10"],
                 ports=[{"name": "http", "port": 80, "protocol": "TCP", "nodePort": 30080}],
                 status={"loadBalancer": {"ingress": [{"ip": "172.18.255.200"}, {"ip": "172.18.255.201", "ipMode": "Proxy"}]}})
    fake = program([lb], two_endpoints())
    for dst in ("192.0.2.10", "172.18.255.200"):
        out = reach(fake, OUTSIDE, dst)
        assert endpoints_of(out) == {"10.244.1.5:8080", "10.244.2.5:8080"} and all(o.masquerade for o in out)
    assert reach(fake, OUTSIDE, "172.18.255.201") == {Outcome("ACCEPT")}  # ipMode Proxy: not short-circuited


def _etp_local(**kw: object) -> dict:
    return service(type="LoadBalancer", externalTrafficPolicy="Local", healthCheckNodePort=32000,
                   ports=[{"name": "http", "port": 80, "protocol": "TCP", "nodePort": 30080}],
                   status={"loadBalancer": {"ingress": [{"ip": "172.18.255.200"}]}}, **kw)


def test_etp_local_uses_local_endpoints_and_keeps_the_client_source() -> None:
    fake = program([_etp_local()], two_endpoints())
    for dst, port in (("172.18.255.200", 80), (NODE_IP, 30080)):
        assert reach(fake, OUTSIDE, dst, port) == {Outcome("ACCEPT", "10.244.1.5:8080", False)}
    # pods short-circuit to all endpoints (as if out to the LB and back), unmasqueraded
    assert reach(fake, POD, "172.18.255.200") == {Outcome("ACCEPT", "10.244.1.5:8080", False),
                                                   Outcome("ACCEPT", "10.244.2.5:8080", False)}
    # the node itself: all endpoints, masqueraded
    out = reach(fake, NODE_IP, "172.18.255.200", from_node=True)
    assert endpoints_of(out) == {"10.244.1.5:8080", "10.244.2.5:8080"} and all(o.masquerade for o in out)
    # the clusterIP is not subject to ETP
    assert endpoints_of(reach(fake, POD, "10.0.0.5")) == {"10.244.1.5:8080", "10.244.2.5:8080"}


def test_etp_local_without_local_endpoints_drops_external_traffic() -> None:
    fake = program([_etp_local()], [endpoint_slice("web", endpoint(EPS[1], "node-2"))])
    assert verdicts(reach(fake, OUTSIDE, "172.18.255.200")) == {"DROP"}
    assert verdicts(reach(fake, OUTSIDE, NODE_IP, 30080)) == {"DROP"}
    assert endpoints_of(reach(fake, POD, "10.0.0.5")) == {"10.244.2.5:8080"}


def test_itp_local_uses_only_local_endpoints_and_drops_without_them() -> None:
    fake = program([service(internalTrafficPolicy="Local")], two_endpoints())
    assert endpoints_of(reach(fake, POD, "10.0.0.5")) == {"10.244.1.5:8080"}
    fake = program([service(internalTrafficPolicy="Local")], [endpoint_slice("web", endpoint(EPS[1], "node-2"))])
    assert verdicts(reach(fake, POD, "10.0.0.5")) == {"DROP"}


def test_load_balancer_source_ranges_guard_lb_ips_only() -> None:
    svc = _etp_local(loadBalancerSourceRanges=["203.0.113.0/24"])
    svc["spec"]["externalTrafficPolicy"] = "Cluster"
    fake = program([svc], two_endpoints())
    assert verdicts(reach(fake, "203.0.113.9", "172.18.255.200")) == {"ACCEPT"}
    assert verdicts(reach(fake, "198.51.100.1", "172.18.255.200")) == {"DROP"}
    assert verdicts(reach(fake, "198.51.100.1", NODE_IP, 30080)) == {"ACCEPT"}  # nodeports are not guarded


def test_source_ranges_containing_the_node_allow_the_vip_itself() -> None:
    svc = _etp_local(loadBalancerSourceRanges=["172.18.0.0/24"])
    fake = program([svc], two_endpoints())
    assert verdicts(reach(fake, "172.18.255.200", "172.18.255.200")) == {"ACCEPT"}


def test_hairpin_is_masqueraded() -> None:
    """A pod reaching itself through its Service is masqueraded (else the reply would bypass NAT)."""
    fake = program([service()], two_endpoints())
    out = reach(fake, EPS[0], "10.0.0.5")
    assert Outcome("ACCEPT", "10.244.1.5:8080", True) in out
    assert Outcome("ACCEPT", "10.244.2.5:8080", False) in out


def test_session_affinity_sticks_to_the_first_endpoint() -> None:
    from kubesvc.testing.nfttrace import Packet, connect

    fake = program([service(sessionAffinity="ClientIP",
                            sessionAffinityConfig={"clientIP": {"timeoutSeconds": 60}})],
                   [endpoint_slice("web", *(endpoint(f"10.244.1.{i}") for i in range(10, 14)))])
    first = connect(fake, Packet(POD, "10.0.0.5"))
    assert all(connect(fake, Packet(POD, "10.0.0.5")) == first for _ in range(15))
    others = {connect(fake, Packet(f"10.244.1.{100 + i}", "10.0.0.5")).endpoint for i in range(40)}
    assert len(others) > 1  # other clients still spread


def test_skipped_services_are_not_proxied() -> None:
    skipped = [
        service("a", ip="10.0.0.6", labels={"service.kubernetes.io/service-proxy-name": "other"}),
        service("b", ip="None"),
        service("c", ip="", type="ExternalName", externalName="example.com"),
    ]
    fake = program(skipped, [endpoint_slice(n, endpoint(EPS[0])) for n in "abc"])
    assert reach(fake, POD, "10.0.0.6") == {Outcome("ACCEPT")}


def test_zone_hints_prefer_same_zone_endpoints() -> None:
    node = NodeInfo(NODE.name, NODE.ips, NODE.pod_cidr, NODE.cluster_cidr, zone="a")
    sl = endpoint_slice("web", endpoint(EPS[0], zones=["a"]), endpoint(EPS[1], "node-2", zones=["b"]))
    fake = program([service()], [sl], node=node)
    assert endpoints_of(reach(fake, POD, "10.0.0.5")) == {"10.244.1.5:8080"}


def test_endpoints_from_several_slices_are_merged() -> None:
    slices = [endpoint_slice("web", endpoint(EPS[0]), name="web-1"), endpoint_slice("web", endpoint(EPS[1]), name="web-2")]
    fake = program([service()], slices)
    assert endpoints_of(reach(fake, POD, "10.0.0.5")) == {"10.244.1.5:8080", "10.244.2.5:8080"}


def test_a_service_with_hundreds_of_ports() -> None:
    ports = [{"name": f"p{i}", "port": 1000 + i, "protocol": "TCP"} for i in range(300)]
    sl = endpoint_slice("web", endpoint(EPS[0]), ports=[{"name": f"p{i}", "port": 2000 + i, "protocol": "TCP"}
                                                        for i in range(300)])
    fake = program([service(ports=ports)], [sl])
    assert endpoints_of(reach(fake, POD, "10.0.0.5", 1299)) == {"10.244.1.5:2299"}
