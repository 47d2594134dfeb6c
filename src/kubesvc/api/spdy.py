"""SPDY/3.1, the server side: frames, header compression, and a session that streams hang off.

kubectl speaks SPDY/3.1 for ``exec``, ``attach`` and ``port-forward``: over a
plain ``Upgrade: SPDY/3.1`` connection (kubectl before 1.30/1.31, or with its
websocket feature gates off) and, for port-forward, tunnelled through
binary websocket frames (``SPDY/3.1+portforward.k8s.io``).  Either way the
bytes are the same, split anywhere, so :class:`Session` takes them as they
come (``feed``) and writes whole frames through one writer task, so header
compression stays in step.  What the streams mean is the subclass's
business: ``on_syn_stream``, ``on_data`` and ``on_rst``.

Header blocks are zlib streams (one context per direction) primed with the
SPDY/3 dictionary below, a protocol constant.  Flow control is not kept:
kubectl's SPDY library keeps no windows either.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import zlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

log = logging.getLogger("kubesvc.spdy")

# The SPDY/3 header-compression dictionary (1423 bytes): length-prefixed common header
# names and values, then common value fragments.
DICTIONARY = (
    b'\x00\x00\x00\x07options\x00\x00\x00\x04head\x00\x00\x00\x04post\x00\x00\x00\x03'
    b'put\x00\x00\x00\x06delete\x00\x00\x00\x05trace\x00\x00\x00\x06accept\x00\x00\x00'
    b'\x0eaccept-charset\x00\x00\x00\x0faccept-encoding\x00\x00\x00\x0faccept-langua'
    b'ge\x00\x00\x00\raccept-ranges\x00\x00\x00\x03age\x00\x00\x00\x05allow\x00\x00\x00'
    b'\rauthorization\x00\x00\x00\rcache-control\x00\x00\x00\nconnection\x00\x00\x00'
    b'\x0ccontent-base\x00\x00\x00\x10content-encoding\x00\x00\x00\x10content-langua'
    b'ge\x00\x00\x00\x0econtent-length\x00\x00\x00\x10content-location\x00\x00\x00\x0b'
    b'content-md5\x00\x00\x00\rcontent-range\x00\x00\x00\x0ccontent-type\x00\x00\x00'
    b'\x04date\x00\x00\x00\x04etag\x00\x00\x00\x06expect\x00\x00\x00\x07expires\x00\x00'
    b'\x00\x04from\x00\x00\x00\x04host\x00\x00\x00\x08if-match\x00\x00\x00\x11if-mod'
    b'ified-since\x00\x00\x00\rif-none-match\x00\x00\x00\x08if-range\x00\x00\x00\x13'
    b'if-unmodified-since\x00\x00\x00\rlast-modified\x00\x00\x00\x08location\x00\x00'
    b'\x00\x0cmax-forwards\x00\x00\x00\x06pragma\x00\x00\x00\x12proxy-authenticate\x00'
    b'\x00\x00\x13proxy-authorization\x00\x00\x00\x05range\x00\x00\x00\x07referer\x00'
    b'\x00\x00\x0bretry-after\x00\x00\x00\x06server\x00\x00\x00\x02te\x00\x00\x00\x07'
    b'trailer\x00\x00\x00\x11transfer-encoding\x00\x00\x00\x07upgrade\x00\x00\x00\nu'
    b'ser-agent\x00\x00\x00\x04vary\x00\x00\x00\x03via\x00\x00\x00\x07warning\x00\x00'
    b'\x00\x10www-authenticate\x00\x00\x00\x06method\x00\x00\x00\x03get\x00\x00\x00\x06'
    b'status\x00\x00\x00\x06200 OK\x00\x00\x00\x07version\x00\x00\x00\x08HTTP/1.1\x00'
    b'\x00\x00\x03url\x00\x00\x00\x06public\x00\x00\x00\nset-cookie\x00\x00\x00\nkee'
    b'p-alive\x00\x00\x00\x06origin1001012012022052063003023033043053063074024054064'
    b'07408409410411412413414415416417502504505203 Non-Authoritative Information204 '
    b'No Content301 Moved Permanently400 Bad Request401 Unauthorized403 Forbidden404'
    b' Not Found500 Internal Server Error501 Not Implemented503 Service UnavailableJ'
    b'an Feb Mar Apr May Jun Jul Aug Sept Oct Nov Dec 00:00:00 Mon, Tue, Wed, Thu, F'
    b'ri, Sat, Sun, GMTchunked,text/html,image/png,image/jpg,image/gif,application/x'
    b'ml,application/xhtml+xml,text/plain,text/javascript,publicprivatemax-age=gzip,'
    b'deflate,sdchcharset=utf-8charset=iso-8859-1,utf-,*,enq=0.'
)
assert len(DICTIONARY) == 1423

VERSION = 3
SYN_STREAM, SYN_REPLY, RST_STREAM, SETTINGS, PING, GOAWAY, HEADERS, WINDOW_UPDATE = 1, 2, 3, 4, 6, 7, 8, 9
FLAG_FIN = 0x01
RST_PROTOCOL_ERROR, RST_INVALID_STREAM, RST_REFUSED_STREAM, RST_CANCEL = 1, 2, 3, 5
MAX_DATA = 32 * 1024

Headers = dict[str, str]


class HeaderCodec:
    """One direction's zlib context for header blocks."""

    def __init__(self) -> None:
        self._z = zlib.compressobj(zlib.Z_DEFAULT_COMPRESSION, zlib.DEFLATED, 15, zdict=DICTIONARY)
        self._d = zlib.decompressobj(15, zdict=DICTIONARY)

    def encode(self, headers: Headers) -> bytes:
        raw = bytearray(len(headers).to_bytes(4, "big"))
        for k, v in headers.items():
            for part in (k.lower().encode(), v.encode()):
                raw += len(part).to_bytes(4, "big") + part
        return self._z.compress(bytes(raw)) + self._z.flush(zlib.Z_SYNC_FLUSH)

    def decode(self, block: bytes) -> Headers:
        raw = self._d.decompress(block) if block else b""
        out: Headers = {}
        if len(raw) < 4:
            return out
        n, pos = int.from_bytes(raw[:4], "big"), 4
        for _ in range(n):
            if pos + 4 > len(raw):
                break  # a short block: what was there is all there is
            kl = int.from_bytes(raw[pos:pos + 4], "big")
            k = raw[pos + 4:pos + 4 + kl].decode(errors="replace")
            pos += 4 + kl
            vl = int.from_bytes(raw[pos:pos + 4], "big")
            v = raw[pos + 4:pos + 4 + vl].decode(errors="replace")
            pos += 4 + vl
            out[k.lower()] = v.split("\0")[0]
        return out


