"""One query in, one reply out: decoding, answering, forwarding, encoding.

This is the seam between the pure parts (:mod:`parse`, :mod:`answer`) and the
outside world (:mod:`forward`).  Most questions are answered synchronously,
so the transports can reply without creating a task; only a forwarded name
or an ExternalName target outside the zone returns an awaitable, for the
transport to run on the side while it keeps serving.
"""

from __future__ import annotations

from collections.abc import Awaitable
from dataclasses import dataclass

import dns.exception
import dns.message
import dns.rcode

from . import fastwire, wire
from .answer import SERVFAIL, Answer, Zone, answer
from .forward import Forwarder
from .index import Index
from .metrics import Stats

TCP_LIMIT = 65535


@dataclass(slots=True)
class Reply:
    """Bytes to send now, or an awaitable giving them later; ``None`` for both means drop."""

    wire: bytes | None
    later: Awaitable[bytes | None] | None = None
    cacheable: bool = False
    qtype: str = "other"


_RCODE_TEXT = tuple(dns.rcode.to_text(code) for code in range(16))  # on every miss: no dnspython call


def rcode_of(reply: bytes | None) -> str:
    if reply is None or len(reply) < 4:
        return "dropped"
    return _RCODE_TEXT[reply[3] & 0xF]


class Resolver:
    def __init__(self, index: Index, zone: Zone, forwarder: Forwarder, stats: Stats) -> None:
        self.index = index
        self.zone = zone
        self.forwarder = forwarder
        self.stats = stats

    def resolve(self, data: bytes, *, tcp: bool) -> Reply:
        fast = fastwire.parse_question(data)
        if fast is not None:  # the common case, without dnspython (see fastwire for why)
            ans = answer(fast.qname, fast.qtype, self.index, self.zone)
            if not ans.forward and not ans.chase:
                out = fastwire.build_reply(data, fast, ans.rcode, ans.answer, ans.authority, ans.additional,
                                           authoritative=ans.authoritative,
                                           max_size=TCP_LIMIT if tcp else fast.udp_limit)
                if out is not None:
                    return Reply(out, cacheable=ans.rcode != SERVFAIL, qtype=fast.qtype)
        q = wire.decode(data)
        if q is None:
            return Reply(None)
        if isinstance(q, bytes):
            return Reply(q)
        ans = answer(q.qname, q.qtype, self.index, self.zone)
        limit = TCP_LIMIT if tcp else wire.udp_limit(q.message)
        if ans.forward:
            return Reply(None, later=self._forward(data, q, tcp), qtype=q.qtype)
        if ans.chase:
            return Reply(None, later=self._chase(q, ans, limit), qtype=q.qtype)
        out = wire.encode(q, ans.rcode, ans.answer, ans.authority, ans.additional,
                          authoritative=ans.authoritative, max_size=limit)
        return Reply(out, cacheable=ans.rcode != SERVFAIL, qtype=q.qtype)

    async def _forward(self, data: bytes, q: wire.Query, tcp: bool) -> bytes:
        reply = await self.forwarder.forward(data, tcp=tcp)
        self.stats.forward(reply is not None)
        if reply is None:
            return wire.encode(q, SERVFAIL, [], [], [], authoritative=False, max_size=512)
        return reply

    async def _chase(self, q: wire.Query, ans: Answer, limit: int) -> bytes:
        """Add what upstream says about the ExternalName target; the CNAME stands either way."""
        target_query = dns.message.make_query(ans.chase, q.qtype, use_edns=0, payload=wire.OUR_PAYLOAD)
        reply = await self.forwarder.forward(target_query.to_wire(), tcp=limit == TCP_LIMIT)
        self.stats.forward(reply is not None)
        records = list(ans.answer)
        if reply is not None:
            try:
                upstream = dns.message.from_wire(reply)
                records += wire.rrs_from_message(upstream)
            except dns.exception.DNSException:
                pass
        return wire.encode(q, ans.rcode, records, ans.authority, ans.additional,
                           authoritative=False, max_size=limit)
