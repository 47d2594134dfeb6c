"""The cluster network on the host: bridge, node namespaces, routes (kernel mode).

``kubesvc up --nodes N`` lays the nodes out the way kind does with containers:
the host bridge ``kubesvc0`` (172.18.0.1/16) stands for the outside network;
node N is the network namespace ``ks-node-N`` with ``eth0`` at 172.18.0.(N+1)
on that bridge and a bridge ``cbr0`` (10.244.N.1/24) for its pods.  Every
node and the host route each node's pod CIDR to that node's IP
(host-gateway routing), so pods reach pods on every node.

What to do is a pure plan (lists of ``ip -batch`` lines, unit-tested); the
:class:`HostNetwork` shell applies it and tears it down.  Only one cluster
network can exist on a machine (one ``kubesvc0``), so a flock on
``/run/kubesvc/network.lock`` is held for its whole life; whoever takes the
lock and finds leftovers (a crashed ``up``) removes them first.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from kubesvc.agent.sysexec import Runner, ip_batch
from kubesvc.api import addressplan as plan
from kubesvc.api import filelock

log = logging.getLogger("kubesvc.agent.hostnet")

LOCK_FILE = Path("/run/kubesvc/network.lock")
NODE_BRIDGE = "cbr0"  # the pod bridge inside every node namespace
POD_NETNS_PREFIX = plan.NETNS_PREFIX + "p-"
NODE_NETNS_PREFIX = plan.NETNS_PREFIX + "node-"
NETNS_CONF_DIR = Path("/etc/netns")  # iproute2 bind-mounts /etc/netns/<ns>/* over /etc/* in `ip netns exec`


class NetworkBusy(Exception):
    """Another live ``kubesvc up`` owns the cluster network."""


@dataclass(frozen=True)
class NodeNet:
    """One node's addresses, from the address plan."""

    index: int

    @property
    def name(self) -> str:
        return plan.node_name(self.index)

    @property
    def netns(self) -> str:
        return plan.node_netns(self.index)

    @property
    def ip(self) -> str:
        return plan.node_ip(self.index)

    @property
    def pod_cidr(self) -> str:
        return plan.node_pod_cidr(self.index)

    @property
    def gateway(self) -> str:
        """The node's address on its pod bridge: the pods' default route."""
        return self.pod_cidr.rsplit(".", 1)[0] + ".1"

    @property
    def host_veth(self) -> str:
        return f"ksn{self.index}"


def host_plan(nodes: list[NodeNet]) -> list[str]:
    """Host-side ``ip`` lines: the bridge, one namespace and veth per node."""
    prefix = plan.NODE_NETWORK.split("/")[1]
    lines = [f"link add {plan.HOST_BRIDGE} type bridge",
             f"addr add {plan.NODE_NETWORK_GATEWAY}/{prefix} dev {plan.HOST_BRIDGE}",
             f"link set {plan.HOST_BRIDGE} up"]
    for n in nodes:
        lines += [f"netns add {n.netns}",
                  f"link add {n.host_veth} type veth peer name eth0 netns {n.netns}",
                  f"link set {n.host_veth} master {plan.HOST_BRIDGE} up"]
    return lines


def host_route_plan(nodes: list[NodeNet]) -> list[str]:
    """The host reaches every pod CIDR through its node (after the nodes' links are up)."""
    return [f"route add {n.pod_cidr} via {n.ip}" for n in nodes]


def node_plan(node: NodeNet, nodes: list[NodeNet]) -> list[str]:
    """Lines run inside one node namespace: its address, pod bridge and routes."""
    prefix = plan.NODE_NETWORK.split("/")[1]
    pod_prefix = node.pod_cidr.split("/")[1]
    lines = ["link set lo up",
             f"addr add {node.ip}/{prefix} dev eth0",
             "link set eth0 up",
             f"route add default via {plan.NODE_NETWORK_GATEWAY}",
             f"link add {NODE_BRIDGE} type bridge",
             f"addr add {node.gateway}/{pod_prefix} dev {NODE_BRIDGE}",
             f"link set {NODE_BRIDGE} up"]
    lines += [f"route add {o.pod_cidr} via {o.ip}" for o in nodes if o.index != node.index]
    return lines


def ours(netns_name: str) -> bool:
    """Namespaces the node network owns: nodes and pods (other ``ks-`` names belong to others)."""
    return netns_name.startswith((NODE_NETNS_PREFIX, POD_NETNS_PREFIX))


