"""The components of ``kubesvc up`` in a process of their own, beside the API server's.

Upstream runs the API server, the controller manager, CoreDNS and each node's
kube-proxy as separate programs; they share nothing but the API.  ``kubesvc
up`` first ran them all on the API server's event loop, which tied the whole
cluster to one core: a 1,000-pod Service's reconcile, the DNS cache digesting a
slice, or a proxy planning a sync all delayed the very API writes they react
to.  Now ``up`` keeps only the API server (and the node network it owns) and
starts ``kubesvc components``, which runs the controllers, the LoadBalancer
controller, cluster DNS and the per-node proxies.  They were API clients
already, so nothing else changes; on a machine with two cores the API server
and the components each get one.

The parent supervises: it waits for the child's readiness line on a pipe,
restarts it (with back-off) if it dies, and stops it before the agents and the
server.  The child stops when its parent is gone (``exit_with_parent``).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import signal
import sys
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

from kubesvc.cli.errors import CliError

log = logging.getLogger("kubesvc")
READY = b"ready\n"


def add_components_parser(sub: Any) -> None:
    """``kubesvc components``: what ``up`` starts beside its API server (not meant to be typed by hand)."""
    p = sub.add_parser("components", help="run the controllers, LoadBalancer controller, DNS and node proxies "
                                          "of `kubesvc up` against an API server")
    p.add_argument("--kubeconfig", type=Path, required=True)
    p.add_argument("--lb-pool", action="append", default=None, metavar="CIDR|FIRST-LAST")
    p.add_argument("--kernel", action="store_true", help="announce LoadBalancer addresses on the node network")
    p.add_argument("--service-cidr", default="10.0.0.0/16")
    p.add_argument("--dns-port", type=int, default=53)
    p.add_argument("--dns-pods", choices=["insecure", "verified", "disabled"], default="insecure")
    p.add_argument("--dns-upstream", action="append", default=None, metavar="HOST[:PORT]")
    p.add_argument("--node", action="append", default=[], metavar="NAME=NETNS",
                   help="run a proxy for this node inside its network namespace (repeatable)")
    add_node_proxy_flags(p)
    p.add_argument("--ready-fd", type=int, default=None, help=argparse.SUPPRESS)


def add_node_proxy_flags(p: Any) -> None:
    """kube-proxy's flags that ``up`` hands to every node's proxy (see ``kubesvc proxy --help``)."""
    p.add_argument("--nodeport-addresses", action="append", default=[], metavar="CIDR[,CIDR...]|primary",
                   help="node proxies accept NodePort connections only on node addresses in these CIDRs, "
                        "or on the node's primary IP ('primary'); default: every address but loopback")
    p.add_argument("--conntrack-tcp-be-liberal", action="store_true",
                   help="node proxies set nf_conntrack_tcp_be_liberal=1 in their node's namespace")


def check_node_proxy_flags(args: argparse.Namespace) -> tuple[str, ...]:
    """The ``--nodeport-addresses`` entries, checked now: a bad one is one line before anything starts."""
    from kubesvc.proxy.nodeports import parse_nodeport_addresses

    entries = tuple(getattr(args, "nodeport_addresses", None) or ())
    try:
        parse_nodeport_addresses(entries)
    except ValueError as e:
        raise CliError(f"invalid --nodeport-addresses: {e}") from None
    return entries


def child_argv(kubeconfig: Path, args: argparse.Namespace, nodes: Sequence[tuple[str, str]], *,
               kernel: bool) -> list[str]:
    """The command line ``up`` gives ``kubesvc components`` (pure, so it is tested alone)."""
    argv = [sys.executable, "-m", "kubesvc"]
    if getattr(args, "verbose", False):
        argv.append("-v")
    argv += ["components", "--kubeconfig", str(kubeconfig), "--service-cidr", args.service_cidr,
             "--dns-port", str(args.dns_port), "--dns-pods", getattr(args, "dns_pods", "insecure")]
    for entry in getattr(args, "lb_pool", None) or []:
        argv += ["--lb-pool", entry]
    for entry in getattr(args, "dns_upstream", None) or []:
        argv += ["--dns-upstream", entry]
    if kernel:
        argv.append("--kernel")
    for name, netns in nodes:
        argv += ["--node", f"{name}={netns}"]
    for entry in getattr(args, "nodeport_addresses", None) or []:
        argv += ["--nodeport-addresses", entry]
    if getattr(args, "conntrack_tcp_be_liberal", False):
        argv.append("--conntrack-tcp-be-liberal")
    return argv


def parse_nodes(entries: Sequence[str]) -> list[tuple[str, str]]:
    out = []
    for e in entries:
        name, sep, netns = e.partition("=")
        if not sep or not name or not netns:
            raise CliError(f"invalid --node {e!r}: want NAME=NETNS")
        out.append((name, netns))
    return out


async def run_components(args: argparse.Namespace) -> int:
    """The child: start everything, say ready, serve until SIGTERM/SIGINT or the parent is gone."""
    from kubesvc.api.parentdeath import exit_with_parent
    from kubesvc.cli.components import lb_pool_entries, start_controllers, start_lb
    from kubesvc.cli.dnsboot import start_cluster_dns
    from kubesvc.cli.nodeproxies import start_node_proxies

    nodes = parse_nodes(args.node)
    pools = lb_pool_entries(args)
    nodeport_addresses = check_node_proxy_flags(args)
    stoppers: list[Callable[[], Awaitable[None]]] = []
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    if not exit_with_parent():  # from now on `up` dying sends us SIGTERM
        log.warning("components: kubesvc up is gone; not starting")
        return 0
    try:
        stoppers.append(await start_controllers(args.kubeconfig))
        stoppers.append(await start_lb(args.kubeconfig, pools, kernel=args.kernel, service_cidr=args.service_cidr))
        stoppers.append(await start_cluster_dns(args.kubeconfig, args.dns_port, pods=args.dns_pods,
                                                upstreams=args.dns_upstream))
        if nodes:
            stoppers.append(await start_node_proxies(args.kubeconfig, nodes, nodeport_addresses=nodeport_addresses,
                                                     conntrack_tcp_be_liberal=args.conntrack_tcp_be_liberal))
        if args.ready_fd is not None:
            os.write(args.ready_fd, READY)
            os.close(args.ready_fd)
        await stop.wait()
    finally:
        for s in reversed(stoppers):
            with contextlib.suppress(Exception):
                await s()
    return 0


class ComponentsProcess:
    """The parent's side: start ``kubesvc components``, wait until it is ready, keep it running, stop it."""

    def __init__(self, argv: list[str], *, ready_timeout: float = 60.0) -> None:
        self.argv = argv
        self.ready_timeout = ready_timeout
        self.proc: asyncio.subprocess.Process | None = None
        self._watch: asyncio.Task[None] | None = None
        self._stopping = False

    async def start(self) -> None:
        await self._spawn()
        self._watch = asyncio.create_task(self._supervise(), name="components-supervisor")

    async def _spawn(self) -> None:
        r, w = os.pipe()
        try:
            self.proc = await asyncio.create_subprocess_exec(
                *self.argv, "--ready-fd", str(w), pass_fds=(w,), start_new_session=True)
        finally:
            os.close(w)
        reader = asyncio.ensure_future(asyncio.to_thread(_read_line, r))
        try:
            got = await asyncio.wait_for(asyncio.shield(reader), self.ready_timeout)
        except TimeoutError:
            self.proc.kill()  # its end of the pipe closes, so the reader thread returns
            got = await reader
        finally:
            if reader.done():
                os.close(r)
        if got != READY:
            code = await self._reap(5.0)
            raise CliError(f"the components process did not start (exit status {code}); see the log above")

    async def _supervise(self) -> None:
        """Restart the child if it dies on its own: a crashed controller must not leave the cluster headless."""
        delay = 1.0
        while not self._stopping:
            assert self.proc is not None
            code = await self.proc.wait()
            if self._stopping:
                return
            log.error("the components process exited (status %s); restarting in %.0f s", code, delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 30.0)
            try:
                await self._spawn()
            except (CliError, OSError) as e:
                log.error("%s", e)

    async def stop(self) -> None:
        self._stopping = True
        if self._watch is not None:
            self._watch.cancel()
            await asyncio.gather(self._watch, return_exceptions=True)
        if self.proc is not None and self.proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self.proc.send_signal(signal.SIGTERM)
            await self._reap(20.0)

    async def _reap(self, timeout: float) -> int | None:
        assert self.proc is not None
        try:
            return await asyncio.wait_for(self.proc.wait(), timeout)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                self.proc.kill()
            return await self.proc.wait()


def _read_line(fd: int) -> bytes:
    """Read up to the readiness line (or EOF, when the child died first)."""
    buf = b""
    while not buf.endswith(b"\n"):
        chunk = os.read(fd, 64)
        if not chunk:
            break
        buf += chunk
    return buf
