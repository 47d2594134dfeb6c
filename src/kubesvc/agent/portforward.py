"""``kubectl port-forward`` on the node agent: kubectl's SPDY session, ended here, and the pod's own ports.

The apiserver passes kubectl's SPDY/3.1 bytes through unchanged (from a
websocket or a plain ``Upgrade: SPDY/3.1`` connection) to
``/portForward/{ns}/{pod}`` here, as binary websocket frames; this module's
frames go back the same way.  Before them the agent sends one text frame to
the apiserver only: ``{"ok": true}``, or ``{"code": 400, "message": ...}``
when the pod has no network here, so the apiserver can refuse kubectl with a
plain Status.

Per local connection kubectl opens two streams with headers ``streamtype``
(``error`` then ``data``), ``port`` and ``requestid``; each is answered with
SYN_REPLY.  The data stream carries the connection's bytes both ways, FIN
closes a direction, and the error stream gets a message if the port cannot
be reached; both are FINished when the pod's side of the connection ends.
RST_STREAM (kubectl, at the end) drops a stream.

As the kubelet's runtime does, the connection is made to the port on the
pod's loopback, from inside the pod's network namespace (IPv4, then IPv6),
so a server bound to 127.0.0.1 in the pod is reachable.  The socket is made
in a worker thread that joins the namespace (a per-thread setting) and goes
back; connecting and the bytes then run on the event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import socket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from aiohttp import WSMsgType, web

from kubesvc.agent import nsutil
from kubesvc.agent.agentauth import unauthorized
from kubesvc.api import spdy

if TYPE_CHECKING:
    from kubesvc.agent.podworker import PodWorker

log = logging.getLogger("kubesvc.agent.portforward")
FindPod = Callable[[str, str], "PodWorker | None"]
PROTOCOL = "SPDY/3.1+portforward.k8s.io"
CONNECT_TIMEOUT = 10.0

Streams = tuple[asyncio.StreamReader, asyncio.StreamWriter]
Connect = Callable[[int], Awaitable[Streams]]


class ForwardError(Exception):
    """The port could not be reached; the message is what kubectl shows."""


# ---------------------------------------------------------------- the pod's loopback

def _socket_in(netns_path: str, family: int) -> socket.socket:
    """A TCP socket of the namespace at ``netns_path`` (made by this worker thread, which then goes back)."""
    fd = os.open(netns_path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        with nsutil.in_netns(fd):
            sock = socket.socket(family, socket.SOCK_STREAM)
    finally:
        os.close(fd)
    sock.setblocking(False)
    return sock


def _go_error(e: BaseException) -> str:
    """An OS error as Go prints it (``connection refused``), for messages shaped like the runtime's."""
    if isinstance(e, TimeoutError):
        return "i/o timeout"
    if isinstance(e, OSError) and (e.errno or e.strerror):
        text = os.strerror(e.errno) if e.errno else str(e.strerror)  # not the loop's "Connect call failed (...)"
        return text[:1].lower() + text[1:]
    return str(e) or type(e).__name__


async def connect_in_netns(netns: str, port: int, timeout: float = CONNECT_TIMEOUT) -> Streams:
    """A connection to ``port`` on the loopback of network namespace ``netns``: 127.0.0.1, then [::1]."""
    path = str(nsutil.netns_path(netns))
    loop = asyncio.get_running_loop()
    failures = []
    for family, label, host in ((socket.AF_INET, "IPv4: dial tcp4", "127.0.0.1"),
                                (socket.AF_INET6, "IPv6 dial tcp6", "::1")):
        addr = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        try:
            sock = await asyncio.to_thread(_socket_in, path, family)
        except OSError as e:
            failures.append(f"{label} {addr}: socket: {_go_error(e)}")
            continue
        try:
            await asyncio.wait_for(loop.sock_connect(sock, (host, port)), timeout)
        except (OSError, TimeoutError) as e:
            sock.close()
            failures.append(f"{label} {addr}: connect: {_go_error(e)}")
            continue
        return await asyncio.open_connection(sock=sock)
    raise ForwardError(f'failed to connect to localhost:{port} inside namespace "{netns}", ' + " ".join(failures))


# ---------------------------------------------------------------- the SPDY session

@dataclass
class _Pair:
    """One forwarded connection: kubectl's error and data streams for a requestid."""

    port: int
    error_sid: int | None = None
    data_sid: int | None = None
    inbox: asyncio.Queue[bytes | None] = field(default_factory=asyncio.Queue)
    task: asyncio.Task[None] | None = None


