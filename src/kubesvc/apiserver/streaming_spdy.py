"""SPDY/3.1 for ``kubectl port-forward``: the frames, the header compression, the port-forward streams.

kubectl (1.31+) tunnels a SPDY/3.1 session through binary websocket frames
(subprotocol ``SPDY/3.1+portforward.k8s.io``); the websocket only carries the
bytes, split anywhere.  Per local connection kubectl opens two streams with
headers ``streamtype`` (``error`` then ``data``), ``port`` and ``requestid``;
each is answered with SYN_REPLY.  The data stream carries the connection's
bytes both ways, FIN closes a direction, and the error stream gets a message
if the pod's port cannot be reached; the server FINs both when the pod's side
of the connection ends.  RST_STREAM (kubectl, at the end) drops a stream.

Header blocks are zlib streams (one context per direction) primed with the
SPDY/3 dictionary below, a protocol constant.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import zlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

log = logging.getLogger("kubesvc.apiserver.spdy")

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
RST_PROTOCOL_ERROR, RST_CANCEL = 1, 5
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


Connect = Callable[[int], Awaitable[tuple[asyncio.StreamReader, asyncio.StreamWriter]]]


@dataclass
class _Pair:
    """One forwarded connection: kubectl's error and data streams for a requestid."""

    port: int
    error_sid: int | None = None
    data_sid: int | None = None
    inbox: asyncio.Queue[bytes | None] = field(default_factory=asyncio.Queue)
    task: asyncio.Task[None] | None = None
    writer: asyncio.StreamWriter | None = None


class PortForwardSession:
    """The server side of kubectl's port-forward SPDY session.

    ``feed`` takes the bytes as they arrive; frames go out through ``write``
    in order (one writer task, so header compression stays in step).
    ``connect(port)`` opens a TCP connection to the pod's port.
    """

    def __init__(self, write: Callable[[bytes], Awaitable[None]], connect: Connect,
                 describe_error: Callable[[int, BaseException], str]) -> None:
        self._write = write
        self._connect = connect
        self._describe_error = describe_error
        self._codec = HeaderCodec()
        self._buf = bytearray()
        self._out: asyncio.Queue[bytes | None] = asyncio.Queue()
        self._writer_task = asyncio.create_task(self._writer())
        self._pairs: dict[str, _Pair] = {}
        self._by_sid: dict[int, _Pair] = {}
        self.closed = False

    # ---------------------------------------------------------------- out

    async def _writer(self) -> None:
        while (frame := await self._out.get()) is not None:
            try:
                await self._write(frame)
            except (ConnectionError, RuntimeError) as e:
                log.debug("port-forward: writing failed: %s", e)
                self.closed = True
                return

    def _send(self, frame: bytes) -> None:
        if not self.closed:
            self._out.put_nowait(frame)

    def _reply(self, sid: int) -> None:
        self._send(control_frame(SYN_REPLY, 0, sid.to_bytes(4, "big") + self._codec.encode({})))

    def _data(self, sid: int, payload: bytes, fin: bool = False) -> None:
        for i in range(0, max(len(payload), 1), MAX_DATA):
            chunk = payload[i:i + MAX_DATA]
            last = i + MAX_DATA >= len(payload)
            self._send(data_frame(sid, FLAG_FIN if fin and last else 0, chunk))

    def _rst(self, sid: int, status: int) -> None:
        self._send(control_frame(RST_STREAM, 0, sid.to_bytes(4, "big") + status.to_bytes(4, "big")))

    # ---------------------------------------------------------------- in

    async def feed(self, data: bytes) -> None:
        self._buf += data
        while len(self._buf) >= 8:
            length = int.from_bytes(self._buf[5:8], "big")
            if len(self._buf) < 8 + length:
                return
            head, payload = bytes(self._buf[:8]), bytes(self._buf[8:8 + length])
            del self._buf[:8 + length]
            flags = head[4]
            if head[0] & 0x80:
                self._control(int.from_bytes(head[2:4], "big"), flags, payload)
            else:
                self._on_data(int.from_bytes(head[:4], "big") & 0x7FFFFFFF, flags, payload)

    def _control(self, ftype: int, flags: int, payload: bytes) -> None:
        if ftype == SYN_STREAM:
            sid = int.from_bytes(payload[:4], "big") & 0x7FFFFFFF
            self._syn_stream(sid, self._codec.decode(payload[10:]))
        elif ftype in (SYN_REPLY, HEADERS):
            self._codec.decode(payload[4:])  # keep the zlib context in step; nothing to act on
        elif ftype == RST_STREAM:
            self._drop(int.from_bytes(payload[:4], "big") & 0x7FFFFFFF)
        elif ftype == PING:
            self._send(control_frame(PING, 0, payload))
        elif ftype == GOAWAY:
            self.closed = True
        # SETTINGS and WINDOW_UPDATE: nothing to do (kubectl's side keeps no flow-control windows)

    def _syn_stream(self, sid: int, headers: Headers) -> None:
        stype, rid = headers.get("streamtype", ""), headers.get("requestid", "")
        try:
            port = int(headers.get("port", ""))
        except ValueError:
            self._rst(sid, RST_PROTOCOL_ERROR)
            return
        if stype not in ("error", "data") or not 0 < port < 65536:
            self._rst(sid, RST_PROTOCOL_ERROR)
            return
        pair = self._pairs.setdefault(rid, _Pair(port))
        self._by_sid[sid] = pair
        self._reply(sid)
        if stype == "error":
            pair.error_sid = sid
        else:
            pair.data_sid = sid
            pair.task = asyncio.create_task(self._forward(rid, pair))

    def _on_data(self, sid: int, flags: int, payload: bytes) -> None:
        pair = self._by_sid.get(sid)
        if pair is None or sid != pair.data_sid:
            return  # the error stream's (empty) FIN, or a stream already gone
        if payload:
            pair.inbox.put_nowait(payload)
        if flags & FLAG_FIN:
            pair.inbox.put_nowait(None)

    def _drop(self, sid: int) -> None:
        pair = self._by_sid.pop(sid, None)
        if pair is not None and pair.task is not None and sid == pair.data_sid:
            pair.task.cancel()

    # ---------------------------------------------------------------- one connection

    async def _forward(self, rid: str, pair: _Pair) -> None:
        assert pair.data_sid is not None
        try:
            try:
                reader, writer = await asyncio.wait_for(self._connect(pair.port), 10)
            except (TimeoutError, OSError) as e:
                msg = self._describe_error(pair.port, e)
                if pair.error_sid is not None:
                    self._data(pair.error_sid, msg.encode())
                return
            pair.writer = writer
            up = asyncio.create_task(self._upstream(pair, writer))
            try:
                while chunk := await reader.read(MAX_DATA):
                    self._data(pair.data_sid, chunk)
            except OSError:
                pass
            finally:
                up.cancel()
                writer.close()
        finally:
            if pair.data_sid in self._by_sid:
                self._data(pair.data_sid, b"", fin=True)
            if pair.error_sid is not None and pair.error_sid in self._by_sid:
                self._data(pair.error_sid, b"", fin=True)
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
        self.closed = True
        for pair in list(self._pairs.values()):
            if pair.task is not None:
                pair.task.cancel()
        tasks = [p.task for p in self._pairs.values() if p.task is not None]
        with contextlib.suppress(BaseException):
            await asyncio.gather(*tasks, return_exceptions=True)
        self._out.put_nowait(None)
        self._writer_task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._writer_task
