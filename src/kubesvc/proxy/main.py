"""``kubesvc proxy`` and :func:`run_proxy`: the proxy as an API client.

Lists and watches Services, EndpointSlices and Nodes (any Kubernetes API
server: kubesvc's or a real cluster's) and keeps the node's ``kubesvc``
nftables table in step.  The node agent of ``kubesvc up`` calls
:func:`run_proxy` with ``netns`` set to its node namespace; run alone, the
proxy is started inside the namespace (``ip netns exec ks-node-1 kubesvc
proxy ...``) and ``netns`` stays None.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
from pathlib import Path

from kubesvc.api.resources import by_plural
from kubesvc.client.informer import Informer
from kubesvc.client.rest import ApiClient

from . import conntrack
from .metrics import ProxyMetrics
from .nftables import Nft
from .nodeports import parse_nodeport_addresses
from .proxier import Proxier, ProxyConfig
from .server import HealthServers, start_metrics_server

log = logging.getLogger(__name__)


def _split_address(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    return host or "127.0.0.1", int(port)


async def run_proxy(kubeconfig: Path, node_name: str, *, netns: str | None = None, cluster_cidr: str = "",
                    metrics_address: str = "127.0.0.1:10249", min_sync_interval: float = 0.05,
                    full_sync_interval: float = 300.0, stop: asyncio.Event | None = None,
                    cleanup_on_exit: bool = False, nodeport_addresses: tuple[str, ...] = (),
                    conntrack_tcp_be_liberal: bool = False) -> None:
    """Run until cancelled or ``stop`` is set.

    ``metrics_address`` "" disables /metrics; it listens inside ``netns``.
    ``nodeport_addresses`` as kube-proxy's flag (see :mod:`.nodeports`); () opens NodePorts on
    every address of the node but loopback.  ``conntrack_tcp_be_liberal`` sets the node's
    nf_conntrack_tcp_be_liberal (upstream's answer to INVALID packets; see :mod:`.conntrack`).
    ``cleanup_on_exit`` deletes the table when stopping (tests; a restarting
    proxy normally keeps the rules in force and repairs them on its full sync).
    """
    client = ApiClient.from_kubeconfig(kubeconfig, user_agent=f"kubesvc-proxy/{node_name}")
    nft = Nft(netns=netns)
    metrics = ProxyMetrics()
    health = HealthServers(netns=netns)
    proxier = Proxier(ProxyConfig(node_name=node_name, cluster_cidr=cluster_cidr, netns=netns,
                                  min_sync_interval=min_sync_interval, full_sync_interval=full_sync_interval,
                                  nodeport_addresses=parse_nodeport_addresses(nodeport_addresses)),
                      nft, metrics, health)
    informers = _informers(client, proxier, node_name)
    metrics_runner = None
    tasks: list[asyncio.Task[None]] = []
    try:
        if conntrack_tcp_be_liberal:
            await conntrack.set_tcp_be_liberal(netns)
        if metrics_address:
            host, port = _split_address(metrics_address)
            metrics_runner = await start_metrics_server(metrics, host, port, lambda: proxier.healthy, netns,
                                                        proxier.programmed)
        for inf in informers.values():
            inf.start()
        tasks.append(asyncio.create_task(proxier.runner.loop(), name=f"proxy-{node_name}"))
        tasks.append(asyncio.create_task(_mark_synced(informers, proxier)))
        await (stop.wait() if stop else asyncio.Event().wait())
    finally:
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for inf in informers.values():
            await inf.stop()
        await health.close()
        if metrics_runner is not None:
            proxier.programmed.close()
            await metrics_runner.cleanup()
        await client.close()
        if cleanup_on_exit:
            with contextlib.suppress(Exception):
                await asyncio.to_thread(nft.delete_table)
        nft.close()


def _informers(client: ApiClient, proxier: Proxier, node_name: str) -> dict[str, Informer]:
    services = by_plural("", "v1", "services")
    slices = by_plural("discovery.k8s.io", "v1", "endpointslices")
    nodes = by_plural("", "v1", "nodes")
    assert services and slices and nodes
    out = {"services": Informer(client, services), "endpointslices": Informer(client, slices),
           "nodes": Informer(client, nodes)}
    out["services"].add_handler(lambda o: proxier.on_service(None, o), proxier.on_service,
                                lambda o: proxier.on_service(o, None))
    out["endpointslices"].add_handler(lambda o: proxier.on_slice(None, o), proxier.on_slice,
                                      lambda o: proxier.on_slice(o, None))

    def node_event(old: dict | None, new: dict | None) -> None:
        obj = new or old or {}
        if (obj.get("metadata") or {}).get("name") == node_name:
            proxier.on_node(old, new)

    out["nodes"].add_handler(lambda o: node_event(None, o), node_event, lambda o: node_event(o, None))
    return out


async def _mark_synced(informers: dict[str, Informer], proxier: Proxier) -> None:
    await informers["nodes"].wait_synced()
    for what in ("services", "endpointslices"):
        await informers[what].wait_synced()
        proxier.mark_synced(what)
    log.info("proxy for node %s: caches synced, programming rules", proxier.config.node_name)


def add_proxy_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    px = sub.add_parser("proxy", help="run the Service data plane (nftables) for one node")
    px.add_argument("--kubeconfig", type=Path, required=True, help="kubeconfig of the API server (kubesvc or any cluster)")
    px.add_argument("--node-name", required=True, help="the Node this proxy programs")
    px.add_argument("--cluster-cidr", default="",
                    help="pod CIDR of the cluster: ClusterIP traffic from outside it is masqueraded")
    px.add_argument("--netns", default=None, help="program this named network namespace (default: the current one)")
    px.add_argument("--metrics-bind-address", default="127.0.0.1:10249",
                    help="/metrics and /healthz (default %(default)s; '' disables)")
    px.add_argument("--min-sync-period", type=float, default=0.05,
                    help="seconds between syncs at least (default %(default)s)")
    px.add_argument("--nodeport-addresses", action="append", default=[], metavar="CIDR[,CIDR...]|primary",
                    help="accept NodePort connections only on the node's addresses in these CIDRs, or on its "
                         "primary IP ('primary'); repeatable (default: every address but loopback)")
    px.add_argument("--conntrack-tcp-be-liberal", action="store_true",
                    help="set nf_conntrack_tcp_be_liberal=1 in the node's namespace, so out-of-window TCP "
                         "packets are not INVALID (the proxy drops no INVALID packets, as upstream's nftables mode)")


async def main_proxy(args: argparse.Namespace) -> int:  # type: ignore[no-untyped-def]
    """The ``kubesvc proxy`` command: run until SIGINT/SIGTERM."""
    import signal
    import sys

    try:
        nodeport_addresses = parse_nodeport_addresses(args.nodeport_addresses)
    except ValueError as e:
        print(f"kubesvc proxy: --nodeport-addresses: {e}", file=sys.stderr)
        return 2
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await run_proxy(args.kubeconfig, args.node_name, netns=args.netns, cluster_cidr=args.cluster_cidr,
                    metrics_address=args.metrics_bind_address, min_sync_interval=args.min_sync_period, stop=stop,
                    nodeport_addresses=nodeport_addresses, conntrack_tcp_be_liberal=args.conntrack_tcp_be_liberal)
    return 0
