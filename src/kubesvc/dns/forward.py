"""Relaying names outside the cluster zone to the host's resolvers.

Each forwarded question gets its own UDP socket (a fresh source port) and a
fresh message ID, so answers cannot be confused or easily spoofed; the
client's ID is put back on the way out.  Upstreams are tried in order, each
for its share of a short overall budget.  A refused port fails over at once
(ICMP), a silent one after its share; when none answers the caller replies
SERVFAIL.  A cap on questions in flight keeps a flood of unknown names from
exhausting sockets: beyond it, SERVFAIL at once.
"""

from __future__ import annotations

import asyncio
import logging
import random
import struct
from pathlib import Path

log = logging.getLogger(__name__)

Addr = tuple[str, int]


def resolv_conf_upstreams(path: str | Path = "/etc/resolv.conf", exclude: set[Addr] | None = None) -> list[Addr]:
    """The ``nameserver`` lines of resolv.conf, minus our own addresses (no forwarding loops)."""
    out: list[Addr] = []
    try:
        text = Path(path).read_text()
    except OSError:
        return out
    for line in text.splitlines():
        parts = line.split()
        if len(parts) >= 2 and parts[0] == "nameserver":
            addr = (parts[1].split("%")[0], 53)
            if addr not in (exclude or set()) and addr not in out:
                out.append(addr)
    return out


def parse_addr(text: str, default_port: int = 53) -> Addr:
    """``1.2.3.4``, ``1.2.3.4:5353``, ``[::1]:53`` or ``::1``."""
    if text.startswith("["):
        host, _, port = text[1:].partition("]")
        return host, int(port.lstrip(":") or default_port)
    if text.count(":") == 1:
        host, port = text.split(":")
        return host, int(port)
    return text, default_port


class _Once(asyncio.DatagramProtocol):
    def __init__(self, fut: asyncio.Future[bytes], ident: int) -> None:
        self.fut = fut
        self.ident = ident

    def datagram_received(self, data: bytes, addr: object) -> None:
        if len(data) >= 12 and struct.unpack_from("!H", data)[0] == self.ident and not self.fut.done():
            self.fut.set_result(data)

    def error_received(self, exc: Exception) -> None:
        if not self.fut.done():
            self.fut.set_exception(exc)


class Forwarder:
    """Sends raw queries upstream and returns raw answers (or None when none answered)."""

    def __init__(self, upstreams: list[Addr], *, timeout: float = 2.0, max_in_flight: int = 1000) -> None:
        self.upstreams = upstreams
        self.timeout = timeout
        self.max_in_flight = max_in_flight
        self.in_flight = 0

    async def forward(self, query: bytes, *, tcp: bool = False) -> bytes | None:
        if not self.upstreams or self.in_flight >= self.max_in_flight or len(query) < 12:
            return None
        self.in_flight += 1
        try:
            share = max(0.3, self.timeout / len(self.upstreams))
            for addr in self.upstreams:
                ident = random.getrandbits(16)
                wire = struct.pack("!H", ident) + query[2:]
                try:
                    reply = await asyncio.wait_for(self._udp(addr, wire, ident), share)
                    if tcp and len(reply) > 2 and reply[2] & 0x02:  # TC: the client can take it all
                        reply = await asyncio.wait_for(self._tcp(addr, wire), share)
                except (OSError, TimeoutError, asyncio.IncompleteReadError) as e:
                    log.debug("upstream %s:%d: %s", addr[0], addr[1], e or type(e).__name__)
                    continue
                return query[:2] + reply[2:]
            return None
        finally:
            self.in_flight -= 1

    async def _udp(self, addr: Addr, wire: bytes, ident: int) -> bytes:
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[bytes] = loop.create_future()
        transport, _ = await loop.create_datagram_endpoint(lambda: _Once(fut, ident), remote_addr=addr)
        try:
            transport.sendto(wire)
            return await fut
        finally:
            transport.close()

    async def _tcp(self, addr: Addr, wire: bytes) -> bytes:
        reader, writer = await asyncio.open_connection(*addr)
        try:
            writer.write(struct.pack("!H", len(wire)) + wire)
            await writer.drain()
            (size,) = struct.unpack("!H", await reader.readexactly(2))
            return await reader.readexactly(size)
        finally:
            writer.close()
