"""The wire server (UDP and TCP) with a static index: bad input, truncation, TCP, forwarding."""

from __future__ import annotations

import asyncio
import socket
import struct
from collections.abc import AsyncIterator

import dns.flags
import dns.message
import dns.query
import dns.rcode
import dns.rdatatype
import pytest
from dnsfixtures import endpoint_slice, service, static_index

from kubesvc.dns.answer import Zone
from kubesvc.dns.forward import Forwarder
from kubesvc.dns.index import MemoryIndex
from kubesvc.dns.metrics import Stats
from kubesvc.dns.records import service_record, slice_record
from kubesvc.dns.resolver import Resolver
from kubesvc.dns.server import AnswerCache, TcpServer, bind

BIG = "big.default.svc.cluster.local."


class FakeUpstream(asyncio.DatagramProtocol):
    """Answers every question with one A record, 192.0.2.1 (or stays silent)."""

    def __init__(self, silent: bool = False) -> None:
        self.silent = silent
        self.queries: list[str] = []

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        q = dns.message.from_wire(data)
        self.queries.append(q.question[0].name.to_text())
        if self.silent:
            return
        r = dns.message.make_response(q)
        r.answer.append(dns.rrset.from_text(q.question[0].name, 60, "IN", "A", "192.0.2.1"))
        self.transport.sendto(r.to_wire(), addr)  # type: ignore[attr-defined]


class Env:
    def __init__(self, port: int, stats: Stats, index: MemoryIndex, upstream: FakeUpstream) -> None:
        self.port, self.stats, self.index, self.upstream = port, stats, index, upstream

    def udp(self, q: dns.message.Message | bytes, timeout: float = 2) -> dns.message.Message:
        return dns.query.udp(q, "127.0.0.1", port=self.port, timeout=timeout)  # type: ignore[arg-type]

    def raw_udp(self, data: bytes, timeout: float = 0.5) -> bytes | None:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.settimeout(timeout)
            s.sendto(data, ("127.0.0.1", self.port))
            try:
                return s.recv(65535)
            except TimeoutError:
                return None


def big_index(upstream_ok: bool = True) -> MemoryIndex:
    idx = static_index()
    idx.put_service(service_record(service("big", ports=[("http", 80, "TCP")])))
    eps = [(f"10.244.{i // 250 + 10}.{i % 250 + 1}", "", True) for i in range(500)]
    idx.put_slice(slice_record(endpoint_slice("big-1", "big", eps, ports=[("http", 80, "TCP")])))
    return idx


async def _env(silent_upstream: bool) -> tuple[Env, list[object]]:
    loop = asyncio.get_running_loop()
    up = FakeUpstream(silent=silent_upstream)
    up_transport, _ = await loop.create_datagram_endpoint(lambda: up, local_addr=("127.0.0.1", 0))
    up_port = up_transport.get_extra_info("sockname")[1]
    idx, stats = big_index(), Stats()
    cache = AnswerCache(stats)
    idx.on_change(cache.clear)
    resolver = Resolver(idx, Zone(), Forwarder([("127.0.0.1", up_port)], timeout=0.5), stats)
    udp, tcp, port = await bind(resolver, cache, stats, TcpServer(resolver, stats), "127.0.0.1", 0)
    return Env(port, stats, idx, up), [udp, tcp, up_transport]


@pytest.fixture
async def env() -> AsyncIterator[Env]:
    e, closers = await _env(False)
    yield e
    for c in closers:
        c.close()  # type: ignore[attr-defined]


async def run(fn, *args):  # type: ignore[no-untyped-def]
    """Blocking dnspython calls run in a thread so the server on this loop keeps serving."""
    return await asyncio.to_thread(fn, *args)


async def test_answers_over_udp_and_tcp(env: Env) -> None:
    """Both transports answer; AA is set for the cluster zone."""
    q = dns.message.make_query("svc1.default.svc.cluster.local.", "A")
    r = await run(env.udp, q)
    assert r.rcode() == dns.rcode.NOERROR and r.flags & dns.flags.AA and r.answer[0][0].address == "10.0.0.100"
    r = await run(lambda: dns.query.tcp(q, "127.0.0.1", port=env.port, timeout=2))
    assert r.answer[0][0].address == "10.0.0.100"


