"""The apiserver's HTTP application: routing, authentication, errors, health.

Every request passes one middleware that authenticates it (client certificate
verified by our CA, or the bearer token), times it for ``/metrics``, and turns
any :class:`~kubesvc.api.errors.StatusError` into a ``metav1.Status`` answer.
Anything unexpected becomes a 500 Status and a log line: a bad request never
takes the server down.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from kubesvc.api import errors
from kubesvc.apiserver import discovery, metrics
from kubesvc.apiserver.handlers import NOT_FOUND_MSG, ResourceHandlers, json_response, not_found
from kubesvc.apiserver.requestinfo import NotAResourcePath, parse
from kubesvc.registry.generic import Registry

log = logging.getLogger("kubesvc.apiserver")

KUBE_VERSION = {
    "major": "1",
    "minor": "32",
    "gitVersion": "v1.32.0+kubesvc",
    "gitCommit": "0000000000000000000000000000000000000000",
    "gitTreeState": "clean",
    "buildDate": "2026-11-27T00:00:00Z",
    "goVersion": "python3",
    "compiler": "kubesvc",
    "platform": "linux/amd64",
}

PUBLIC_PATHS = ("/livez", "/readyz", "/healthz", "/version")
Authenticator = Callable[[web.Request], str | None]


@dataclass
class AppState:
    registry: Registry
    handlers: ResourceHandlers
    authenticate: Authenticator | None
    server_address: str
    ready: Callable[[], bool]


STATE = web.AppKey("state", AppState)


def _status_response(err: errors.StatusError) -> web.Response:
    return json_response(err.status(), err.code)


@web.middleware
async def middleware(request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]) -> web.StreamResponse:
    state: AppState = request.app[STATE]
    start = time.perf_counter()
    verb = request.method
    try:
        if state.authenticate is not None and not request.path.startswith(PUBLIC_PATHS):
            user = state.authenticate(request)
            if user is None:
                raise errors.unauthorized()
        resp = await handler(request)
    except errors.StatusError as e:
        resp = _status_response(e)
    except web.HTTPException as e:
        if e.status == 413:
            resp = _status_response(errors.too_large())
        elif e.status == 404:
            resp = _status_response(not_found())
        elif e.status == 405:
            resp = _status_response(errors.method_not_allowed("the server does not allow this method on the requested resource"))
        else:
            resp = _status_response(errors.StatusError(e.status, e.reason.replace(" ", ""), e.text or e.reason))
    except Exception as e:  # never let a request crash the server
        log.exception("internal error serving %s %s", request.method, request.path_qs)
        resp = _status_response(errors.internal_error(f"{type(e).__name__}: {e}"))
    metrics.observe_request(verb, request.path, resp.status, time.perf_counter() - start)
    return resp


async def version(_: web.Request) -> web.Response:
    return json_response(KUBE_VERSION)


def _health(kind: str) -> Callable[[web.Request], Awaitable[web.Response]]:
    async def handler(request: web.Request) -> web.Response:
        state: AppState = request.app[STATE]
        ok = state.ready() if kind == "readyz" else True
        verbose = "verbose" in request.query
        if not ok:
            return web.Response(status=500, text=f"[-]{kind} check failed\n{kind} check failed\n")
        if verbose:
            return web.Response(text=f"[+]ping ok\n[+]etcd ok\n{kind} check passed\n")
        return web.Response(text="ok")

    return handler


async def api_root(request: web.Request) -> web.Response:
    agg = discovery.wants_aggregated(request.headers.get("Accept"))
    if agg:
        return json_response(discovery.aggregated(core=True), content_type=agg)
    return json_response(discovery.api_versions(request.app[STATE].server_address))


async def apis_root(request: web.Request) -> web.Response:
    agg = discovery.wants_aggregated(request.headers.get("Accept"))
    if agg:
        return json_response(discovery.aggregated(core=False), content_type=agg)
    return json_response(discovery.api_group_list())


async def openapi_v3_root(_: web.Request) -> web.Response:
    from kubesvc.apiserver.openapi import openapi_v3_index

    return json_response(openapi_v3_index())


async def openapi_v3_gv(request: web.Request) -> web.Response:
    from kubesvc.apiserver.openapi import openapi_v3_document

    parts = request.match_info["gv"].strip("/").split("/")
    if parts[:1] == ["api"] and len(parts) == 2:
        doc = openapi_v3_document("", parts[1])
    elif parts[:1] == ["apis"] and len(parts) == 3:
        doc = openapi_v3_document(parts[1], parts[2])
    else:
        doc = None
    if doc is None:
        raise not_found()
    return json_response(doc)


async def metrics_handler(_: web.Request) -> web.Response:
    body, ct = metrics.render()
    return web.Response(body=body, headers={"Content-Type": ct})


async def resources(request: web.Request) -> web.StreamResponse:
    state: AppState = request.app[STATE]
    path = request.path
    try:
        info = parse(path)
    except NotAResourcePath:
        return _discovery_path(path)
    return await state.handlers.dispatch(request, info)


def _discovery_path(path: str) -> web.Response:
    parts = [p for p in path.split("/") if p]
    doc: dict[str, Any] | None = None
    if len(parts) == 2 and parts[0] == "api":
        doc = discovery.api_resource_list("", parts[1])
    elif len(parts) == 2 and parts[0] == "apis":
        doc = discovery.api_group(parts[1])
    elif len(parts) == 3 and parts[0] == "apis":
        doc = discovery.api_resource_list(parts[1], parts[2])
    if doc is None:
        raise errors.StatusError(404, "NotFound", NOT_FOUND_MSG, {})
    return json_response(doc)


def create_app(
    registry: Registry,
    *,
    authenticate: Authenticator | None = None,
    server_address: str = "127.0.0.1:6443",
    ready: Callable[[], bool] = lambda: True,
) -> web.Application:
    app = web.Application(middlewares=[middleware], client_max_size=4 * 1024 * 1024)
    app[STATE] = AppState(registry, ResourceHandlers(registry), authenticate, server_address, ready)
    r = app.router
    r.add_get("/version", version)
    r.add_get("/version/", version)
    for kind in ("livez", "readyz", "healthz"):
        r.add_get(f"/{kind}", _health(kind))
        r.add_get(f"/{kind}/{{check:.*}}", _health(kind))
    r.add_get("/api", api_root)
    r.add_get("/api/", api_root)
    r.add_get("/apis", apis_root)
    r.add_get("/apis/", apis_root)
    r.add_get("/openapi/v3", openapi_v3_root)
    r.add_get("/openapi/v3/", openapi_v3_root)
    r.add_get("/openapi/v3/{gv:.+}", openapi_v3_gv)
    from kubesvc.apiserver.openapi.v2 import openapi_v2_handler, swagger_pb_handler
    r.add_get("/openapi/v2", openapi_v2_handler)
    r.add_get("/swagger-2.0.0.pb-v1", swagger_pb_handler)
    r.add_get("/metrics", metrics_handler)
    r.add_route("*", "/{tail:.*}", resources)
    return app
