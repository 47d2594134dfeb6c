"""The plain SPDY/3.1 upgrade for ``exec``, ``attach`` and ``port-forward``, and SPDY exec streams as channels.

kubectl before 1.30 (exec, attach) and 1.31 (port-forward), and any kubectl
with ``KUBECTL_REMOTE_COMMAND_WEBSOCKETS=false`` or
``KUBECTL_PORT_FORWARD_WEBSOCKETS=false``, sends ``POST`` with
``Connection: Upgrade``, ``Upgrade: SPDY/3.1`` and one
``X-Stream-Protocol-Version`` header per protocol it speaks.  The answer is
``101 Switching Protocols`` naming the chosen one; from then on the TCP (TLS)
connection carries SPDY frames.  aiohttp only switches its parser for
websocket upgrades, so :func:`upgrade` installs its own reader as the
request's payload parser before the 101 goes out: every byte after it comes
to :class:`Upgraded` and none is taken for a next HTTP request.

For exec and attach (``v4.channel.k8s.io``) kubectl opens one stream per
stdio, told apart by the ``streamtype`` header (``error``, ``stdin``,
``stdout``, ``stderr``, ``resize``).  :class:`ChannelBridge` turns them into
the ``v5.channel.k8s.io`` frames the node agent speaks (stdin's FIN becomes
the v5 close of stdin; each JSON size on the resize stream one resize frame)
and the agent's stdout, stderr and error frames into data on those streams.
Port-forward's SPDY is ended by the node agent, so here it is only bytes.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from aiohttp import web

from kubesvc.api import errors, spdy

SPDY_31 = "SPDY/3.1"
EXEC_PROTOCOLS = ("v4.channel.k8s.io",)
PORTFORWARD_PROTOCOLS = ("portforward.k8s.io",)
STREAM_CHANNELS = {"stdin": 0, "stdout": 1, "stderr": 2, "error": 3, "resize": 4}
CLOSE = 255
HIGH_WATER, LOW_WATER = 1 << 20, 1 << 18


def is_upgrade(request: web.Request) -> bool:
    return (request.headers.get("Upgrade", "").lower() == SPDY_31.lower()
            and "upgrade" in request.headers.get("Connection", "").lower())


def offered(request: web.Request) -> list[str]:
    """The client's X-Stream-Protocol-Version values, in its order of preference."""
    return [p.strip() for h in request.headers.getall("X-Stream-Protocol-Version", []) for p in h.split(",")
            if p.strip()]


def negotiate(client: list[str], server: tuple[str, ...]) -> str:
    """The client's first protocol the server speaks; none in common is a 403, as upstream's handshake."""
    chosen = next((p for p in client if p in server), None)
    if chosen is None:
        raise errors.forbidden_error(f"unable to upgrade: unable to negotiate protocol: client supports "
                                     f"[{' '.join(client)}], server supports [{' '.join(server)}]")
    return chosen


def expected_streams(query: Any) -> set[str]:
    """The streams kubectl opens for these exec/attach options (tty: no stderr, a resize stream)."""
    def on(k: str) -> bool:
        return str(query.get(k, "")) in ("true", "1")
    tty = on("tty")
    out = {"error"}
    out |= {"stdin"} if on("stdin") else set()
    out |= {"stdout"} if on("stdout") else set()
    out |= {"stderr"} if on("stderr") and not tty else set()
    out |= {"resize"} if tty else set()
    return out


def split_json_values(buf: bytes) -> tuple[list[Any], bytes]:
    """The whole JSON values at the start of ``buf`` (a stream of them, as Go's encoder writes), and the rest."""
    text = buf.decode(errors="replace")
    decoder = json.JSONDecoder()
    values: list[Any] = []
    pos = 0
    while True:
        while pos < len(text) and text[pos].isspace():
            pos += 1
        if pos >= len(text):
            return values, b""
        try:
            value, pos = decoder.raw_decode(text, pos)
        except json.JSONDecodeError:
            return values, text[pos:].encode()
        values.append(value)