async def test_large_answer_truncates_over_udp_and_is_whole_over_tcp(env: Env) -> None:
    """500 endpoints do not fit in UDP: TC is set; TCP gives all 500; EDNS0 size is respected."""
    q = dns.message.make_query(BIG, "A")  # no EDNS: 512 octets
    r = await run(env.udp, q)
    assert r.flags & dns.flags.TC
    q = dns.message.make_query(BIG, "A", use_edns=0, payload=4096)
    wire = await run(env.raw_udp, q.to_wire())
    assert wire is not None and len(wire) <= 4096 and dns.message.from_wire(wire).flags & dns.flags.TC
    r = await run(lambda: dns.query.tcp(q, "127.0.0.1", port=env.port, timeout=2))
    assert not r.flags & dns.flags.TC and len(r.answer[0]) == 500


async def test_cached_answers_track_changes(env: Env) -> None:
    """A repeated question is served from the answer cache until the index changes."""
    q = dns.message.make_query("svc1.default.svc.cluster.local.", "A")
    await run(env.udp, q)
    r = await run(env.udp, q)
    assert env.stats.cache_hits == 1 and r.id == q.id
    env.index.put_service(service_record(service("svc1", ip="10.0.0.111")))
    r = await run(env.udp, q)
    assert r.answer[0][0].address == "10.0.0.111"


