"""One pod on this node, from its sandbox to its deletion.

The worker builds the pod's network (namespace, veth, IP), runs init
containers in order and then every container in its own
:class:`ContainerLoop`, reports status through the agent, and on deletion
stops the containers within the grace period, removes everything the pod
made, and finally deletes the pod object (grace 0), which is what lets the
apiserver forget a pod bound to a node.  What it needs from the agent is the
small :class:`AgentContext` protocol, so it is tested with a fake.
"""

from __future__ import annotations

import asyncio
import json
import logging
import shutil
from pathlib import Path
from typing import Any, Protocol

from kubesvc.agent import containers
from kubesvc.agent.containerloop import ContainerLoop
from kubesvc.agent.ipam import IpAllocator
from kubesvc.agent.podnet import PodNetwork, pod_netns
from kubesvc.agent.statefile import StateFile
from kubesvc.agent.status import ContainerRecord, pod_status
from kubesvc.api.meta import now_rfc3339

log = logging.getLogger("kubesvc.agent")
Obj = dict[str, Any]
PENDING_REPORT_DELAY = 0.5  # seconds a starting pod may go without a Pending status write


class AgentContext(Protocol):
    node_name: str
    node_ip: str
    state_dir: Path
    net: PodNetwork
    ipam: IpAllocator

    def services(self) -> list[Obj]: ...
    async def get_object(self, kind: str, namespace: str, name: str) -> Obj | None: ...
    def event(self, pod: Obj, etype: str, reason: str, message: str, container: str | None) -> None: ...
    def status_dirty(self, worker: PodWorker) -> None: ...