def control_frame(ftype: int, flags: int, payload: bytes) -> bytes:
    return ((0x8000 | VERSION) << 16 | ftype).to_bytes(4, "big") + (flags << 24 | len(payload)).to_bytes(4, "big") + payload


def data_frame(stream_id: int, flags: int, payload: bytes) -> bytes:
    return (stream_id & 0x7FFFFFFF).to_bytes(4, "big") + (flags << 24 | len(payload)).to_bytes(4, "big") + payload


def syn_stream_frame(codec: HeaderCodec, stream_id: int, headers: Headers, fin: bool = False) -> bytes:
    """A client's SYN_STREAM (what kubectl sends; the tests speak it too)."""
    body = stream_id.to_bytes(4, "big") + (0).to_bytes(4, "big") + b"\0\0" + codec.encode(headers)
    return control_frame(SYN_STREAM, FLAG_FIN if fin else 0, body)


@dataclass(frozen=True)
class Frame:
    control: bool
    kind: int  # control: the frame type; data: the stream id
    flags: int
    payload: bytes

    @property
    def stream_id(self) -> int:
        """The stream a frame is about (data frames, and the first word of stream control frames)."""
        if not self.control:
            return self.kind
        return int.from_bytes(self.payload[:4], "big") & 0x7FFFFFFF


class FrameError(ValueError):
    pass


class FrameReader:
    """Whole frames out of bytes split anywhere."""

    def __init__(self) -> None:
        self._buf = bytearray()

    def feed(self, data: bytes) -> list[Frame]:
        self._buf += data
        out: list[Frame] = []
        while len(self._buf) >= 8:
            if self._buf[0] & 0x80 and int.from_bytes(self._buf[:2], "big") & 0x7FFF != VERSION:
                raise FrameError(f"control frame of SPDY version {int.from_bytes(self._buf[:2], 'big') & 0x7FFF}")
            length = int.from_bytes(self._buf[5:8], "big")
            if len(self._buf) < 8 + length:
                break
            head, payload = bytes(self._buf[:8]), bytes(self._buf[8:8 + length])
            del self._buf[:8 + length]
            if head[0] & 0x80:
                out.append(Frame(True, int.from_bytes(head[2:4], "big"), head[4], payload))
            else:
                out.append(Frame(False, int.from_bytes(head[:4], "big") & 0x7FFFFFFF, head[4], payload))
        return out


