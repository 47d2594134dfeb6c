"""``kubesvc dns --workers N``: N processes answering on one address (SO_REUSEPORT).

A Python DNS server answers from one thread, so on a busy machine its tail is
the time it waits for a core: measured at 16,800 q/s on 2 cores, p99 6.6-7.7 ms
with one process, 1.7-3.9 ms with two sharing the port.  The kernel spreads
queries over the sockets by the client's address and port.  Each worker keeps
its own watch cache, so each is as fresh as one alone (Kubernetes runs
cluster DNS as two replicas for the same reason: more than one answers).

The first process is a worker too; it starts the others with the same flags,
restarts one that dies, and stops them when it stops.  A worker stops when
that first process is gone (``exit_with_parent``).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import signal
import sys

from kubesvc.cli.errors import CliError

log = logging.getLogger("kubesvc")


def worker_argv(args: argparse.Namespace) -> list[str]:
    """The command line of each extra worker (pure, so it is tested alone)."""
    argv = [sys.executable, "-m", "kubesvc", "dns", "--kubeconfig", str(args.kubeconfig), "--ttl", str(args.ttl),
            "--cluster-domain", args.cluster_domain, "--pods", args.pods, "--metrics", "none", "--reuse-port",
            "--workers", "1", "--parent-pid", str(os.getpid())]
    for a in args.listen or ["127.0.0.53:53"]:
        argv += ["--listen", a]
    for u in args.upstream or []:
        argv += ["--upstream", u]
    return argv


def check_workers(args: argparse.Namespace, ports: list[int]) -> None:
    if args.workers < 1:
        raise CliError(f"invalid --workers {args.workers}: want 1 or more")
    if args.workers > 1 and 0 in ports:
        raise CliError("--workers above 1 needs fixed ports in --listen (port 0 would give each worker its own)")


async def run_workers(argv: list[str], n: int, stop: asyncio.Event) -> None:
    """Keep ``n`` worker processes running until ``stop`` is set; then stop them."""
    procs: list[asyncio.subprocess.Process | None] = [None] * n

    async def keep(i: int) -> None:
        delay = 1.0
        while not stop.is_set():
            proc = procs[i] = await asyncio.create_subprocess_exec(*argv)
            code = await proc.wait()
            if stop.is_set():
                return
            log.error("dns worker %d exited (status %s); restarting in %.0f s", i + 1, code, delay)
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(stop.wait(), delay)
            delay = min(delay * 2, 30.0)

    tasks = [asyncio.create_task(keep(i)) for i in range(n)]
    try:
        await stop.wait()
    finally:
        for p in procs:
            if p is not None and p.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    p.send_signal(signal.SIGTERM)
        for p in procs:
            if p is not None:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(p.wait(), 10)
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

