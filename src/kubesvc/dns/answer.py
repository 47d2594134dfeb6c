"""The answer to a parsed question, from the index alone: pure, no I/O.

Input is a :class:`~kubesvc.dns.parse.Request`, the question's type and an
:class:`~kubesvc.dns.index.Index`; output is an :class:`Answer` (rcode and
the three sections as plain text records).  Two outcomes reach outside and
are only *requested* here, for the wire layer to carry out: forwarding a
name that is not ours, and resolving an ExternalName's target upstream.

The rules worth stating (the Kubernetes DNS specification, CoreDNS's
behaviour, RFC 2308):

* a name that exists but has no record of the asked type is NODATA (NOERROR,
  empty answer, SOA in authority); a name that does not exist is NXDOMAIN;
* a headless service with no ready endpoint does not exist (NXDOMAIN),
  unless it publishes not-ready addresses;
* before the cache has synced, nothing in the zone can be denied: SERVFAIL.
"""

from __future__ import annotations

import functools
import ipaddress
from dataclasses import dataclass, field
from typing import NamedTuple

from . import parse as p
from .index import Index
from .records import Endpoint, Service, endpoint_hostname

NOERROR, SERVFAIL, NXDOMAIN = "NOERROR", "SERVFAIL", "NXDOMAIN"
SCHEMA_VERSION = "1.1.0"
MAX_CNAME_CHAIN = 8


class RR(NamedTuple):
    """One resource record in presentation form; ``name`` and names in ``data`` end with a dot."""

    name: str
    type: str
    ttl: int
    data: str

    def __str__(self) -> str:
        return f"{self.name} {self.ttl} IN {self.type} {self.data}"


@dataclass(frozen=True)
class Zone:
    """The answering step's settings: the zone, TTL, the server's own addresses."""

    domain: str = "cluster.local"
    ttl: int = 30
    dns_ips: tuple[str, ...] = ("10.0.0.10",)
    # reverse names in these ranges are ours to deny; others are forwarded
    reverse_cidrs: tuple[str, ...] = ("10.0.0.0/16", "10.244.0.0/16")
    pods: str = "insecure"  # CoreDNS's `pods` option: insecure, verified or disabled


POD_MODES = ("insecure", "verified", "disabled")


@dataclass
class Answer:
    rcode: str = NOERROR
    answer: list[RR] = field(default_factory=list)
    authority: list[RR] = field(default_factory=list)
    additional: list[RR] = field(default_factory=list)
    authoritative: bool = True
    forward: bool = False  # not ours: relay the query upstream
    chase: str = ""  # an ExternalName target outside the zone to resolve upstream

    @property
    def nodata(self) -> bool:
        return self.rcode == NOERROR and not self.answer


def answer(qname: str, qtype: str, index: Index, zone: Zone) -> Answer:
    """Everything about the reply except its wire form and what upstream says."""
    req = p.parse(qname, zone.domain)
    if req.kind == p.OUTSIDE:
        return Answer(forward=True, authoritative=False)
    if req.kind == p.PTR and not index.reverse(req.ip) and not _ours(req.ip, zone):
        return Answer(forward=True, authoritative=False)
    if not index.synced:
        return Answer(SERVFAIL, authoritative=False)
    owner = qname if qname.endswith(".") else qname + "."
    out = Answer()
    _resolve(req, owner, qtype, index, zone, out, depth=0)
    if out.rcode != SERVFAIL and not out.answer:  # negative: the SOA of the zone that holds the name
        origin = ("ip6.arpa." if ":" in req.ip else "in-addr.arpa.") if req.kind == p.PTR else ""
        out.authority.append(soa(zone, index.serial, origin))
    return out


