"""``/metrics`` for controllers, wherever they run.

Upstream's kube-controller-manager serves its controllers' figures on its own
port (10257).  Here any process that runs controllers -- ``kubesvc up``'s
components, or a controller started alone -- hands their registries to
:func:`start_metrics_server`, which serves them all as one Prometheus text
page on a loopback address (``/metrics``, and ``/healthz`` answering ``ok``).
"""

from __future__ import annotations

import errno
from collections.abc import Iterable

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

DEFAULT_PORT = 10257  # kube-controller-manager's


def render(registries: Iterable[CollectorRegistry]) -> bytes:
    """One exposition of several registries (their metric names must not overlap)."""
    return b"".join(generate_latest(r) for r in registries)


async def start_metrics_server(registries: Iterable[CollectorRegistry], host: str = "127.0.0.1",
                               port: int = DEFAULT_PORT, *, fallback: bool = True) -> tuple[web.AppRunner, int]:
    """Serve the registries on ``host:port``; with ``fallback``, a free port when that one is taken.

    Returns the runner (``await runner.cleanup()`` stops it) and the bound port.
    """
    regs = list(registries)

    async def metrics(_: web.Request) -> web.Response:
        return web.Response(body=render(regs), headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def healthz(_: web.Request) -> web.Response:
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/healthz", healthz)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    try:
        site = web.TCPSite(runner, host, port)
        try:
            await site.start()
        except OSError as e:
            if not fallback or e.errno != errno.EADDRINUSE:
                raise
            site = web.TCPSite(runner, host, 0)
            await site.start()
    except BaseException:
        await runner.cleanup()
        raise
    server = getattr(site, "_server", None)
    bound = int(server.sockets[0].getsockname()[1]) if server is not None and server.sockets else port
    return runner, bound
