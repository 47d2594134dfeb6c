"""The agent's HTTP endpoint for container logs (kubelet's ``/containerLogs``).

The apiserver's ``pods/log`` handler proxies here (to the Node's InternalIP
and ``daemonEndpoints.kubeletEndpoint.Port``) with the cluster's shared agent
token, so ``kubectl logs [-f] [--previous]`` works.  It listens only on the
node's address on the cluster network.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from aiohttp import web

from kubesvc.agent.agentauth import unauthorized

if TYPE_CHECKING:
    from kubesvc.agent.containerloop import ContainerLoop
    from kubesvc.agent.podworker import PodWorker

FindPod = Callable[[str, str], "PodWorker | None"]


def _tail(data: bytes, lines: int | None) -> bytes:
    if lines is None:
        return data
    if lines <= 0:
        return b""
    parts = data.splitlines(keepends=True)
    return b"".join(parts[-lines:])


def _container(w: PodWorker, name: str) -> ContainerLoop | None:
    return next((c for c in w.init_loops + w.loops if c.name == name), None)


def _bad(msg: str) -> web.Response:
    return web.Response(status=400, text=msg)


def make_app(find: FindPod, token: str) -> web.Application:
    async def container_logs(request: web.Request) -> web.StreamResponse:
        if (denied := unauthorized(request, token)) is not None:
            return denied
        ns, pod, cname = (request.match_info[k] for k in ("ns", "pod", "container"))
        w = find(ns, pod)
        if w is None:
            return web.Response(status=404, text=f'pod "{pod}" not found on this node')
        c = _container(w, cname)
        if c is None:
            return _bad(f"container {cname} is not valid for pod {pod}")
        q = request.query
        previous = q.get("previous") in ("true", "1")
        follow = q.get("follow") in ("true", "1") and not previous
        tail = int(q["tailLines"]) if q.get("tailLines", "").lstrip("-").isdigit() else None
        restart = c.rec.restart_count - (1 if previous else 0)
        path = w.log_path(cname, restart)
        if previous and (restart < 0 or not path.exists()):
            return _bad(f'previous terminated container "{cname}" in pod "{pod}" not found')
        if not path.exists():
            return _bad(f'container "{cname}" in pod "{pod}" is waiting to start: {c.rec.reason or "ContainerCreating"}')
        resp = web.StreamResponse(headers={"Content-Type": "text/plain"})
        await resp.prepare(request)
        await _stream(resp, path, tail, follow, lambda: c.rec.restart_count == restart and c.rec.state == "running"
                      and not w.finished)
        await resp.write_eof()
        return resp

    app = web.Application()
    app.router.add_get("/containerLogs/{ns}/{pod}/{container}", container_logs)
    app.router.add_get("/healthz", lambda r: _ok())
    from kubesvc.agent.streams import make_exec_handler  # kubectl exec (websocket channels)

    app.router.add_get("/exec/{ns}/{pod}/{container}", make_exec_handler(find, token))
    from kubesvc.agent.attach import make_attach_handler  # kubectl attach: the same channels
    from kubesvc.agent.portforward import make_portforward_handler  # kubectl port-forward: SPDY in frames

    app.router.add_get("/attach/{ns}/{pod}/{container}", make_attach_handler(find, token))
    app.router.add_get("/portForward/{ns}/{pod}", make_portforward_handler(find, token))
    return app


async def _ok() -> web.Response:
    return web.Response(text="ok")


async def _stream(resp: web.StreamResponse, path: Path, tail: int | None, follow: bool,
                  alive: Callable[[], bool]) -> None:
    """Send the file (or its last lines); with follow, keep sending while the container runs."""
    with open(path, "rb") as f:
        data = f.read()
        await resp.write(_tail(data, tail))
        while follow:
            running = alive()
            chunk = f.read()
            if chunk:
                await resp.write(chunk)
            elif not running:
                return
            else:
                await asyncio.sleep(0.2)
