"""The plain SPDY upgrade (101, then the connection is SPDY's) and exec/attach streams as channel frames."""

from __future__ import annotations

import asyncio
import json

import pytest
from aiohttp import web

from kubesvc.api import errors, spdy
from kubesvc.apiserver import streaming_spdy as ss


def test_negotiate_takes_the_clients_first_supported_protocol() -> None:
    offered = ["v5.channel.k8s.io", "v4.channel.k8s.io", "v3.channel.k8s.io", "channel.k8s.io"]
    assert ss.negotiate(offered, ss.EXEC_PROTOCOLS) == "v4.channel.k8s.io"
    assert ss.negotiate(["portforward.k8s.io"], ss.PORTFORWARD_PROTOCOLS) == "portforward.k8s.io"
    with pytest.raises(errors.StatusError) as e:
        ss.negotiate(["v2.channel.k8s.io", "channel.k8s.io"], ss.EXEC_PROTOCOLS)
    assert e.value.code == 403
    assert e.value.message == ("unable to upgrade: unable to negotiate protocol: client supports "
                                         "[v2.channel.k8s.io channel.k8s.io], server supports [v4.channel.k8s.io]")


def test_expected_streams_follow_the_options() -> None:
    assert ss.expected_streams({"stdout": "true", "stderr": "true"}) == {"error", "stdout", "stderr"}
    assert ss.expected_streams({"stdin": "true", "stdout": "true", "stderr": "true", "tty": "true"}) == {
        "error", "stdin", "stdout", "resize"}  # a terminal has no separate stderr
    assert ss.expected_streams({"stdin": "true"}) == {"error", "stdin"}


def test_split_json_values_keeps_a_partial_value_for_later() -> None:
    values, rest = ss.split_json_values(b'{"Width":80,"Height":24}\n{"Width":100,')
    assert values == [{"Width": 80, "Height": 24}] and rest == b'{"Width":100,'
    values, rest = ss.split_json_values(rest + b'"Height":30}\n')
    assert values == [{"Width": 100, "Height": 30}] and rest == b""


class _Kubectl:
    """The client half of a SPDY session, as kubectl drives it (its own zlib context)."""

    def __init__(self) -> None:
        self.codec = spdy.HeaderCodec()
        self.reader = spdy.FrameReader()

    def open(self, sid: int, stype: str) -> bytes:
        return spdy.syn_stream_frame(self.codec, sid, {"streamtype": stype})


async def test_bridge_maps_streams_to_channels_both_ways() -> None:
    out: list[bytes] = []
    agent: list[bytes] = []

    async def write(b: bytes) -> None:
        out.append(b)

    bridge = ss.ChannelBridge(write, {"error", "stdin", "stdout", "resize"}, agent.append)
    k = _Kubectl()
    await bridge.feed(k.open(1, "error") + k.open(3, "stdin") + k.open(5, "stdout"))
    assert not bridge.ready.is_set()
    await bridge.feed(k.open(7, "resize"))
    assert bridge.ready.is_set()
    # stdin bytes, then its FIN (the v5 close of stdin); sizes split across frames
    await bridge.feed(spdy.data_frame(3, 0, b"hello") + spdy.data_frame(3, spdy.FLAG_FIN, b""))
    await bridge.feed(spdy.data_frame(7, 0, b'{"Width":80,"Hei') + spdy.data_frame(7, 0, b'ght":24}\n'))
    assert agent[0] == b"\x00hello" and agent[1] == b"\xff\x00"
    assert agent[2][0] == 4 and json.loads(agent[2][1:]) == {"Width": 80, "Height": 24}
    # the agent's stdout and error frames onto kubectl's streams; stderr has no stream (tty): dropped
    for frame in (b"\x01out", b"\x02err", b'\x03{"status":"Success"}'):
        bridge.from_agent(frame)
    bridge.finish()
    await bridge.drain()
    frames = k.reader.feed(b"".join(out))
    replies = [f.stream_id for f in frames if f.control and f.kind == spdy.SYN_REPLY]
    assert replies == [1, 3, 5, 7]
    data = [(f.kind, f.payload, f.flags) for f in frames if not f.control]
    assert data == [(5, b"out", 0), (1, b'{"status":"Success"}', 0), (5, b"", spdy.FLAG_FIN), (1, b"", spdy.FLAG_FIN)]


async def test_bridge_refuses_a_second_stream_of_a_type() -> None:
    out: list[bytes] = []

    async def write(b: bytes) -> None:
        out.append(b)

    bridge = ss.ChannelBridge(write, {"error"}, lambda b: None)
    k = _Kubectl()
    await bridge.feed(k.open(1, "error") + k.open(3, "error"))
    await bridge.drain()
    reply, rst = k.reader.feed(b"".join(out))
    assert reply.kind == spdy.SYN_REPLY and rst.kind == spdy.RST_STREAM and rst.stream_id == 3


async def test_upgrade_hands_every_byte_after_the_101_to_the_handler() -> None:
    """A real aiohttp server: the HTTP parser must not take SPDY bytes for a next request."""
    got: list[bytes] = []

    async def handler(request: web.Request) -> web.StreamResponse:
        conn = await ss.upgrade(request, "portforward.k8s.io")
        while (data := await conn.read()) is not None:
            got.append(data)
            await conn.write(b"echo:" + data)
            if b"END" in data:
                break
        return conn.response

    app = web.Application()
    app.router.add_post("/pf", handler)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"POST /pf HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nConnection: Upgrade\r\n"
                     b"Upgrade: SPDY/3.1\r\nX-Stream-Protocol-Version: portforward.k8s.io\r\n\r\n")
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
        assert head.startswith(b"HTTP/1.1 101 Switching Protocols\r\n")
        assert b"Upgrade: SPDY/3.1" in head and b"X-Stream-Protocol-Version: portforward.k8s.io" in head
        assert b"Transfer-Encoding" not in head
        frame = spdy.control_frame(spdy.PING, 0, (1).to_bytes(4, "big"))  # bytes no HTTP parser would accept
        writer.write(frame)
        assert await asyncio.wait_for(reader.readexactly(5 + len(frame)), 5) == b"echo:" + frame
        writer.write(b"GET / HTTP/1.1\r\n\r\nEND")
        echoed = await asyncio.wait_for(reader.read(), 5)  # then the server closes the connection
        assert echoed == b"echo:GET / HTTP/1.1\r\n\r\nEND"
        assert got == [frame, b"GET / HTTP/1.1\r\n\r\nEND"]
        writer.close()
    finally:
        await runner.cleanup()