def _resolve(req: p.Request, owner: str, qtype: str, index: Index, zone: Zone, out: Answer, depth: int) -> None:
    def rr(rtype: str, data: str, name: str = owner) -> None:
        out.answer.append(RR(name, rtype, zone.ttl, data))

    kind = req.kind
    if kind == p.APEX:
        if qtype == "SOA":
            out.answer.append(soa(zone, index.serial))
        elif qtype == "NS":
            rr("NS", f"ns.dns.{zone.domain}.")
            out.additional += _addresses(f"ns.dns.{zone.domain}.", zone.dns_ips, "A", zone.ttl)
    elif kind == p.VERSION:
        if qtype == "TXT":
            rr("TXT", f'"{SCHEMA_VERSION}"')
    elif kind == p.NS_HOST:
        out.answer += _addresses(owner, zone.dns_ips, qtype, zone.ttl)
    elif kind == p.EMPTY:
        pass
    elif kind == p.NAMESPACE:
        if not index.has_namespace(req.namespace):
            out.rcode = NXDOMAIN
    elif kind == p.POD:
        _pod(req, owner, qtype, index, zone, out)
    elif kind == p.PTR:
        names = [_ptr_target(ns, svc, host, zone) for ns, svc, host in index.reverse(req.ip)]
        if not names:
            out.rcode = NXDOMAIN
        elif qtype == "PTR":
            for name in dict.fromkeys(names):
                rr("PTR", name)
    elif kind in (p.SERVICE, p.ENDPOINT, p.PORT):
        svc = index.service(req.namespace, req.service)
        if svc is None:
            out.rcode = NXDOMAIN
        elif svc.type == "ExternalName":
            _external(req, svc, owner, qtype, index, zone, out, depth)
        elif kind == p.SERVICE:
            _service(svc, owner, qtype, index, zone, out)
        elif kind == p.ENDPOINT:
            _endpoint(svc, req.endpoint, owner, qtype, index, zone, out)
        else:
            _port(svc, req, owner, qtype, index, zone, out)
    else:
        out.rcode = NXDOMAIN


def _pod(req: p.Request, owner: str, qtype: str, index: Index, zone: Zone, out: Answer) -> None:
    """``a-b-c-d.<ns>.pod``: any well-formed address (insecure), only a pod's own (verified), or none.

    ``insecure`` answers whatever address the name spells, whether or not a pod has it,
    which is what many clusters run (and why CoreDNS offers ``verified``): the name then
    exists only while a pod in that namespace has that address.
    """
    if zone.pods == "disabled" or (zone.pods == "verified" and not index.has_pod(req.namespace, req.ip)):
        out.rcode = NXDOMAIN
    else:
        out.answer += _addresses(owner, (req.ip,), qtype, zone.ttl)


def _service(svc: Service, owner: str, qtype: str, index: Index, zone: Zone, out: Answer) -> None:
    if not svc.headless:
        if qtype == "SRV":
            for port in svc.ports:
                out.answer.append(RR(owner, "SRV", zone.ttl, f"0 {_weight(len(svc.ports))} {port.port} {owner}"))
            out.additional += _addresses(owner, svc.cluster_ips, "A", zone.ttl)
            out.additional += _addresses(owner, svc.cluster_ips, "AAAA", zone.ttl)
        else:
            out.answer += _addresses(owner, svc.cluster_ips, qtype, zone.ttl)
        return
    eps = _ready(svc, index)
    if not eps:
        out.rcode = NXDOMAIN
    elif qtype == "SRV":
        _srv(svc, [(ep, pt) for ep in eps for pt in ep.ports], owner, zone, out)
    else:
        out.answer += _addresses(owner, [ip for ep in eps for ip in ep.addresses], qtype, zone.ttl)


def _endpoint(svc: Service, host: str, owner: str, qtype: str, index: Index, zone: Zone, out: Answer) -> None:
    ips = [ip for ep in _ready(svc, index) for ip in ep.addresses if endpoint_hostname(ep, ip) == host]
    if not ips:
        out.rcode = NXDOMAIN
    else:
        out.answer += _addresses(owner, ips, qtype, zone.ttl)


def _port(svc: Service, req: p.Request, owner: str, qtype: str, index: Index, zone: Zone, out: Answer) -> None:
    def wanted(port_name: str, protocol: str) -> bool:
        return protocol == req.protocol and (port_name == req.port if req.port else bool(port_name))

    if svc.headless:
        pairs = [(ep, pt) for ep in _ready(svc, index) for pt in ep.ports if wanted(pt.name, pt.protocol)]
        if not pairs:
            out.rcode = NXDOMAIN
        elif qtype == "SRV":
            _srv(svc, pairs, owner, zone, out)
        return
    ports = [pt for pt in svc.ports if wanted(pt.name, pt.protocol)]
    if not ports:
        out.rcode = NXDOMAIN
    elif qtype == "SRV":
        target = _service_name(svc, zone)
        for pt in ports:
            out.answer.append(RR(owner, "SRV", zone.ttl, f"0 {_weight(len(ports))} {pt.port} {target}"))
        out.additional += _addresses(target, svc.cluster_ips, "A", zone.ttl)
        out.additional += _addresses(target, svc.cluster_ips, "AAAA", zone.ttl)


