"""ClusterIP and NodePort allocators: ranges, bands, errors, exhaustion, restore."""

from __future__ import annotations

import random

import pytest

from kubesvc.registry.service.bitmap import AllocatorError, RestoreResult
from kubesvc.registry.service.ipallocator import IPAllocator
from kubesvc.registry.service.portallocator import PortAllocator


def ips(cidr: str, seed: int = 1) -> IPAllocator:
    return IPAllocator(cidr, random.Random(seed))


def test_ip_range_excludes_network_and_broadcast():
    a = ips("10.0.0.0/29")
    got = sorted(a.allocate_next() for _ in range(6))
    assert got == [f"10.0.0.{i}" for i in range(1, 7)]
    with pytest.raises(AllocatorError, match="^range is full$"):
        a.allocate_next()
    assert not a.contains("10.0.0.0") and not a.contains("10.0.0.7")


def test_ip_default_range_sizes():
    a = ips("10.0.0.0/16")
    assert (a.size, a.static_band, a.family, a.cidr) == (65534, 256, "IPv4", "10.0.0.0/16")
    assert ips("10.0.0.0/22").static_band == 64
    assert ips("10.0.0.0/26").static_band == 16
    assert ips("10.0.0.0/28").static_band == 0  # 16 addresses or fewer: no split


def test_ipv6_range_is_capped():
    a = ips("fd00::/64")
    assert (a.size, a.static_band, a.family) == (65535, 256, "IPv6")
    assert a.allocate_next().startswith("fd00::")


def test_ip_dynamic_allocation_avoids_static_band():
    a = ips("10.0.0.0/16")
    for _ in range(2000):
        ip = a.allocate_next()
        assert a._offset(ip) >= 256


def test_ip_dynamic_falls_back_to_static_band_when_upper_is_full():
    a = ips("10.0.0.0/26")  # 62 usable, 16 static
    first = [a.allocate_next() for _ in range(46)]
    assert all(a._offset(ip) >= 16 for ip in first)
    rest = [a.allocate_next() for _ in range(16)]
    assert sorted(a._offset(ip) for ip in rest) == list(range(16))
    assert a.free == 0


def test_ip_specific_allocation_and_errors():
    a = ips("10.0.0.0/16")
    a.allocate("10.0.10.10")
    assert a.has("10.0.10.10")
    with pytest.raises(AllocatorError) as e:
        a.allocate("10.0.10.10")
    assert str(e.value) == "provided IP is already allocated"
    with pytest.raises(AllocatorError) as e:
        a.allocate("10.1.0.1")
    assert str(e.value) == "the provided IP (10.1.0.1) is not in the valid range. The range of valid IPs is 10.0.0.0/16"
    for edge in ("10.0.0.0", "10.0.255.255"):
        with pytest.raises(AllocatorError, match="not in the valid range"):
            a.allocate(edge)


def test_ip_release_and_reuse():
    a = ips("10.0.0.0/30")  # two usable
    x, y = a.allocate_next(), a.allocate_next()
    a.release(x)
    assert a.allocate_next() == x
    a.release("192.168.0.1")  # out of range: no-op
    a.release(y)
    a.release(y)  # twice: no-op
    assert a.used == 1


def test_ip_restore():
    a = ips("10.0.0.0/24")
    assert a.restore("10.0.0.10") == RestoreResult.RESTORED
    assert a.restore("10.0.0.10") == RestoreResult.DUPLICATE
    assert a.restore("10.0.1.10") == RestoreResult.OUT_OF_RANGE
    assert list(a.allocated()) == ["10.0.0.10"]
    with pytest.raises(AllocatorError):
        a.allocate("10.0.0.10")


def test_ip_allocation_is_deterministic_with_seed():
    assert [ips("10.0.0.0/16", 7).allocate_next() for _ in range(1)] == [ips("10.0.0.0/16", 7).allocate_next()]


def ports(seed: int = 1, rng=(30000, 32767)) -> PortAllocator:
    return PortAllocator(rng, random.Random(seed))


def test_port_default_range():
    p = ports()
    assert (p.size, p.static_band, p.range_text) == (2768, 86, "30000-32767")
    assert PortAllocator("30000-30010").static_band == 0
    assert PortAllocator("30000-30099").static_band == 16


def test_port_dynamic_prefers_upper_band_then_static():
    p = ports(rng=(30000, 30099))  # 100 ports, 16 static
    first = [p.allocate_next() for _ in range(84)]
    assert min(first) >= 30016
    rest = sorted(p.allocate_next() for _ in range(16))
    assert rest == list(range(30000, 30016))
    with pytest.raises(AllocatorError, match="^range is full$"):
        p.allocate_next()


def test_port_errors():
    p = ports()
    p.allocate(30080)
    with pytest.raises(AllocatorError) as e:
        p.allocate(30080)
    assert str(e.value) == "provided port is already allocated"
    with pytest.raises(AllocatorError) as e:
        p.allocate(80)
    assert str(e.value) == "provided port is not in the valid range. The range of valid ports is 30000-32767"


def test_port_release_restore():
    p = ports()
    n = p.allocate_next()
    p.release(n)
    p.release(99999)
    assert p.used == 0
    assert p.restore(30080) == RestoreResult.RESTORED
    assert p.restore(30080) == RestoreResult.DUPLICATE
    assert p.restore(80) == RestoreResult.OUT_OF_RANGE
    assert list(p.allocated()) == [30080]


def test_exhaust_whole_default_port_range_without_duplicates():
    p = ports()
    got = {p.allocate_next() for _ in range(2768)}
    assert len(got) == 2768 and min(got) == 30000 and max(got) == 32767
