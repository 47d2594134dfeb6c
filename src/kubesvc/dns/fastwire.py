"""The wire format's common case without dnspython: one plain question in, records out.

Decoding a query and encoding its answer through dnspython costs 0.4-0.7 ms of
CPU.  Cache hits never pay it, but the answer cache is dropped on every index
change, and then every distinct question in flight misses at once: a few
hundred misses are a few hundred milliseconds during which the server cannot
keep up and queries queue -- the latency tail under churn.  This module
handles the shapes nearly all traffic has -- a standard query with one
question of plain labels, with or without an EDNS0 OPT (version 0) -- and
answers made of A, AAAA, CNAME, PTR, NS, SRV, TXT and SOA records, in a tenth
of the time.  Anything else (odd characters in names, other record types, a
reply that needs truncating, padding, TSIG...) gets ``None`` and takes the
dnspython path in :mod:`wire`, which stays the reference: the unit tests
check that both give the same message for every answer in the tables.
"""

from __future__ import annotations

import re
import socket
import struct
from dataclasses import dataclass

import dns.rdatatype

from .answer import RR
from .wire import MAX_UDP, OUR_PAYLOAD

_PLAIN_LABEL = re.compile(rb"[A-Za-z0-9_-]{1,63}")
_PLAIN_TEXT_LABEL = re.compile(r"[A-Za-z0-9_-]{1,63}")
_NOT_HERE = {41, 249, 250, 251, 252}  # OPT, TKEY, TSIG, IXFR, AXFR: decided by the dnspython path
_PADDING = 12  # an EDNS option that changes the reply (RFC 8467): the dnspython path pads
_HEADER = struct.Struct("!HHHHHH")
_OPT_REPLY = b"\x00" + struct.pack("!HHIH", 41, OUR_PAYLOAD, 0, 0)
_QR, _AA, _RD, _RA = 0x8000, 0x0400, 0x0100, 0x0080
_TYPE_TEXT: dict[int, str] = {}
_TYPE_CODE = {"A": 1, "NS": 2, "CNAME": 5, "SOA": 6, "PTR": 12, "TXT": 16, "AAAA": 28, "SRV": 33}
_RCODE = {"NOERROR": 0, "SERVFAIL": 2, "NXDOMAIN": 3}


class _Slow(Exception):
    """Not a shape this module handles: use the dnspython path."""


@dataclass(frozen=True, slots=True)
class Question:
    qname: str  # presentation form with the final dot, spelled as the client did
    qtype: str  # the mnemonic dnspython would give (A, SRV, TYPE65280...)
    flags: int  # the query's header flags (RD is copied into the reply)
    end: int  # where the question ends in the query (it is copied into the reply as it is)
    edns: bool
    udp_limit: int  # the largest UDP reply this client takes (RFC 6891; 512 without EDNS0)


def parse_question(data: bytes) -> Question | None:
    """The question of a plain standard query, or None for anything the dnspython path should see."""
    if len(data) < 17:
        return None
    _, flags, qd, an, ns, ar = _HEADER.unpack_from(data)
    if flags & 0xF800 or qd != 1 or an or ns or ar > 1:  # a response, another opcode, or odd counts
        return None
    labels, i = [], 12
    while True:
        length = data[i] if i < len(data) else -1
        if length == 0:
            break
        if length < 0 or length > 63 or i + 1 + length > len(data) \
                or not _PLAIN_LABEL.fullmatch(data, i + 1, i + 1 + length):
            return None
        labels.append(data[i + 1:i + 1 + length].decode("ascii"))
        i += 1 + length
    if i - 12 + 1 > 255 or i + 5 > len(data):
        return None
    qtype, qclass = struct.unpack_from("!HH", data, i + 1)
    end = i + 5
    if qclass != 1 or qtype in _NOT_HERE:
        return None
    udp_limit, edns = 512, False
    if ar:
        payload = _opt_payload(data, end)
        if payload is None:
            return None
        udp_limit, edns = max(512, min(payload, MAX_UDP)), True
    elif end != len(data):
        return None
    text = _TYPE_TEXT.get(qtype)
    if text is None:
        text = _TYPE_TEXT[qtype] = dns.rdatatype.to_text(qtype)
    return Question(".".join(labels) + ".", text, flags, end, edns, udp_limit)


