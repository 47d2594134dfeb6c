"""Cluster DNS in the command line: ``kubesvc dns`` alone, and inside ``kubesvc up``.

In ``up`` the server runs on the same loop as everything else and is
published the way a cluster publishes CoreDNS: the selectorless Service
``kube-system/kube-dns`` at the cluster DNS address, plus an EndpointSlice
(and a mirror-skipping Endpoints) that point at where the server really
listens, so the data plane can carry 10.0.0.10:53 to it.  It listens on
127.0.0.1 and, when the host bridge exists, on the host's bridge address,
which pods in node namespaces can reach.  Port 53 is preferred; if it is
taken (another cluster on the same machine), an ephemeral port is used and
the endpoints say so.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import signal
from collections.abc import Awaitable, Callable, Coroutine
from pathlib import Path
from typing import Any

from kubesvc.api.addressplan import CLUSTER_DNS_IP, HOST_BRIDGE, NODE_NETWORK_GATEWAY
from kubesvc.api.resources import by_kind
from kubesvc.cli.errors import CliError
from kubesvc.client.rest import ApiClient, ApiError, is_not_found
from kubesvc.dns.forward import parse_addr
from kubesvc.dns.run import DnsServer, run_dns, start_dns

log = logging.getLogger("kubesvc")
NAMESPACE, NAME = "kube-system", "kube-dns"
SLICE_NAME = "kube-dns-kubesvc"
MANAGED_BY = "kubesvc-dns"


def add_dns_parser(sub: Any) -> None:
    p = sub.add_parser("dns", help="run the cluster DNS server alone, against any cluster")
    p.add_argument("--kubeconfig", type=Path, required=True, help="the cluster to serve names for")
    p.add_argument("--listen", action="append", default=None, metavar="HOST:PORT",
                   help="address to serve DNS on, UDP and TCP (repeatable; default 127.0.0.53:53)")
    p.add_argument("--ttl", type=int, default=30, help="TTL of answers, seconds (default 30)")
    p.add_argument("--upstream", action="append", default=None, metavar="HOST[:PORT]",
                   help="resolver for names outside the zone (repeatable; default: /etc/resolv.conf)")
    p.add_argument("--metrics", default="127.0.0.1:9153", metavar="HOST:PORT",
                   help="where /metrics is served (default 127.0.0.1:9153; 'none' to disable)")
    p.add_argument("--cluster-domain", default="cluster.local", help="the zone (default cluster.local)")
    p.add_argument("--pods", choices=["insecure", "verified", "disabled"], default="insecure",
                   help="a-b-c-d.<ns>.pod names: for any address (insecure, the default), only for "
                        "a pod's own address in its namespace (verified: watches Pods), or never (disabled)")
    p.add_argument("--reuse-port", action="store_true",
                   help="SO_REUSEPORT, so several `kubesvc dns` processes share one address")
    p.add_argument("--workers", type=int, default=1,
                   help="processes answering on the same addresses (SO_REUSEPORT; default 1)")
    p.add_argument("--parent-pid", type=int, default=None, help=argparse.SUPPRESS)


def add_up_flags(up: argparse.ArgumentParser) -> None:
    up.add_argument("--dns-port", type=int, default=53,
                    help="cluster DNS port on 127.0.0.1 and the host bridge (default 53; 0 for any free port)")
    up.add_argument("--dns-pods", choices=["insecure", "verified", "disabled"], default="insecure",
                    help="cluster DNS pod names a-b-c-d.<ns>.pod: as `kubesvc dns --pods` (default insecure)")
    up.add_argument("--dns-upstream", action="append", default=None, metavar="HOST[:PORT]",
                    help="resolver for names outside the cluster (repeatable; default: /etc/resolv.conf)")


def run_dns_command(args: argparse.Namespace) -> Coroutine[Any, Any, int]:
    """The coroutine ``kubesvc dns`` runs: serve until SIGINT/SIGTERM."""
    if not 0 <= args.ttl <= 3600:
        raise CliError(f"invalid --ttl {args.ttl}: want 0-3600 seconds")
    try:
        listen = [parse_addr(a) for a in (args.listen or ["127.0.0.53:53"])]
        upstreams = [parse_addr(a) for a in args.upstream] if args.upstream else None
        metrics = None if args.metrics == "none" else parse_addr(args.metrics, 9153)
    except ValueError as e:
        raise CliError(f"invalid address: {e}") from None
    from kubesvc.api.parentdeath import exit_with_parent
    from kubesvc.cli.dnsworkers import check_workers, run_workers, worker_argv

    check_workers(args, [port for _, port in listen])
    if args.parent_pid and not exit_with_parent(args.parent_pid):  # SIGTERM when the first worker goes
        raise CliError(f"the first dns worker (pid {args.parent_pid}) is gone")

    async def main() -> int:
        task = asyncio.ensure_future(run_dns(args.kubeconfig, listen, ttl=args.ttl, upstreams=upstreams,
                                             metrics=metrics, domain=args.cluster_domain,
                                             reuse_port=args.reuse_port or args.workers > 1, pods=args.pods))
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, task.cancel)
        helpers: list[asyncio.Task[None]] = []
        stop = asyncio.Event()
        if args.workers > 1:
            helpers.append(asyncio.create_task(run_workers(worker_argv(args), args.workers - 1, stop)))
        try:
            await task
        except asyncio.CancelledError:
            return 0
        except OSError as e:
            raise CliError(f"cannot serve DNS: {e.strerror or e}") from None
        finally:
            stop.set()  # run_workers stops the extra workers and returns
            await asyncio.gather(*helpers, return_exceptions=True)
        return 0

    return main()


async def start_cluster_dns(kubeconfig: Path, port: int = 53, *, pods: str = "insecure",
                            upstreams: list[str] | None = None) -> Callable[[], Awaitable[None]]:
    """Run DNS for ``kubesvc up`` and publish it as ``kube-dns``; return its stopper."""
    addresses = ["127.0.0.1"]
    if os.path.exists(f"/sys/class/net/{HOST_BRIDGE}"):
        addresses.insert(0, NODE_NETWORK_GATEWAY)
    try:
        forward_to = [parse_addr(a) for a in upstreams] if upstreams else None
    except ValueError as e:
        raise CliError(f"invalid --dns-upstream: {e}") from None
    srv = await _bind(kubeconfig, addresses, port, pods, forward_to)
    primary_host, primary_port = srv.addresses[0]
    print("kubesvc dns: serving on " + ", ".join(f"{h}:{p}" for h, p in srv.addresses), flush=True)
    client = ApiClient.from_kubeconfig(kubeconfig, user_agent="kubesvc-dns-bootstrap")
    try:
        await publish(client, primary_host, primary_port, srv.metrics_address[1] if srv.metrics_address else 9153)
    except (ApiError, OSError) as e:
        log.warning("dns: cannot publish kube-dns: %s", e)
    finally:
        await client.close()

    async def stop() -> None:
        await srv.stop()

    return stop


async def _bind(kubeconfig: Path, addresses: list[str], port: int, pods: str,
                upstreams: list[tuple[str, int]] | None) -> DnsServer:
    """Port 53 (and 9153 for metrics) when free, else ephemeral ports."""
    try:
        return await start_dns(kubeconfig, [(a, port) for a in addresses], metrics=(addresses[0], 9153), pods=pods,
                               upstreams=upstreams)
    except OSError as e:
        log.warning("dns: port %d or 9153 is taken (%s); using free ports", port, e.strerror or e)
    return await start_dns(kubeconfig, [(a, 0) for a in addresses], metrics=(addresses[0], 0), pods=pods,
                           upstreams=upstreams)


async def publish(client: ApiClient, host: str, port: int, metrics_port: int) -> None:
    """Create or refresh the kube-dns Service, EndpointSlice and Endpoints."""
    svc_res, slice_res, ep_res = by_kind("v1", "Service"), by_kind("discovery.k8s.io/v1", "EndpointSlice"), \
        by_kind("v1", "Endpoints")
    assert svc_res and slice_res and ep_res
    labels = {"k8s-app": "kube-dns", "kubernetes.io/cluster-service": "true", "kubernetes.io/name": "KubeDNS"}
    ports = [("dns", 53, "UDP"), ("dns-tcp", 53, "TCP"), ("metrics", 9153, "TCP")]
    svc = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": NAME, "namespace": NAMESPACE, "labels": labels},
           "spec": {"clusterIP": CLUSTER_DNS_IP, "ports": [
               {"name": n, "port": p, "targetPort": p, "protocol": proto} for n, p, proto in ports]}}
    with contextlib.suppress(ApiError):  # exists already (a restart): leave the user's object alone
        await client.create(svc_res, svc, NAMESPACE)
    real = {"dns": port, "dns-tcp": port, "metrics": metrics_port}
    slice_ = {
        "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice", "addressType": "IPv4",
        "metadata": {"name": SLICE_NAME, "namespace": NAMESPACE, "labels": {
            **labels, "kubernetes.io/service-name": NAME, "endpointslice.kubernetes.io/managed-by": MANAGED_BY}},
        "endpoints": [{"addresses": [host], "conditions": {"ready": True, "serving": True, "terminating": False}}],
        "ports": [{"name": n, "port": real[n], "protocol": proto} for n, _, proto in ports],
    }
    endpoints = {
        "apiVersion": "v1", "kind": "Endpoints",
        "metadata": {"name": NAME, "namespace": NAMESPACE,
                     "labels": {**labels, "endpointslice.kubernetes.io/skip-mirror": "true"}},
        "subsets": [{"addresses": [{"ip": host}],
                     "ports": [{"name": n, "port": real[n], "protocol": proto} for n, _, proto in ports]}],
    }
    await _upsert(client, slice_res, slice_)
    try:
        await _upsert(client, ep_res, endpoints)
    except ApiError as e:  # the Endpoints API may refuse loopback addresses; the slice is what matters
        log.info("dns: kube-dns Endpoints not written: %s", e.message)


async def _upsert(client: ApiClient, res: Any, body: dict[str, Any]) -> None:
    name = body["metadata"]["name"]
    try:
        current = await client.get(res, name, NAMESPACE)
    except ApiError as e:
        if not is_not_found(e):
            raise
        await client.create(res, body, NAMESPACE)
        return
    body["metadata"]["resourceVersion"] = current["metadata"]["resourceVersion"]
    await client.replace(res, body, NAMESPACE)
