"""SPDY/3.1 framing and header compression (kubesvc.api.spdy), checked against bytes kubectl really sent."""

from __future__ import annotations

import asyncio
import zlib

import pytest

from kubesvc.api import spdy

# The first frame kubectl 1.32.4 sent after ``101 Switching Protocols`` on a plain SPDY
# port-forward (KUBECTL_PORT_FORWARD_WEBSOCKETS=false), captured off the wire: the
# SYN_STREAM of a connection's error stream, its headers compressed with the SPDY/3 dictionary.
KUBECTL_SYN_STREAM = bytes.fromhex(
    "800300010000003d0000000100000000000078f9e3c6a7c202253a703a2b294a4dcc851625aca9a0808614cb45a024cc6461"
    "c0c0c0c0590489c44c50e2663400000000ffff")


def test_kubectl_syn_stream_decodes() -> None:
    frames = spdy.FrameReader().feed(KUBECTL_SYN_STREAM)
    assert len(frames) == 1
    f = frames[0]
    assert f.control and f.kind == spdy.SYN_STREAM and f.stream_id == 1 and f.flags == 0
    assert spdy.HeaderCodec().decode(f.payload[10:]) == {"streamtype": "error", "port": "80", "requestid": "0"}


def test_header_blocks_share_one_context_per_direction() -> None:
    sender, receiver = spdy.HeaderCodec(), spdy.HeaderCodec()
    blocks = [sender.encode({"streamType": "data", "port": str(p), "requestID": "7"}) for p in (80, 8080, 443)]
    # later blocks refer back to earlier ones: they only decode in order, with the same context
    assert [receiver.decode(b)["port"] for b in blocks] == ["80", "8080", "443"]
    assert receiver.decode(sender.encode({})) == {}
    with pytest.raises(zlib.error):  # a fresh context cannot read a later block
        spdy.HeaderCodec().decode(blocks[2])


def test_frames_split_anywhere_come_out_whole() -> None:
    codec = spdy.HeaderCodec()
    stream = (spdy.syn_stream_frame(codec, 1, {"streamtype": "error"})
              + spdy.data_frame(1, spdy.FLAG_FIN, b"x" * 1000)
              + spdy.control_frame(spdy.PING, 0, (5).to_bytes(4, "big"))
              + spdy.data_frame(3, 0, b""))
    whole = spdy.FrameReader().feed(stream)
    assert [(f.control, f.kind, f.flags) for f in whole] == [
        (True, spdy.SYN_STREAM, 0), (False, 1, spdy.FLAG_FIN), (True, spdy.PING, 0), (False, 3, 0)]
    for step in (1, 3, 7, 999):
        reader = spdy.FrameReader()
        got = [f for i in range(0, len(stream), step) for f in reader.feed(stream[i:i + step])]
        assert got == whole


def test_a_control_frame_of_another_version_is_refused() -> None:
    with pytest.raises(spdy.FrameError):
        spdy.FrameReader().feed(b"\x80\x02\x00\x01" + bytes(4))


class _Recorder(spdy.Session):
    def __init__(self) -> None:
        self.sent: list[bytes] = []

        async def write(b: bytes) -> None:
            self.sent.append(b)

        super().__init__(write)

    def frames(self) -> list[spdy.Frame]:
        return spdy.FrameReader().feed(b"".join(self.sent))


async def test_session_answers_ping_refuses_unknown_streams_and_stops_on_goaway() -> None:
    s = _Recorder()
    client = spdy.HeaderCodec()
    await s.feed(spdy.control_frame(spdy.PING, 0, (9).to_bytes(4, "big")))
    await s.feed(spdy.syn_stream_frame(client, 1, {"streamtype": "what"}))
    await s.feed(spdy.control_frame(spdy.GOAWAY, 0, bytes(8)))
    assert s.closed
    await s.drain()
    ping, rst = s.frames()
    assert ping.kind == spdy.PING and ping.payload == (9).to_bytes(4, "big")
    assert rst.kind == spdy.RST_STREAM and rst.stream_id == 1
    assert int.from_bytes(rst.payload[4:8], "big") == spdy.RST_REFUSED_STREAM


async def test_session_data_is_cut_to_max_data_with_fin_on_the_last() -> None:
    s = _Recorder()
    s.data(5, b"a" * (2 * spdy.MAX_DATA + 10), fin=True)
    s.data(7, b"", fin=True)
    await s.drain()
    frames = s.frames()
    assert [(f.kind, len(f.payload), f.flags) for f in frames] == [
        (5, spdy.MAX_DATA, 0), (5, spdy.MAX_DATA, 0), (5, 10, spdy.FLAG_FIN), (7, 0, spdy.FLAG_FIN)]


async def test_session_bytes_that_are_not_spdy_close_it() -> None:
    s = _Recorder()
    await s.feed(b"\x80\x02\x00\x01" + bytes(4))  # a SPDY/2 SYN_STREAM: not the SPDY kubectl speaks
    assert s.closed
    await asyncio.wait_for(s.drain(), 2)
