"""One container's life: resolve, start, probe, wait, restart with back-off.

Runs as one asyncio task per container.  Every change of state is written
into the container's :class:`ContainerRecord` and reported through
``on_change``, from which the pod worker computes and writes the pod status.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kubesvc.agent import containers, containerstdin, images, probes
from kubesvc.agent.backoff import Backoff
from kubesvc.agent.env import EnvError, container_env, expand_argv
from kubesvc.agent.status import ContainerRecord
from kubesvc.api.meta import now_rfc3339

if TYPE_CHECKING:
    from kubesvc.agent.podworker import PodWorker

log = logging.getLogger("kubesvc.agent")
Obj = dict[str, Any]
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


@dataclass
class Exit:
    code: int
    reason: str
    message: str = ""


def should_restart(policy: str, exit_code: int) -> bool:
    return policy == "Always" or (policy == "OnFailure" and exit_code != 0)


class ContainerLoop:
    def __init__(self, worker: PodWorker, spec: Obj, record: ContainerRecord, *, init: bool = False) -> None:
        self.w = worker
        self.spec = spec
        self.rec = record
        self.init = init
        self.proc: containers.Proc | None = None
        self.backoff = Backoff()
        self.stopping = False
        self._liveness_kill = False
        self._probe_tasks: list[asyncio.Task[None]] = []
        self._exited = asyncio.Event()
        self.done = asyncio.Event()
        self.stdin_holder: int | None = None

    @property
    def name(self) -> str:
        return str(self.spec.get("name"))

    def changed(self) -> None:
        self.w.changed()

    # ---------------------------------------------------------------- start

    def _argv_env(self) -> tuple[list[str], dict[str, str]]:
        pod = self.w.pod_for_env()
        env = container_env(pod, self.spec, self.w.agent.services(), self.w.lookup)
        argv = images.resolve(self.spec.get("image", ""), self.spec.get("command"), self.spec.get("args"))
        argv = expand_argv(argv, env)
        ports = ",".join(str(p.get("containerPort")) for p in self.spec.get("ports") or []
                         if (p.get("protocol") or "TCP") == "TCP")
        full = {"PATH": DEFAULT_PATH, "HOSTNAME": self.w.hostname, **env}
        if ports:
            full["KUBESVC_CONTAINER_PORTS"] = ports
        return argv, full

    async def _wait_pull(self, image: str) -> None:
        """Unknown image: ErrImagePull, then ImagePullBackOff, retrying as the kubelet does."""
        known = ", ".join(images.known_images())
        msg = (f'Failed to pull image "{image}": image "{image}" is not in the kubesvc image catalog '
               f"(known images: {known}; or give the container a command)")
        self.rec.state, self.rec.reason, self.rec.message = "waiting", "ErrImagePull", msg
        self.changed()
        self.w.event("Warning", "Failed", msg, self.name)
        self.w.event("Warning", "Failed", "Error: ErrImagePull", self.name)
        await self._sleep(2.0)
        delay = self.backoff.pull()
        self.rec.reason = "ImagePullBackOff"
        self.rec.message = f'Back-off pulling image "{image}"'
        self.changed()
        self.w.event("Normal", "BackOff", f'Back-off pulling image "{image}"', self.name)
        await self._sleep(delay)

    async def _start(self) -> containers.Proc | Exit | None:
        """Start once; a process, or how the start failed (None: retry after back-off)."""
        image = self.spec.get("image", "")
        try:
            await self.w.prefetch(self.spec)
            argv, env = self._argv_env()
        except images.ImageNotFound:
            await self._wait_pull(image)
            return None
        except EnvError as e:
            self.rec.state, self.rec.reason, self.rec.message = "waiting", "CreateContainerConfigError", str(e)
            self.changed()
            self.w.event("Warning", "Failed", f"Error: {e}", self.name)
            await self._sleep(self.backoff.pull())
            return None
        except images.ExecNotFound as e:
            msg = f"failed to create containerd task: failed to start shim task: {e}: unknown"
            self.w.event("Warning", "Failed", f"Error: {msg}", self.name)
            return Exit(128, "StartError", msg)
        self.w.event("Normal", "Pulled", f'Container image "{image}" already present on machine', self.name)
        self.w.event("Normal", "Created", f"Created container {self.name}", self.name)
        log_path = self.w.log_path(self.name, self.rec.restart_count)
        stdin: int | None = None
        try:
            if self.spec.get("stdin"):
                stdin = self._open_stdin()
            proc = await containers.start(self.w.netns, self.w.hostname, argv, env, log_path,
                                          self.spec.get("workingDir") or "/", stdin=stdin)
        except (OSError, subprocess.SubprocessError) as e:  # exec failed: what runc reports
            msg = f"failed to create containerd task: failed to start shim task: {e}: unknown"
            self.w.event("Warning", "Failed", f"Error: {msg}", self.name)
            return Exit(128, "StartError", msg)
        finally:
            if stdin is not None:
                os.close(stdin)
        self.w.event("Normal", "Started", f"Started container {self.name}", self.name)
        return proc

    @property
    def stdin_path(self) -> Path:
        return self.w.dir / self.name / "stdin"

    def _open_stdin(self) -> int:
        """The container's stdin FIFO; with ``stdinOnce`` the agent keeps a writer until the first attach ends."""
        self.close_stdin_once()
        child, self.stdin_holder = containerstdin.open_for_container(self.stdin_path, bool(self.spec.get("stdinOnce")))
        return child

    def close_stdin_once(self, restart: int | None = None) -> None:
        """``stdinOnce``: the first attach session is over (or the container restarts): the container reads EOF.

        ``restart``: the incarnation the session attached to; a later one keeps its stdin.
        """
        if restart is not None and restart != self.rec.restart_count:
            return
        if self.stdin_holder is not None:
            os.close(self.stdin_holder)
            self.stdin_holder = None

    # ---------------------------------------------------------------- run

    async def run(self, adopted: containers.Proc | None = None) -> None:
        policy = "OnFailure" if self.init and self.w.restart_policy == "Always" else self.w.restart_policy
        try:
            while not self.stopping:
                if adopted is not None:
                    started: containers.Proc | Exit | None = adopted
                    adopted = None
                else:
                    started = await self._start()
                if started is None:
                    continue
                t0 = time.monotonic()
                ex = started if isinstance(started, Exit) else await self._running(started)
                self._terminated(ex)
                if self.stopping or not should_restart(policy, ex.code):
                    break
                delay = self.backoff.next(time.monotonic() - t0)
                if delay > 0:
                    self.rec.last_terminated = self.rec.terminated_dict()
                    self.rec.state, self.rec.reason = "waiting", "CrashLoopBackOff"
                    self.rec.message = (f"back-off {int(delay)}s restarting failed container={self.name} "
                                        f"pod={self.w.pod_name}_{self.w.namespace}({self.w.uid})")
                    self.changed()
                    self.w.event("Warning", "BackOff", f"Back-off restarting failed container {self.name} in pod "
                                 f"{self.w.pod_name}_{self.w.namespace}({self.w.uid})", self.name)
                    await self._sleep(delay)
                    if self.stopping:
                        break
                self.rec.last_terminated = self.rec.terminated_dict()
                self.rec.restart_count += 1
        finally:
            self.close_stdin_once()
            self.done.set()

    async def _running(self, proc: containers.Proc) -> Exit:
        self.proc = proc
        self._exited = asyncio.Event()
        r = self.rec
        if r.state != "running":  # an adopted process keeps its recorded start
            r.started_at = now_rfc3339()
        r.state, r.reason, r.message, r.pid, r.start_ticks = "running", "", "", proc.pid, proc.start_ticks
        r.container_id = f"kubesvc://{self.w.uid[:8]}-{self.name}-{r.restart_count}"
        r.started = self.spec.get("startupProbe") is None
        r.ready = r.started and self.spec.get("readinessProbe") is None and not self.init
        self.w.container_started(self)
        self.changed()
        self._liveness_kill = False
        if not self.init:
            self._start_probes()
        try:
            code = await proc.wait()
        finally:
            self.proc = None
            self._exited.set()
            await self._stop_probes()
        if self._liveness_kill:
            return Exit(code, "Error")
        return Exit(code, "Completed" if code == 0 else "Error")

    def _terminated(self, ex: Exit) -> None:
        r = self.rec
        r.state, r.reason, r.message, r.exit_code = "terminated", ex.reason, ex.message, ex.code
        r.finished_at = now_rfc3339()
        r.started_at = r.started_at or r.finished_at
        r.ready = r.started = False
        r.pid = r.start_ticks = None
        self.changed()

    async def _sleep(self, seconds: float) -> None:
        """Sleep, waking early when the pod is told to stop."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.w.stop_requested.wait(), seconds)

    # ---------------------------------------------------------------- probes

    def _start_probes(self) -> None:
        for kind in ("startup", "readiness", "liveness"):
            spec = probes.ProbeSpec.parse(self.spec.get(f"{kind}Probe"))
            if spec is not None:
                self._probe_tasks.append(asyncio.create_task(self._probe_loop(kind, spec)))

    async def _stop_probes(self) -> None:
        tasks, self._probe_tasks = self._probe_tasks, []
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _probe_loop(self, kind: str, spec: probes.ProbeSpec) -> None:
        tracker = probes.ProbeTracker(spec, kind)
        if kind != "startup":
            while not self.rec.started:
                await asyncio.sleep(0.2)
        await asyncio.sleep(spec.initial_delay)
        ports = {p["name"]: int(p["containerPort"]) for p in self.spec.get("ports") or [] if p.get("name")}
        while True:
            ok, msg = await probes.check(spec, pod_ip=self.w.ip or "", netns=self.w.netns, ports=ports,
                                         env={"PATH": DEFAULT_PATH})
            if not ok:
                self.w.event("Warning", "Unhealthy", f"{kind.capitalize()} probe failed: {msg}", self.name)
            if tracker.record(ok):
                self._on_verdict(kind, tracker.verdict)
                if kind == "startup" and tracker.verdict:
                    return
            await asyncio.sleep(spec.period)

    def _on_verdict(self, kind: str, ok: bool) -> None:
        if kind == "readiness":
            self.rec.ready = ok
        elif kind == "startup":
            self.rec.started = ok
            self.rec.ready = ok and self.spec.get("readinessProbe") is None
        elif kind == "liveness" and not ok and self.proc is not None:
            self.w.event("Normal", "Killing", f"Container {self.name} failed liveness probe, will be restarted",
                         self.name)
            self._liveness_kill = True
            asyncio.create_task(self.kill(self.w.grace_seconds()))
            return
        self.changed()

    async def kill(self, grace: float) -> None:
        """SIGTERM, then SIGKILL after ``grace`` seconds if it is still running."""
        proc, exited = self.proc, self._exited
        if proc is None:
            return
        containers.signal_group(proc.pid, signal.SIGTERM)
        try:
            await asyncio.wait_for(exited.wait(), max(grace, 0.1))
        except TimeoutError:
            containers.signal_group(proc.pid, signal.SIGKILL)

    async def stop(self, grace: float) -> None:
        """Stop for good (pod deletion): no more restarts."""
        self.stopping = True
        if self.proc is not None:
            self.w.event("Normal", "Killing", f"Stopping container {self.name}", self.name)
            await self.kill(grace)