BAD = [
    (b"", None),
    (b"\x12", None),
    (b"\x12\x34\x01\x00\x00\x01", None),  # shorter than a header: dropped
    (b"\x12\x34\x81\x80" + b"\x00" * 8, None),  # a response: never answered
    (b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00", dns.rcode.FORMERR),  # question missing
    (b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\x3fabc", dns.rcode.FORMERR),  # truncated label
    (b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\xc0\x0c\x00\x01\x00\x01", dns.rcode.FORMERR),  # loop
    (b"\x12\x34\x01\x00\x00\x02\x00\x00\x00\x00\x00\x00" + b"\x00\x00\x01\x00\x01" * 2, dns.rcode.FORMERR),
    (b"\x12\x34\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00", dns.rcode.FORMERR),  # no question
    (b"\x12\x34\x29\x00\x00\x01\x00\x00\x00\x00\x00\x00\x00\x00\x06\x00\x01", dns.rcode.NOTIMP),  # UPDATE
    (b"\x12\x34\x11\x00\x00\x01\x00\x00\x00\x00\x00\x00\x00\x00\x01\x00\x01", dns.rcode.NOTIMP),  # STATUS
    (b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00" + b"\x3f" + b"a" * 63 + b"\x3f" + b"a" * 63
     + b"\x3f" + b"a" * 63 + b"\x3f" + b"a" * 63 + b"\x00\x00\x01\x00\x01", dns.rcode.FORMERR),  # name > 255
]


@pytest.mark.parametrize("data,rcode", BAD, ids=[f"bad{i}" for i in range(len(BAD))])
async def test_malformed_packets(env: Env, data: bytes, rcode: int | None) -> None:
    """Malformed or unsupported packets get FORMERR/NOTIMP or are dropped; the server lives on."""
    reply = await run(env.raw_udp, data)
    if rcode is None:
        assert reply is None
    else:
        assert reply is not None and reply[:2] == b"\x12\x34" and reply[2] & 0x80 and reply[3] & 0xF == rcode
    r = await run(env.udp, dns.message.make_query("svc1.default.svc.cluster.local.", "A"))
    assert r.rcode() == dns.rcode.NOERROR


@pytest.mark.parametrize("qtype,qclass,rcode", [
    ("AXFR", "IN", dns.rcode.REFUSED), ("IXFR", "IN", dns.rcode.REFUSED), ("A", "CH", dns.rcode.REFUSED),
    ("TXT", "HS", dns.rcode.REFUSED), ("TYPE65280", "IN", dns.rcode.NOERROR), ("A", "CLASS999", dns.rcode.REFUSED),
])
async def test_unsupported_types_and_classes(env: Env, qtype: str, qclass: str, rcode: int) -> None:
    """Zone transfers and other classes are refused; an unknown type in the zone is plain NODATA."""
    q = dns.message.make_query("svc1.default.svc.cluster.local.", qtype, qclass)
    r = await run(env.udp, q)
    assert r.rcode() == rcode and not r.answer


async def test_edns_version_other_than_zero_is_badvers(env: Env) -> None:
    """RFC 6891: an EDNS version we do not speak gets BADVERS."""
    q = dns.message.make_query("svc1.default.svc.cluster.local.", "A", use_edns=1)
    r = await run(env.udp, q)
    assert r.rcode() == dns.rcode.BADVERS


async def test_tcp_zero_length_frame_and_garbage_close_connection(env: Env) -> None:
    """A zero-length frame closes the connection; the server keeps answering others."""
    reader, writer = await asyncio.open_connection("127.0.0.1", env.port)
    writer.write(b"\x00\x00")
    await writer.drain()
    assert await asyncio.wait_for(reader.read(), 2) == b""
    writer.close()
    reader, writer = await asyncio.open_connection("127.0.0.1", env.port)
    writer.write(b"\x00\x05hello")  # a frame too short to be a query: dropped, connection closed
    assert await asyncio.wait_for(reader.read(), 2) == b""
    writer.close()
    reader, writer = await asyncio.open_connection("127.0.0.1", env.port)
    writer.write(b"\x00\x40" + b"\x01")  # a frame cut short, then EOF
    writer.write_eof()
    assert await asyncio.wait_for(reader.read(), 2) == b""
    writer.close()
    q = dns.message.make_query("svc1.default.svc.cluster.local.", "A")
    r = await run(lambda: dns.query.tcp(q, "127.0.0.1", port=env.port, timeout=2))
    assert r.rcode() == dns.rcode.NOERROR


async def test_tcp_pipelined_queries_answered_in_order(env: Env) -> None:
    """Several questions on one connection are all answered (RFC 7766)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", env.port)
    names = ["svc1.default.svc.cluster.local.", "nope.default.svc.cluster.local.", "svc2.other.svc.cluster.local."]
    for n in names:
        wire = dns.message.make_query(n, "A").to_wire()
        writer.write(struct.pack("!H", len(wire)) + wire)
    rcodes = []
    for _ in names:
        (size,) = struct.unpack("!H", await reader.readexactly(2))
        rcodes.append(dns.message.from_wire(await reader.readexactly(size)).rcode())
    assert rcodes == [dns.rcode.NOERROR, dns.rcode.NXDOMAIN, dns.rcode.NOERROR]
    writer.close()


async def test_flood_of_garbage_and_queries(env: Env) -> None:
    """Thousands of packets, half garbage, in a burst: no crash, and answers still come."""
    good = dns.message.make_query("svc1.default.svc.cluster.local.", "A").to_wire()

    def flood() -> None:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            for i in range(5000):
                s.sendto(good if i % 2 else bytes([i % 256]) * (i % 700), ("127.0.0.1", env.port))

    await run(flood)
    r = await run(env.udp, dns.message.make_query("svc1.default.svc.cluster.local.", "A"))
    assert r.rcode() == dns.rcode.NOERROR


async def test_forwarding_and_external_name_chase(env: Env) -> None:
    """Names outside the zone are relayed upstream; an ExternalName gets its CNAME plus the target's A."""
    r = await run(env.udp, dns.message.make_query("example.org.", "A"))
    assert r.rcode() == dns.rcode.NOERROR and r.answer[0][0].address == "192.0.2.1"
    assert not r.flags & dns.flags.AA
    r = await run(env.udp, dns.message.make_query("ext.default.svc.cluster.local.", "A"))
    assert [rrset.rdtype for rrset in r.answer] == [dns.rdatatype.CNAME, dns.rdatatype.A]
    assert r.answer[1].name.to_text() == "example.com." and r.answer[1][0].address == "192.0.2.1"
    assert env.upstream.queries == ["example.org.", "example.com."]


async def test_dead_upstream_servfail_fast_and_cname_still_answered() -> None:
    """When no upstream answers: SERVFAIL within the budget; ExternalName still gets its CNAME."""
    e, closers = await _env(True)
    try:
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        r = await run(e.udp, dns.message.make_query("example.org.", "A"))
        assert r.rcode() == dns.rcode.SERVFAIL and loop.time() - t0 < 1.5
        r = await run(e.udp, dns.message.make_query("ext.default.svc.cluster.local.", "A"))
        assert r.rcode() == dns.rcode.NOERROR and [rrset.rdtype for rrset in r.answer] == [dns.rdatatype.CNAME]
    finally:
        for c in closers:
            c.close()  # type: ignore[attr-defined]


async def test_refused_upstream_fails_over_at_once() -> None:
    """A closed upstream port (ICMP unreachable) is skipped immediately, not after a timeout."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        dead = s.getsockname()
    fwd = Forwarder([dead], timeout=5)
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    assert await fwd.forward(dns.message.make_query("example.org.", "A").to_wire()) is None
    assert loop.time() - t0 < 1
    assert await Forwarder([]).forward(b"x" * 20) is None
