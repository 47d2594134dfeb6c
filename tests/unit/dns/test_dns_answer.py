"""The pure answering step against a static fake index: {qname, qtype, rcode, answer} tables."""

from __future__ import annotations

import pytest
from dnsfixtures import static_index

from kubesvc.dns.answer import Zone, answer
from kubesvc.dns.index import MemoryIndex
from kubesvc.dns.records import Pod

Z = Zone()
SOA = "cluster.local. 30 IN SOA ns.dns.cluster.local. hostmaster.cluster.local. 1 7200 1800 86400 30"
S = "svc.cluster.local."

CASES = [
    # ClusterIP services
    ("svc1.default.svc.cluster.local.", "A", "NOERROR", [f"svc1.default.{S} 30 IN A 10.0.0.100"]),
    ("SVC1.Default.SVC.cluster.LOCAL.", "A", "NOERROR", ["SVC1.Default.SVC.cluster.LOCAL. 30 IN A 10.0.0.100"]),
    ("svc1.default.svc.cluster.local.", "AAAA", "NOERROR", []),  # NODATA: exists, no IPv6
    ("svc1.default.svc.cluster.local.", "TXT", "NOERROR", []),
    ("svc1.default.svc.cluster.local.", "ANY", "NOERROR", [f"svc1.default.{S} 30 IN A 10.0.0.100"]),
    ("dual.default.svc.cluster.local.", "AAAA", "NOERROR", [f"dual.default.{S} 30 IN AAAA fd00::101"]),
    ("dual.default.svc.cluster.local.", "A", "NOERROR", [f"dual.default.{S} 30 IN A 10.0.0.101"]),
    ("v6.default.svc.cluster.local.", "AAAA", "NOERROR", [f"v6.default.{S} 30 IN AAAA fd00::102"]),
    ("v6.default.svc.cluster.local.", "A", "NOERROR", []),
    ("svc2.other.svc.cluster.local.", "A", "NOERROR", [f"svc2.other.{S} 30 IN A 10.0.0.200"]),
    ("svc2.default.svc.cluster.local.", "A", "NXDOMAIN", []),
    ("nope.default.svc.cluster.local.", "A", "NXDOMAIN", []),
    ("nope.default.svc.cluster.local.", "AAAA", "NXDOMAIN", []),
    # SRV for named ports; unnamed ports get none
    ("_http._tcp.svc1.default.svc.cluster.local.", "SRV", "NOERROR",
     [f"_http._tcp.svc1.default.{S} 30 IN SRV 0 100 80 svc1.default.{S}"]),
    ("_HTTP._TCP.svc1.default.svc.cluster.local.", "SRV", "NOERROR",
     [f"_HTTP._TCP.svc1.default.{S} 30 IN SRV 0 100 80 svc1.default.{S}"]),
    ("_dns._udp.svc1.default.svc.cluster.local.", "SRV", "NOERROR",
     [f"_dns._udp.svc1.default.{S} 30 IN SRV 0 100 53 svc1.default.{S}"]),
    ("_dns._tcp.svc1.default.svc.cluster.local.", "SRV", "NXDOMAIN", []),
    ("_nope._tcp.svc1.default.svc.cluster.local.", "SRV", "NXDOMAIN", []),
    ("_http._tcp.svc1.default.svc.cluster.local.", "A", "NOERROR", []),
    ("_tcp.svc1.default.svc.cluster.local.", "SRV", "NOERROR",
     [f"_tcp.svc1.default.{S} 30 IN SRV 0 100 80 svc1.default.{S}"]),
    ("_http._bogus.svc1.default.svc.cluster.local.", "SRV", "NXDOMAIN", []),
    ("svc1.default.svc.cluster.local.", "SRV", "NOERROR",
     [f"svc1.default.{S} 30 IN SRV 0 33 80 svc1.default.{S}", f"svc1.default.{S} 30 IN SRV 0 33 8080 svc1.default.{S}",
      f"svc1.default.{S} 30 IN SRV 0 33 53 svc1.default.{S}"]),
    # headless: ready endpoints only; endpoint names by hostname or dashed IP
    ("hdls.default.svc.cluster.local.", "A", "NOERROR",
     [f"hdls.default.{S} 30 IN A 10.244.1.2", f"hdls.default.{S} 30 IN A 10.244.1.3"]),
    ("hdls.default.svc.cluster.local.", "AAAA", "NOERROR", []),
    ("hdls-empty.default.svc.cluster.local.", "A", "NXDOMAIN", []),
    ("hdls-pub.default.svc.cluster.local.", "A", "NOERROR", [f"hdls-pub.default.{S} 30 IN A 10.244.1.9"]),
    ("web-0.hdls.default.svc.cluster.local.", "A", "NOERROR", [f"web-0.hdls.default.{S} 30 IN A 10.244.1.2"]),
    ("10-244-1-3.hdls.default.svc.cluster.local.", "A", "NOERROR",
     [f"10-244-1-3.hdls.default.{S} 30 IN A 10.244.1.3"]),
    ("10-244-1-4.hdls.default.svc.cluster.local.", "A", "NXDOMAIN", []),  # not ready
    ("web-1.hdls.default.svc.cluster.local.", "A", "NXDOMAIN", []),
    ("web-0.hdls.default.svc.cluster.local.", "TXT", "NOERROR", []),
    ("_http._tcp.hdls.default.svc.cluster.local.", "SRV", "NOERROR",
     [f"_http._tcp.hdls.default.{S} 30 IN SRV 0 50 8080 web-0.hdls.default.{S}",
      f"_http._tcp.hdls.default.{S} 30 IN SRV 0 50 8080 10-244-1-3.hdls.default.{S}"]),
    ("_http._tcp.hdls-empty.default.svc.cluster.local.", "SRV", "NXDOMAIN", []),
    # ExternalName
    ("ext.default.svc.cluster.local.", "A", "NOERROR", [f"ext.default.{S} 30 IN CNAME example.com."]),
    ("ext.default.svc.cluster.local.", "CNAME", "NOERROR", [f"ext.default.{S} 30 IN CNAME example.com."]),
    ("ext-ip.default.svc.cluster.local.", "A", "NOERROR", [f"ext-ip.default.{S} 30 IN A 192.0.2.7"]),
    ("ext-ip.default.svc.cluster.local.", "AAAA", "NOERROR", []),
    ("ext-in.default.svc.cluster.local.", "A", "NOERROR",
     [f"ext-in.default.{S} 30 IN CNAME svc1.default.{S}", f"svc1.default.{S} 30 IN A 10.0.0.100"]),
    ("ext-gone.default.svc.cluster.local.", "A", "NXDOMAIN",
     [f"ext-gone.default.{S} 30 IN CNAME nothere.default.{S}"]),
    ("web.ext.default.svc.cluster.local.", "A", "NXDOMAIN", []),
    # pods (CoreDNS's `pods insecure`)
    ("10-244-1-7.default.pod.cluster.local.", "A", "NOERROR",
     ["10-244-1-7.default.pod.cluster.local. 30 IN A 10.244.1.7"]),
    ("10-244-1-7.anyns.pod.cluster.local.", "AAAA", "NOERROR", []),
    ("fd00--7.default.pod.cluster.local.", "AAAA", "NOERROR", ["fd00--7.default.pod.cluster.local. 30 IN AAAA fd00::7"]),
    ("10-244-1.default.pod.cluster.local.", "A", "NXDOMAIN", []),
    ("a.b.default.pod.cluster.local.", "A", "NXDOMAIN", []),
    # PTR: service addresses and endpoint addresses
    ("100.0.0.10.in-addr.arpa.", "PTR", "NOERROR", [f"100.0.0.10.in-addr.arpa. 30 IN PTR svc1.default.{S}"]),
    ("2.1.244.10.in-addr.arpa.", "PTR", "NOERROR",
     [f"2.1.244.10.in-addr.arpa. 30 IN PTR web-0.hdls.default.{S}"]),
    ("3.1.244.10.in-addr.arpa.", "PTR", "NOERROR",
     [f"3.1.244.10.in-addr.arpa. 30 IN PTR 10-244-1-3.hdls.default.{S}"]),
    ("99.0.0.10.in-addr.arpa.", "PTR", "NXDOMAIN", []),  # in the service range: ours to deny
    ("100.0.0.10.in-addr.arpa.", "A", "NOERROR", []),
    ("1.0.1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.d.f.ip6.arpa.", "PTR", "NOERROR",
     ["1.0.1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.d.f.ip6.arpa. 30 IN PTR dual.default.svc.cluster.local."]),
    # the zone itself
    ("cluster.local.", "SOA", "NOERROR", [SOA]),
    ("cluster.local.", "NS", "NOERROR", ["cluster.local. 30 IN NS ns.dns.cluster.local."]),
    ("cluster.local.", "A", "NOERROR", []),
    ("ns.dns.cluster.local.", "A", "NOERROR", ["ns.dns.cluster.local. 30 IN A 10.0.0.10"]),
    ("dns-version.cluster.local.", "TXT", "NOERROR", ['dns-version.cluster.local. 30 IN TXT "1.1.0"']),
    ("dns-version.cluster.local.", "A", "NOERROR", []),
    ("svc.cluster.local.", "A", "NOERROR", []),
    ("pod.cluster.local.", "A", "NOERROR", []),
    ("default.svc.cluster.local.", "A", "NOERROR", []),
    ("nons.svc.cluster.local.", "A", "NXDOMAIN", []),
    ("x.svc1.default.svc.cluster.local.", "A", "NXDOMAIN", []),
    ("a.b.c.d.e.svc.cluster.local.", "A", "NXDOMAIN", []),
    ("foo.cluster.local.", "A", "NXDOMAIN", []),
    ("svc1..default.svc.cluster.local.", "A", "NXDOMAIN", []),
]


