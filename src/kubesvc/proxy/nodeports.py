"""``--nodeport-addresses``: which of the node's addresses accept NodePort connections.

As kube-proxy: a list of CIDRs, or the single word ``primary`` (the node's
primary IP, from its Node object).  NodePorts are then accepted on the
node's own interface addresses that fall in one of the CIDRs, never on a
loopback address.  Unset, or with no IPv4 CIDR at all, or with a /0, every
local address but 127.0.0.0/8 accepts them (the rule then asks the kernel's
fib whether the destination is local, and no address list is kept).  The
choice is pure (:func:`nodeport_ips`); reading the namespace's addresses is
the one side effect (:func:`interface_addresses`), done on full syncs, so an
address added later is picked up by the next one.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
from collections.abc import Iterable, Sequence

from .netns import exec_prefix

PRIMARY = "primary"


def parse_nodeport_addresses(values: Iterable[str]) -> tuple[str, ...]:
    """The flag's values (repeatable, comma-separated) → a validated tuple; ValueError says what is wrong."""
    items = tuple(v.strip() for value in values for v in value.split(",") if v.strip())
    for i, item in enumerate(items):
        if item == PRIMARY:
            if len(items) != 1:
                raise ValueError(f"nodePortAddresses[{i}]: Invalid value: {item!r}: can't use both 'primary' and CIDRs")
            continue
        if "/" not in item:
            raise ValueError(f"nodePortAddresses[{i}]: Invalid value: {item!r}: must be a valid CIDR")
        try:
            ipaddress.ip_network(item, strict=False)
        except ValueError:
            raise ValueError(f"nodePortAddresses[{i}]: Invalid value: {item!r}: must be a valid CIDR") from None
    return items


def nodeport_ips(spec: Sequence[str], primary_ip: str, local: Iterable[str]) -> tuple[str, ...] | None:
    """The IPv4 addresses accepting NodePorts, sorted; None means every non-loopback local address."""
    if tuple(spec) == (PRIMARY,):
        cidrs = [ipaddress.IPv4Network(f"{primary_ip}/32")] if _v4(primary_ip) else []
        if not cidrs:
            return ()  # no primary IP known yet: nowhere, rather than everywhere
    else:
        cidrs = [n for n in (ipaddress.ip_network(s, strict=False) for s in spec)
                 if isinstance(n, ipaddress.IPv4Network)]
        if not cidrs or any(n.prefixlen == 0 for n in cidrs):
            return None
    found = set()
    for text in local:
        if not _v4(text):
            continue
        ip = ipaddress.IPv4Address(text)
        if not ip.is_loopback and any(ip in n for n in cidrs):  # upstream never serves NodePorts on loopback
            found.add(ip)
    return tuple(str(ip) for ip in sorted(found))


def _v4(text: str) -> bool:
    try:
        return ipaddress.ip_address(text).version == 4
    except ValueError:
        return False


async def interface_addresses(netns: str | None) -> tuple[str, ...]:
    """The IPv4 addresses of every interface in ``netns`` (or here)."""
    proc = await asyncio.create_subprocess_exec(*exec_prefix(netns), "ip", "-4", "-j", "addr", "show",
                                                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await proc.communicate()
    if proc.returncode != 0:
        raise OSError(f"ip addr: {err.decode().strip()}")
    return tuple(a["local"] for link in json.loads(out or b"[]") for a in link.get("addr_info", ())
                 if a.get("family") == "inet" and a.get("local"))