class Session:
    """The server side of one SPDY session; subclasses give the streams their meaning.

    ``write`` sends bytes to the peer; it is called from one task only, in
    frame order.  ``closed`` turns true on GOAWAY, on a write that fails
    and on bytes that are not SPDY.
    """

    def __init__(self, write: Callable[[bytes], Awaitable[None]]) -> None:
        self._write = write
        self.codec = HeaderCodec()
        self._reader = FrameReader()
        self._out: asyncio.Queue[bytes | None] = asyncio.Queue()
        self._writer_task = asyncio.create_task(self._writer())
        self.closed = False

    # ---------------------------------------------------------------- hooks

    def on_syn_stream(self, sid: int, headers: Headers, fin: bool) -> None:
        self.rst(sid, RST_REFUSED_STREAM)

    def on_data(self, sid: int, payload: bytes, fin: bool) -> None:
        pass

    def on_rst(self, sid: int) -> None:
        pass

    # ---------------------------------------------------------------- out

    async def _writer(self) -> None:
        while (frame := await self._out.get()) is not None:
            try:
                await self._write(frame)
            except (ConnectionError, RuntimeError, OSError) as e:
                log.debug("spdy: writing failed: %s", e)
                self.closed = True
                return

    def send(self, frame: bytes) -> None:
        if not self.closed:
            self._out.put_nowait(frame)

    def reply(self, sid: int, fin: bool = False) -> None:
        self.send(control_frame(SYN_REPLY, FLAG_FIN if fin else 0, sid.to_bytes(4, "big") + self.codec.encode({})))

    def data(self, sid: int, payload: bytes, fin: bool = False) -> None:
        """``payload`` on stream ``sid`` in frames of at most MAX_DATA; ``fin`` on the last (an empty one if no bytes)."""
        for i in range(0, max(len(payload), 1), MAX_DATA):
            last = i + MAX_DATA >= len(payload)
            self.send(data_frame(sid, FLAG_FIN if fin and last else 0, payload[i:i + MAX_DATA]))

    def rst(self, sid: int, status: int) -> None:
        self.send(control_frame(RST_STREAM, 0, sid.to_bytes(4, "big") + status.to_bytes(4, "big")))

    def goaway(self) -> None:
        self.send(control_frame(GOAWAY, 0, (0).to_bytes(8, "big")))

    # ---------------------------------------------------------------- in

    async def feed(self, data: bytes) -> None:
        try:
            frames = self._reader.feed(data)
        except FrameError as e:
            log.debug("spdy: %s; closing", e)
            self.closed = True
            return
        for f in frames:
            if f.control:
                self._control(f)
            else:
                self.on_data(f.kind, f.payload, bool(f.flags & FLAG_FIN))

    def _control(self, f: Frame) -> None:
        if f.kind == SYN_STREAM:
            try:
                headers = self.codec.decode(f.payload[10:])
            except zlib.error:
                self.closed = True  # the header context is lost: nothing after this can be read
                return
            self.on_syn_stream(f.stream_id, headers, bool(f.flags & FLAG_FIN))
        elif f.kind in (SYN_REPLY, HEADERS):
            with contextlib.suppress(zlib.error):
                self.codec.decode(f.payload[4:])  # keep the zlib context in step; nothing to act on
        elif f.kind == RST_STREAM:
            self.on_rst(f.stream_id)
        elif f.kind == PING:
            self.send(control_frame(PING, 0, f.payload))
        elif f.kind == GOAWAY:
            self.closed = True
        # SETTINGS and WINDOW_UPDATE: nothing to do (no flow-control windows kept)

    # ---------------------------------------------------------------- end

    async def drain(self, timeout: float = 5.0) -> None:
        """Let the frames queued so far go out, then stop writing."""
        self._out.put_nowait(None)
        with contextlib.suppress(TimeoutError, asyncio.CancelledError):
            await asyncio.wait_for(asyncio.shield(self._writer_task), timeout)
        self.closed = True
        self._writer_task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._writer_task