@pytest.mark.parametrize("qname,qtype,rcode,expected", CASES, ids=[f"{c[0]}-{c[1]}" for c in CASES])
def test_answer_table(index: MemoryIndex, qname: str, qtype: str, rcode: str, expected: list[str]) -> None:
    """Each name and type gets the rcode and answer records the DNS specification asks for."""
    got = answer(qname, qtype, index, Z)
    assert got.rcode == rcode
    assert [str(rr) for rr in got.answer] == expected
    assert not got.forward
    if not got.answer:  # negative answers (NXDOMAIN and NODATA) carry the zone's SOA for caching
        origin = "in-addr.arpa." if qname.endswith(".in-addr.arpa.") else "cluster.local."
        assert [str(rr) for rr in got.authority] == [SOA.replace("cluster.local.", origin, 1)]
    assert got.authoritative


def test_external_name_outside_zone_is_chased_upstream(index: MemoryIndex) -> None:
    """An ExternalName target outside the zone is left for the wire layer to resolve upstream."""
    got = answer("ext.default.svc.cluster.local.", "A", index, Z)
    assert got.chase == "example.com."
    assert answer("ext.default.svc.cluster.local.", "CNAME", index, Z).chase == ""


def test_srv_additional_section_has_target_addresses(index: MemoryIndex) -> None:
    """SRV answers carry the targets' A records so clients need no second query."""
    got = answer("_http._tcp.hdls.default.svc.cluster.local.", "SRV", index, Z)
    assert [str(rr) for rr in got.additional] == [
        f"web-0.hdls.default.{S} 30 IN A 10.244.1.2", f"10-244-1-3.hdls.default.{S} 30 IN A 10.244.1.3"]
    got = answer("cluster.local.", "NS", index, Z)
    assert [str(rr) for rr in got.additional] == ["ns.dns.cluster.local. 30 IN A 10.0.0.10"]


