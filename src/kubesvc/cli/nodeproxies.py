"""The per-node proxies of ``kubesvc up --nodes N``.

Each node runs kube-proxy's job inside its own network namespace.  The proxy
needs no process of its own there: it programs nftables from a thread that
has joined the node's namespace and opens its health-check and metrics
sockets inside it, so ``kubesvc up`` runs all of them on its event loop, as
API clients like every other component.  A node whose agent dies keeps its
proxy, as a node whose kubelet dies keeps kube-proxy.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Iterable
from pathlib import Path

from kubesvc.api import addressplan

log = logging.getLogger("kubesvc")


async def start_node_proxies(kubeconfig: Path, nodes: Iterable[tuple[str, str]], *,
                             nodeport_addresses: tuple[str, ...] = (),
                             conntrack_tcp_be_liberal: bool = False) -> Callable[[], Awaitable[None]]:
    """Start one proxy per (node name, netns); return the coroutine function that stops them."""
    from kubesvc.proxy.main import run_proxy

    stop = asyncio.Event()
    tasks = [
        asyncio.create_task(
            run_proxy(kubeconfig, name, netns=netns, cluster_cidr=addressplan.POD_CIDR, stop=stop,
                      nodeport_addresses=nodeport_addresses, conntrack_tcp_be_liberal=conntrack_tcp_be_liberal),
            name=f"proxy-{name}",
        )
        for name, netns in nodes
    ]

    def report(task: asyncio.Task[None]) -> None:
        if not task.cancelled() and task.exception() is not None:
            log.error("the proxy %s stopped: %s", task.get_name(), task.exception())

    for t in tasks:
        t.add_done_callback(report)

    async def stop_all() -> None:
        stop.set()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(asyncio.gather(*tasks, return_exceptions=True), 10)

    return stop_all
