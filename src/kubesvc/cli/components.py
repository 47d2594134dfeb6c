"""Start the in-process controllers of ``kubesvc up`` as API clients.

They talk to the apiserver through its HTTPS API with the same kubeconfig a
user gets, exactly as they would when run alone against any cluster.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from kubesvc.api.addressplan import NODE_NETWORK_GATEWAY
from kubesvc.client.controller import Controller
from kubesvc.client.rest import ApiClient
from kubesvc.client.sharedinformers import SharedInformerFactory

log = logging.getLogger("kubesvc")


def controllers(client: ApiClient, factory: SharedInformerFactory | None = None) -> list[Controller]:
    from kubesvc.controllers.garbagecollector import GarbageCollector
    from kubesvc.controllers.namespace import NamespaceController
    from kubesvc.controllers.serviceaccount import ServiceAccountController

    return [GarbageCollector(client, factory=factory), NamespaceController(client, factory=factory),
            ServiceAccountController(client, factory=factory)]


def endpoint_controllers(client: ApiClient, advertise_address: str, apiserver_port: int | None,
                         max_endpoints_per_slice: int = 100,
                         factory: SharedInformerFactory | None = None) -> list[Controller]:
    """EndpointSlices, Endpoints, mirroring, and the ``kubernetes`` Service's endpoints.

    The API server's port defaults to the one in the kubeconfig's server URL.
    """
    from urllib.parse import urlparse

    from kubesvc.controllers.endpoints import EndpointsController
    from kubesvc.controllers.endpointslice.controller import EndpointSliceController
    from kubesvc.controllers.endpointslicemirroring import EndpointSliceMirroringController
    from kubesvc.controllers.kubernetesendpoints import KubernetesEndpointsController

    port = apiserver_port or urlparse(client.config.server).port or 443
    return [EndpointSliceController(client, max_endpoints_per_slice=max_endpoints_per_slice, factory=factory),
            EndpointsController(client, factory=factory), EndpointSliceMirroringController(client, factory=factory),
            KubernetesEndpointsController(client, advertise_address, port, factory=factory)]


def workload_controllers(client: ApiClient, factory: SharedInformerFactory | None = None) -> list[Controller]:
    """ReplicaSets, Deployments, the scheduler and node lifecycle.

    ``KUBESVC_NODE_MONITOR_GRACE_PERIOD`` (seconds, default upstream's 40) is how
    long a node may stay silent before it is NotReady;
    ``KUBESVC_POD_EVICTION_DELAY`` (default 5, upstream's default tolerations
    say 300) how long its pods then stay before they are evicted and recreated.
    """
    import os

    from kubesvc.controllers.deployment import DeploymentController
    from kubesvc.controllers.nodelifecycle import NodeLifecycleController
    from kubesvc.controllers.replicaset import ReplicaSetController
    from kubesvc.controllers.scheduler import Scheduler

    grace = float(os.environ.get("KUBESVC_NODE_MONITOR_GRACE_PERIOD") or 40)
    eviction = float(os.environ.get("KUBESVC_POD_EVICTION_DELAY") or 5)
    return [ReplicaSetController(client, factory=factory), DeploymentController(client, factory=factory),
            Scheduler(client, factory=factory),
            NodeLifecycleController(client, grace_period=grace, eviction_delay=eviction,
                                    monitor_period=min(5.0, max(grace / 4, 0.5)), factory=factory)]


def metric_registries(running: list[Controller]) -> list[Any]:
    """The Prometheus registries of the controllers that keep figures (a ``metrics.registry``)."""
    from kubesvc.client.queuemetrics import REGISTRY as WORKQUEUES

    regs = [getattr(getattr(c, "metrics", None), "registry", None) for c in running]
    return [r for r in regs if r is not None] + ([WORKQUEUES] if running else [])


async def start_controllers(kubeconfig: Path, *, advertise_address: str = NODE_NETWORK_GATEWAY,
                            apiserver_port: int | None = None,
                            metrics_address: tuple[str, int] | None = ("127.0.0.1", 10257),
                            ) -> Callable[[], Awaitable[None]]:
    """Start every controller, all on one set of shared informers; return the coroutine function that stops them all.

    Their ``/metrics`` are served on ``metrics_address`` (kube-controller-manager's
    port 10257 on loopback, or a free port when that is taken: the line
    ``kubesvc controllers: metrics on URL`` says which); None serves none.
    """
    from kubesvc.controllers.metricsserver import start_metrics_server

    client = ApiClient.from_kubeconfig(kubeconfig, user_agent="kubesvc-controller-manager")
    factory = SharedInformerFactory(client)
    running = (controllers(client, factory)
               + endpoint_controllers(client, advertise_address, apiserver_port, factory=factory)
               + workload_controllers(client, factory))
    factory.start()
    await asyncio.gather(*(c.start() for c in running))
    metrics = None
    if metrics_address is not None:
        host, want = metrics_address
        metrics, port = await start_metrics_server(metric_registries(running), host, want)
        print(f"kubesvc controllers: metrics on http://{host}:{port}/metrics", flush=True)

    async def stop() -> None:
        if metrics is not None:
            await metrics.cleanup()
        await asyncio.gather(*(c.stop() for c in running), return_exceptions=True)
        await factory.stop()
        await client.close()

    return stop


def add_lb_flags(up: Any) -> None:
    """``--lb-pool``: LoadBalancer addresses; written to the ``default`` IPAddressPool at start."""
    from kubesvc.api.addressplan import LB_POOL

    up.add_argument("--lb-pool", action="append", default=None, metavar="CIDR|FIRST-LAST",
                    help=f"LoadBalancer address pool entry (repeatable; default {LB_POOL})")


def lb_pool_entries(args: Any) -> list[str]:
    """The ``--lb-pool`` entries, validated now so a bad one stops ``up`` with one line before it starts."""
    from kubesvc.api.addressplan import LB_POOL
    from kubesvc.cli.errors import CliError
    from kubesvc.lb.pools import DEFAULT_POOL, PoolError, make_pool

    entries = [e for flag in (getattr(args, "lb_pool", None) or [LB_POOL]) for e in flag.split(",") if e.strip()]
    try:
        make_pool(DEFAULT_POOL, entries, service_cidr=args.service_cidr)
    except PoolError as e:
        raise CliError(f"invalid --lb-pool: {e}") from None
    return entries


async def start_lb(kubeconfig: Path, pool_entries: list[str], *, kernel: bool,
                   service_cidr: str) -> Callable[[], Awaitable[None]]:
    """Write the ``default`` pool from the flags, start the LoadBalancer controller; return its stop.

    Announcement (host routes) only in kernel mode, i.e. when this ``up`` built
    the node network: with ``--nodes 0`` a bridge left by another cluster is not ours.
    """
    from kubesvc.lb.announce import RouteAnnouncer, bridge_exists
    from kubesvc.lb.controller import POOLS, LoadBalancerController
    from kubesvc.lb.pools import DEFAULT_POOL, pool_object

    client = ApiClient.from_kubeconfig(kubeconfig, user_agent="kubesvc-lb-controller")
    assert POOLS is not None
    want = pool_object(DEFAULT_POOL, pool_entries)
    try:
        have = await client.get(POOLS, DEFAULT_POOL)
        if (have.get("spec") or {}).get("addresses") != pool_entries:
            have["spec"] = {**(have.get("spec") or {}), "addresses": pool_entries}
            await client.replace(POOLS, have)
    except Exception as e:
        from kubesvc.client.rest import is_not_found

        if not is_not_found(e):
            raise
        await client.create(POOLS, want)
    announcer = RouteAnnouncer() if kernel and bridge_exists() else None
    lb = LoadBalancerController(client, service_cidr=service_cidr, announcer=announcer)
    await lb.start()
    log.info("lb: started (%s)", "kernel mode: host routes" if announcer else "addresses only")

    async def stop() -> None:
        await lb.stop()
        await client.close()

    return stop