def _opt_payload(data: bytes, i: int) -> int | None:
    """The UDP size of the OPT record at ``i`` (version 0, no padding, nothing after it); else None."""
    if len(data) < i + 11 or data[i] != 0:
        return None
    rtype, payload, _, version, _, rdlen = struct.unpack_from("!HHBBHH", data, i + 1)
    start, end = i + 11, i + 11 + rdlen
    if rtype != 41 or version != 0 or end != len(data):
        return None
    while start < end:
        if start + 4 > end:
            return None
        code, size = struct.unpack_from("!HH", data, start)
        if code == _PADDING:
            return None
        start += 4 + size
    return payload if start == end else None


def build_reply(data: bytes, q: Question, rcode: str, answer: list[RR], authority: list[RR],
                additional: list[RR], *, authoritative: bool, max_size: int) -> bytes | None:
    """The reply dnspython's ``make_response`` + ``to_wire`` would give; None when it needs that path."""
    try:
        sections = [_section(q, records) for records in (answer, authority, additional)]
    except (_Slow, ValueError, OSError, UnicodeError):
        return None
    code = _RCODE.get(rcode)
    if code is None:
        return None
    flags = _QR | (q.flags & _RD) | _RA | (_AA if authoritative else 0) | code
    counts = [n for n, _ in sections]
    head = _HEADER.pack(int.from_bytes(data[:2], "big"), flags, 1, counts[0], counts[1], counts[2] + q.edns)
    out = b"".join([head, data[12:q.end], sections[0][1], sections[1][1], sections[2][1],
                    _OPT_REPLY if q.edns else b""])
    return out if len(out) <= max_size else None


def _section(q: Question, records: list[RR]) -> tuple[int, bytes]:
    """RRsets in first-seen order, each record once, the first record's TTL: as :mod:`wire` groups them."""
    sets: dict[tuple[str, str], tuple[str, int, dict[str, str]]] = {}  # -> owner, ttl, {lower data: data}
    for rec in records:
        key = (rec.name.lower(), rec.type)
        entry = sets.get(key)
        if entry is None:
            entry = sets[key] = (rec.name, rec.ttl, {})
        entry[2].setdefault(rec.data.lower(), rec.data)  # names compare case-insensitively, as in dnspython
    parts, count = [], 0
    qname = q.qname.lower()
    for (lower, rtype), (owner, ttl, datas) in sets.items():
        code = _TYPE_CODE.get(rtype)
        if code is None:
            raise _Slow(rtype)
        name = b"\xc0\x0c" if lower == qname else _name(owner)
        for text in datas.values():
            rdata = _rdata(rtype, text)
            parts.append(name + struct.pack("!HHIH", code, 1, ttl, len(rdata)) + rdata)
            count += 1
    return count, b"".join(parts)


def _name(text: str) -> bytes:
    if text == ".":
        return b"\x00"
    if not text.endswith("."):
        raise _Slow(text)
    out = []
    for label in text[:-1].split("."):
        if not _PLAIN_TEXT_LABEL.fullmatch(label):
            raise _Slow(text)
        out.append(bytes([len(label)]) + label.encode("ascii"))
    wire = b"".join(out) + b"\x00"
    if len(wire) > 255:
        raise _Slow(text)
    return wire


def _rdata(rtype: str, text: str) -> bytes:
    if rtype == "A":
        return socket.inet_pton(socket.AF_INET, text)
    if rtype == "AAAA":
        return socket.inet_pton(socket.AF_INET6, text)
    if rtype in ("CNAME", "PTR", "NS"):
        return _name(text)
    if rtype == "SRV":
        priority, weight, port, target = text.split()
        return struct.pack("!HHH", int(priority), int(weight), int(port)) + _name(target)
    if rtype == "SOA":
        mname, rname, *numbers = text.split()
        if len(numbers) != 5:
            raise _Slow(text)
        return _name(mname) + _name(rname) + struct.pack("!IIIII", *(int(n) for n in numbers))
    if rtype == "TXT" and len(text) >= 2 and text[0] == text[-1] == '"' and '"' not in text[1:-1] \
            and "\\" not in text and len(text) - 2 < 256:
        return bytes([len(text) - 2]) + text[1:-1].encode("ascii")
    raise _Slow(rtype)
