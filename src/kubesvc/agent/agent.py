"""The node agent: registers its Node, keeps its Lease, runs the pods bound to it.

Level-triggered like the kubelet's sync loop: a pod informer filtered on
``spec.nodeName`` says which pods belong here; each gets a
:class:`PodWorker`.  Status writes are coalesced (a dirty set drained by one
writer), Events go out from one queue, so a burst of pods costs a few
requests each.  On start, pods found in the state directory are adopted if
the API still has them and removed otherwise; on stop, every pod this agent
runs is stopped and its namespace removed (the cluster is going away).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiohttp import web

from kubesvc.agent import node as nodeobj
from kubesvc.agent import podexec, threads
from kubesvc.agent.ipam import IpAllocator
from kubesvc.agent.logserver import make_app
from kubesvc.agent.podnet import PodNetwork
from kubesvc.agent.podworker import PodWorker
from kubesvc.agent.statefile import read_last
from kubesvc.agent.sysexec import Runner
from kubesvc.api.meta import now_micro, now_rfc3339
from kubesvc.api.resources import Resource, by_plural
from kubesvc.client.informer import Informer
from kubesvc.client.rest import ApiClient, ApiError, is_not_found

log = logging.getLogger("kubesvc.agent")
Obj = dict[str, Any]


def _res(group: str, version: str, plural: str) -> Resource:
    r = by_plural(group, version, plural)
    assert r is not None, plural
    return r


PODS, NODES, SERVICES = _res("", "v1", "pods"), _res("", "v1", "nodes"), _res("", "v1", "services")
EVENTS, LEASES = _res("", "v1", "events"), _res("coordination.k8s.io", "v1", "leases")
# Status writes in flight at once.  Each needs its own HTTP/1.1 connection (a TLS handshake, ~3 ms of CPU
# on each side, whenever the pool has grown or idled out); the API server serves them one at a time anyway,
# so a few keep it busy, and more only made a burst of pods open more connections and queue at the server.
STATUS_WRITES_IN_FLIGHT = 4
IO_THREADS = min(32, (os.cpu_count() or 1) + 4)  # asyncio's default executor size
KINDS = {"ConfigMap": by_plural("", "v1", "configmaps"), "Secret": by_plural("", "v1", "secrets")}


@dataclass
class AgentConfig:
    node_name: str
    node_ip: str
    pod_cidr: str
    state_dir: Path
    token: str = ""
    port: int = 10250
    stop_grace: float = 5.0  # at most this per pod when the agent itself stops


class Agent:
    def __init__(self, cfg: AgentConfig, client: ApiClient, runner: Runner) -> None:
        self.cfg = cfg
        self.client = client
        self.node_name, self.node_ip, self.state_dir = cfg.node_name, cfg.node_ip, cfg.state_dir
        self.net = PodNetwork(runner, cfg.pod_cidr)
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self.ipam = IpAllocator(cfg.pod_cidr, self.state_dir / "ipam.json", deferred=True)
        self.pods = Informer(client, PODS, field_selector=f"spec.nodeName={cfg.node_name}")
        self.svcs = Informer(client, SERVICES)
        self.workers: dict[str, PodWorker] = {}
        self._terminating: dict[str, asyncio.Task[None]] = {}
        self._dirty: set[str] = set()
        self._wake = asyncio.Event()
        self._events: asyncio.Queue[Obj] = asyncio.Queue(maxsize=2000)
        self._written: dict[str, Obj] = {}
        self._tasks: list[asyncio.Task[Any]] = []
        self._runner: web.AppRunner | None = None
        self._io: ThreadPoolExecutor | None = None
        self._status_inflight: dict[str, asyncio.Task[None]] = {}
        self.node_uid: str | None = None

    # ---------------------------------------------------------------- AgentContext

    def services(self) -> list[Obj]:
        return self.svcs.store.list()

    async def get_object(self, kind: str, namespace: str, name: str) -> Obj | None:
        res = KINDS.get(kind)
        if res is None:  # a kind this apiserver does not serve (yet)
            return None
        try:
            return await self.client.get(res, name, namespace)
        except ApiError as e:
            if is_not_found(e):
                return None
            raise

    def event(self, pod: Obj, etype: str, reason: str, message: str, container: str | None) -> None:
        m = pod.get("metadata") or {}
        now = now_rfc3339()
        involved: Obj = {"kind": "Pod", "namespace": m.get("namespace"), "name": m.get("name"),
                         "uid": m.get("uid"), "apiVersion": "v1", "resourceVersion": m.get("resourceVersion")}
        if container:
            involved["fieldPath"] = f"spec.containers{{{container}}}"
        ev = {"metadata": {"name": f"{m.get('name')}.{time.time_ns():x}", "namespace": m.get("namespace")},
              "involvedObject": involved, "reason": reason, "message": message, "type": etype,
              "source": {"component": "kubelet", "host": self.node_name}, "firstTimestamp": now,
              "lastTimestamp": now, "count": 1, "reportingComponent": "kubelet",
              "reportingInstance": self.node_name}
        with contextlib.suppress(asyncio.QueueFull):
            self._events.put_nowait(ev)

    def status_dirty(self, worker: PodWorker) -> None:
        self.status_dirty_uid(worker.uid)

    def status_dirty_uid(self, uid: str) -> None:
        self._dirty.add(uid)
        self._wake.set()

    def find(self, namespace: str, name: str) -> PodWorker | None:
        return next((w for w in self.workers.values() if w.namespace == namespace and w.pod_name == name), None)

    # ---------------------------------------------------------------- start / stop

    async def start(self) -> None:
        if self._io is None:  # worker threads (container starts, state files; pod networks) before any burst
            self._io = ThreadPoolExecutor(max_workers=IO_THREADS, thread_name_prefix="agent-io")
            asyncio.get_running_loop().set_default_executor(self._io)
            threads.prestart(self._io, IO_THREADS)
            self.net.prestart()
        await asyncio.to_thread(podexec.launcher)  # built once, before any pod needs it
        await self.register()
        self._tasks += [asyncio.create_task(self._lease_loop()), asyncio.create_task(self._node_status_loop()),
                        asyncio.create_task(self._status_writer()), asyncio.create_task(self._event_sender()),
                        asyncio.create_task(self._ipam_writer())]
        self.pods.start()
        self.svcs.start()
        await asyncio.gather(self.pods.wait_synced(), self.svcs.wait_synced())
        await self.adopt()
        self.pods.add_handler(on_add=self.sync_pod, on_update=lambda old, new: self.sync_pod(new),
                              on_delete=self.pod_gone)
        self._runner = web.AppRunner(make_app(self.find, self.cfg.token), access_log=None, handle_signals=False)
        await self._runner.setup()
        await web.TCPSite(self._runner, self.node_ip, self.cfg.port, reuse_address=True).start()
        log.info("agent %s ready: %d pods adopted", self.node_name, len(self.workers))

    async def stop(self) -> None:
        await self.pods.stop()
        await self.svcs.stop()
        workers = list(self.workers.values())
        await asyncio.gather(*(self._stop_worker(w, min(w.grace_seconds(), self.cfg.stop_grace))
                               for w in workers), return_exceptions=True)
        for t in self._tasks + list(self._terminating.values()):
            t.cancel()
        await asyncio.gather(*self._tasks, *self._terminating.values(), return_exceptions=True)
        if self._runner is not None:
            await self._runner.cleanup()
        self.net.close()
        self.ipam.flush()

    async def _stop_worker(self, w: PodWorker, grace: float) -> None:
        await w.stop(grace)
        await w.cleanup()
        self.workers.pop(w.uid, None)

    async def adopt(self) -> None:
        """Pods an earlier agent left: keep the ones the API still binds here, remove the rest.

        The kept pods' addresses come from their own state files (the IPAM file is written lazily and
        may lag): every address that is not a kept pod's is released, and each kept pod's is reserved,
        before any pod starts, so no new pod is handed an address in use.
        """
        live = {p["metadata"]["uid"]: p for p in self.pods.store.list()}
        kept: list[tuple[PodWorker, Obj]] = []
        for f in sorted((self.state_dir / "pods").glob("*.json")):
            try:
                saved = read_last(f)
            except (OSError, ValueError):
                f.unlink(missing_ok=True)
                continue
            uid = saved.get("uid", f.stem)
            pod = live.get(uid)
            w = PodWorker(self, pod or {"metadata": {"uid": uid, "name": saved.get("name", ""),
                                                     "namespace": saved.get("namespace", "")}}, saved)
            if pod is None:
                log.info("removing orphaned pod %s/%s", saved.get("namespace"), saved.get("name"))
                await w.cleanup()
                continue
            kept.append((w, saved))
        for owner in self.ipam.owners():
            if owner not in {w.uid for w, _ in kept}:
                self.ipam.release(owner)
        for w, saved in kept:
            if saved.get("ip"):
                try:
                    self.ipam.assign(w.uid, saved["ip"])
                except ValueError as e:  # not this node's range, or another's: the pod gets a new one
                    log.warning("pod %s/%s: %s", w.namespace, w.pod_name, e)
        self.ipam.flush()
        for w, _ in kept:
            self.workers[w.uid] = w
            w.start()

    # ---------------------------------------------------------------- pods

    async def sync_pod(self, pod: Obj) -> None:
        m = pod.get("metadata") or {}
        uid = m.get("uid")
        if not uid:
            return
        w = self.workers.get(uid)
        if w is None:
            if (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed") and not m.get("deletionTimestamp"):
                return  # finished before; nothing runs
            w = PodWorker(self, pod)
            self.workers[uid] = w
            if not m.get("deletionTimestamp"):
                w.start()
        else:
            w.update(pod)
        if m.get("deletionTimestamp") and uid not in self._terminating:
            grace = float(m.get("deletionGracePeriodSeconds") or 0)
            self._terminating[uid] = asyncio.create_task(self._terminate(w, grace))

    async def _terminate(self, w: PodWorker, grace: float) -> None:
        """Graceful deletion: stop, clean up, then let the apiserver forget the pod."""
        try:
            await self._stop_worker(w, grace)
            with contextlib.suppress(ApiError):
                await self.client.delete(PODS, w.pod_name, w.namespace, grace_period_seconds=0,
                                         preconditions={"uid": w.uid})
        except Exception:
            log.exception("terminating %s/%s", w.namespace, w.pod_name)
        finally:
            self._terminating.pop(w.uid, None)
            self._written.pop(w.uid, None)

    async def pod_gone(self, pod: Obj) -> None:
        """Deleted outright (grace 0, or unbound): stop at once."""
        uid = (pod.get("metadata") or {}).get("uid")
        w = self.workers.get(uid or "")
        if w is not None and uid not in self._terminating:
            self._terminating[uid] = asyncio.create_task(self._stop_then_forget(w))

    async def _stop_then_forget(self, w: PodWorker) -> None:
        try:
            await self._stop_worker(w, 0)
        finally:
            self._terminating.pop(w.uid, None)
            self._written.pop(w.uid, None)

    # ---------------------------------------------------------------- writers

    async def _status_writer(self) -> None:
        sem = asyncio.Semaphore(STATUS_WRITES_IN_FLIGHT)

        async def write(uid: str) -> None:
            async with sem:
                w = self.workers.get(uid)
                if w is None or uid in self._terminating:
                    return
                status = w.status()
                if self._written.get(uid) == status:
                    return
                try:
                    await self.client.patch(PODS, w.pod_name, {"status": status}, w.namespace,
                                            subresource="status")
                    self._written[uid] = status
                except ApiError as e:
                    if not is_not_found(e):
                        log.warning("status of %s/%s: %s", w.namespace, w.pod_name, e)
                except Exception as e:  # noqa: BLE001 - the next change retries
                    log.warning("status of %s/%s: %s", w.namespace, w.pod_name, e)

        # Writes go out as they come (a few at once), not batch after batch: a pod that turns
        # Ready does not wait for the slowest write of the batch before it.  One write per pod is in
        # flight at a time; a change meanwhile is written after it.
        inflight = self._status_inflight
        again: set[str] = set()

        def done(uid: str) -> None:
            inflight.pop(uid, None)
            if uid in again:
                again.discard(uid)
                self.status_dirty_uid(uid)

        try:
            while True:
                await self._wake.wait()
                await asyncio.sleep(0.02)  # coalesce: a pod's quick changes become one write
                self._wake.clear()
                batch, self._dirty = self._dirty, set()
                for uid in batch:
                    if uid in inflight:
                        again.add(uid)
                        continue
                    t = asyncio.create_task(write(uid))
                    inflight[uid] = t
                    t.add_done_callback(lambda _t, uid=uid: done(uid))
        finally:
            for t in list(inflight.values()):
                t.cancel()
            await asyncio.gather(*inflight.values(), return_exceptions=True)

    async def _ipam_writer(self) -> None:
        """The address allocations on disk about once a second, from a worker thread (see ``ipam``)."""
        while True:
            await asyncio.sleep(1.0)
            if self.ipam.unsaved:
                try:
                    await asyncio.to_thread(self.ipam.flush)
                except OSError as e:
                    log.warning("ipam state: %s", e)

    async def _event_sender(self) -> None:
        while True:
            ev = await self._events.get()
            # Status first (what users and controllers wait for), though not forever: a steady stream of
            # status writes delays an event by a few seconds at most.
            for _ in range(100):
                if not (self._dirty or self._status_inflight):
                    break
                await asyncio.sleep(0.05)
            try:
                await self.client.create(EVENTS, ev, ev["metadata"]["namespace"])
            except Exception as e:  # noqa: BLE001 - events are best effort
                log.debug("event: %s", e)

    # ---------------------------------------------------------------- node and lease

    async def register(self) -> None:
        body = nodeobj.node_object(self.node_name, self.cfg.pod_cidr)
        try:
            node = await self.client.create(NODES, body)
        except ApiError as e:
            if e.code != 409:
                raise
            node = await self.client.patch(NODES, self.node_name, {"metadata": {"labels": body["metadata"]["labels"]}})
        self.node_uid = node["metadata"].get("uid")
        for attempt in range(5):  # controllers write node status too: retry a lost race
            try:
                await self._post_node_status(node.get("status"))
                return
            except ApiError as e:
                if e.code != 409 or attempt == 4:
                    raise
                await asyncio.sleep(0.1)

    async def _post_node_status(self, prev: Obj | None) -> None:
        status = nodeobj.node_status(self.node_name, self.node_ip, self.cfg.port, now_rfc3339(), prev)
        await self.client.patch(NODES, self.node_name, {"status": status}, subresource="status")

    async def _node_status_loop(self) -> None:
        while True:
            await asyncio.sleep(nodeobj.STATUS_UPDATE)
            try:
                node = await self.client.get(NODES, self.node_name)
                await self._post_node_status(node.get("status"))
            except ApiError as e:
                if is_not_found(e):  # deleted under us: register again, as the kubelet does
                    with contextlib.suppress(Exception):
                        await self.register()
            except Exception as e:  # noqa: BLE001
                log.warning("node status: %s", e)

    async def _lease_loop(self) -> None:
        while True:
            try:
                await self._renew_lease()
            except Exception as e:  # noqa: BLE001 - try again next period
                log.warning("lease: %s", e)
            await asyncio.sleep(nodeobj.LEASE_RENEW)

    async def _renew_lease(self) -> None:
        try:
            lease = await self.client.get(LEASES, self.node_name, "kube-node-lease")
        except ApiError as e:
            if not is_not_found(e):
                raise
            await self.client.create(LEASES, nodeobj.lease_object(self.node_name, self.node_uid, now_micro()),
                                     "kube-node-lease")
            return
        lease.setdefault("spec", {}).update(holderIdentity=self.node_name, renewTime=now_micro(),
                                            leaseDurationSeconds=nodeobj.LEASE_DURATION)
        await self.client.replace(LEASES, lease, "kube-node-lease")


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