@pytest.mark.parametrize("qname", ["example.com.", "8.8.8.8.in-addr.arpa.", "1.0.0.192.in-addr.arpa.",
                                   "0.10.in-addr.arpa.", "local.", "xcluster.local."])
def test_names_outside_the_zone_are_forwarded(index: MemoryIndex, qname: str) -> None:
    """Other zones, and reverse names we hold nothing for outside our ranges, go upstream."""
    got = answer(qname, "A", index, Z)
    assert got.forward and not got.authoritative and got.rcode == "NOERROR"


@pytest.mark.parametrize("qname", ["svc1.default.svc.cluster.local.", "nope.default.svc.cluster.local.",
                                   "99.0.0.10.in-addr.arpa."])
def test_servfail_before_sync_never_nxdomain(qname: str) -> None:
    """Until the cache has synced, nothing in the zone is denied."""
    got = answer(qname, "A", static_index(synced=False), Z)
    assert got.rcode == "SERVFAIL" and not got.answer


def test_ttl_is_configurable(index: MemoryIndex) -> None:
    """The TTL flag applies to answers and to the SOA minimum (negative caching)."""
    zone = Zone(ttl=5)
    assert str(answer("svc1.default.svc.cluster.local.", "A", index, zone).answer[0]).split()[1] == "5"
    assert answer("nope.default.svc.cluster.local.", "A", index, zone).authority[0].data.endswith(" 5")


def test_other_cluster_domain(index: MemoryIndex) -> None:
    """The zone is a setting: names under another domain are not ours."""
    zone = Zone(domain="example.internal")
    assert answer("svc1.default.svc.example.internal.", "A", index, zone).answer[0].data == "10.0.0.100"
    assert answer("svc1.default.svc.cluster.local.", "A", index, zone).forward


POD_NAMES = [("10-244-1-7.default.pod.cluster.local.", "A"), ("fd00--7.default.pod.cluster.local.", "AAAA"),
             ("10-244-1-7.other.pod.cluster.local.", "A"), ("10-244-1-8.default.pod.cluster.local.", "A")]


@pytest.mark.parametrize("mode,expected", [
    ("insecure", ["NOERROR:1", "NOERROR:1", "NOERROR:1", "NOERROR:1"]),
    ("verified", ["NOERROR:1", "NOERROR:1", "NXDOMAIN:0", "NXDOMAIN:0"]),
    ("disabled", ["NXDOMAIN:0", "NXDOMAIN:0", "NXDOMAIN:0", "NXDOMAIN:0"]),
])
def test_pod_modes(index: MemoryIndex, mode: str, expected: list[str]) -> None:
    """CoreDNS's `pods` option: verified answers only a pod's own address in the pod's namespace."""
    index.put_pod(Pod("default", "p", ("10.244.1.7", "fd00::7")))
    zone = Zone(pods=mode)
    got = [answer(name, qtype, index, zone) for name, qtype in POD_NAMES]
    assert [f"{a.rcode}:{len(a.answer)}" for a in got] == expected
    if mode == "verified":
        assert str(got[0].answer[0]) == "10-244-1-7.default.pod.cluster.local. 30 IN A 10.244.1.7"
        assert answer("10-244-1-7.default.pod.cluster.local.", "AAAA", index, zone).nodata  # exists, no AAAA
        index.delete_pod("default", "p")
        assert answer(*POD_NAMES[0], index, zone).rcode == "NXDOMAIN"
