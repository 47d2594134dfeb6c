"""``kubectl attach`` on the node agent: the running container's own stdio, over the channel protocol.

Same shape as ``exec`` (:mod:`kubesvc.agent.streams`): the apiserver relays
``/attach/{ns}/{pod}/{container}`` as a ``v5``/``v4.channel.k8s.io``
websocket, after a first text frame ``{"ok": true}`` or
``{"code": 400, "message": ...}`` that only the apiserver sees.

Output: a container writes stdout and stderr into one log file (which is
what lets it outlive the agent), so attach follows that file from its end
at the moment of attaching, as a runtime's attach shows output from then on,
and sends it on the stdout channel (stderr when only stderr was asked for).
Input: for a container with ``stdin: true`` the stdin channel is written into
the container's stdin FIFO (:mod:`kubesvc.agent.containerstdin`); for one
without, it is dropped, as container runtimes do.  The session ends with a
Success status on the error channel when the container stops, or when
kubectl goes away.  ``tty: true`` containers have no terminal here: their
output comes through as it is.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from aiohttp import WSMsgType, web

from kubesvc.agent.agentauth import unauthorized
from kubesvc.agent.containerstdin import FifoWriter
from kubesvc.agent.streams import (
    CLOSE,
    ERROR,
    PROTOCOLS,
    STDERR,
    STDIN,
    STDOUT,
    running_container_error,
    success_status,
)

if TYPE_CHECKING:
    from kubesvc.agent.containerloop import ContainerLoop
    from kubesvc.agent.podworker import PodWorker

log = logging.getLogger("kubesvc.agent.attach")
FindPod = Callable[[str, str], "PodWorker | None"]
POLL = 0.05  # seconds between looks at the log file when there was nothing new


def _flag(value: str | None) -> bool:
    return value in ("true", "1")


class _Attach:
    def __init__(self, ws: web.WebSocketResponse, w: PodWorker, c: ContainerLoop, *, stdin: bool,
                 out_channel: int | None) -> None:
        self.ws, self.w, self.c = ws, w, c
        self.want_stdin = stdin and bool(c.spec.get("stdin"))
        self.out_channel = out_channel
        self.restart = c.rec.restart_count
        self._lock = asyncio.Lock()

    def alive(self) -> bool:
        c = self.c
        return c.rec.restart_count == self.restart and c.rec.state == "running" and not self.w.finished

    async def send(self, channel: int, data: bytes) -> None:
        async with self._lock:
            if not self.ws.closed:
                await self.ws.send_bytes(bytes([channel]) + data)

    async def _output(self) -> None:
        """The log file from its present end, while the container runs (then what it wrote last)."""
        path = self.w.log_path(self.c.name, self.restart)
        with open(path, "rb") as f:
            f.seek(0, 2)
            while True:
                running = self.alive()
                chunk = f.read(32768)
                if chunk:
                    if self.out_channel is not None:
                        await self.send(self.out_channel, chunk)
                elif not running:
                    return
                else:
                    await asyncio.sleep(POLL)

    async def _until_stopped(self) -> None:
        while self.alive():
            await asyncio.sleep(0.2)

    async def _input(self) -> None:
        """kubectl's frames: stdin into the FIFO; the stdin close (v5) or kubectl leaving ends the input."""
        writer = FifoWriter.open(self.c.stdin_path) if self.want_stdin else None
        v5 = self.ws.ws_protocol == PROTOCOLS[0]
        try:
            async for msg in self.ws:
                if msg.type != WSMsgType.BINARY or not msg.data:
                    continue
                ch, data = msg.data[0], msg.data[1:]
                if ch == STDIN and data and writer is not None and not await writer.write(data):
                    writer = None
                elif ch == CLOSE and v5 and data[:1] == bytes([STDIN]) and writer is not None:
                    writer.close()
                    writer = None
                    self.c.close_stdin_once(self.restart)
        finally:
            if writer is not None:
                writer.close()
            if self.want_stdin:
                self.c.close_stdin_once(self.restart)

    async def run(self) -> None:
        out = asyncio.create_task(self._output() if self.out_channel is not None else self._until_stopped())
        inp = asyncio.create_task(self._input())
        try:
            done, _ = await asyncio.wait([out, inp], return_when=asyncio.FIRST_COMPLETED)
            if out in done and out.exception() is None:
                await self.send(ERROR, success_status())
        finally:
            for t in (out, inp):
                t.cancel()
            await asyncio.gather(out, inp, return_exceptions=True)


def make_attach_handler(find: FindPod, token: str) -> Callable[[web.Request], Any]:
    async def attach_handler(request: web.Request) -> web.StreamResponse:
        if (denied := unauthorized(request, token)) is not None:
            return denied
        ns, pod, cname = (request.match_info[k] for k in ("ns", "pod", "container"))
        q = request.query
        ws = web.WebSocketResponse(protocols=PROTOCOLS, max_msg_size=0)
        await ws.prepare(request)
        w = find(ns, pod)
        c = next((x for x in w.init_loops + w.loops if x.name == cname), None) if w is not None else None
        error = running_container_error(w, c, pod, cname)
        if error is None and w is not None and c is not None and not w.log_path(cname, c.rec.restart_count).exists():
            error = f'unable to upgrade connection: container "{cname}" has no output yet'
        if error is not None:
            await ws.send_str(json.dumps({"code": 400, "message": error}))
            await ws.close()
            return ws
        assert w is not None and c is not None
        await ws.send_str(json.dumps({"ok": True}))
        out = STDOUT if _flag(q.get("stdout")) else STDERR if _flag(q.get("stderr")) else None
        with contextlib.suppress(ConnectionError):
            await _Attach(ws, w, c, stdin=_flag(q.get("stdin")), out_channel=out).run()
        log.info("attach to %s/%s[%s] ended", ns, pod, cname)
        await ws.close()
        return ws

    return attach_handler
