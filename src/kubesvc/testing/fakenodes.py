"""Fake node agents: Nodes that are Ready, renew their Leases, and make their pods Ready.

Whole-cluster tests and benchmarks of the controllers need nodes without
running anything: this registers Nodes through the API, renews each one's
Lease in ``kube-node-lease``, marks every pod bound to a live node Running
and Ready through ``/status`` right away, and finishes the graceful deletion
of its pods (a delete with grace 0), as a real agent would once the
containers stopped.  ``labels`` and ``cpu`` give nodes zones and allocatable
CPU (what topology-aware hints are computed from).  :meth:`FakeNodes.silence` stops one node's heartbeats
(its agent "died"); :meth:`revive` brings it back.

It runs its own event loop in a thread, so synchronous pytest tests can use
it beside ``kubectl``.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from kubesvc.api.meta import now_micro, now_rfc3339
from kubesvc.api.resources import by_kind
from kubesvc.client.informer import Informer
from kubesvc.client.rest import ApiClient, ApiError

Obj = dict[str, Any]
NODES = by_kind("v1", "Node")
PODS = by_kind("v1", "Pod")
LEASES = by_kind("coordination.k8s.io/v1", "Lease")


def ready_pod_status(pod_ip: str, now: str) -> Obj:
    conds = [{"type": t, "status": "True", "lastProbeTime": None, "lastTransitionTime": now}
             for t in ("Initialized", "Ready", "ContainersReady", "PodScheduled")]
    return {"phase": "Running", "conditions": conds, "podIP": pod_ip, "podIPs": [{"ip": pod_ip}], "startTime": now}


class FakeNodes:
    """``with FakeNodes(kubeconfig, ["n1", "n2"]) as nodes: ...``."""

    def __init__(self, kubeconfig: str | Path, names: Iterable[str], *, lease_period: float = 1.0,
                 labels: dict[str, dict[str, str]] | None = None, cpu: dict[str, str] | None = None) -> None:
        self.kubeconfig = kubeconfig
        self.names = list(names)
        self.lease_period = lease_period
        self.labels = labels or {}
        self.cpu = cpu or {}
        self.silenced: set[str] = set()
        self.ready_at: dict[str, float] = {}  # pod key -> when we made it Ready (monotonic)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True, name="fake-nodes")
        self._stop: asyncio.Event | None = None
        self._main: Any = None
        self._next_ip = 1
        self._inflight: set[str] = set()

    def __enter__(self) -> FakeNodes:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _call(self, coro: Any, timeout: float = 30) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout)

    def start(self) -> None:
        self._thread.start()
        started = self._call(self._start())
        assert started

    def stop(self) -> None:
        if self._main is not None:
            self._call(self._shutdown())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    def silence(self, name: str) -> None:
        self.silenced.add(name)

    def revive(self, name: str) -> None:
        self.silenced.discard(name)
        self._call(self._post_ready(name))

    def delete_node(self, name: str) -> None:
        self.silenced.add(name)
        assert NODES
        self._call(self.client.delete(NODES, name))

    # ---------------------------------------------------------------- inside the loop

    async def _start(self) -> bool:
        assert NODES and PODS
        self.client = ApiClient.from_kubeconfig(self.kubeconfig, timeout=15, user_agent="fake-node-agent")
        self._stop = asyncio.Event()
        for name in self.names:
            node = {"apiVersion": "v1", "kind": "Node",
                    "metadata": {"name": name, "labels": {"kubernetes.io/hostname": name,
                                                          "kubernetes.io/os": "linux", **self.labels.get(name, {})}}}
            with contextlib.suppress(ApiError):
                await self.client.create(NODES, node)
            await self._post_ready(name)
            await self._renew(name)
        self.pods = Informer(self.client, PODS)
        self.pods.add_handler(self._pod, lambda old, new: self._pod(new), None)
        self.pods.start()
        await self.pods.wait_synced(30)
        self._tasks: set[asyncio.Task[Any]] = set()
        self._main = asyncio.create_task(self._renew_loop())
        return True

    async def _shutdown(self) -> None:
        assert self._stop is not None
        self._stop.set()
        self._main.cancel()
        await asyncio.gather(self._main, return_exceptions=True)
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.pods.stop()
        await self.client.close()

    async def _post_ready(self, name: str) -> None:
        assert NODES
        now = now_rfc3339()
        cond = {"type": "Ready", "status": "True", "reason": "KubeletReady", "message": "kubelet is posting ready status",
                "lastHeartbeatTime": now, "lastTransitionTime": now}
        status: Obj = {"conditions": [cond]}
        if name in self.cpu:
            status["allocatable"] = status["capacity"] = {"cpu": self.cpu[name], "memory": "8Gi", "pods": "110"}
        await self.client.patch(NODES, name, {"status": status}, patch_type="strategic", subresource="status")

    async def _renew(self, name: str) -> None:
        assert LEASES
        now = now_micro()
        lease = {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                 "metadata": {"name": name, "namespace": "kube-node-lease"},
                 "spec": {"holderIdentity": name, "leaseDurationSeconds": 40, "renewTime": now}}
        try:
            await self.client.patch(LEASES, name, {"spec": {"renewTime": now}}, "kube-node-lease")
        except ApiError as e:
            if e.code != 404:
                raise
            await self.client.create(LEASES, lease, "kube-node-lease")

    async def _renew_loop(self) -> None:
        while True:
            await asyncio.sleep(self.lease_period)
            for name in self.names:
                if name not in self.silenced:
                    with contextlib.suppress(ApiError, OSError):
                        await self._renew(name)

    def _pod(self, pod: Obj) -> None:
        node = (pod.get("spec") or {}).get("nodeName")
        if not node or node not in self.names or node in self.silenced:
            return
        m = pod["metadata"]
        if m.get("deletionTimestamp"):
            self._spawn(self.client.delete(PODS, m["name"], m["namespace"], grace_period_seconds=0))
            return
        conds = (pod.get("status") or {}).get("conditions") or []
        if any(c.get("type") == "Ready" and c.get("status") == "True" for c in conds):
            return
        key = f"{m['namespace']}/{m['name']}"
        if key in self._inflight:
            return
        self._inflight.add(key)
        self.ready_at.setdefault(key, time.monotonic())
        ip = f"127.244.{self._next_ip // 250}.{self._next_ip % 250 + 2}"
        self._next_ip += 1
        status = ready_pod_status(ip, now_rfc3339())
        self._spawn(self.client.patch(PODS, m["name"], {"status": status}, m["namespace"], patch_type="strategic",
                                      subresource="status"), key)

    def _spawn(self, coro: Any, key: str | None = None) -> None:
        async def quiet() -> None:
            try:
                with contextlib.suppress(ApiError, OSError):
                    await coro
            finally:
                self._inflight.discard(key or "")
        t = asyncio.create_task(quiet())
        self._tasks.add(t)
        t.add_done_callback(self._tasks.discard)