class Upgraded:
    """The connection after the 101: bytes in (:meth:`read`, None at the end) and out (:meth:`write`).

    It is the request's payload parser (``feed_data``/``feed_eof`` are what
    aiohttp calls), and pauses the transport while more than HIGH_WATER bytes
    wait to be read.
    """

    def __init__(self, request: web.Request) -> None:
        self._transport = request.transport
        self._queue: asyncio.Queue[bytes | None] = asyncio.Queue()
        self._buffered = 0
        self._paused = False
        self._resp: web.StreamResponse | None = None

    def feed_data(self, data: bytes) -> tuple[bool, bytes]:
        self._queue.put_nowait(bytes(data))
        self._buffered += len(data)
        if self._buffered > HIGH_WATER and not self._paused and self._transport is not None:
            self._paused = True
            self._transport.pause_reading()
        return False, b""

    def feed_eof(self) -> None:
        self._queue.put_nowait(None)

    async def read(self) -> bytes | None:
        data = await self._queue.get()
        if data is None:
            self._queue.put_nowait(None)  # every later read sees the end too
            return None
        self._buffered -= len(data)
        if self._paused and self._buffered < LOW_WATER and self._transport is not None:
            self._paused = False
            self._transport.resume_reading()
        return data

    @property
    def response(self) -> web.StreamResponse:
        """The 101 response, which the handler returns."""
        assert self._resp is not None
        return self._resp

    async def write(self, data: bytes) -> None:
        await self.response.write(data)


async def upgrade(request: web.Request, protocol: str) -> Upgraded:
    """Answer 101 for ``protocol`` and take the connection over."""
    if request.body_exists:
        raise errors.bad_request("an upgrade request must not have a body")
    conn = Upgraded(request)
    resp = web.StreamResponse(status=101, reason="Switching Protocols", headers={
        "Connection": "Upgrade", "Upgrade": SPDY_31, "X-Stream-Protocol-Version": protocol})
    resp.force_close()
    request.protocol.set_parser(conn)  # type: ignore[arg-type]  # feed_data/feed_eof is all it uses
    await resp.prepare(request)
    conn._resp = resp
    return conn


class ChannelBridge(spdy.Session):
    """kubectl's SPDY exec/attach streams on one side, the agent's v5 channel frames on the other.

    ``to_agent`` takes each frame for the agent.  ``ready`` is set once every
    stream in ``expected`` has been opened (the agent's output is held back
    until then, so none of it is lost).
    """

    def __init__(self, write: Any, expected: set[str], to_agent: Any) -> None:
        super().__init__(write)
        self.expected = expected
        self.streams: dict[str, int] = {}
        self._types: dict[int, str] = {}
        self._to_agent = to_agent
        self._resize = b""
        self.ready = asyncio.Event()

    def on_syn_stream(self, sid: int, headers: spdy.Headers, fin: bool) -> None:
        stype = headers.get("streamtype", "")
        if stype not in STREAM_CHANNELS or stype in self.streams:
            self.rst(sid, spdy.RST_PROTOCOL_ERROR)
            return
        self.streams[stype] = sid
        self._types[sid] = stype
        self.reply(sid)
        if self.expected <= self.streams.keys():
            self.ready.set()
        if fin:
            self.on_data(sid, b"", True)

    def on_data(self, sid: int, payload: bytes, fin: bool) -> None:
        stype = self._types.get(sid)
        if stype == "stdin":
            if payload:
                self._to_agent(bytes([STREAM_CHANNELS["stdin"]]) + payload)
            if fin:
                self._to_agent(bytes([CLOSE, STREAM_CHANNELS["stdin"]]))
        elif stype == "resize":
            sizes, self._resize = split_json_values(self._resize + payload)
            for size in sizes:
                if isinstance(size, dict):
                    self._to_agent(bytes([STREAM_CHANNELS["resize"]]) + json.dumps(size).encode())

    def on_rst(self, sid: int) -> None:
        stype = self._types.pop(sid, None)
        if stype is not None:
            self.streams.pop(stype, None)
        if stype == "stdin":
            self._to_agent(bytes([CLOSE, STREAM_CHANNELS["stdin"]]))

    def from_agent(self, frame: bytes) -> None:
        """One agent frame: stdout, stderr or error data onto kubectl's stream of that type (if it opened one)."""
        if not frame:
            return
        stype = {1: "stdout", 2: "stderr", 3: "error"}.get(frame[0])
        sid = self.streams.get(stype) if stype else None
        if sid is not None and len(frame) > 1:
            self.data(sid, frame[1:])

    def finish(self) -> None:
        """The command or attach is over: FIN every stream kubectl reads (the error stream last)."""
        for stype in ("stdout", "stderr", "error"):
            sid = self.streams.get(stype)
            if sid is not None:
                self.data(sid, b"", fin=True)
