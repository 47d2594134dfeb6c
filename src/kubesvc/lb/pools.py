"""Address pools: what ``--lb-pool`` flags and IPAddressPool objects mean.

A pool is a name, a few inclusive integer ranges of one or both IP families,
and two switches (``autoAssign``, ``avoidBuggyIPs``).  Parsing is strict and
pure so the same rule serves the CLI (one clear line on a bad flag), the
controller (a Warning Event on a bad object) and the tests.  Ranges are kept
as integers so a /16 or an IPv6 /64 costs nothing until addresses are used.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from kubesvc.api import addressplan as plan

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
DEFAULT_POOL = "default"


class PoolError(ValueError):
    """A pool entry that cannot be used; the message is meant for the user."""


@dataclass(frozen=True, order=True)
class Range:
    """An inclusive range of addresses of one family, as integers."""

    version: int
    first: int
    last: int

    def __contains__(self, ip: object) -> bool:
        return (isinstance(ip, ipaddress.IPv4Address | ipaddress.IPv6Address) and ip.version == self.version
                and self.first <= int(ip) <= self.last)

    @property
    def size(self) -> int:
        return self.last - self.first + 1

    def __str__(self) -> str:
        lo, hi = to_ip(self.version, self.first), to_ip(self.version, self.last)
        return f"{lo}-{hi}" if lo != hi else str(lo)


def to_ip(version: int, n: int) -> IPAddress:
    """An integer back to an address of the given family (small IPv6 integers stay IPv6)."""
    return ipaddress.IPv4Address(n) if version == 4 else ipaddress.IPv6Address(n)


def parse_range(text: str) -> Range:
    """``192.168.1.0/24`` or ``192.168.1.10-192.168.1.20`` (whitespace around parts allowed)."""
    text = str(text).strip()
    try:
        if "-" in text:
            a, b = (ipaddress.ip_address(x.strip()) for x in text.split("-", 1))
            if a.version != b.version:
                raise PoolError(f"{text!r}: both ends of a range must be of one IP family")
            if int(a) > int(b):
                raise PoolError(f"{text!r}: the range's start is after its end")
            return Range(a.version, int(a), int(b))
        net = ipaddress.ip_network(text, strict=False)
    except PoolError:
        raise
    except ValueError:
        raise PoolError(f"{text!r} is not a CIDR (192.168.1.0/24) or a range (192.168.1.10-192.168.1.20)") from None
    return Range(net.version, int(net.network_address), int(net.broadcast_address))


def reserved_networks(service_cidr: str = plan.SERVICE_CIDR) -> list[tuple[str, ipaddress.IPv4Network
                                                                          | ipaddress.IPv6Network]]:
    """The cluster's own networks a pool may not touch: node addresses, pods, services.

    Only the low /24 of the node network holds nodes (node N is 172.18.0.(N+1)),
    so the default pool may live in the rest of it, as kind users do with MetalLB.
    """
    nodes = ipaddress.ip_network(plan.NODE_NETWORK_GATEWAY + "/24", strict=False)
    return [("the node addresses", nodes), ("the pod CIDR", ipaddress.ip_network(plan.POD_CIDR)),
            ("the service CIDR", ipaddress.ip_network(service_cidr))]


def check_reserved(r: Range, service_cidr: str = plan.SERVICE_CIDR) -> None:
    """Raise :class:`PoolError` if ``r`` overlaps a network the cluster itself uses."""
    for what, net in reserved_networks(service_cidr):
        if net.version == r.version and r.first <= int(net.broadcast_address) and int(net.network_address) <= r.last:
            raise PoolError(f"{r} overlaps {what} ({net})")


@dataclass(frozen=True)
class Pool:
    """A named set of ranges; ``addresses()`` walks them in order (the allocation order)."""

    name: str
    ranges: tuple[Range, ...]
    auto_assign: bool = True
    avoid_buggy_ips: bool = False

    def __contains__(self, ip: object) -> bool:
        return any(ip in r for r in self.ranges) and not (self.avoid_buggy_ips and is_buggy(ip))

    def addresses(self, version: int | None = None) -> Iterator[IPAddress]:
        for r in self.ranges:
            if version is not None and r.version != version:
                continue
            for n in range(r.first, r.last + 1):
                ip = to_ip(r.version, n)
                if not (self.avoid_buggy_ips and is_buggy(ip)):
                    yield ip

    def size(self, version: int) -> int:
        total = sum(r.size for r in self.ranges if r.version == version)
        if self.avoid_buggy_ips and version == 4:
            total -= sum(1 for r in self.ranges if r.version == 4 for n in _buggy_in(r))
        return total


def _buggy_in(r: Range) -> Iterator[int]:
    """The .0 and .255 addresses inside an IPv4 range (without walking the range)."""
    base = r.first - r.first % 256
    for block in range(base, r.last + 1, 256):
        for n in (block, block + 255):
            if r.first <= n <= r.last:
                yield n


def is_buggy(ip: object) -> bool:
    """IPv4 addresses ending in .0 or .255, which some old routers and clients mishandle."""
    return isinstance(ip, ipaddress.IPv4Address) and int(ip) % 256 in (0, 255)


def make_pool(name: str, addresses: Iterable[str], *, auto_assign: bool = True, avoid_buggy_ips: bool = False,
              service_cidr: str = plan.SERVICE_CIDR) -> Pool:
    """A validated pool; raises :class:`PoolError` naming the first bad entry."""
    ranges = []
    for text in addresses:
        r = parse_range(text)
        check_reserved(r, service_cidr)
        ranges.append(r)
    if not ranges:
        raise PoolError(f"pool {name!r} has no addresses")
    return Pool(name, tuple(ranges), auto_assign, avoid_buggy_ips)


def pool_from_object(obj: dict[str, Any], service_cidr: str = plan.SERVICE_CIDR) -> Pool:
    """An IPAddressPool object as a :class:`Pool` (the API server validated it; we check again)."""
    spec = obj.get("spec") or {}
    name = str((obj.get("metadata") or {}).get("name") or "")
    return make_pool(name, [str(a) for a in spec.get("addresses") or []],
                     auto_assign=spec.get("autoAssign", True) is not False,
                     avoid_buggy_ips=spec.get("avoidBuggyIPs") is True, service_cidr=service_cidr)


def pool_object(name: str, addresses: list[str]) -> dict[str, Any]:
    """The IPAddressPool ``kubesvc up`` writes for its ``--lb-pool`` flags."""
    return {"apiVersion": "kubesvc.io/v1", "kind": "IPAddressPool",
            "metadata": {"name": name, "labels": {"app.kubernetes.io/managed-by": "kubesvc-up"}},
            "spec": {"addresses": list(addresses), "autoAssign": True, "avoidBuggyIPs": False}}
