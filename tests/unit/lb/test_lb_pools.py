"""Pool parsing: CIDRs, ranges, reserved cluster networks, buggy addresses, object form."""

from __future__ import annotations

import ipaddress

import pytest

from kubesvc.lb.pools import PoolError, Range, make_pool, parse_range, pool_from_object, pool_object


@pytest.mark.parametrize(("text", "first", "last", "size"), [
    ("172.18.255.200-172.18.255.250", "172.18.255.200", "172.18.255.250", 51),
    ("192.168.1.0/30", "192.168.1.0", "192.168.1.3", 4),
    ("192.168.1.7/30", "192.168.1.4", "192.168.1.7", 4),  # host bits are forgiven, as MetalLB does
    (" 10.9.0.1 - 10.9.0.1 ", "10.9.0.1", "10.9.0.1", 1),
    ("fd00::/126", "fd00::", "fd00::3", 4),
])
def test_parse_range_accepts_cidrs_and_ranges(text: str, first: str, last: str, size: int) -> None:
    """Both spellings become one inclusive integer range of one family."""
    r = parse_range(text)
    assert (r.first, r.last, r.size) == (int(ipaddress.ip_address(first)), int(ipaddress.ip_address(last)), size)


@pytest.mark.parametrize(("text", "needle"), [
    ("nonsense", "is not a CIDR"),
    ("1.2.3.9-1.2.3.1", "start is after its end"),
    ("1.2.3.4-fd00::1", "one IP family"),
    ("300.1.1.1/24", "is not a CIDR"),
])
def test_parse_range_refuses_bad_text_with_a_clear_message(text: str, needle: str) -> None:
    """Malformed entries name themselves and what is wrong."""
    with pytest.raises(PoolError, match=needle):
        parse_range(text)


@pytest.mark.parametrize(("text", "what"), [
    ("172.18.0.0/24", "node addresses"),
    ("172.18.0.250-172.18.1.5", "node addresses"),
    ("10.244.7.0/24", "pod CIDR"),
    ("10.0.5.0/24", "service CIDR"),
])
def test_pools_may_not_overlap_the_cluster_networks(text: str, what: str) -> None:
    """A pool over nodes, pods or services would hijack cluster traffic: refused."""
    with pytest.raises(PoolError, match=what):
        make_pool("p", [text])


def test_service_cidr_is_configurable() -> None:
    """The reserved service range follows --service-cidr."""
    make_pool("p", ["10.1.0.0/24"])
    with pytest.raises(PoolError, match="service CIDR"):
        make_pool("p", ["10.1.0.0/24"], service_cidr="10.1.0.0/16")


def test_default_pool_sits_in_the_node_network_above_the_nodes() -> None:
    """The design's default 172.18.255.200-250 is accepted (the nodes live in 172.18.0.0/24)."""
    pool = make_pool("default", ["172.18.255.200-172.18.255.250"])
    assert pool.size(4) == 51 and ipaddress.ip_address("172.18.255.200") in pool


def test_avoid_buggy_ips_skips_dot_zero_and_dot_255() -> None:
    """With avoidBuggyIPs the .0 and .255 addresses are neither counted nor handed out."""
    pool = make_pool("p", ["192.168.0.254-192.168.1.1"], avoid_buggy_ips=True)
    assert [str(a) for a in pool.addresses()] == ["192.168.0.254", "192.168.1.1"]
    assert pool.size(4) == 2 and ipaddress.ip_address("192.168.1.0") not in pool


def test_large_ranges_cost_nothing_until_walked() -> None:
    """An IPv6 /64 is a pair of integers; sizes are arithmetic."""
    pool = make_pool("v6", ["fd00:1::/64"])
    assert pool.size(6) == 2 ** 64 and pool.size(4) == 0
    assert str(next(pool.addresses(6))) == "fd00:1::"
    assert str(Range(6, 1, 2)) == "::1-::2"


def test_object_round_trip() -> None:
    """The object `up` writes reads back as the same pool; autoAssign false is honoured."""
    obj = pool_object("default", ["192.168.9.0/29"])
    pool = pool_from_object(obj)
    assert pool.name == "default" and pool.auto_assign and pool.size(4) == 8
    obj["spec"]["autoAssign"] = False
    assert not pool_from_object(obj).auto_assign
    with pytest.raises(PoolError, match="no addresses"):
        pool_from_object({"metadata": {"name": "empty"}, "spec": {"addresses": []}})
