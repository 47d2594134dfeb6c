"""``kubectl exec`` on the node agent: a command in a running pod, over the channel protocol.

The apiserver relays kubectl's websocket (``v5.channel.k8s.io`` or
``v4.channel.k8s.io``) to ``/exec/{ns}/{pod}/{container}`` here, frame for
frame.  Each binary frame starts with its channel: 0 stdin, 1 stdout,
2 stderr, 3 error (one ``metav1.Status`` JSON when the command ends), 4 resize
(``{"Width": w, "Height": h}`` for a tty) and, in v5, 255 close (the client has
no more input for the channel in the next byte).

Before the first channel frame the agent sends one text frame to the
apiserver only: ``{"ok": true}``, or ``{"code": 400, "message": ...}`` when the
exec cannot start (pod not here, container missing or not running), so the
apiserver can refuse kubectl's upgrade with a plain Status.

The command runs as the pod's containers do (see :mod:`kubesvc.agent.containers`):
a host program inside the pod's network namespace, in a UTS namespace named
after the pod, with the container's environment.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import json
import logging
import os
import pty
import shutil
import signal
import struct
import subprocess
import termios
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from aiohttp import WSMsgType, web

from kubesvc.agent import containers
from kubesvc.agent.agentauth import unauthorized

if TYPE_CHECKING:
    from kubesvc.agent.containerloop import ContainerLoop
    from kubesvc.agent.podworker import PodWorker

log = logging.getLogger("kubesvc.agent.streams")
FindPod = Callable[[str, str], "PodWorker | None"]

PROTOCOLS = ("v5.channel.k8s.io", "v4.channel.k8s.io")
STDIN, STDOUT, STDERR, ERROR, RESIZE, CLOSE = 0, 1, 2, 3, 4, 255
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def success_status() -> bytes:
    return json.dumps({"metadata": {}, "status": "Success"}).encode()


def exit_status(argv: list[str], code: int) -> bytes:
    """What kubectl turns into ``command terminated with exit code N`` and its own exit code N."""
    return json.dumps({
        "metadata": {}, "status": "Failure",
        "message": f"command terminated with non-zero exit code: error executing command {argv}, exit code {code}",
        "reason": "NonZeroExitCode",
        "details": {"causes": [{"reason": "ExitCode", "message": str(code)}]},
    }).encode()


def failure_status(message: str) -> bytes:
    return json.dumps({"metadata": {}, "status": "Failure", "message": f"Internal error occurred: {message}",
                       "reason": "InternalError", "details": {"causes": [{"message": message}]},
                       "code": 500}).encode()


def _container(w: PodWorker, name: str) -> ContainerLoop | None:
    return next((c for c in w.init_loops + w.loops if c.name == name), None)


def _env(w: PodWorker, c: ContainerLoop, tty: bool) -> dict[str, str]:
    """The container's own environment (as it was started), or a minimal one if it cannot be computed now."""
    try:
        env = c._argv_env()[1]
    except Exception:  # image or env lookups that fail now: the command still runs
        env = {"PATH": DEFAULT_PATH, "HOSTNAME": w.hostname}
    env.pop("KUBESVC_CONTAINER_PORTS", None)
    if tty:
        env.setdefault("TERM", "xterm")
    return env


def _resolve(argv0: str, path: str) -> str | None:
    if "/" in argv0:
        return argv0 if os.access(argv0, os.X_OK) and not os.path.isdir(argv0) else None
    return shutil.which(argv0, path=path)


