"""Containers as host processes inside the pod's network namespace.

A container is started directly, in a worker thread: a vfork of the small
:mod:`~kubesvc.agent.podexec` launcher (or, without one, a fork with a
``preexec_fn`` doing the same), which execs the container's own program, so
the pid the agent holds is the container's.  The child joins the pod's network namespace, gets its own UTS namespace named
after the pod and its own mount namespace in which, as ``ip netns exec``
does, ``/etc/netns/<pod-ns>/*`` (the pod's ``resolv.conf`` and ``hosts``) are
bound over ``/etc/*`` and ``/sys`` shows the pod's network; it runs in its own
session so signals reach its whole group.  (:func:`container_argv`, the same
thing spelled as commands, is what ``kubectl exec`` runs.)
stdin is /dev/null, or a FIFO for ``stdin: true``
(:mod:`~kubesvc.agent.containerstdin`); stdout and stderr go straight to a log file, so a process outlives an agent
restart and keeps logging; the new agent adopts it by pid (checked against
the start time in ``/proc``, so a reused pid is never mistaken for it).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

from kubesvc.agent import nsutil, podexec
from kubesvc.agent.hostnet import NETNS_CONF_DIR

_WRAP = 'hostname "$0" && exec "$@"'


class Proc(Protocol):
    pid: int
    start_ticks: int | None  # /proc start time, which tells this process from a later one with its pid

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


async def _pidfd_wait(pid: int) -> None:
    """Until the process ``pid`` ends (its pidfd turns readable)."""
    try:
        fd = os.pidfd_open(pid)
    except (ProcessLookupError, OSError):
        return
    loop = asyncio.get_running_loop()
    done = loop.create_future()
    loop.add_reader(fd, lambda: done.done() or done.set_result(None))
    try:
        await done
    finally:
        loop.remove_reader(fd)
        os.close(fd)


class ChildProc:
    """A container the agent started: its pidfd says when it ends, waitpid gives the exit status."""

    def __init__(self, proc: subprocess.Popen[bytes], start_ticks: int | None = None) -> None:
        self.proc = proc
        self.pid = proc.pid
        self.start_ticks = start_ticks

    async def wait(self) -> int:
        if self.proc.returncode is None:
            await _pidfd_wait(self.pid)
        rc = self.proc.wait()  # it has ended: reaps at once
        return 128 - rc if rc < 0 else rc  # killed by a signal: 128+signal, as container runtimes report


class AdoptedProc:
    """A container started by an earlier agent: only a pidfd tells when it ends (no exit status)."""

    def __init__(self, pid: int, start_ticks: int | None = None) -> None:
        self.pid = pid
        self.start_ticks = start_ticks

    async def wait(self) -> int:
        await _pidfd_wait(self.pid)
        return 0


def container_argv(netns: str, hostname: str, argv: list[str]) -> list[str]:
    return ["ip", "netns", "exec", netns, "unshare", "--uts", "--", "sh", "-c", _WRAP, hostname, *argv]


def _enter_pod(netns_fd: int, hostname: str, etc_binds: list[tuple[str, str]]) -> Callable[[], None]:
    """What runs in the child between fork and exec (only syscalls: the child is single-threaded)."""

    def enter() -> None:
        nsutil.setns(netns_fd, nsutil.CLONE_NEWNET)
        nsutil.unshare(nsutil.CLONE_NEWNS | nsutil.CLONE_NEWUTS)
        nsutil.mount("", "/", "none", nsutil.MS_SLAVE | nsutil.MS_REC)  # nothing leaks back to the host
        with contextlib.suppress(OSError):  # other pods' namespaces: not for this one (see podexec)
            nsutil.umount(str(nsutil.NETNS_RUN_DIR))
        with contextlib.suppress(OSError):  # /sys of the pod's network, as `ip netns exec` mounts it
            nsutil.umount("/sys")
            nsutil.mount("sysfs", "/sys", "sysfs", 0)
        for src, dst in etc_binds:
            nsutil.mount(src, dst, "none", nsutil.MS_BIND)
        nsutil.sethostname(hostname)

    return enter


def _etc_binds(netns: str) -> list[tuple[str, str]]:
    """``ip netns exec``'s rule: each /etc/netns/<ns>/NAME is bound over /etc/NAME."""
    d = NETNS_CONF_DIR / netns
    try:
        names = sorted(os.listdir(d))
    except OSError:
        return []
    return [(str(d / n), f"/etc/{n}") for n in names if os.path.exists(f"/etc/{n}")]


def _spawn(netns: str, hostname: str, argv: list[str], env: dict[str, str], log_path: Path,
           cwd: str, use_launcher: bool = True, stdin: int | None = None) -> subprocess.Popen[bytes]:
    log_path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o640)
    cwd = cwd if os.path.isdir(cwd) else "/"
    stdin_arg = subprocess.DEVNULL if stdin is None else stdin
    try:
        exe = podexec.launcher() if use_launcher else None
        if exe is not None:  # vfork + exec of the launcher: no copy of the agent's memory
            etc = NETNS_CONF_DIR / netns
            return subprocess.Popen([exe, str(nsutil.netns_path(netns)), hostname, str(etc) if etc.is_dir() else "",
                                     *argv], stdin=stdin_arg, stdout=fd, stderr=fd, env=env, cwd=cwd,
                                    start_new_session=True)
        nsfd = os.open(nsutil.netns_path(netns), os.O_RDONLY | os.O_CLOEXEC)
        try:
            return subprocess.Popen(argv, stdin=stdin_arg, stdout=fd, stderr=fd, env=env,
                                    cwd=cwd, start_new_session=True,
                                    preexec_fn=_enter_pod(nsfd, hostname, _etc_binds(netns)))
        finally:
            os.close(nsfd)
    finally:
        os.close(fd)


async def start(netns: str, hostname: str, argv: list[str], env: dict[str, str], log_path: Path,
                cwd: str = "/", stdin: int | None = None) -> ChildProc:
    """Start the container's program in the pod (the fork happens in a worker thread, off the loop).

    ``stdin``: an fd to give it as stdin (``stdin: true``), else /dev/null.  The process's start time
    is read in the same thread (a /proc read of a process still setting itself up can take a millisecond).
    """
    def spawn() -> ChildProc:
        proc = _spawn(netns, hostname, argv, env, log_path, cwd, True, stdin)
        return ChildProc(proc, proc_start_ticks(proc.pid))

    return await asyncio.to_thread(spawn)


def adopt(pid: int, start_ticks: int) -> AdoptedProc | None:
    """The running process of an earlier agent, if it is still the same process."""
    if pid <= 0 or proc_start_ticks(pid) != start_ticks:
        return None
    return AdoptedProc(pid, start_ticks)


def signal_group(pid: int, sig: int = signal.SIGTERM) -> None:
    """Signal the container's whole process group (its session), falling back to the pid."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        try:
            os.killpg(pid, sig)
        except ProcessLookupError:
            os.kill(pid, sig)
