"""Start, watch and stop the node agents of ``kubesvc up --nodes N``.

Each agent is a separate process inside its node's network namespace
(``nsenter --net``, not ``ip netns exec``: the agent must stay in the host's
mount namespace, or the pod namespaces it creates would be bind-mounted where
nobody else sees them).  An agent that dies is not restarted (a dead kubelet
stays dead, and its node goes NotReady); ``up`` logs it loudly instead.
Agents get SIGTERM when ``up`` stops, and die with it if it is killed
(``--exit-with-parent``: PR_SET_PDEATHSIG).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import signal
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from kubesvc.agent.hostnet import HostNetwork, NodeNet
from kubesvc.agent.sysexec import HostRunner

log = logging.getLogger("kubesvc.agent.supervisor")

AGENT_PORT = 10250  # upstream's kubelet port; the apiserver proxies logs to it


@dataclass
class AgentProcess:
    node: NodeNet
    dir: Path
    proc: asyncio.subprocess.Process | None = None
    watcher: asyncio.Task[None] | None = None
    stopping: bool = field(default=False)


def agent_argv(node: NodeNet, node_dir: Path, token_file: Path) -> list[str]:
    """The command line of one node's agent (also what a test runs to restart one)."""
    return ["nsenter", f"--net=/run/netns/{node.netns}", "--",
            sys.executable, "-m", "kubesvc", "agent",
            "--kubeconfig", str(node_dir / "kubeconfig"), "--node-name", node.name,
            "--node-ip", node.ip, "--pod-cidr", node.pod_cidr,
            "--state-dir", str(node_dir / "state"), "--token-file", str(token_file),
            "--port", str(AGENT_PORT), "--exit-with-parent"]


class AgentSupervisor:
    """The node agents of one ``kubesvc up``."""

    def __init__(self, data_dir: Path, nodes: list[NodeNet]) -> None:
        self.base = data_dir / "nodes"
        self.nodes = nodes
        self.token_file = self.base / "agent-token"
        self.agents: list[AgentProcess] = []

    def make_token(self) -> str:
        """A fresh shared secret per run: the apiserver shows it to agents when it proxies logs."""
        self.base.mkdir(parents=True, exist_ok=True, mode=0o700)
        token = secrets.token_urlsafe(32)
        self.token_file.touch(mode=0o600)
        self.token_file.write_text(token + "\n")
        return token

    async def start(self, write_kubeconfig: Callable[[Path], None]) -> None:
        """``write_kubeconfig(path)`` writes a kubeconfig pointing at the cluster-network address."""
        for node in self.nodes:
            d = self.base / node.name
            d.mkdir(parents=True, exist_ok=True, mode=0o700)
            write_kubeconfig(d / "kubeconfig")
            log_file = open(d / "agent.log", "ab")  # noqa: SIM115 - handed to the child
            try:
                proc = await asyncio.create_subprocess_exec(
                    *agent_argv(node, d, self.token_file), stdin=asyncio.subprocess.DEVNULL,
                    stdout=log_file, stderr=log_file, start_new_session=True)
            finally:
                log_file.close()
            a = AgentProcess(node, d, proc)
            a.watcher = asyncio.create_task(self._watch(a))
            self.agents.append(a)

    async def _watch(self, a: AgentProcess) -> None:
        assert a.proc is not None
        rc = await a.proc.wait()
        if not a.stopping:
            msg = (f"kubesvc: the agent of {a.node.name} exited with code {rc}; it is not restarted "
                   f"(see {a.dir / 'agent.log'})")
            log.error(msg)
            print(msg, file=sys.stderr, flush=True)

    async def stop(self, timeout: float = 20.0) -> None:
        """SIGTERM every agent (they stop their pods), SIGKILL what is left after ``timeout``."""
        for a in self.agents:
            a.stopping = True
            if a.proc is not None and a.proc.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    a.proc.send_signal(signal.SIGTERM)
        for a in self.agents:
            if a.proc is None:
                continue
            try:
                await asyncio.wait_for(a.proc.wait(), timeout)
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    a.proc.kill()
                await a.proc.wait()
            if a.watcher is not None:
                await a.watcher


class NodeCluster:
    """What ``kubesvc up --nodes N`` adds: the host network, then one agent per node."""

    def __init__(self, data_dir: Path, count: int) -> None:
        self.net = HostNetwork(HostRunner(), count)
        self.agents = AgentSupervisor(data_dir, self.net.nodes)
        self.agent_token = ""

    async def prepare(self, wait: float = 0.0) -> str:
        """Build the network (before the apiserver listens on it); return the agents' shared token.

        ``wait``: how long to wait for another ``up``'s cluster network to go away.
        """
        await self.net.setup(wait)
        return self.agents.make_token()

    async def start_agents(self, write_kubeconfig: Callable[[Path], None]) -> None:
        await self.agents.start(write_kubeconfig)

    async def stop(self) -> None:
        try:
            await self.agents.stop()
        finally:
            await self.net.teardown()
