"""``kubesvc agent``: one node's agent, run inside the node's network namespace.

``kubesvc up --nodes N`` starts one per node; it also runs alone against any
apiserver given a kubeconfig.  SIGTERM stops it (and every pod it runs).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import logging
import signal
from pathlib import Path
from typing import Any

log = logging.getLogger("kubesvc.agent")


def add_agent_parser(sub: Any) -> None:
    p = sub.add_parser("agent", help="run a node agent (registers the node, runs its pods)")
    p.add_argument("--kubeconfig", type=Path, required=True)
    p.add_argument("--node-name", required=True)
    p.add_argument("--node-ip", required=True, help="the node's address (InternalIP; logs are served there)")
    p.add_argument("--pod-cidr", required=True, help="this node's pod addresses, e.g. 10.244.1.0/24")
    p.add_argument("--state-dir", type=Path, required=True, help="IP allocations and pod state (for adoption)")
    p.add_argument("--token-file", type=Path, default=None, help="the shared secret the apiserver presents for logs")
    p.add_argument("--port", type=int, default=10250)
    p.add_argument("--exit-with-parent", action="store_true", help="get SIGTERM when the parent process dies")


async def run_agent(args: argparse.Namespace) -> int:
    from kubesvc.agent.agent import Agent, AgentConfig
    from kubesvc.agent.sysexec import HostRunner
    from kubesvc.api.parentdeath import exit_with_parent
    from kubesvc.client.rest import ApiClient

    if args.exit_with_parent:
        exit_with_parent()
    token = args.token_file.read_text().strip() if args.token_file else ""
    cfg = AgentConfig(args.node_name, args.node_ip, args.pod_cidr, args.state_dir.absolute(), token, args.port)
    client = ApiClient.from_kubeconfig(args.kubeconfig, user_agent=f"kubesvc-agent/{args.node_name}")
    agent = Agent(cfg, client, HostRunner())
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    starter = asyncio.create_task(_start_with_retry(agent))
    await stop.wait()
    starter.cancel()
    await asyncio.gather(starter, return_exceptions=True)
    log.info("agent %s stopping", args.node_name)
    await agent.stop()
    await client.close()
    return 0


async def _start_with_retry(agent: Any) -> None:
    """The apiserver may not answer yet: keep trying, as the kubelet does."""
    delay = 0.2
    while True:
        try:
            await agent.start()
            # What start built (modules, caches, connections) lives as long as the agent: one full collection
            # now, whose survivors the process's GC policy freezes (kubesvc.cli.gcpolicy, set by run_loop),
            # keeps later ones from rescanning it in the middle of a pod burst (an unfrozen first full
            # collection was measured at ~200 ms, a stall of every pod starting then).
            gc.collect()
            return
        except asyncio.CancelledError:
            raise
        except Exception as e:  # noqa: BLE001 - logged and retried
            log.warning("agent start failed (%s); retrying in %.1fs", e, delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 5.0)
