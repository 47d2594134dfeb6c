"""A tiny HTTP/1.1 server on asyncio streams, shared by the image stand-ins.

Why not aiohttp: every nginx or agnhost pod is its own process, and pod start
time is mostly interpreter start-up; stdlib asyncio starts in a fraction of
aiohttp's import time and uses less memory per idle pod.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from urllib.parse import parse_qs, urlsplit

REASONS = {200: "OK", 204: "No Content", 400: "Bad Request", 404: "Not Found", 405: "Not Allowed",
           412: "Precondition Failed", 500: "Internal Server Error", 503: "Service Unavailable"}


@dataclass
class Request:
    method: str
    target: str
    version: str
    headers: dict[str, str]
    body: bytes
    peer: tuple[str, int]

    @property
    def path(self) -> str:
        return urlsplit(self.target).path

    @property
    def query(self) -> dict[str, str]:
        return {k: v[0] for k, v in parse_qs(urlsplit(self.target).query, keep_blank_values=True).items()}


@dataclass
class Response:
    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)


Handler = Callable[[Request], Awaitable[Response]]


async def _read_request(reader: asyncio.StreamReader, peer: tuple[str, int]) -> Request | None:
    line = await reader.readline()
    if not line:
        return None
    parts = line.decode("latin-1").split()
    if len(parts) != 3:
        raise ValueError("bad request line")
    headers: dict[str, str] = {}
    while True:
        h = await reader.readline()
        if h in (b"\r\n", b"\n", b""):
            break
        k, _, v = h.decode("latin-1").partition(":")
        headers[k.strip().lower()] = v.strip()
    n = int(headers.get("content-length") or 0)
    body = await reader.readexactly(n) if n else b""
    return Request(parts[0], parts[1], parts[2], headers, body, peer)


def serve(handler: Handler, server_name: str) -> Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]:
    """A connection callback for ``asyncio.start_server`` that answers with ``handler``."""

    async def on_conn(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = writer.get_extra_info("peername") or ("", 0)
        try:
            while True:
                try:
                    req = await _read_request(reader, peer[:2])
                except (ValueError, asyncio.IncompleteReadError):
                    writer.write(b"HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-Length: 0\r\n\r\n")
                    break
                if req is None:
                    break
                resp = await handler(req)
                keep = req.version == "HTTP/1.1" and req.headers.get("connection", "").lower() != "close"
                head = [f"HTTP/1.1 {resp.status} {REASONS.get(resp.status, 'Unknown')}", f"Server: {server_name}",
                        f"Content-Length: {len(resp.body)}", "Connection: " + ("keep-alive" if keep else "close")]
                head += [f"{k}: {v}" for k, v in resp.headers.items()]
                writer.write(("\r\n".join(head) + "\r\n\r\n").encode() + (b"" if req.method == "HEAD" else resp.body))
                await writer.drain()
                if not keep:
                    break
        except (ConnectionError, OSError):
            pass
        finally:
            writer.close()

    return on_conn


def exit_on_sigterm() -> None:
    """Stand-ins exit 0 on SIGTERM, as nginx and agnhost do on a graceful stop."""
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, lambda: (sys.stdout.flush(), os._exit(0)))


async def listen_all(handler: Handler, server_name: str, ports: list[int]) -> list[asyncio.Server]:
    """Listen on every port; a port already taken ends the program with nginx's message."""
    servers = []
    for port in ports:
        try:
            servers.append(await asyncio.start_server(serve(handler, server_name), "0.0.0.0", port,
                                                      reuse_address=True))
        except OSError as e:
            print(f"bind() to 0.0.0.0:{port} failed ({e.errno}: {e.strerror})", file=sys.stderr, flush=True)
            raise SystemExit(1) from None
    return servers
