"""The fast wire path gives the very message the dnspython path gives, or steps aside."""

from __future__ import annotations

import struct

import dns.edns
import dns.flags
import dns.message
import pytest
from dnsfixtures import endpoint_slice, service, static_index
from test_dns_answer import CASES

from kubesvc.dns import fastwire, wire
from kubesvc.dns.answer import Zone, answer
from kubesvc.dns.records import service_record, slice_record

Z = Zone()
EXTRA = [("cluster.local.", "SOA"), ("cluster.local.", "NS"), ("dns-version.cluster.local.", "TXT"),
         ("_http._tcp.svc1.default.svc.cluster.local.", "SRV"), ("_http._tcp.hdls.default.svc.cluster.local.", "SRV"),
         ("100.0.0.10.in-addr.arpa.", "PTR"), ("ext-in.default.svc.cluster.local.", "A"),
         ("svc1.default.svc.cluster.local.", "TYPE65280"), ("svc1.default.svc.cluster.local.", "MX")]
QUESTIONS = list(dict.fromkeys([(c[0], c[1]) for c in CASES if ".." not in c[0]] + EXTRA))


def _variants(qname: str, qtype: str) -> list[bytes]:
    plain = dns.message.make_query(qname, qtype)
    plain.flags &= ~dns.flags.RD
    return [dns.message.make_query(qname, qtype).to_wire(),
            plain.to_wire(),
            dns.message.make_query(qname, qtype, use_edns=0, payload=1232).to_wire(),
            dns.message.make_query(qname, qtype, use_edns=0, payload=4096,
                                   options=[dns.edns.GenericOption(10, b"\x01" * 8)]).to_wire()]  # a cookie


def _slow(data: bytes, tcp: bool = False) -> bytes:
    q = wire.decode(data)
    assert isinstance(q, wire.Query)
    ans = answer(q.qname, q.qtype, static_index(), Z)
    limit = 65535 if tcp else wire.udp_limit(q.message)
    return wire.encode(q, ans.rcode, ans.answer, ans.authority, ans.additional,
                       authoritative=ans.authoritative, max_size=limit)


def _fast(data: bytes) -> bytes | None:
    q = fastwire.parse_question(data)
    assert q is not None, data
    ans = answer(q.qname, q.qtype, static_index(), Z)
    if ans.forward or ans.chase:
        return None
    return fastwire.build_reply(data, q, ans.rcode, ans.answer, ans.authority, ans.additional,
                                authoritative=ans.authoritative, max_size=q.udp_limit)


def test_same_message_as_dnspython_for_every_table_answer() -> None:
    """Header, question, every section and the OPT record agree; nearly all answers take the fast path."""
    handled = total = 0
    for qname, qtype in QUESTIONS:
        for data in _variants(qname, qtype):
            total += 1
            fast = _fast(data)
            if fast is None:
                continue
            handled += 1
            got, want = dns.message.from_wire(fast), dns.message.from_wire(_slow(data))
            assert _sections(got) == _sections(want), f"{qname} {qtype}"
            assert (got.id, got.flags, got.edns, got.payload, got.options) == \
                   (want.id, want.flags, want.edns, want.payload, want.options)
    assert handled >= 0.85 * total, (handled, total)


def _sections(msg: dns.message.Message) -> list[list[tuple[str, list[str]]]]:
    """Each section's RRsets in order, each set's records as a sorted list (dnspython shuffles them)."""
    return [[(f"{r.name} {r.ttl} {r.rdclass} {r.rdtype}", sorted(rd.to_text() for rd in r)) for r in section]
            for section in msg.sections] + [[(str(msg.rcode()), [])]]


def test_question_is_copied_as_the_client_spelled_it() -> None:
    data = dns.message.make_query("SVC1.Default.svc.CLUSTER.local.", "A").to_wire()
    q = fastwire.parse_question(data)
    assert q is not None and q.qname == "SVC1.Default.svc.CLUSTER.local." and q.qtype == "A" and not q.edns
    reply = _fast(data)
    assert reply is not None and reply[12:q.end] == data[12:q.end]


def _header(flags: int = 0x0100, qd: int = 1, an: int = 0, ns: int = 0, ar: int = 0) -> bytes:
    return struct.pack("!HHHHHH", 0x1234, flags, qd, an, ns, ar)


Q = b"\x04svc1\x07default\x03svc\x07cluster\x05local\x00\x00\x01\x00\x01"
OPT = b"\x00\x00\x29\x04\xd0\x00\x00\x00\x00\x00\x00"


@pytest.mark.parametrize("data", [
    _header() + Q[:-3],  # cut short
    _header() + Q + b"\x00",  # trailing junk
    _header(flags=0x8100) + Q,  # a response
    _header(flags=0x2900) + Q,  # UPDATE
    _header(qd=2) + Q + Q,
    _header(an=1) + Q,
    _header() + b"\xc0\x0c\x00\x01\x00\x01",  # a pointer in the question
    _header() + b"\x03a b\x00\x00\x01\x00\x01",  # a space in a label
    _header() + b"\x02\xc3\xa9\x00\x00\x01\x00\x01",  # non-ASCII
    _header() + Q[:-2] + b"\x00\x03",  # class CHAOS
    _header() + Q[:-4] + b"\xfc\x00\x01",  # AXFR
    _header(ar=1) + Q + OPT[:5] + b"\x00\x01\x00\x00\x00\x00",  # EDNS version 1
    _header(ar=1) + Q + OPT[:-2] + b"\x00\x04\x00\x0c\x00\x00",  # padding asked for
    _header(ar=1) + Q + OPT + b"\x00",  # junk after the OPT
    _header(ar=1) + Q + b"\x00\x00\x01\x00\x01\x00\x00\x00\x00\x00\x00",  # an A record, not an OPT
    _header(ar=2) + Q + OPT + OPT,
    _header() + b"\x3f" + b"a" * 63 + b"\x3f" + b"a" * 63 + b"\x3f" + b"a" * 63 + b"\x3f" + b"a" * 63
    + b"\x00\x00\x01\x00\x01",  # a name over 255 octets
])
def test_anything_unusual_takes_the_dnspython_path(data: bytes) -> None:
    assert fastwire.parse_question(data) is None


def test_edns_limits_and_large_answers_step_aside() -> None:
    """The client's EDNS0 size is the limit; a reply that would need truncating is left to dnspython."""
    q = fastwire.parse_question(_header(ar=1) + Q + OPT)
    assert q is not None and q.edns and q.udp_limit == 1232
    idx = static_index()
    idx.put_service(service_record(service("big", ports=[("http", 80, "TCP")])))
    idx.put_slice(slice_record(endpoint_slice("big-1", "big", [(f"10.244.9.{i}", "", True) for i in range(1, 200)])))
    data = dns.message.make_query("big.default.svc.cluster.local.", "A").to_wire()
    big = fastwire.parse_question(data)
    assert big is not None and big.udp_limit == 512
    ans = answer(big.qname, big.qtype, idx, Z)
    assert fastwire.build_reply(data, big, ans.rcode, ans.answer, [], [], authoritative=True, max_size=512) is None
    whole = fastwire.build_reply(data, big, ans.rcode, ans.answer, [], [], authoritative=True, max_size=65535)
    assert whole is not None and len(dns.message.from_wire(whole).answer[0]) == 199
