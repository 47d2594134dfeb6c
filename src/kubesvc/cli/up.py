"""``kubesvc up``: the whole cluster in one process, on one event loop.

Order of start: lock the data dir (a second ``up`` on it refuses), make or load
the PKI, write the kubeconfig, start the API server, then the controllers as
API clients of it.  SIGINT/SIGTERM stop everything in reverse order, flushing
storage last, so no acknowledged write is lost on a clean stop (and none on a
crash either: writes are acknowledged only once durable).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import signal
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import IO, Any

from kubesvc.api import filelock
from kubesvc.cli.errors import CliError
from kubesvc.cli.main import default_data_dir

log = logging.getLogger("kubesvc")
NODE_NETWORK_GATEWAY = "172.18.0.1"


def lock_data_dir(data_dir: Path) -> IO[str]:
    """Hold an exclusive lock on ``DIR/kubesvc.lock`` for the life of the process."""
    data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    try:
        return filelock.take(data_dir / "kubesvc.lock")
    except filelock.Held as e:
        raise CliError(f"data dir {data_dir} is already in use by kubesvc (pid {e.owner}); "
                       "stop it first or pass another --data-dir") from None


def parse_port_range(text: str) -> tuple[int, int]:
    try:
        lo, hi = (int(x) for x in text.split("-", 1))
    except ValueError:
        raise CliError(f"invalid --service-node-port-range {text!r}: want LOW-HIGH, e.g. 30000-32767") from None
    if not 1 <= lo <= hi <= 65535:
        raise CliError(f"invalid --service-node-port-range {text!r}")
    return lo, hi


async def run_up(args: argparse.Namespace, *, with_controllers: bool) -> int:
    from kubesvc.apiserver.pki import authenticate, ensure_pki, write_kubeconfig
    from kubesvc.apiserver.server import ApiServer, ApiServerConfig

    data_dir: Path = (args.data_dir or default_data_dir()).absolute()
    lock = lock_data_dir(data_dir)
    storage = args.storage or f"sqlite:///{data_dir / 'state.db'}"
    pki = ensure_pki(data_dir, hosts=["127.0.0.1", "localhost", NODE_NETWORK_GATEWAY, args.bind_address])

    if with_controllers:
        from kubesvc.cli.componentproc import check_node_proxy_flags
        from kubesvc.cli.components import lb_pool_entries

        check_node_proxy_flags(args)
        lb_pool_entries(args)  # a bad --lb-pool stops us before anything starts
    nodes = await _prepare_nodes(args, data_dir, lock) if with_controllers else None

    def auth(request: Any) -> str | None:
        transport = request.transport
        peercert = transport.get_extra_info("peercert") if transport is not None else None
        return authenticate(peercert, request.headers.get("Authorization"), pki)

    cfg = ApiServerConfig(
        storage_url=storage, bind_address=args.bind_address, port=args.port,
        ssl_context=pki.server_ssl_context(), authenticate=auth,
        service_cidr=args.service_cidr, node_port_range=parse_port_range(args.service_node_port_range),
    )
    if nodes is not None:  # node agents reach the apiserver on the cluster network
        cfg.extra_bind_addresses = (NODE_NETWORK_GATEWAY,)
        cfg.extra["agent_token"] = nodes.agent_token
    server = ApiServer(cfg)
    try:
        await server.start()
    except OSError as e:
        if nodes is not None:
            await nodes.stop()
        lock.close()
        raise CliError(f"cannot listen on {args.bind_address}:{args.port}: {e.strerror or e}") from None
    except ValueError as e:
        if nodes is not None:
            await nodes.stop()
        lock.close()
        raise CliError(str(e)) from None
    host = "127.0.0.1" if args.bind_address in ("0.0.0.0", "::") else args.bind_address
    kubeconfig = data_dir / "kubeconfig"
    write_kubeconfig(kubeconfig, server=f"https://{host}:{server.port}", pki=pki)

    stoppers: list[Callable[[], Awaitable[None]]] = []
    if nodes is not None:
        await nodes.start_agents(
            lambda path: write_kubeconfig(path, server=f"https://{NODE_NETWORK_GATEWAY}:{server.port}", pki=pki))
        stoppers.append(nodes.stop)  # stopped last: agents stop their pods, then the network goes
    if with_controllers:
        from kubesvc.cli.componentproc import ComponentsProcess, child_argv

        node_list = [(n.name, n.netns) for n in nodes.net.nodes] if nodes is not None else []
        components = ComponentsProcess(child_argv(kubeconfig, args, node_list, kernel=nodes is not None))
        try:
            await components.start()
        except CliError:
            for s in reversed(stoppers):
                with contextlib.suppress(Exception):
                    await s()
            await server.stop()
            lock.close()
            raise
        stoppers.append(components.stop)
    print(f"kubesvc is up: export KUBECONFIG={kubeconfig}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    log.info("stopping")
    for s in reversed(stoppers):
        with contextlib.suppress(Exception):
            await s()
    await server.stop()
    lock.close()
    return 0


async def _prepare_nodes(args: argparse.Namespace, data_dir: Path, lock: IO[str]) -> Any:
    """Build the node network for ``--nodes N`` (kernel mode, root).

    Without ``--nodes``, one node as root (and none otherwise).  The cluster
    network is one per machine (one ``kubesvc0``): when another ``kubesvc up``
    holds it, a run without an explicit ``--nodes`` starts without nodes
    rather than waiting; tests that need no nodes pass ``--nodes 0``.
    """
    from kubesvc.agent.hostnet import NetworkBusy
    from kubesvc.agent.supervisor import NodeCluster

    count = args.nodes if args.nodes is not None else (1 if os.geteuid() == 0 else 0)
    if count <= 0:
        return None
    if os.geteuid() != 0:
        if args.nodes is None:
            log.info("not root: no nodes (kernel mode needs root)")
            return None
        lock.close()
        raise CliError("--nodes needs root (nodes are network namespaces)")
    nodes = NodeCluster(data_dir, count)
    try:
        nodes.agent_token = await nodes.prepare(wait=0.0 if args.nodes is None else 120.0)
    except NetworkBusy as e:
        if args.nodes is None:
            log.warning("%s: starting without nodes", e)
            return None
        lock.close()
        raise CliError(str(e)) from None
    except Exception as e:
        lock.close()
        raise CliError(f"cannot build the node network: {e}") from None
    return nodes
