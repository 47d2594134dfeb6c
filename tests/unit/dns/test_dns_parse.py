"""Query names to request records: every naming rule of the specification as a table."""

from __future__ import annotations

import pytest

from kubesvc.dns.parse import Request, parse, reverse_to_ip, undash

Z = "cluster.local"

CASES = [
    ("cluster.local.", Request("apex")),
    ("CLUSTER.local", Request("apex")),
    ("dns-version.cluster.local.", Request("version")),
    ("ns.dns.cluster.local.", Request("ns-host")),
    ("dns.cluster.local.", Request("empty")),
    ("svc.cluster.local.", Request("empty")),
    ("pod.cluster.local.", Request("empty")),
    ("default.pod.cluster.local.", Request("empty")),
    ("default.svc.cluster.local.", Request("namespace", namespace="default")),
    ("web.default.svc.cluster.local.", Request("service", service="web", namespace="default")),
    ("Web.DEFAULT.svc.cluster.local.", Request("service", service="web", namespace="default")),
    ("web-0.web.default.svc.cluster.local.",
     Request("endpoint", endpoint="web-0", service="web", namespace="default")),
    ("_http._tcp.web.default.svc.cluster.local.",
     Request("port", port="http", protocol="tcp", service="web", namespace="default")),
    ("_dns._udp.kube-dns.kube-system.svc.cluster.local.",
     Request("port", port="dns", protocol="udp", service="kube-dns", namespace="kube-system")),
    ("_sctp.web.default.svc.cluster.local.", Request("port", protocol="sctp", service="web", namespace="default")),
    ("_x.web.default.svc.cluster.local.", Request("nxname")),
    ("_http._icmp.web.default.svc.cluster.local.", Request("nxname")),
    ("_._tcp.web.default.svc.cluster.local.", Request("nxname")),
    ("a.b.c.d.e.svc.cluster.local.", Request("nxname")),
    ("web..default.svc.cluster.local.", Request("nxname")),
    ("10-244-1-5.default.pod.cluster.local.", Request("pod", ip="10.244.1.5", namespace="default")),
    ("fd00--5.default.pod.cluster.local.", Request("pod", ip="fd00::5", namespace="default")),
    ("10-244-1-256.default.pod.cluster.local.", Request("nxname")),
    ("x.10-244-1-5.default.pod.cluster.local.", Request("nxname")),
    ("other.cluster.local.", Request("nxname")),
    ("x.dns.cluster.local.", Request("nxname")),
    ("5.1.244.10.in-addr.arpa.", Request("ptr", ip="10.244.1.5")),
    ("1.244.10.in-addr.arpa.", Request("outside")),
    ("example.com.", Request("outside")),
    ("cluster.local.example.com.", Request("outside")),
    ("xcluster.local.", Request("outside")),
    ("a" * 63 + "." + ("b" * 63 + ".") * 3 + "cluster.local.", Request("nxname")),
]


@pytest.mark.parametrize("qname,want", CASES, ids=[c[0][:60] for c in CASES])
def test_parse_table(qname: str, want: Request) -> None:
    """Each name shape maps to the request kind the answering step expects."""
    assert parse(qname, Z) == want


@pytest.mark.parametrize("name,ip", [
    ("4.3.2.1.in-addr.arpa", "1.2.3.4"),
    ("0.0.0.0.in-addr.arpa", "0.0.0.0"),
    ("04.3.2.1.in-addr.arpa", ""),
    ("256.3.2.1.in-addr.arpa", ""),
    ("x.3.2.1.in-addr.arpa", ""),
    ("3.2.1.in-addr.arpa", ""),
    ("1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.d.f.ip6.arpa", "fd00::1"),
    ("1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.d.f.ip6.arpa", ""),
    ("g.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.d.f.ip6.arpa", ""),
])
def test_reverse_names(name: str, ip: str) -> None:
    """Only reverse names spelling a whole address are PTR questions about one address."""
    assert reverse_to_ip(name) == ip


def test_undash() -> None:
    """Dashed pod-style labels back to addresses; anything else is not one."""
    assert undash("10-0-0-1") == "10.0.0.1"
    assert undash("2001-db8--1") == "2001:db8::1"
    assert undash("web-0") == ""
    assert undash("010-0-0-1") == ""
