"""Port-forward's SPDY session against a real local server, and a container's stdin FIFO."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

from kubesvc.agent import containerstdin
from kubesvc.agent.portforward import ForwardError, PortForwardSession, _go_error
from kubesvc.api import spdy


class _Client:
    """kubectl's side of a port-forward session."""

    def __init__(self) -> None:
        self.codec = spdy.HeaderCodec()
        self.reader = spdy.FrameReader()
        self.frames: list[spdy.Frame] = []
        self.arrived = asyncio.Event()

    async def write(self, b: bytes) -> None:
        self.frames += self.reader.feed(b)
        self.arrived.set()

    def pair(self, error_sid: int, data_sid: int, port: int, rid: str) -> bytes:
        return b"".join(spdy.syn_stream_frame(self.codec, sid, {"streamtype": t, "port": str(port), "requestid": rid})
                        for sid, t in ((error_sid, "error"), (data_sid, "data")))

    def data_on(self, sid: int) -> tuple[bytes, bool]:
        fs = [f for f in self.frames if not f.control and f.kind == sid]
        return b"".join(f.payload for f in fs), any(f.flags & spdy.FLAG_FIN for f in fs)

    async def until(self, cond: object, timeout: float = 5) -> None:
        async def wait() -> None:
            while not cond():  # type: ignore[operator]
                self.arrived.clear()
                await self.arrived.wait()
        await asyncio.wait_for(wait(), timeout)


async def test_forwarded_connection_carries_bytes_both_ways_and_ends_with_fin() -> None:
    async def serve(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        data = await r.read()  # until kubectl's FIN half-closes
        w.write(b"got " + data)
        await w.drain()
        w.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    asked: list[int] = []

    async def connect(p: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        asked.append(p)
        return await asyncio.open_connection("127.0.0.1", port)

    k = _Client()
    s = PortForwardSession(k.write, connect, lambda p, e: f"failed {p}: {e}")
    await s.feed(k.pair(1, 3, 80, "0"))
    await s.feed(spdy.data_frame(3, 0, b"hel") + spdy.data_frame(3, spdy.FLAG_FIN, b"lo"))
    await k.until(lambda: k.data_on(3)[1] and k.data_on(1)[1])
    assert asked == [80]
    assert [f.stream_id for f in k.frames if f.control and f.kind == spdy.SYN_REPLY] == [1, 3]
    assert k.data_on(3) == (b"got hello", True)
    assert k.data_on(1) == (b"", True)  # no error: the error stream just ends
    await s.close()
    server.close()


async def test_a_port_that_cannot_be_reached_says_why_on_the_error_stream() -> None:
    async def connect(p: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        raise ForwardError(f"failed to connect to localhost:{p}")

    k = _Client()
    s = PortForwardSession(k.write, connect, lambda p, e: f"error forwarding port {p}: {e}")
    await s.feed(k.pair(1, 3, 9999, "4"))
    await k.until(lambda: k.data_on(1)[1])
    assert k.data_on(1) == (b"error forwarding port 9999: failed to connect to localhost:9999", True)
    assert k.data_on(3) == (b"", True)
    await s.close()


async def test_bad_port_header_is_a_protocol_error() -> None:
    k = _Client()
    s = PortForwardSession(k.write, lambda p: None, lambda p, e: "")  # type: ignore[arg-type,return-value]
    await s.feed(spdy.syn_stream_frame(k.codec, 1, {"streamtype": "data", "port": "http", "requestid": "0"}))
    await k.until(lambda: k.frames)
    assert k.frames[0].kind == spdy.RST_STREAM and k.frames[0].stream_id == 1
    await s.close()


def test_go_style_error_text() -> None:
    assert _go_error(ConnectionRefusedError(111, "Connect call failed ('127.0.0.1', 1)")) == "connection refused"
    assert _go_error(TimeoutError()) == "i/o timeout"


async def test_stdin_fifo_stays_open_across_writers(tmp_path: Path) -> None:
    """Without stdinOnce the container never reads EOF, whoever comes and goes."""
    path = tmp_path / "c" / "stdin"
    child, holder = containerstdin.open_for_container(path, once=False)
    assert holder is None
    try:
        for word in (b"one\n", b"two\n"):
            w = containerstdin.FifoWriter.open(path)
            assert w is not None and await w.write(word)
            w.close()
        assert os.read(child, 100) == b"one\ntwo\n"
        os.set_blocking(child, False)
        try:
            os.read(child, 100)
            raise AssertionError("read EOF or data where nothing was written")
        except BlockingIOError:
            pass  # no data and no EOF: stdin stays open
    finally:
        os.close(child)


async def test_stdin_once_reads_eof_when_the_session_ends(tmp_path: Path) -> None:
    path = tmp_path / "stdin"
    child, holder = containerstdin.open_for_container(path, once=True)
    assert holder is not None
    try:
        w = containerstdin.FifoWriter.open(path)
        assert w is not None

        def read_all() -> bytes:
            read = b""
            while len(read) < 100_000:
                read += os.read(child, 65536)
            return read

        # more than the pipe holds: the write waits on the loop while the container reads
        ok, read = await asyncio.wait_for(asyncio.gather(w.write(b"x" * 100_000), asyncio.to_thread(read_all)), 10)
        assert ok and read == b"x" * 100_000
        w.close()
        os.close(holder)  # what close_stdin_once does
        assert os.read(child, 10) == b""  # EOF
    finally:
        os.close(child)


def test_no_reader_no_writer(tmp_path: Path) -> None:
    path = tmp_path / "stdin"
    os.mkfifo(path)
    assert containerstdin.FifoWriter.open(path) is None
    assert containerstdin.FifoWriter.open(tmp_path / "missing") is None