class PodWorker:
    def __init__(self, agent: AgentContext, pod: Obj, saved: Obj | None = None) -> None:
        self.agent = agent
        self.pod = pod
        m = pod["metadata"]
        self.uid, self.namespace, self.pod_name = m["uid"], m.get("namespace", "default"), m["name"]
        spec = pod.get("spec") or {}
        self.hostname = spec.get("hostname") or self.pod_name
        self.restart_policy = spec.get("restartPolicy") or "Always"
        self.netns = pod_netns(self.uid)
        self.ip: str | None = None
        self.start_time = now_rfc3339()
        self.saved = saved
        self.sandbox_ready = False
        self.stop_requested = asyncio.Event()
        self.init_loops = [ContainerLoop(self, c, ContainerRecord(c["name"], c.get("image", ""), reason="PodInitializing"
                                                                  ), init=True)
                           for c in spec.get("initContainers") or []]
        waiting = "PodInitializing" if self.init_loops else "ContainerCreating"
        self.loops = [ContainerLoop(self, c, ContainerRecord(c["name"], c.get("image", ""), reason=waiting))
                      for c in spec.get("containers") or []]
        self._cache: dict[tuple[str, str], Obj | None] = {}
        self.task: asyncio.Task[None] | None = None
        self._pending_report: asyncio.TimerHandle | None = None
        self._state: StateFile | None = None
        self.finished = False

    # ---------------------------------------------------------------- helpers for the loops

    @property
    def dir(self) -> Path:
        return self.agent.state_dir / "pods" / self.uid

    def log_path(self, container: str, restart: int) -> Path:
        return self.dir / container / f"{restart}.log"

    def grace_seconds(self) -> float:
        return float((self.pod.get("spec") or {}).get("terminationGracePeriodSeconds", 30))

    def changed(self) -> None:
        self.agent.status_dirty(self)

    def event(self, etype: str, reason: str, message: str, container: str | None = None) -> None:
        self.agent.event(self.pod, etype, reason, message, container)

    def lookup(self, kind: str, name: str) -> Obj | None:
        return self._cache.get((kind, name))

    async def prefetch(self, container: Obj) -> None:
        """Read the ConfigMaps and Secrets the container's env refers to (env computation is sync)."""
        refs: set[tuple[str, str]] = set()
        for e in container.get("env") or []:
            vf = e.get("valueFrom") or {}
            for key, kind in (("configMapKeyRef", "ConfigMap"), ("secretKeyRef", "Secret")):
                if key in vf:
                    refs.add((kind, (vf[key] or {}).get("name", "")))
        for src in container.get("envFrom") or []:
            for key, kind in (("configMapRef", "ConfigMap"), ("secretRef", "Secret")):
                if key in src:
                    refs.add((kind, (src[key] or {}).get("name", "")))
        for kind, name in refs:
            self._cache[(kind, name)] = await self.agent.get_object(kind, self.namespace, name)

    def pod_for_env(self) -> Obj:
        """The pod as the downward API sees it: with the addresses this agent already knows."""
        st = {**(self.pod.get("status") or {}), "hostIP": self.agent.node_ip, "hostIPs": [{"ip": self.agent.node_ip}]}
        if self.ip:
            st.update(podIP=self.ip, podIPs=[{"ip": self.ip}])
        return {**self.pod, "status": st}

    def container_started(self, loop: ContainerLoop) -> None:
        if self._pending_report is not None:  # the Running status this start reports replaces it
            self._pending_report.cancel()
        self.save()
        fut = asyncio.get_running_loop().run_in_executor(None, self.state.flush)  # the pid, off the loop
        fut.add_done_callback(self._flushed)

    def _flushed(self, fut: asyncio.Future[None]) -> None:
        if not fut.cancelled() and fut.exception() is not None:
            log.warning("state of %s/%s: %s", self.namespace, self.pod_name, fut.exception())

    def status(self) -> Obj:
        return pod_status(self.pod, [c.rec for c in self.init_loops], [c.rec for c in self.loops],
                          pod_ip=self.ip, host_ip=self.agent.node_ip, start_time=self.start_time,
                          now=now_rfc3339(), sandbox_ready=self.sandbox_ready)

    # ---------------------------------------------------------------- state file

    @property
    def state(self) -> StateFile:
        """``pods/<uid>.json`` in the agent's state directory."""
        if self._state is None:
            self._state = StateFile(self.agent.state_dir / "pods" / f"{self.uid}.json", journal=True)
        return self._state

    def save(self) -> None:
        """What an agent restarted over this pod needs to adopt it (written by the next ``state.flush()``)."""
        cs = {}
        for c in self.init_loops + self.loops:
            r = c.rec
            cs[c.name] = {"pid": r.pid, "ticks": r.start_ticks if r.pid else None,
                          "restartCount": r.restart_count, "startedAt": r.started_at,
                          "lastTerminated": r.last_terminated, "state": r.state, "exitCode": r.exit_code}
        doc = {"uid": self.uid, "namespace": self.namespace, "name": self.pod_name, "ip": self.ip,
               "netns": self.netns, "startTime": self.start_time, "containers": cs}
        self.state.set(json.dumps(doc).encode())

    # ---------------------------------------------------------------- lifecycle

    def start(self) -> None:
        self.task = asyncio.create_task(self.run(), name=f"pod-{self.namespace}/{self.pod_name}")

    def update(self, pod: Obj) -> None:
        self.pod = pod

    def _report_unless_started(self) -> None:
        """A Pending status only if the pod is still starting after a moment.

        A pod whose containers start at once gets one status write (Running),
        not a Pending one first; a slow one still shows ContainerCreating or
        PodInitializing, as the kubelet's does.
        """
        if self._pending_report is None:
            self._pending_report = asyncio.get_running_loop().call_later(PENDING_REPORT_DELAY, self.changed)

    async def run(self) -> None:
        try:
            adopted = await self._sandbox()
            self._report_unless_started()
            for c in self.init_loops:
                if self.stop_requested.is_set():
                    return
                if self.saved is not None:  # it ran before the restart
                    c.rec.state, c.rec.reason, c.rec.exit_code = "terminated", "Completed", 0
                    continue
                await c.run()
                if c.rec.exit_code != 0 or c.rec.state != "terminated":
                    return
            for c in self.loops:
                c.rec.reason = "ContainerCreating"
            if self.init_loops:
                self.changed()
            await asyncio.gather(*(c.run(adopted.get(c.name)) for c in self.loops))
        except asyncio.CancelledError:
            raise
        except Exception as e:
            log.exception("pod %s/%s failed to start", self.namespace, self.pod_name)
            self.event("Warning", "FailedCreatePodSandBox", f"Failed to create pod sandbox: {e}")

    async def _sandbox(self) -> dict[str, containers.Proc]:
        """The network, new or adopted; returns the adopted containers' processes."""
        adopted: dict[str, containers.Proc] = {}
        saved = self.saved
        if saved and saved.get("ip") and await self.agent.net.exists(self.uid):
            self.ip = saved["ip"]
            self.agent.ipam.assign(self.uid, saved["ip"])
            self.start_time = saved.get("startTime") or self.start_time
            for c in self.loops:
                s = (saved.get("containers") or {}).get(c.name) or {}
                c.rec.restart_count = int(s.get("restartCount") or 0)
                c.rec.last_terminated = s.get("lastTerminated")
                proc = containers.adopt(int(s.get("pid") or 0), int(s.get("ticks") or -1))
                if proc is not None:
                    adopted[c.name] = proc
                    c.rec.state, c.rec.started_at = "running", s.get("startedAt")
            self.save()
            self.agent.ipam.flush()
            self.state.flush()
        else:
            self.saved = None
            self.ip = self.agent.ipam.allocate(self.uid)
            self.save()
            # Written in the setup's worker thread, before the namespace exists: a restarted agent finds the
            # pod (and removes it, or adopts it) and reserves its address before handing out any other.
            await self.agent.net.setup(self.pod, self.uid, self.ip, before=(self.state.flush,))
        self.sandbox_ready = True
        return adopted

    async def stop(self, grace: float) -> None:
        """Stop every container (SIGTERM, grace, SIGKILL) and wait for the loops to end."""
        self.stop_requested.set()
        if self._pending_report is not None:
            self._pending_report.cancel()
        await asyncio.gather(*(c.stop(grace) for c in self.init_loops + self.loops), return_exceptions=True)
        if self.task is not None:
            try:
                await asyncio.wait_for(asyncio.shield(self.task), 5)
            except TimeoutError:
                self.task.cancel()
                await asyncio.gather(self.task, return_exceptions=True)

    async def cleanup(self) -> None:
        """Remove everything the pod made: processes, namespace, IP, logs, state."""
        await self.agent.net.teardown(self.uid)
        self.agent.ipam.release(self.uid)
        await asyncio.to_thread(self._remove_files)
        self.finished = True

    def _remove_files(self) -> None:
        """Logs and state gone (a worker thread: no file I/O on the loop)."""
        shutil.rmtree(self.dir, ignore_errors=True)
        self.state.remove()
