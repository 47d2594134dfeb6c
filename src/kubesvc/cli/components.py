"""Start the in-process controllers of ``kubesvc up`` as API clients.

They talk to the apiserver through its HTTPS API with the same kubeconfig a
user gets, exactly as they would when run alone against any cluster.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from pathlib import Path

from kubesvc.client.controller import Controller
from kubesvc.client.rest import ApiClient

log = logging.getLogger("kubesvc")


def controllers(client: ApiClient) -> list[Controller]:
    from kubesvc.controllers.garbagecollector import GarbageCollector
    from kubesvc.controllers.namespace import NamespaceController
    from kubesvc.controllers.serviceaccount import ServiceAccountController

    return [GarbageCollector(client), NamespaceController(client), ServiceAccountController(client)]


async def start_controllers(kubeconfig: Path) -> Callable[[], Awaitable[None]]:
    """Start every controller; return the coroutine function that stops them all."""
    client = ApiClient.from_kubeconfig(kubeconfig, user_agent="kubesvc-controller-manager")
    running = controllers(client)
    await asyncio.gather(*(c.start() for c in running))

    async def stop() -> None:
        await asyncio.gather(*(c.stop() for c in running), return_exceptions=True)
        await client.close()

    return stop
