"""Assembling and running the DNS server: cache, resolver, transports, metrics.

``start_dns`` returns a running :class:`DnsServer` (``kubesvc up`` embeds it
on its own loop); ``run_dns`` runs one until cancelled (``kubesvc dns``).
Port 0 binds an ephemeral port (UDP first, then TCP on the same number),
and :attr:`DnsServer.addresses` reports what was really bound.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

from aiohttp import web

from kubesvc.api.addressplan import CLUSTER_DNS_IP, CLUSTER_DOMAIN, POD_CIDR, SERVICE_CIDR
from kubesvc.client.rest import ApiClient

from .answer import POD_MODES, Zone
from .forward import Addr, Forwarder, resolv_conf_upstreams
from .index import MemoryIndex
from .metrics import Stats, bound_port, start_metrics_server
from .resolver import Resolver
from .server import AnswerCache, TcpServer, UdpServer, bind
from .watch import WatchCache

log = logging.getLogger(__name__)


@dataclass
class DnsServer:
    """A running DNS server; everything it owns, so ``stop()`` can undo it all."""

    client: ApiClient
    cache: WatchCache
    index: MemoryIndex
    stats: Stats
    addresses: list[Addr] = field(default_factory=list)
    metrics_address: Addr | None = None
    _udp: list[UdpServer] = field(default_factory=list)
    _tcp: list[asyncio.Server] = field(default_factory=list)
    _metrics: web.AppRunner | None = None

    async def wait_synced(self, timeout: float | None = None) -> None:
        await self.cache.wait_synced(timeout)

    async def stop(self) -> None:
        for t in self._udp:
            t.close()
        for s in self._tcp:
            s.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(s.wait_closed(), 2)
        if self._metrics is not None:
            await self._metrics.cleanup()
        await self.cache.stop()
        await self.client.close()


async def start_dns(kubeconfig: str | os.PathLike[str], listen: list[Addr], *, ttl: int = 30,
                    upstreams: list[Addr] | None = None, metrics: Addr | None = ("127.0.0.1", 9153),
                    domain: str = CLUSTER_DOMAIN, dns_ips: tuple[str, ...] = (CLUSTER_DNS_IP,),
                    reuse_port: bool = False, forward_timeout: float = 2.0, pods: str = "insecure") -> DnsServer:
    """Bind every address, start the watch cache and return; answers SERVFAIL until synced.

    ``pods`` is CoreDNS's option of that name: ``insecure`` (the default), ``verified``
    (which watches Pods) or ``disabled``.
    """
    if pods not in POD_MODES:
        raise ValueError(f"pods must be one of {', '.join(POD_MODES)}, not {pods!r}")
    client = ApiClient.from_kubeconfig(Path(kubeconfig), user_agent="kubesvc-dns")
    index = MemoryIndex(synced=False)
    stats = Stats()
    answers = AnswerCache(stats)
    index.on_change(answers.clear)
    cache = WatchCache(client, index, pods=pods == "verified")
    srv = DnsServer(client, cache, index, stats)
    if upstreams is None:
        upstreams = resolv_conf_upstreams(exclude=set(listen))
    zone = Zone(domain=domain, ttl=ttl, dns_ips=dns_ips, reverse_cidrs=(SERVICE_CIDR, POD_CIDR), pods=pods)
    resolver = Resolver(index, zone, Forwarder(upstreams, timeout=forward_timeout), stats)
    tcp = TcpServer(resolver, stats)
    try:
        for host, port in listen:
            transport, server, bound = await bind(resolver, answers, stats, tcp, host, port, reuse_port)
            srv._udp.append(transport)
            srv._tcp.append(server)
            srv.addresses.append((host, bound))
        if metrics is not None:
            srv._metrics = await start_metrics_server(stats, *metrics)
            srv.metrics_address = (metrics[0], bound_port(srv._metrics))
    except BaseException:
        await srv.stop()
        raise
    index.on_change(lambda: setattr(stats, "synced", int(index.synced)))
    cache.start()
    log.info("dns: serving %s on %s (upstreams %s)", domain,
             ", ".join(f"{h}:{p}" for h, p in srv.addresses) or "nothing",
             ", ".join(f"{h}:{p}" for h, p in upstreams) or "none")
    return srv


async def run_dns(kubeconfig: str | os.PathLike[str], listen: list[Addr], **kw: object) -> None:
    """Serve until cancelled (SIGINT/SIGTERM in ``kubesvc dns``)."""
    srv = await start_dns(kubeconfig, listen, **kw)  # type: ignore[arg-type]
    try:
        with contextlib.suppress(TimeoutError):
            await srv.wait_synced(60)
            # A process of its own: the cache is long-lived, so keep the collector from rescanning it
            # (full collections over a large cache are the latency spikes worth avoiding).
            gc.collect()
            gc.freeze()
        await asyncio.Event().wait()
    finally:
        await srv.stop()
