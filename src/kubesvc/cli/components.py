"""Start the in-process controllers of ``kubesvc up`` as API clients.

They talk to the apiserver through its HTTPS API with the same kubeconfig a
user gets, exactly as they would when run alone against any cluster.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from pathlib import Path

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


async def start_controllers(kubeconfig: Path, *, advertise_address: str = NODE_NETWORK_GATEWAY,
                            apiserver_port: int | None = None) -> Callable[[], Awaitable[None]]:
    """Start every controller, all on one set of shared informers; return the coroutine function that stops them all."""
    client = ApiClient.from_kubeconfig(kubeconfig, user_agent="kubesvc-controller-manager")
    factory = SharedInformerFactory(client)
    running = (controllers(client, factory)
               + endpoint_controllers(client, advertise_address, apiserver_port, factory=factory)
               + workload_controllers(client, factory))
    factory.start()
    await asyncio.gather(*(c.start() for c in running))

    async def stop() -> None:
        await asyncio.gather(*(c.stop() for c in running), return_exceptions=True)
        await factory.stop()
        await client.close()

    return stop
