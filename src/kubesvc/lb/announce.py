"""Announcing LoadBalancer addresses in kernel mode: host routes, and a fast node liveness check.

Why routes on the host, installed by the controller, rather than a speaker per
node answering ARP (MetalLB's layer 2 mode): here the host *is* the outside
world, and the controller of ``kubesvc up`` already runs on it.  A
``<address>/32 via <node> dev kubesvc0`` route is exactly what an ARP answer
or a BGP advertisement would make the outside world do, but it moves
atomically (``ip route replace``), with no stale neighbour cache to wait
out, and there is no extra process per node to start, watch and clean up.
The node's proxy already DNATs the address (it reads status.loadBalancer).

Why a liveness check of our own: a node goes NotReady only after the node
monitor grace period (40 s upstream), far too slow for failover.  Like
MetalLB's memberlist, the controller probes each node's agent port (a TCP
connect, every ``interval``) and treats a node whose agent stopped answering
as unable to announce until it answers again.  A node is only judged after
it has answered once, so an agent without a server is never held against it.

Every route carries ``proto 250`` so leftovers of a crashed run can be found
and flushed at start; :meth:`RouteAnnouncer.stop` removes all it installed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Iterable, Mapping
from pathlib import Path

from kubesvc.api.addressplan import HOST_BRIDGE

log = logging.getLogger(__name__)

ROUTE_PROTO = "250"  # marks our routes (no name needed in /etc/iproute2/rt_protos)
Runner = Callable[[list[str]], Awaitable[tuple[int, str]]]


async def run_ip(argv: list[str]) -> tuple[int, str]:
    """Run a command without blocking the loop; returns (exit code, stderr)."""
    proc = await asyncio.create_subprocess_exec(*argv, stdin=asyncio.subprocess.DEVNULL,
                                                stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE)
    _, err = await proc.communicate()
    return int(proc.returncode or 0), err.decode(errors="replace").strip()


def bridge_exists(device: str = HOST_BRIDGE) -> bool:
    """Kernel mode is on when the host bridge of the node network exists."""
    return Path("/sys/class/net", device).exists()


class RouteAnnouncer:
    """The host routes for announced addresses; ``installed`` is what it put there."""

    def __init__(self, device: str = HOST_BRIDGE, runner: Runner = run_ip) -> None:
        self.device = device
        self.runner = runner
        self.installed: dict[str, str] = {}  # LB address -> node IP
        self.changes = 0

    async def start(self) -> None:
        """Flush routes of ours left by a run that crashed (the bridge usually took them along)."""
        await self.runner(["ip", "route", "flush", "dev", self.device, "proto", ROUTE_PROTO])

    async def sync(self, desired: Mapping[str, str]) -> list[str]:
        """Make the routes ``desired`` (address -> node IP); returns the addresses whose route changed.

        A failed command raises ``OSError`` after the rest were applied, so the
        caller's retry converges what is left.
        """
        changed, failures = [], []
        for ip, via in sorted(desired.items()):
            if self.installed.get(ip) == via:
                continue
            rc, err = await self.runner(["ip", "route", "replace", f"{ip}/32", "via", via, "dev", self.device,
                                         "proto", ROUTE_PROTO])
            if rc == 0:
                self.installed[ip] = via
                changed.append(ip)
            else:
                failures.append(f"route {ip} via {via}: {err}")
        for ip in sorted(set(self.installed) - set(desired)):
            if await self._delete(ip):
                changed.append(ip)
            else:
                failures.append(f"route {ip}: delete failed")
        self.changes += len(changed)
        if failures:
            raise OSError("; ".join(failures))
        return changed

    async def _delete(self, ip: str) -> bool:
        rc, err = await self.runner(["ip", "route", "del", f"{ip}/32", "dev", self.device, "proto", ROUTE_PROTO])
        if rc == 0 or "No such process" in err or "Cannot find device" in err:
            self.installed.pop(ip, None)
            return True
        log.warning("lb: cannot remove route %s: %s", ip, err)
        return False

    async def stop(self) -> None:
        """Remove every route installed (the machine is left as found)."""
        for ip in sorted(self.installed):
            await self._delete(ip)


class AgentProber:
    """TCP-connect probes of node agents; ``unhealthy`` names nodes whose agent stopped answering."""

    def __init__(self, on_change: Callable[[], None], *, interval: float = 0.5, timeout: float = 0.5,
                 failures: int = 2) -> None:
        self.on_change = on_change
        self.interval = interval
        self.timeout = timeout
        self.failures = failures
        self.unhealthy: set[str] = set()
        self._seen_up: set[str] = set()
        self._fails: dict[str, int] = {}
        self._task: asyncio.Task[None] | None = None
        self.targets: Callable[[], Iterable[tuple[str, str, int]]] = lambda: ()  # (name, ip, port)

    def start(self, targets: Callable[[], Iterable[tuple[str, str, int]]]) -> None:
        self.targets = targets
        self._task = asyncio.create_task(self._loop(), name="lb-agent-prober")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _loop(self) -> None:
        while True:
            await self.probe_once()
            await asyncio.sleep(self.interval)

    async def probe_once(self) -> None:
        targets = [(n, ip, port) for n, ip, port in self.targets() if ip and port]
        results = await asyncio.gather(*(self._probe(ip, port) for _, ip, port in targets))
        before = set(self.unhealthy)
        names = {n for n, _, _ in targets}
        for (name, _, _), ok in zip(targets, results, strict=True):
            self.record(name, ok)
        for gone in set(self._fails) - names:  # nodes deleted: forget them
            self._fails.pop(gone, None)
            self._seen_up.discard(gone)
            self.unhealthy.discard(gone)
        if self.unhealthy != before:
            log.info("lb: agents not answering: %s", ", ".join(sorted(self.unhealthy)) or "none")
            self.on_change()

    def record(self, name: str, ok: bool) -> None:
        """Fold one probe result into the state (pure; tests drive it directly)."""
        if ok:
            self._seen_up.add(name)
            self._fails[name] = 0
            self.unhealthy.discard(name)
            return
        self._fails[name] = self._fails.get(name, 0) + 1
        if name in self._seen_up and self._fails[name] >= self.failures:
            self.unhealthy.add(name)

    async def _probe(self, ip: str, port: int) -> bool:
        try:
            _, writer = await asyncio.wait_for(asyncio.open_connection(ip, port), self.timeout)
        except (OSError, TimeoutError):
            return False
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()
        return True
