"""Containers as host processes inside the pod's network namespace.

A container is ``ip netns exec <pod-ns> unshare --uts -- sh -c 'hostname ..; exec ..'``:
every step execs, so the pid the agent holds is the container's own program,
in the pod's network namespace, in its own UTS namespace named after the pod,
seeing the pod's ``/etc/resolv.conf`` and ``/etc/hosts`` (bind-mounted by
``ip netns exec``), in its own session so signals reach its whole group.
stdout and stderr go straight to a log file, so a process outlives an agent
restart and keeps logging; the new agent adopts it by pid (checked against
the start time in ``/proc``, so a reused pid is never mistaken for it).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from pathlib import Path
from typing import Protocol

_WRAP = 'hostname "$0" && exec "$@"'


class Proc(Protocol):
    pid: int

    async def wait(self) -> int: ...


def proc_start_ticks(pid: int) -> int | None:
    """Field 22 of /proc/<pid>/stat: the process start time, to tell a pid's incarnations apart."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = raw.rsplit(")", 1)[1].split()
    if fields[0] == "Z":
        return None
    return int(fields[19])


class ChildProc:
    """A container the agent started: asyncio gives the exit status."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc
        self.pid = proc.pid

    async def wait(self) -> int:
        rc = await self.proc.wait()
        return 128 - rc if rc < 0 else rc  # killed by a signal: 128+signal, as container runtimes report


class AdoptedProc:
    """A container started by an earlier agent: only a pidfd tells when it ends (no exit status)."""

    def __init__(self, pid: int) -> None:
        self.pid = pid

    async def wait(self) -> int:
        try:
            fd = os.pidfd_open(self.pid)
        except (ProcessLookupError, OSError):
            return 0
        loop = asyncio.get_running_loop()
        done = loop.create_future()
        loop.add_reader(fd, lambda: done.done() or done.set_result(None))
        try:
            await done
        finally:
            loop.remove_reader(fd)
            os.close(fd)
        return 0


def container_argv(netns: str, hostname: str, argv: list[str]) -> list[str]:
    return ["ip", "netns", "exec", netns, "unshare", "--uts", "--", "sh", "-c", _WRAP, hostname, *argv]


async def start(netns: str, hostname: str, argv: list[str], env: dict[str, str], log_path: Path,
                cwd: str = "/") -> ChildProc:
    log_path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o640)
    try:
        proc = await asyncio.create_subprocess_exec(
            *container_argv(netns, hostname, argv), stdin=asyncio.subprocess.DEVNULL, stdout=fd, stderr=fd,
            env=env, cwd=cwd if os.path.isdir(cwd) else "/", start_new_session=True)
    finally:
        os.close(fd)
    return ChildProc(proc)


def adopt(pid: int, start_ticks: int) -> AdoptedProc | None:
    """The running process of an earlier agent, if it is still the same process."""
    if pid <= 0 or proc_start_ticks(pid) != start_ticks:
        return None
    return AdoptedProc(pid)


def signal_group(pid: int, sig: int = signal.SIGTERM) -> None:
    """Signal the container's whole process group (its session), falling back to the pid."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        try:
            os.killpg(pid, sig)
        except ProcessLookupError:
            os.kill(pid, sig)
