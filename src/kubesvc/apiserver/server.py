"""Run the apiserver: storage, registry, HTTPS listener, and the objects every cluster has.

Like kube-apiserver, it makes sure the system namespaces (``default``,
``kube-system``, ``kube-public``, ``kube-node-lease``) and the ``kubernetes``
Service exist at start-up; everything else is done by controllers through the
API.
"""

from __future__ import annotations

import logging
import ssl
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from kubesvc.api import errors
from kubesvc.api.resources import by_plural
from kubesvc.apiserver.app import create_app
from kubesvc.registry.generic import Registry, WriteOptions
from kubesvc.storage import open_store
from kubesvc.storage.contract import Store

log = logging.getLogger("kubesvc.apiserver")

SYSTEM_NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease")


@dataclass
class ApiServerConfig:
    storage_url: str = "memory://"
    bind_address: str = "127.0.0.1"
    port: int = 6443
    ssl_context: ssl.SSLContext | None = None
    authenticate: Callable[[web.Request], str | None] | None = None
    service_cidr: str = "10.0.0.0/16"
    node_port_range: tuple[int, int] = (30000, 32767)
    extra: dict[str, Any] = field(default_factory=dict)
    extra_bind_addresses: tuple[str, ...] = ()  # also listen here, on the same port (the cluster network)


def build_registry(store: Store, cfg: ApiServerConfig) -> Registry:
    from kubesvc.apiserver.patch import update_managed_fields
    from kubesvc.registry.kinds import default_strategies
    from kubesvc.registry.service.strategy import service_strategy

    strategies = default_strategies()
    svc = service_strategy(store, cfg.service_cidr, cfg.node_port_range)
    strategies[svc.resource] = svc

    def managed(old: dict[str, Any] | None, new: dict[str, Any], manager: str, operation: str) -> None:
        from kubesvc.api.meta import now_rfc3339

        update_managed_fields(old, new, manager=manager, operation=operation,
                              api_version=str(new.get("apiVersion", "v1")), now=now_rfc3339())

    return Registry(store, strategies, managed_fields=managed)


async def bootstrap(registry: Registry) -> None:
    """Create what every cluster has, if absent (idempotent across restarts)."""
    ns_res = by_plural("", "v1", "namespaces")
    svc_res = by_plural("", "v1", "services")
    assert ns_res and svc_res
    sys_opts = WriteOptions(field_manager="kube-apiserver")
    for ns in SYSTEM_NAMESPACES:
        try:
            await registry.create(ns_res, None, {"metadata": {"name": ns}}, sys_opts)
        except errors.StatusError as e:
            if e.reason != "AlreadyExists":
                raise
    kubernetes_svc = {
        "metadata": {"name": "kubernetes", "namespace": "default",
                     "labels": {"component": "apiserver", "provider": "kubernetes"}},
        "spec": {"type": "ClusterIP", "clusterIP": "10.0.0.1", "sessionAffinity": "None",
                 "ports": [{"name": "https", "port": 443, "protocol": "TCP", "targetPort": 6443}]},
    }
    try:
        await registry.get(svc_res, "default", "kubernetes")
    except errors.StatusError as e:
        if e.reason != "NotFound":
            raise
        await registry.create(svc_res, "default", kubernetes_svc, sys_opts)


class ApiServer:
    """Owns the store and the HTTPS site; ``start()`` then ``stop()``."""

    def __init__(self, cfg: ApiServerConfig) -> None:
        self.cfg = cfg
        self.store: Store | None = None
        self.registry: Registry | None = None
        self._runner: web.AppRunner | None = None
        self._ready = False
        self.port = cfg.port

    async def start(self) -> None:
        self.store = open_store(self.cfg.storage_url)
        self.registry = build_registry(self.store, self.cfg)
        strat = self.registry.strategies.get(by_plural("", "v1", "services"))  # type: ignore[arg-type]
        restore = getattr(strat, "restore", None)
        if restore is not None:
            await restore()
        await bootstrap(self.registry)
        app = create_app(
            self.registry, authenticate=self.cfg.authenticate,
            server_address=f"{self.cfg.bind_address}:{self.cfg.port}", ready=lambda: self._ready,
        )
        from kubesvc.apiserver.subresources import AGENT_TOKEN

        app[AGENT_TOKEN] = str(self.cfg.extra.get("agent_token") or "")
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.cfg.bind_address, self.cfg.port, ssl_context=self.cfg.ssl_context,
                           reuse_address=True, backlog=1024)
        await site.start()
        if self.cfg.port == 0:
            server = site._server  # noqa: SLF001 - aiohttp exposes no public accessor for the bound port
            assert server is not None and server.sockets
            self.port = server.sockets[0].getsockname()[1]
        for addr in self.cfg.extra_bind_addresses:
            await web.TCPSite(self._runner, addr, self.port, ssl_context=self.cfg.ssl_context,
                              reuse_address=True, backlog=1024).start()
        self._ready = True

    async def stop(self) -> None:
        self._ready = False
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        if self.store is not None:
            await self.store.close()
            self.store = None
