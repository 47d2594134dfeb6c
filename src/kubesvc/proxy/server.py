"""HTTP endpoints: per-Service health checks and the proxy's /metrics and /healthz.

A Service with ``externalTrafficPolicy: Local`` and a ``healthCheckNodePort``
gets a tiny server on that port, answering any path as kube-proxy does: 200
with the number of ready local endpoints, or 503 when there are none, so a
load balancer sends traffic only to nodes that can take it.  Servers are
started and stopped as Services come and go (:meth:`HealthServers.update`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

import orjson
from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from .metrics import ProxyMetrics
from .netns import listen_socket
from .programmed import ProgrammedLog

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class HealthCheck:
    namespace: str
    name: str
    port: int
    local_endpoints: int


def health_response(hc: HealthCheck, healthy: bool = True) -> web.Response:
    body = {"service": {"namespace": hc.namespace, "name": hc.name},
            "localEndpoints": hc.local_endpoints, "serviceProxyHealthy": healthy}
    status = 200 if hc.local_endpoints > 0 and healthy else 503
    return web.Response(status=status, body=orjson.dumps(body), content_type="application/json",
                        headers={"X-Content-Type-Options": "nosniff",
                                 "X-Load-Balancing-Endpoint-Weight": str(hc.local_endpoints)})


class HealthServers:
    """One listener per health-check node port; the answer reads the latest counts."""

    def __init__(self, host: str = "0.0.0.0", netns: str | None = None) -> None:
        self.host, self.netns = host, netns
        self.checks: dict[int, HealthCheck] = {}
        self._runners: dict[int, web.AppRunner] = {}

    async def update(self, checks: dict[int, HealthCheck]) -> None:
        """Make the running servers match ``checks`` (by port)."""
        self.checks = dict(checks)
        for port in list(self._runners):
            if port not in checks:
                await self._runners.pop(port).cleanup()
        for port in checks:
            if port not in self._runners:
                await self._start(port)

    async def _start(self, port: int) -> None:
        async def handle(_request: web.Request) -> web.Response:
            hc = self.checks.get(port)
            if hc is None:
                return web.Response(status=404)
            return health_response(hc)

        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", handle)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        try:
            sock = listen_socket(self.host, port, self.netns)
        except OSError as e:
            log.warning("health check port %d: %s", port, e)
            await runner.cleanup()
            return
        await web.SockSite(runner, sock).start()
        self._runners[port] = runner

    async def close(self) -> None:
        for runner in self._runners.values():
            await runner.cleanup()
        self._runners.clear()


async def stream_programmed(request: web.Request, log_: ProgrammedLog) -> web.StreamResponse:
    """``/debug/programmed[?since=SEQ]``: one JSON line per applied transaction, as they happen.

    Records after ``since`` (default: none of the past) come first, then new
    ones until the client goes away.
    """
    try:
        since = int(request.query.get("since", "-1"))
    except ValueError:
        return web.Response(status=400, text="since: not an integer")
    queue = log_.subscribe()  # before reading the backlog: nothing falls between the two
    try:
        resp = web.StreamResponse(headers={"Content-Type": "application/x-ndjson"})
        await resp.prepare(request)
        last = since
        if since >= 0:
            for rec in log_.since(since):
                await resp.write(orjson.dumps(rec.as_json()) + b"\n")
                last = rec.seq
        while (rec := await queue.get()) is not None:
            if rec.seq > last:
                await resp.write(orjson.dumps(rec.as_json()) + b"\n")
        return resp
    finally:
        log_.unsubscribe(queue)


async def start_metrics_server(metrics: ProxyMetrics, host: str, port: int, healthy: Callable[[], bool],
                               netns: str | None = None, programmed: ProgrammedLog | None = None) -> web.AppRunner:
    """/metrics (Prometheus text), /healthz (200 once rules have been programmed recently) and,
    given ``programmed``, the /debug/programmed stream."""
    async def metrics_handler(_r: web.Request) -> web.Response:
        resp = web.Response(body=generate_latest(metrics.registry))
        resp.headers["Content-Type"] = CONTENT_TYPE_LATEST
        return resp

    async def healthz(_r: web.Request) -> web.Response:
        ok = bool(healthy())
        return web.Response(status=200 if ok else 503, text="ok" if ok else "not synced")

    app = web.Application()
    app.router.add_get("/metrics", metrics_handler)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/livez", healthz)
    if programmed is not None:
        log_ = programmed

        async def programmed_handler(r: web.Request) -> web.StreamResponse:
            return await stream_programmed(r, log_)

        app.router.add_get("/debug/programmed", programmed_handler)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.SockSite(runner, listen_socket(host, port, netns)).start()
    return runner
