"""The DNS wire format: decoding queries safely, encoding answers to size.

dnspython does the encoding; this module adds the server's policy around it:
what a malformed or unsupported query gets back (FORMERR, NOTIMP, REFUSED,
or nothing at all, so the server can never be used to reflect traffic), and
how large a UDP answer may be (512 octets, or the client's EDNS0 size capped
at :data:`MAX_UDP`; anything larger is sent truncated with TC set, and the
client repeats the question over TCP, where the full answer is served).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.opcode
import dns.rcode
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.rdtypes.IN.A
import dns.rdtypes.IN.AAAA
import dns.rrset

from .answer import RR

OUR_PAYLOAD = 1232  # the EDNS0 size we advertise (DNS flag day 2020)
MAX_UDP = 4096  # never send UDP answers larger than this, whatever the client says
_IN = dns.rdataclass.IN
_REFUSED_TYPES = {dns.rdatatype.AXFR, dns.rdatatype.IXFR}
_META_TYPES = {dns.rdatatype.OPT, dns.rdatatype.TSIG, dns.rdatatype.TKEY}


@dataclass(frozen=True, slots=True)
class Query:
    """A well-formed, supported question: what the resolver works from."""

    message: dns.message.Message
    qname: str  # as the client spelled it, with the final dot
    qtype: str  # a type mnemonic (A, AAAA, SRV, ..., TYPE65280)


def error_reply(data: bytes, rcode: int) -> bytes | None:
    """A bare header answering ``data`` with ``rcode``; None (drop) unless it looks like a query."""
    if len(data) < 12:
        return None
    ident, flags = struct.unpack_from("!HH", data)
    if flags & dns.flags.QR:
        return None  # a response sent to us: never answer it (no reflection loops)
    flags = dns.flags.QR | (flags & (0x7800 | dns.flags.RD)) | dns.flags.RA | (rcode & 0xF)
    return struct.pack("!HHHHHH", ident, flags, 0, 0, 0, 0)


def decode(data: bytes) -> Query | bytes | None:
    """A :class:`Query`, or the bytes to send back at once (an error), or None to drop."""
    if len(data) < 12 or data[2] & 0x80:
        return None
    opcode = (data[2] >> 3) & 0xF
    if opcode != dns.opcode.QUERY:
        return error_reply(data, dns.rcode.NOTIMP)
    try:
        msg = dns.message.from_wire(data)
    except (dns.exception.DNSException, ValueError, IndexError, struct.error, UnicodeError):
        return error_reply(data, dns.rcode.FORMERR)
    if len(msg.question) != 1 or msg.answer or msg.authority:
        return error_reply(data, dns.rcode.FORMERR)
    q = msg.question[0]
    if q.rdtype in _META_TYPES:
        return error_reply(data, dns.rcode.FORMERR)
    if q.rdclass != _IN or q.rdtype in _REFUSED_TYPES:
        return _encode_rcode(msg, dns.rcode.REFUSED)
    if msg.edns > 0:
        return _encode_rcode(msg, dns.rcode.BADVERS)
    return Query(msg, q.name.to_text(), dns.rdatatype.to_text(q.rdtype))


def udp_limit(msg: dns.message.Message) -> int:
    """How large a UDP answer this client takes (RFC 6891): 512 without EDNS0."""
    return max(512, min(msg.payload, MAX_UDP)) if msg.edns >= 0 else 512


def encode(query: Query, rcode: str, answer: list[RR], authority: list[RR], additional: list[RR],
           *, authoritative: bool, max_size: int) -> bytes:
    """The reply, truncated (TC set) when it does not fit in ``max_size``."""
    resp = dns.message.make_response(query.message, recursion_available=True, our_payload=OUR_PAYLOAD)
    if authoritative:
        resp.flags |= dns.flags.AA
    resp.set_rcode(dns.rcode.from_text(rcode))
    resp.answer = _rrsets(answer)
    resp.authority = _rrsets(authority)
    resp.additional = _rrsets(additional)
    return resp.to_wire(max_size=max_size, prefer_truncation=True)


def _encode_rcode(msg: dns.message.Message, rcode: int) -> bytes:
    resp = dns.message.make_response(msg, recursion_available=True, our_payload=OUR_PAYLOAD)
    resp.set_rcode(rcode)
    return resp.to_wire(max_size=512, prefer_truncation=True)


def _rrsets(records: list[RR]) -> list[dns.rrset.RRset]:
    """Group records into RRsets in first-seen order (one TTL per set, as RFC 2181 wants)."""
    sets: dict[tuple[str, str], dns.rrset.RRset] = {}
    for rec in records:
        key = (rec.name.lower(), rec.type)
        rrset = sets.get(key)
        if rrset is None:
            rdtype = dns.rdatatype.from_text(rec.type)
            rrset = sets[key] = dns.rrset.RRset(dns.name.from_text(rec.name), _IN, rdtype)
            rrset.update_ttl(rec.ttl)
        rrset.add(_rdata(rec.type, rec.data))
    return list(sets.values())


def _rdata(rtype: str, data: str) -> dns.rdata.Rdata:
    if rtype == "A":
        return dns.rdtypes.IN.A.A(_IN, dns.rdatatype.A, data)
    if rtype == "AAAA":
        return dns.rdtypes.IN.AAAA.AAAA(_IN, dns.rdatatype.AAAA, data)
    return dns.rdata.from_text(_IN, rtype, data)


def rrs_from_message(msg: dns.message.Message) -> list[RR]:
    """An upstream answer section back in the answering step's form (for ExternalName targets)."""
    out = []
    for rrset in msg.answer:
        for rd in rrset:
            out.append(RR(rrset.name.to_text(), dns.rdatatype.to_text(rrset.rdtype), rrset.ttl, rd.to_text()))
    return out