class PortForwardSession(spdy.Session):
    """kubectl's port-forward streams; ``connect(port)`` opens the connection to the pod's port."""

    def __init__(self, write: Callable[[bytes], Awaitable[None]], connect: Connect,
                 describe_error: Callable[[int, BaseException], str]) -> None:
        super().__init__(write)
        self._connect = connect
        self._describe_error = describe_error
        self._pairs: dict[str, _Pair] = {}
        self._by_sid: dict[int, _Pair] = {}

    def on_syn_stream(self, sid: int, headers: spdy.Headers, fin: bool) -> None:
        stype, rid = headers.get("streamtype", ""), headers.get("requestid", "")
        try:
            port = int(headers.get("port", ""))
        except ValueError:
            port = 0
        if stype not in ("error", "data") or not 0 < port < 65536:
            self.rst(sid, spdy.RST_PROTOCOL_ERROR)
            return
        pair = self._pairs.setdefault(rid, _Pair(port))
        self._by_sid[sid] = pair
        self.reply(sid)
        if stype == "error":
            pair.error_sid = sid
        else:
            pair.data_sid = sid
            pair.task = asyncio.create_task(self._forward(rid, pair))

    def on_data(self, sid: int, payload: bytes, fin: bool) -> None:
        pair = self._by_sid.get(sid)
        if pair is None or sid != pair.data_sid:
            return  # the error stream's (empty) FIN, or a stream already gone
        if payload:
            pair.inbox.put_nowait(payload)
        if fin:
            pair.inbox.put_nowait(None)

    def on_rst(self, sid: int) -> None:
        pair = self._by_sid.pop(sid, None)
        if pair is not None and pair.task is not None and sid == pair.data_sid:
            pair.task.cancel()

    async def _forward(self, rid: str, pair: _Pair) -> None:
        assert pair.data_sid is not None
        try:
            try:
                reader, writer = await asyncio.wait_for(self._connect(pair.port), CONNECT_TIMEOUT + 5)
            except (TimeoutError, OSError, ForwardError) as e:
                if pair.error_sid is not None:
                    self.data(pair.error_sid, self._describe_error(pair.port, e).encode())
                return
            up = asyncio.create_task(self._upstream(pair, writer))
            try:
                while chunk := await reader.read(spdy.MAX_DATA):
                    self.data(pair.data_sid, chunk)
            except OSError:
                pass
            finally:
                up.cancel()
                writer.close()
        finally:
            if pair.data_sid in self._by_sid:
                self.data(pair.data_sid, b"", fin=True)
            if pair.error_sid is not None and pair.error_sid in self._by_sid:
                self.data(pair.error_sid, b"", fin=True)
            self._pairs.pop(rid, None)

    @staticmethod
    async def _upstream(pair: _Pair, writer: asyncio.StreamWriter) -> None:
        """kubectl's bytes to the pod; FIN half-closes the connection."""
        with contextlib.suppress(OSError):
            while (chunk := await pair.inbox.get()) is not None:
                writer.write(chunk)
                await writer.drain()
            if writer.can_write_eof():
                writer.write_eof()

    async def close(self) -> None:
        tasks = [p.task for p in self._pairs.values() if p.task is not None]
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await self.drain(timeout=1.0)


# ---------------------------------------------------------------- the agent's endpoint

def make_portforward_handler(find: FindPod, token: str) -> Callable[[web.Request], Any]:
    async def portforward_handler(request: web.Request) -> web.StreamResponse:
        if (denied := unauthorized(request, token)) is not None:
            return denied
        ns, name = request.match_info["ns"], request.match_info["pod"]
        ws = web.WebSocketResponse(protocols=(PROTOCOL,), max_msg_size=0)
        await ws.prepare(request)
        w = find(ns, name)
        if w is None or not w.sandbox_ready or not os.path.exists(nsutil.netns_path(w.netns)):
            await ws.send_str(json.dumps({"code": 400, "message": f'pod "{name}" has no network on this node'}))
            await ws.close()
            return ws
        await ws.send_str(json.dumps({"ok": True}))
        netns, uid = w.netns, w.uid

        def describe(port: int, e: BaseException) -> str:
            return (f"error forwarding port {port} to pod {name}, uid {uid}: failed to execute portforward in "
                    f'network namespace "{nsutil.netns_path(netns)}": {str(e) or _go_error(e)}')

        session = PortForwardSession(ws.send_bytes, lambda port: connect_in_netns(netns, port), describe)
        try:
            async for msg in ws:
                if msg.type == WSMsgType.BINARY:
                    await session.feed(msg.data)
                if session.closed:
                    break
        finally:
            await session.close()
            await ws.close()
        log.info("port-forward to %s/%s ended", ns, name)
        return ws

    return portforward_handler
