"""Which stale UDP conntrack entries a change calls for."""

from __future__ import annotations

from kubesvc.proxy.conntrack import stale_udp
from kubesvc.proxy.model import Endpoint, ServicePort

SP = ServicePort("default", "dns", "dns", "udp", 53, "10.0.0.10", node_port=30053)
TCP = ServicePort("default", "dns", "tcp", "tcp", 53, "10.0.0.10")


def test_removed_udp_endpoints_are_cleared_for_every_frontend() -> None:
    old = [(SP, (Endpoint("10.244.1.5", 53), Endpoint("10.244.1.6", 53)))]
    new = [(SP, (Endpoint("10.244.1.6", 53),))]
    assert stale_udp(old, new) == [
        ("--orig-dst", "10.0.0.10", "--orig-port-dst", "53", "--dst-nat", "10.244.1.5"),
        ("--orig-port-dst", "30053", "--dst-nat", "10.244.1.5"),
    ]


def test_first_endpoint_clears_entries_cached_while_rejected() -> None:
    assert stale_udp([(SP, ())], [(SP, (Endpoint("10.244.1.5", 53),))]) == [
        ("--orig-dst", "10.0.0.10", "--orig-port-dst", "53"), ("--orig-port-dst", "30053")]


def test_tcp_needs_nothing() -> None:
    assert stale_udp([(TCP, (Endpoint("10.244.1.5", 53),))], [(TCP, ())]) == []
