"""The ``agnhost`` stand-in: upstream's e2e test image, the subcommands tests use.

``netexec``: HTTP (``/``, ``/hostname``, ``/clientip``, ``/echo?msg=``,
``/dial?request=&host=&port=&protocol=&tries=``, ``/healthz``, ``/shell?cmd=``,
``/exit?code=``) and a UDP server answering ``hostname``, ``echo <text>`` and
``clientip``.  ``serve-hostname``: the hostname over HTTP (and UDP/TCP) on 9376.
``pause``: sleep until signalled.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import sys
import time
import urllib.request

from kubesvc.agent.images.httpd import Request, Response, exit_on_sigterm, listen_all

SERVER = "agnhost"


def hostname() -> str:
    return socket.gethostname()


async def _dial_once(protocol: str, host: str, port: int, request: str, timeout: float = 5) -> str:
    if protocol == "udp":
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[bytes] = loop.create_future()

        class Proto(asyncio.DatagramProtocol):
            def datagram_received(self, data: bytes, addr: object) -> None:
                if not fut.done():
                    fut.set_result(data)

        transport, _ = await loop.create_datagram_endpoint(Proto, remote_addr=(host, port))
        try:
            transport.sendto(request.encode())
            return (await asyncio.wait_for(fut, timeout)).decode().strip()
        finally:
            transport.close()
    url = f"http://{host}:{port}/{request.lstrip('/')}"

    def get() -> str:
        with urllib.request.urlopen(url, timeout=timeout) as r:  # noqa: S310 - test image
            return r.read().decode().strip()

    return await asyncio.to_thread(get)


async def dial(q: dict[str, str]) -> Response:
    """Ask another endpoint ``tries`` times; report every answer and every error, as JSON."""
    try:
        tries, port = int(q.get("tries", "1")), int(q.get("port", "0"))
    except ValueError:
        return Response(400, b"bad tries or port")
    responses, errs = [], []
    for _ in range(max(1, tries)):
        try:
            responses.append(await _dial_once(q.get("protocol", "http"), q.get("host", ""), port, q.get("request", "")))
        except Exception as e:  # noqa: BLE001 - every failure is reported to the caller
            errs.append(str(e) or type(e).__name__)
    body = {"responses": responses} if responses else {"errors": errs}
    return Response(200, json.dumps(body).encode(), {"Content-Type": "application/json"})


async def netexec_http(req: Request) -> Response:
    p, q = req.path, req.query
    if p in ("/", ""):
        return Response(200, f"NOW: {time.strftime('%Y-%m-%d %H:%M:%S')}".encode())
    if p == "/hostname":
        return Response(200, hostname().encode())
    if p == "/clientip":
        return Response(200, f"{req.peer[0]}:{req.peer[1]}".encode())
    if p == "/echo":
        return Response(200, q.get("msg", "").encode())
    if p == "/healthz":
        return Response(200, b"")
    if p == "/dial":
        return await dial(q)
    if p == "/shell":
        proc = await asyncio.create_subprocess_shell(q.get("cmd", ""), stdout=asyncio.subprocess.PIPE,
                                                     stderr=asyncio.subprocess.STDOUT)
        out, _ = await proc.communicate()
        return Response(200, json.dumps({"output": out.decode(errors="replace")}).encode(),
                        {"Content-Type": "application/json"})
    if p == "/exit":
        os._exit(int(q.get("code", "0") or 0))
    return Response(404, b"404 page not found\n")


class UdpEcho(asyncio.DatagramProtocol):
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:  # type: ignore[override]
        text = data.decode(errors="replace").strip()
        if text == "hostname":
            out = hostname()
        elif text.startswith("echo "):
            out = text[5:]
        elif text == "clientip":
            out = f"{addr[0]}:{addr[1]}"
        else:
            out = ""
        self.transport.sendto(out.encode(), addr)  # type: ignore[attr-defined]


async def netexec(ns: argparse.Namespace) -> None:
    await listen_all(netexec_http, SERVER, [ns.http_port])
    if ns.udp_port > 0:
        await asyncio.get_running_loop().create_datagram_endpoint(UdpEcho, local_addr=("0.0.0.0", ns.udp_port))
    print(f"Started HTTP server on port {ns.http_port}", flush=True)
    if ns.udp_port > 0:
        print(f"Started UDP server on port {ns.udp_port}", flush=True)
    await asyncio.Event().wait()


async def serve_hostname(ns: argparse.Namespace) -> None:
    async def http(req: Request) -> Response:
        return Response(200, hostname().encode())

    if ns.http or not (ns.tcp or ns.udp):
        await listen_all(http, SERVER, [ns.port])
    if ns.udp:
        await asyncio.get_running_loop().create_datagram_endpoint(UdpEcho, local_addr=("0.0.0.0", ns.port))
    print(f"Serving on port {ns.port}.", flush=True)
    await asyncio.Event().wait()


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="agnhost")
    sub = p.add_subparsers(dest="cmd")
    n = sub.add_parser("netexec")
    n.add_argument("--http-port", type=int, default=8080)
    n.add_argument("--udp-port", type=int, default=8081)
    n.add_argument("--sctp-port", type=int, default=-1)
    n.add_argument("--delay-shutdown", type=int, default=0)
    s = sub.add_parser("serve-hostname")
    s.add_argument("--port", type=int, default=9376)
    for flag in ("http", "tcp", "udp"):
        s.add_argument(f"--{flag}", nargs="?", const=True, default=False,
                       type=lambda v: v.lower() in ("1", "true", "yes"))
    sub.add_parser("pause")
    return p


async def run(argv: list[str]) -> int:
    ns = parser().parse_args(argv)
    exit_on_sigterm()
    if ns.cmd == "netexec":
        await netexec(ns)
    elif ns.cmd == "serve-hostname":
        await serve_hostname(ns)
    elif ns.cmd == "pause":
        print("Paused", flush=True)
        await asyncio.Event().wait()
    else:
        parser().print_help()
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(run(sys.argv[1:])))
