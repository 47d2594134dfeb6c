"""From a query name to what is being asked: a pure function, no I/O, no cache.

Splitting the name once, up front, keeps the answering step a plain lookup
and makes every naming rule of the Kubernetes DNS specification testable as
a table.  The names understood under the cluster zone ``Z``::

    Z                                 apex (SOA, NS)
    dns-version.Z                     schema version (TXT)
    ns.dns.Z                          the name server's own address
    svc.Z  pod.Z  dns.Z               empty non-terminals (NODATA)
    <ns>.svc.Z                        a namespace (NODATA when it has services)
    <svc>.<ns>.svc.Z                  a service
    <ep>.<svc>.<ns>.svc.Z             one endpoint of a service, by hostname
    _<port>._<proto>.<svc>.<ns>.svc.Z a service's named port (SRV)
    <a-b-c-d>.<ns>.pod.Z              a pod by its dashed IP

plus reverse names (``in-addr.arpa``, ``ip6.arpa``) that spell a whole
address.  Anything else under ``Z`` does not exist; anything outside ``Z``
and the reverse zones is someone else's (forwarded).
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

APEX, VERSION, NS_HOST, EMPTY, NAMESPACE = "apex", "version", "ns-host", "empty", "namespace"
SERVICE, ENDPOINT, PORT, POD, PTR = "service", "endpoint", "port", "pod", "ptr"
NXNAME, OUTSIDE = "nxname", "outside"

PROTOCOLS = ("_tcp", "_udp", "_sctp")
MAX_NAME = 253  # presentation length without the final dot; the wire limit is 255 octets


@dataclass(frozen=True, slots=True)
class Request:
    """What a name asks for; fields not used by ``kind`` are empty."""

    kind: str
    namespace: str = ""
    service: str = ""
    endpoint: str = ""
    port: str = ""  # port name without the underscore; "" with a protocol means `_<proto>.<svc>...`
    protocol: str = ""  # tcp, udp, sctp
    ip: str = ""


def parse(qname: str, zone: str) -> Request:
    """Classify ``qname`` (any case, with or without the final dot) against ``zone``."""
    name = qname.lower().rstrip(".")
    if len(name) > MAX_NAME:
        return Request(NXNAME)
    if name == zone:
        return Request(APEX)
    suffix = "." + zone
    if name.endswith(suffix):
        return _in_zone(name[: -len(suffix)].split("."))
    if name.endswith(".in-addr.arpa") or name.endswith(".ip6.arpa"):
        ip = reverse_to_ip(name)
        return Request(PTR, ip=ip) if ip else Request(OUTSIDE)
    return Request(OUTSIDE)


def _in_zone(labels: list[str]) -> Request:
    *rest, kind = labels
    if kind == "svc":
        return _service(rest)
    if kind == "pod":
        return _pod(rest)
    if labels == ["dns-version"]:
        return Request(VERSION)
    if labels == ["dns"]:
        return Request(EMPTY)
    if labels == ["ns", "dns"]:
        return Request(NS_HOST)
    return Request(NXNAME)


def _service(labels: list[str]) -> Request:
    if "" in labels:
        return Request(NXNAME)
    if not labels:
        return Request(EMPTY)
    if len(labels) == 1:
        return Request(NAMESPACE, namespace=labels[0])
    if len(labels) == 2:
        return Request(SERVICE, service=labels[0], namespace=labels[1])
    if len(labels) == 3:
        first, svc, ns = labels
        if first in PROTOCOLS:
            return Request(PORT, service=svc, namespace=ns, protocol=first[1:])
        if first.startswith("_"):
            return Request(NXNAME)
        return Request(ENDPOINT, endpoint=first, service=svc, namespace=ns)
    if len(labels) == 4:
        port, proto, svc, ns = labels
        if port.startswith("_") and len(port) > 1 and proto in PROTOCOLS:
            return Request(PORT, port=port[1:], protocol=proto[1:], service=svc, namespace=ns)
    return Request(NXNAME)


def _pod(labels: list[str]) -> Request:
    if not labels:
        return Request(EMPTY)
    if len(labels) == 1:
        return Request(EMPTY) if labels[0] else Request(NXNAME)
    if len(labels) == 2 and labels[1]:
        ip = undash(labels[0])
        if ip:
            return Request(POD, ip=ip, namespace=labels[1])
    return Request(NXNAME)


def undash(label: str) -> str:
    """``10-244-1-5`` → ``10.244.1.5``; ``fd00--1`` → ``fd00::1``; "" when not an address."""
    for candidate in (label.replace("-", "."), label.replace("-", ":")):
        try:
            return str(ipaddress.ip_address(candidate))
        except ValueError:
            continue
    return ""


def reverse_to_ip(name: str) -> str:
    """The address a full reverse name spells, or "" for a partial or malformed one."""
    if name.endswith(".in-addr.arpa"):
        parts = name[: -len(".in-addr.arpa")].split(".")
        if len(parts) != 4 or not all(p.isdigit() and len(p) <= 3 and int(p) < 256 for p in parts):
            return ""
        if any(len(p) > 1 and p[0] == "0" for p in parts):
            return ""
        return ".".join(reversed(parts))
    nibbles = name[: -len(".ip6.arpa")].split(".")
    if len(nibbles) != 32 or not all(len(n) == 1 and n in "0123456789abcdef" for n in nibbles):
        return ""
    hexdigits = "".join(reversed(nibbles))
    return str(ipaddress.IPv6Address(int(hexdigits, 16)))
