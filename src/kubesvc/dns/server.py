"""The DNS transports: UDP and TCP on asyncio, in one process, never blocked.

Answers for the cluster zone are cached in encoded form, keyed on the query
bytes after the message ID; a repeated question costs one dict lookup and
one ``sendto``.  The cache is dropped whole on any change to the index, so
it can never serve a stale answer, and it is bounded.  Questions that need
upstream run as tasks, bounded in number; a flood beyond the bound is
dropped, which the client sees as a timeout, rather than queued without end.

TCP follows RFC 7766: two-octet length-prefixed frames, several questions
per connection answered in order, an idle timeout, a cap on connections;
a zero-length frame or a malformed prefix closes the connection.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import struct
import time
from typing import Any

from .metrics import Stats
from .resolver import Reply, Resolver, rcode_of

log = logging.getLogger(__name__)

MAX_CACHE = 50_000
MAX_PENDING = 2_000
UDP_BATCH = 64  # datagrams read per wake-up; then other work on the loop gets its turn
UDP_MAX_QUERY = 4096  # bytes read per datagram; a query is never near this (one name, perhaps an OPT)
MAX_TCP_CONNECTIONS = 512
TCP_IDLE = 10.0


class AnswerCache:
    """Encoded answers by query bytes (minus the ID); cleared whole on any index change."""

    def __init__(self, stats: Stats, max_entries: int = MAX_CACHE) -> None:
        self.entries: dict[bytes, tuple[bytes, tuple[str, str], tuple[str, str]]] = {}
        self.stats = stats
        self.max_entries = max_entries

    def clear(self) -> None:
        self.entries.clear()
        self.stats.cache_size = 0

    def put(self, query: bytes, reply: bytes, qtype: str, rcode: str) -> None:
        if len(self.entries) >= self.max_entries:
            self.entries.clear()
        self.entries[query[2:]] = (reply[2:], *Stats.keys("udp", qtype, rcode))
        self.stats.cache_size = len(self.entries)


class UdpServer:
    """UDP on a socket of its own, drained in batches on each wake-up of the loop.

    asyncio's datagram transport reads one datagram per turn of the event loop,
    so every query pays a full ``epoll`` round, and a burst waits behind as many
    rounds as it has queries; that queueing was most of the tail at load.  Here
    one readiness callback reads up to :data:`UDP_BATCH` datagrams and answers
    each at once.  Replies are sent straight from the socket; when its (large)
    send buffer is full the reply is dropped, as any UDP packet may be, and the
    client repeats the question.
    """

    def __init__(self, resolver: Resolver, cache: AnswerCache, stats: Stats, sock: socket.socket) -> None:
        self.resolver = resolver
        self.cache = cache.entries
        self.answer_cache = cache
        self.stats = stats
        self.sock = sock
        self.pending: set[asyncio.Task[None]] = set()
        self._loop = asyncio.get_running_loop()
        self._closed = False
        self._loop.add_reader(sock.fileno(), self._readable)

    def is_closing(self) -> bool:
        return self._closed

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._loop.remove_reader(self.sock.fileno())
        for task in self.pending:
            task.cancel()
        self.sock.close()

    def _readable(self) -> None:
        recvfrom, cache, sendto = self.sock.recvfrom, self.cache, self.sock.sendto
        stats, clock = self.stats, time.perf_counter
        for _ in range(UDP_BATCH):
            try:
                data, addr = recvfrom(UDP_MAX_QUERY)
            except (BlockingIOError, InterruptedError):
                return
            except OSError as e:  # e.g. an ICMP error queued on the socket: skip it, keep reading
                log.debug("dns: udp receive error %s", e)
                continue
            t0 = clock()
            hit = cache.get(data[2:])
            if hit is not None:  # the hot path: one dict lookup, one send
                try:
                    sendto(data[:2] + hit[0], addr)
                except OSError:
                    stats.drop("send-failed")
                    continue
                stats.cache_hits += 1
                stats.observe_keys(hit[1], hit[2], clock() - t0)
            else:
                self.datagram_received(data, addr, t0)

    def datagram_received(self, data: bytes, addr: Any, t0: float | None = None) -> None:
        t0 = time.perf_counter() if t0 is None else t0
        try:
            reply = self.resolver.resolve(data, tcp=False)
        except Exception:  # a bug must cost one answer, never the server
            log.exception("dns: failed to answer a UDP query")
            self.stats.drop("error")
            return
        if reply.later is not None:
            self._defer(reply, addr, t0)
            return
        self._send(data, reply, addr, t0)

    def _sendto(self, wire: bytes, addr: Any) -> bool:
        if self._closed:
            return False
        try:
            self.sock.sendto(wire, addr)
        except OSError:  # send buffer full (BlockingIOError) or the client's address is gone
            self.stats.drop("send-failed")
            return False
        return True

    def _send(self, data: bytes, reply: Reply, addr: Any, t0: float) -> None:
        if reply.wire is None:
            self.stats.drop("malformed")
            return
        self._sendto(reply.wire, addr)
        rcode = rcode_of(reply.wire)
        if reply.cacheable:
            self.answer_cache.put(data, reply.wire, reply.qtype, rcode)
        self.stats.observe("udp", reply.qtype, rcode, time.perf_counter() - t0)

    def _defer(self, reply: Reply, addr: Any, t0: float) -> None:
        if len(self.pending) >= MAX_PENDING:
            self.stats.drop("overload")
            if asyncio.iscoroutine(reply.later):
                reply.later.close()
            return

        async def finish() -> None:
            try:
                out = await reply.later  # type: ignore[misc]
            except Exception:
                log.exception("dns: failed to answer a forwarded UDP query")
                self.stats.drop("error")
                return
            if out is not None:
                self._sendto(out, addr)
            self.stats.observe("udp", reply.qtype, rcode_of(out), time.perf_counter() - t0)

        task = asyncio.ensure_future(finish())
        self.pending.add(task)
        task.add_done_callback(self.pending.discard)


class TcpServer:
    def __init__(self, resolver: Resolver, stats: Stats) -> None:
        self.resolver = resolver
        self.stats = stats
        self.connections: set[asyncio.StreamWriter] = set()

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if len(self.connections) >= MAX_TCP_CONNECTIONS:
            self.stats.drop("tcp-connections")
            writer.close()
            return
        self.connections.add(writer)
        try:
            while True:
                head = await asyncio.wait_for(reader.readexactly(2), TCP_IDLE)
                (size,) = struct.unpack("!H", head)
                if size == 0:
                    self.stats.drop("tcp-empty-frame")
                    return
                data = await asyncio.wait_for(reader.readexactly(size), TCP_IDLE)
                t0 = time.perf_counter()
                out, qtype = await self._answer(data)
                if out is None:
                    self.stats.drop("malformed")
                    return
                writer.write(struct.pack("!H", len(out)) + out)
                await writer.drain()
                self.stats.observe("tcp", qtype, rcode_of(out), time.perf_counter() - t0)
        except (asyncio.IncompleteReadError, TimeoutError, ConnectionError, OSError):
            pass
        finally:
            self.connections.discard(writer)
            writer.close()

    async def _answer(self, data: bytes) -> tuple[bytes | None, str]:
        try:
            reply = self.resolver.resolve(data, tcp=True)
            out = await reply.later if reply.later is not None else reply.wire
        except Exception:
            log.exception("dns: failed to answer a TCP query")
            return None, "other"
        return out, reply.qtype


async def bind(resolver: Resolver, answers: AnswerCache, stats: Stats, tcp: TcpServer, host: str, port: int,
               reuse_port: bool = False) -> tuple[UdpServer, asyncio.Server, int]:
    """Serve UDP and TCP on ``host:port`` (port 0: a free port, the same number for both)."""
    for attempt in range(20):
        sock = udp_socket(host, port, reuse_port)
        bound = sock.getsockname()[1]
        transport = UdpServer(resolver, answers, stats, sock)
        try:
            server = await asyncio.start_server(tcp.handle, host, bound, reuse_port=reuse_port or None, backlog=512)
        except OSError:
            transport.close()
            if port or attempt == 19:  # a fixed port is taken; with port 0, try another number
                raise
            continue
        except BaseException:
            transport.close()
            raise
        return transport, server, bound
    raise AssertionError("unreachable")


def udp_socket(host: str, port: int, reuse_port: bool = False) -> socket.socket:
    """A bound UDP socket with a large receive buffer (bursts queue instead of dropping)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_DGRAM)
    if reuse_port:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    for opt in (socket.SO_RCVBUF, socket.SO_SNDBUF):
        try:
            sock.setsockopt(socket.SOL_SOCKET, opt, 4 << 20)
        except OSError:
            pass
    sock.bind((host, port))
    sock.setblocking(False)
    return sock