class _Exec:
    """One running exec: the process and the websocket it talks through."""

    def __init__(self, ws: web.WebSocketResponse, argv: list[str], want_stdin: bool, tty: bool) -> None:
        self.ws, self.argv, self.want_stdin, self.tty = ws, argv, want_stdin, tty
        self.proc: asyncio.subprocess.Process | None = None
        self.master: int | None = None
        self._send_lock = asyncio.Lock()

    async def send(self, channel: int, data: bytes) -> None:
        async with self._send_lock:
            if not self.ws.closed:
                await self.ws.send_bytes(bytes([channel]) + data)

    async def start(self, w: PodWorker, env: dict[str, str], cwd: str) -> None:
        full = containers.container_argv(w.netns, w.hostname, self.argv)
        cwd = cwd if os.path.isdir(cwd) else "/"
        if self.tty:
            master, slave = pty.openpty()
            self.master = master
            os.set_blocking(master, False)
            try:
                # setsid(1) makes the terminal the session's controlling tty (no preexec_fn under uvloop)
                self.proc = await asyncio.create_subprocess_exec(
                    "setsid", "--wait", "--ctty", *full, stdin=slave, stdout=slave, stderr=slave, env=env, cwd=cwd)
            finally:
                os.close(slave)
        else:
            self.proc = await asyncio.create_subprocess_exec(
                *full, stdin=asyncio.subprocess.PIPE if self.want_stdin else asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=env, cwd=cwd,
                start_new_session=True)

    async def _pump(self, reader: asyncio.StreamReader, channel: int) -> None:
        while chunk := await reader.read(32768):
            await self.send(channel, chunk)

    async def _pump_pty(self) -> None:
        assert self.master is not None
        loop = asyncio.get_running_loop()
        while True:
            ready: asyncio.Future[None] = loop.create_future()
            loop.add_reader(self.master, lambda f=ready: f.done() or f.set_result(None))
            try:
                await ready
            finally:
                loop.remove_reader(self.master)
            try:
                chunk = os.read(self.master, 32768)
            except BlockingIOError:
                continue
            except OSError:  # EIO: every slave end closed, the command is gone
                return
            if not chunk:
                return
            await self.send(STDOUT, chunk)

    async def _input(self) -> None:
        """kubectl's frames: stdin, resize, close; a closed websocket ends the command."""
        assert self.proc is not None
        v5 = self.ws.ws_protocol == PROTOCOLS[0]
        async for msg in self.ws:
            if msg.type != WSMsgType.BINARY or not msg.data:
                continue
            ch, data = msg.data[0], msg.data[1:]
            if ch == STDIN and data:
                await self._write_stdin(data)
            elif ch == RESIZE and self.master is not None:
                with contextlib.suppress(ValueError, TypeError, OSError):
                    size = json.loads(data)
                    fcntl.ioctl(self.master, termios.TIOCSWINSZ,
                                struct.pack("HHHH", int(size.get("Height", 0)), int(size.get("Width", 0)), 0, 0))
            elif ch == CLOSE and v5 and data[:1] == bytes([STDIN]):
                self._close_stdin()
        # the client went away: end the command as the runtime would when its exec session ends
        if self.proc.returncode is None:
            containers.signal_group(self.proc.pid, signal.SIGKILL)

    async def _write_stdin(self, data: bytes) -> None:
        assert self.proc is not None
        if self.master is not None:
            with contextlib.suppress(OSError):
                os.write(self.master, data)
        elif self.proc.stdin is not None and not self.proc.stdin.is_closing():
            with contextlib.suppress(ConnectionError):
                self.proc.stdin.write(data)
                await self.proc.stdin.drain()

    def _close_stdin(self) -> None:
        assert self.proc is not None
        if self.master is not None:
            with contextlib.suppress(OSError):
                os.write(self.master, b"\x04")
        elif self.proc.stdin is not None:
            self.proc.stdin.close()

    async def run(self) -> int:
        assert self.proc is not None
        pumps: list[asyncio.Task[None]] = []
        if self.master is not None:
            pumps.append(asyncio.create_task(self._pump_pty()))
        else:
            assert self.proc.stdout is not None and self.proc.stderr is not None
            pumps += [asyncio.create_task(self._pump(self.proc.stdout, STDOUT)),
                      asyncio.create_task(self._pump(self.proc.stderr, STDERR))]
        inp = asyncio.create_task(self._input())
        try:
            rc = await self.proc.wait()
            # the output the command wrote before it ended (a background child may keep the pipes: do not wait on it)
            _, pending = await asyncio.wait(pumps, timeout=2.0)
            for t in pending:
                t.cancel()
        finally:
            inp.cancel()
            for t in pumps:
                t.cancel()
            if self.master is not None:
                os.close(self.master)
                self.master = None
        return 128 - rc if rc < 0 else rc


def running_container_error(w: PodWorker | None, c: ContainerLoop | None, pod: str, cname: str) -> str | None:
    """Why exec or attach cannot reach this container (as the kubelet words it), or None."""
    if w is None:
        return f'pod "{pod}" not found on this node'
    if c is None:
        return f"container {cname} is not valid for pod {pod}"
    if c.rec.state != "running" or c.proc is None:
        return f'unable to upgrade connection: container not found ("{cname}")'
    return None


def make_exec_handler(find: FindPod, token: str) -> Callable[[web.Request], Any]:
    async def exec_handler(request: web.Request) -> web.StreamResponse:
        if (denied := unauthorized(request, token)) is not None:
            return denied
        ns, pod, cname = (request.match_info[k] for k in ("ns", "pod", "container"))
        q = request.query
        argv = q.getall("command", [])
        tty = q.get("tty") in ("true", "1")
        want_stdin = q.get("stdin") in ("true", "1")
        ws = web.WebSocketResponse(protocols=PROTOCOLS, max_msg_size=0)
        await ws.prepare(request)
        w = find(ns, pod)
        c = _container(w, cname) if w is not None else None
        error = running_container_error(w, c, pod, cname)
        if error is None and not argv:
            error = "you must specify at least one command for the container"
        if error is not None:
            await ws.send_str(json.dumps({"code": 400, "message": error}))
            await ws.close()
            return ws
        assert w is not None and c is not None
        await ws.send_str(json.dumps({"ok": True}))
        env = _env(w, c, tty)
        ex = _Exec(ws, argv, want_stdin, tty)
        if _resolve(argv[0], env.get("PATH", DEFAULT_PATH)) is None:
            await ex.send(ERROR, failure_status(
                f"error executing command in container: failed to exec in container: OCI runtime exec failed: "
                f"exec failed: unable to start container process: exec: \"{argv[0]}\": "
                f"executable file not found in $PATH: unknown"))
            await ws.close()
            return ws
        try:
            await ex.start(w, env, c.spec.get("workingDir") or "/")
            rc = await ex.run()
        except (OSError, subprocess.SubprocessError) as e:
            await ex.send(ERROR, failure_status(f"error executing command in container: {e}"))
        else:
            await ex.send(ERROR, success_status() if rc == 0 else exit_status(argv, rc))
        log.info("exec in %s/%s[%s] %s", ns, pod, cname, argv)
        await ws.close()
        return ws

    return exec_handler