def _srv(svc: Service, pairs: list, owner: str, zone: Zone, out: Answer) -> None:  # type: ignore[type-arg]
    """Headless SRV: one record per (ready endpoint address, port), targets the endpoint names."""
    base = _service_name(svc, zone)
    records = [(f"{endpoint_hostname(ep, ip)}.{base}", ip, pt.port) for ep, pt in pairs for ip in ep.addresses]
    weight = _weight(len(records))
    for target, _, port in records:
        out.answer.append(RR(owner, "SRV", zone.ttl, f"0 {weight} {port} {target}"))
    for target, ip in dict.fromkeys((t, ip) for t, ip, _ in records):
        out.additional += _addresses(target, (ip,), "A", zone.ttl) + _addresses(target, (ip,), "AAAA", zone.ttl)


def _external(req: p.Request, svc: Service, owner: str, qtype: str, index: Index, zone: Zone,
              out: Answer, depth: int) -> None:
    """A CNAME to ``externalName``, chased in-zone here or marked for an upstream look-up."""
    target = svc.external_name
    if req.kind != p.SERVICE or not target:
        out.rcode = NXDOMAIN
        return
    if _is_ip(target):  # beyond CoreDNS: an address is answered as one, not as a CNAME
        out.answer += _addresses(owner, (target,), qtype, zone.ttl)
        return
    out.answer.append(RR(owner, "CNAME", zone.ttl, target + "."))
    if qtype == "CNAME":
        return
    inner = p.parse(target, zone.domain)
    if inner.kind == p.OUTSIDE:
        out.chase = target + "."
    elif depth < MAX_CNAME_CHAIN:
        sub = Answer()
        _resolve(inner, target + ".", qtype, index, zone, sub, depth + 1)
        out.answer += sub.answer
        out.additional += sub.additional
        out.chase = sub.chase
        if sub.rcode != NOERROR:
            out.rcode = sub.rcode  # RFC 6604: the rcode is the chain's last name's
    else:
        out.rcode = SERVFAIL


def _ready(svc: Service, index: Index) -> list[Endpoint]:
    eps = index.endpoints(svc.namespace, svc.name)
    return eps if svc.publish_not_ready else [ep for ep in eps if ep.ready]


def _addresses(owner: str, ips: tuple[str, ...] | list[str], qtype: str, ttl: int) -> list[RR]:
    """A or AAAA records for the addresses of that family (ANY takes both)."""
    out = []
    for ip in dict.fromkeys(ips):
        rtype = "AAAA" if ":" in ip else "A"
        if qtype in (rtype, "ANY"):
            out.append(RR(owner, rtype, ttl, ip))
    return out


def _ptr_target(ns: str, svc: str, host: str, zone: Zone) -> str:
    return f"{host}.{svc}.{ns}.svc.{zone.domain}." if host else f"{svc}.{ns}.svc.{zone.domain}."


def _service_name(svc: Service, zone: Zone) -> str:
    return f"{svc.name}.{svc.namespace}.svc.{zone.domain}."


def _weight(n: int) -> int:
    return max(1, 100 // max(1, n))


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def _ours(ip: str, zone: Zone) -> bool:
    addr = ipaddress.ip_address(ip)
    return any(addr in net for net in _networks(zone.reverse_cidrs))


@functools.lru_cache(maxsize=8)
def _networks(cidrs: tuple[str, ...]) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    return [ipaddress.ip_network(c) for c in cidrs]


def soa(zone: Zone, serial: int, origin: str = "") -> RR:
    """The zone's SOA (or a reverse zone's); its minimum, the negative-caching TTL, is the TTL."""
    ttl = zone.ttl
    data = f"ns.dns.{zone.domain}. hostmaster.{zone.domain}. {serial} 7200 1800 86400 {ttl}"
    return RR(origin or zone.domain + ".", "SOA", ttl, data)