async def list_netns(runner: Runner) -> list[str]:
    res = await runner.run(["ip", "netns", "list"], check=False)
    return [line.split()[0] for line in res.stdout.splitlines() if line.strip()]


async def netns_pids(runner: Runner, netns: str) -> list[int]:
    res = await runner.run(["ip", "netns", "pids", netns], check=False)
    return [int(x) for x in res.stdout.split() if x.isdigit()]


def kill_pids(pids: list[int], sig: int = signal.SIGKILL) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, sig)


async def remove_netns(runner: Runner, names: list[str]) -> None:
    """Kill every process in the namespaces, then delete them and their /etc/netns files."""
    for name in names:
        kill_pids(await netns_pids(runner, name))
    if names:
        await ip_batch(runner, [f"netns del {n}" for n in names], force=True)
    for name in names:
        d = NETNS_CONF_DIR / name
        for f in (d.iterdir() if d.is_dir() else []):
            with contextlib.suppress(OSError):
                f.unlink()
        with contextlib.suppress(OSError):
            d.rmdir()


class HostNetwork:
    """Create, and later remove, the whole cluster network of ``kubesvc up --nodes N``."""

    def __init__(self, runner: Runner, count: int, lock_file: Path = LOCK_FILE) -> None:
        self.runner = runner
        self.nodes = [NodeNet(i) for i in range(1, count + 1)]
        self.lock_file = lock_file
        self._lock: IO[str] | None = None
        self._old_forward: str | None = None

    def _take_lock(self) -> None:
        self.lock_file.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._lock = filelock.take(self.lock_file)
        except filelock.Held as e:
            raise NetworkBusy(f"the cluster network ({plan.HOST_BRIDGE}) is in use by kubesvc pid {e.owner}") from None

    async def _wait_lock(self, wait: float) -> None:
        """Take the lock, waiting up to ``wait`` seconds for another cluster network to go."""
        deadline = time.monotonic() + wait
        told = False
        while True:
            try:
                self._take_lock()
                return
            except NetworkBusy as e:
                if time.monotonic() >= deadline:
                    raise
                if not told:
                    log.warning("%s; waiting up to %.0fs for it to go", e, wait)
                    told = True
                await asyncio.sleep(0.5)

    async def setup(self, wait: float = 0.0) -> None:
        """Take the lock, clear leftovers of a crashed run, build everything."""
        await self._wait_lock(wait)
        await self.cleanup()
        try:
            await ip_batch(self.runner, host_plan(self.nodes))
            for n in self.nodes:
                await ip_batch(self.runner, node_plan(n, self.nodes), netns=n.netns)
                await self.runner.run(["ip", "netns", "exec", n.netns, "sysctl", "-qw", "net.ipv4.ip_forward=1"])
            await ip_batch(self.runner, host_route_plan(self.nodes))
            self._old_forward = Path("/proc/sys/net/ipv4/ip_forward").read_text().strip()
            Path("/proc/sys/net/ipv4/ip_forward").write_text("1\n")
        except Exception:
            await self.teardown()
            raise

    async def cleanup(self) -> None:
        """Remove every node and pod namespace and the host bridge, whoever left them."""
        names = [n for n in await list_netns(self.runner) if ours(n)]
        pods = [n for n in names if n.startswith(POD_NETNS_PREFIX)]
        await remove_netns(self.runner, pods)  # pods first: their processes die before the agents' view
        await remove_netns(self.runner, [n for n in names if n not in pods])
        lines = [f"link del {NodeNet(i).host_veth}" for i in range(1, 256)]
        links = (await self.runner.run(["ip", "-o", "link", "show"], check=False)).stdout
        lines = [x for x in lines if f" {x.split()[-1]}@" in links or f" {x.split()[-1]}:" in links]
        if f" {plan.HOST_BRIDGE}:" in links:
            lines.append(f"link del {plan.HOST_BRIDGE}")
        if lines:
            await ip_batch(self.runner, lines, force=True)

    async def teardown(self) -> None:
        """Everything goes: pods, nodes, bridge; ip_forward back as it was; lock released."""
        try:
            await self.cleanup()
            if self._old_forward is not None and self._old_forward != "1":
                Path("/proc/sys/net/ipv4/ip_forward").write_text(self._old_forward + "\n")
        finally:
            if self._lock is not None:
                self._lock.close()
                self._lock = None
