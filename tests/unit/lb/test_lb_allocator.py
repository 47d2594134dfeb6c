"""The pure allocator: assign, allocate, unassign, sharing rules, pools changing, invariants."""

from __future__ import annotations

import ipaddress

import pytest

from kubesvc.lb.allocator import AllocationError, Allocator, InvariantError, Request, sharing_problem
from kubesvc.lb.pools import make_pool


def ip(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    return ipaddress.ip_address(text)


def req(key: str, *ports: int, sharing: str = "", backend: str = "", pool: str = "", proto: str = "TCP") -> Request:
    return Request(key, frozenset((proto, p) for p in ports), sharing, backend, pool)


@pytest.fixture
def alloc() -> Allocator:
    return Allocator([make_pool("default", ["172.18.255.200-172.18.255.202"])])


def test_allocate_is_deterministic_and_in_order(alloc: Allocator) -> None:
    """First free address of the pool, in order; the same request again gets the same answer."""
    assert alloc.allocate(req("a/x", 80)) == ip("172.18.255.200")
    assert alloc.allocate(req("a/y", 80)) == ip("172.18.255.201")
    assert alloc.allocate(req("a/x", 80)) == ip("172.18.255.200")
    alloc.check()


def test_exhaustion_says_which_pool(alloc: Allocator) -> None:
    """Once every address is held, allocation fails with a message naming the pool."""
    for n in range(3):
        alloc.allocate(req(f"ns/s{n}", 80))
    with pytest.raises(AllocationError, match="no available IPv4 address in pool default"):
        alloc.allocate(req("ns/late", 80))
    assert alloc.ip_of("ns/late") is None


def test_unassign_is_idempotent_and_frees_the_address(alloc: Allocator) -> None:
    """Releasing twice is harmless; the freed address is the next one handed out."""
    alloc.allocate(req("a/x", 80))
    alloc.allocate(req("a/y", 80))
    assert alloc.unassign("a/x") == ip("172.18.255.200")
    assert alloc.unassign("a/x") is None
    assert alloc.allocate(req("a/z", 80)) == ip("172.18.255.200")
    alloc.check()


@pytest.mark.parametrize(("wanted", "error"), [
    ("172.18.255.201", ""),
    ("192.168.77.1", "not in any address pool"),
    ("fd00::1", "not an IPv4 address"),
])
def test_assign_specific_address(alloc: Allocator, wanted: str, error: str) -> None:
    """A requested address is given when it is free and in a pool; refused otherwise."""
    if error:
        with pytest.raises(AllocationError, match=error):
            alloc.assign(req("a/x", 80), ip(wanted))
        assert alloc.ip_of("a/x") is None
    else:
        alloc.assign(req("a/x", 80), ip(wanted))
        assert alloc.ip_of("a/x") == ip(wanted)


def test_assign_taken_address_is_refused_and_changes_nothing(alloc: Allocator) -> None:
    """Asking for a held address fails; the asker keeps what it had."""
    alloc.assign(req("a/x", 80), ip("172.18.255.200"))
    alloc.assign(req("a/y", 80), ip("172.18.255.201"))
    with pytest.raises(AllocationError, match="already in use by a/x"):
        alloc.assign(req("a/y", 80), ip("172.18.255.200"))
    assert alloc.ip_of("a/y") == ip("172.18.255.201")
    alloc.check()


def test_assign_moves_a_service_and_frees_its_old_address(alloc: Allocator) -> None:
    """Assigning another address releases the previous one (one address per Service)."""
    alloc.allocate(req("a/x", 80))
    alloc.assign(req("a/x", 80), ip("172.18.255.202"))
    assert alloc.users(ip("172.18.255.200")) == [] and alloc.users(ip("172.18.255.202")) == ["a/x"]


def test_auto_assign_false_pools_serve_only_explicit_requests() -> None:
    """A manual pool is skipped by allocate but honoured for a named address or pool."""
    a = Allocator([make_pool("manual", ["192.168.5.0/30"], auto_assign=False)])
    with pytest.raises(AllocationError, match="automatic assignment"):
        a.allocate(req("a/x"))
    a.assign(req("a/x"), ip("192.168.5.2"))
    assert a.allocate(req("a/y", pool="manual")) == ip("192.168.5.0")


def test_pools_are_tried_by_name_and_a_pool_can_be_asked_for() -> None:
    """Allocation walks auto-assign pools in name order; the pool annotation narrows it to one."""
    a = Allocator([make_pool("b", ["192.168.2.0/31"]), make_pool("a", ["192.168.1.0/32"])])
    assert a.allocate(req("n/1")) == ip("192.168.1.0")
    assert a.allocate(req("n/2")) == ip("192.168.2.0")
    assert a.allocate(req("n/3", pool="b")) == ip("192.168.2.1")
    with pytest.raises(AllocationError, match="'nope' does not exist"):
        a.allocate(req("n/4", pool="nope"))
    with pytest.raises(AllocationError, match="not in address pool 'b'"):
        a.assign(req("n/5", pool="b"), ip("192.168.1.0"))


def test_no_pools_at_all() -> None:
    """With no pools the message says so."""
    with pytest.raises(AllocationError, match="there are no address pools"):
        Allocator().allocate(req("a/x"))


SHARING_CASES = [
    # (first, second, shares?, reason fragment)
    (req("n/a", 80, sharing="k"), req("n/b", 443, sharing="k"), True, ""),
    (req("n/a", 80, sharing="k"), req("n/b", 80, sharing="k", proto="UDP"), True, ""),  # DNS-style TCP+UDP
    (req("n/a", 80, sharing="k"), req("n/b", 80, sharing="k"), False, "port 80/TCP"),
    (req("n/a", 80, sharing="k"), req("n/b", 443, sharing="other"), False, "sharing key 'k'"),
    (req("n/a", 80), req("n/b", 443, sharing="k"), False, "no sharing key"),
    (req("n/a", 80, sharing="k"), req("n/b", 443), False, "already in use"),
    (req("n/a", 80, sharing="k", backend="app=x"), req("n/b", 443, sharing="k"), False,
     "different externalTrafficPolicy"),
    (req("n/a", 80, sharing="k", backend="app=x"), req("n/b", 443, sharing="k", backend="app=x"), True, ""),
]


@pytest.mark.parametrize(("first", "second", "shares", "why"), SHARING_CASES)
def test_sharing_rules(first: Request, second: Request, shares: bool, why: str) -> None:
    """Same key, no port clash, same backends: shared; otherwise refused with the reason."""
    a = Allocator([make_pool("default", ["172.18.255.200-172.18.255.201"])])
    addr = a.allocate(first)
    if shares:
        a.assign(second, addr)
        assert a.users(addr) == ["n/a", "n/b"]
        assert a.allocate(second) == addr  # allocate prefers the address of the same key
    else:
        with pytest.raises(AllocationError, match=why):
            a.assign(second, addr)
        assert a.allocate(second) != addr
    a.check()
    assert (sharing_problem(addr, second, {"n/a": first}) == "") is shares


def test_allocate_joins_an_address_of_the_same_sharing_key() -> None:
    """Without a requested address, a sharing Service lands on its partner's address."""
    a = Allocator([make_pool("default", ["172.18.255.200-172.18.255.210"])])
    a.allocate(req("n/filler", 80))
    first = a.allocate(req("n/dns-tcp", 53, sharing="dns"))
    assert a.allocate(req("n/dns-udp", 53, sharing="dns", proto="UDP")) == first
    assert a.counts()["default"]["assignedIPv4"] == 2


def test_port_change_that_clashes_moves_the_service_on_allocate() -> None:
    """If a sharing Service's new ports clash, allocate gives it another address."""
    a = Allocator([make_pool("default", ["172.18.255.200-172.18.255.201"])])
    shared = a.allocate(req("n/a", 80, sharing="k"))
    a.assign(req("n/b", 81, sharing="k"), shared)
    assert a.allocate(req("n/b", 80, sharing="k")) == ip("172.18.255.201")
    a.check()


def test_shrinking_pools_releases_addresses_outside_them() -> None:
    """Pools changing: holders outside every pool lose their address and are reported."""
    a = Allocator([make_pool("default", ["172.18.255.200-172.18.255.201"])])
    a.allocate(req("n/a"))
    a.allocate(req("n/b"))
    lost = a.set_pools([make_pool("default", ["172.18.255.200/32"])])
    assert lost == ["n/b"] and a.ip_of("n/a") == ip("172.18.255.200") and a.ip_of("n/b") is None
    with pytest.raises(ValueError, match="two pools"):
        a.set_pools([make_pool("x", ["1.1.1.1/32"]), make_pool("x", ["1.1.1.2/32"])])


def test_counts_per_pool_and_family() -> None:
    """Status counts: assigned and available per family, with overlap counted in the first pool."""
    a = Allocator([make_pool("v4", ["192.168.3.0/29"]), make_pool("v6", ["fd00:3::/126"])])
    a.allocate(req("n/a"))
    assert a.counts() == {"v4": {"assignedIPv4": 1, "availableIPv4": 7, "assignedIPv6": 0, "availableIPv6": 0},
                          "v6": {"assignedIPv4": 0, "availableIPv4": 0, "assignedIPv6": 0, "availableIPv6": 4}}


def test_broken_bookkeeping_raises() -> None:
    """An index contradicting the other is a bug: check() raises instead of repairing."""
    a = Allocator([make_pool("default", ["172.18.255.200/31"])])
    a.allocate(req("n/a"))
    a._users.clear()  # simulate the bug
    with pytest.raises(InvariantError):
        a.check()
    with pytest.raises(InvariantError):
        a.unassign("n/a")
