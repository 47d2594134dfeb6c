"""Endpoint propagation latency and slice writes per pod change, next to the API alone.

Starts a real ``kubesvc up`` (apiserver and every controller in one process,
sqlite storage, TLS), then from this process over HTTPS, for two shapes:

* one Service selecting 1,000 pods (10 slices of 100);
* 1,000 Services of 3 pods each (1,000 slices).

Each sample flips one pod's Ready condition through the /status subresource
and times, from just before the write:

* baseline -- the write's own Pod watch event (the API server alone: request,
  storage, watch fan-out);
* slice -- the EndpointSlice watch event carrying the new readiness.

Flips are sequential (the next starts once the slice shows the last), so each
figure is one change's latency.  Slice MODIFIED events seen during the flips,
divided by the number of flips, is the slice writes per pod change.

Goal: slice p99 < 100 ms, 1.00 slice write per pod change.
Run: ``python bench/bench_endpoints.py [--pods 1000] [--services 1000] [--flips 200]``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import tempfile
import time
from pathlib import Path
from typing import Any

from kubesvc.api.resources import by_plural
from kubesvc.client.rest import ApiClient
from kubesvc.testing.cluster import start_cluster

Obj = dict[str, Any]
PODS = by_plural("", "v1", "pods")
SERVICES = by_plural("", "v1", "services")
NODES = by_plural("", "v1", "nodes")
NAMESPACES = by_plural("", "v1", "namespaces")
SLICES = by_plural("discovery.k8s.io", "v1", "endpointslices")
assert PODS and SERVICES and NODES and NAMESPACES and SLICES


def pct(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    s = sorted(values)
    return s[min(len(s) - 1, int(round(p / 100 * (len(s) - 1))))]


def now_rfc3339() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def pod_status(ip: str, ready: bool) -> Obj:
    return {"status": {"phase": "Running", "podIP": ip, "podIPs": [{"ip": ip}],
                       "conditions": [{"type": "Ready", "status": "True" if ready else "False",
                                       "lastTransitionTime": now_rfc3339()}]}}


class Probe:
    """Watches pods and slices of a namespace; resolves the pending flip when each side shows it."""

    def __init__(self, api: ApiClient, ns: str) -> None:
        self.api, self.ns = api, ns
        self.pending: tuple[str, bool] | None = None
        self.api_seen: asyncio.Event = asyncio.Event()
        self.slice_seen: asyncio.Event = asyncio.Event()
        self.api_at = self.slice_at = 0.0
        self.slice_modified = 0
        self._tasks: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        for resource, handler in ((PODS, self._on_pod), (SLICES, self._on_slice)):
            rv = (await self.api.list(resource, self.ns, limit=1))["metadata"]["resourceVersion"]
            self._tasks.append(asyncio.create_task(self._watch(resource, rv, handler)))

    async def stop(self) -> None:
        for t in self._tasks:
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _watch(self, resource: Any, rv: str, handler: Any) -> None:
        async for etype, obj in self.api.watch(resource, self.ns, resource_version=rv, timeout_seconds=3600):
            handler(etype, obj)

    def _on_pod(self, etype: str, obj: Obj) -> None:
        if self.pending and etype == "MODIFIED" and obj["metadata"]["name"] == self.pending[0]:
            ready = any(c["type"] == "Ready" and c["status"] == "True" for c in obj["status"]["conditions"])
            if ready == self.pending[1] and not self.api_seen.is_set():
                self.api_at = time.perf_counter()
                self.api_seen.set()

    def _on_slice(self, etype: str, obj: Obj) -> None:
        if etype == "MODIFIED":
            self.slice_modified += 1
        if not self.pending:
            return
        for ep in obj.get("endpoints") or []:
            if (ep.get("targetRef") or {}).get("name") == self.pending[0]:
                if ep["conditions"]["ready"] == self.pending[1] and not self.slice_seen.is_set():
                    self.slice_at = time.perf_counter()
                    self.slice_seen.set()

    async def flip(self, name: str, ip: str, ready: bool) -> tuple[float, float]:
        self.pending = (name, ready)
        self.api_seen.clear()
        self.slice_seen.clear()
        t0 = time.perf_counter()
        await self.api.patch(PODS, name, pod_status(ip, ready), self.ns, subresource="status")
        await asyncio.wait_for(asyncio.gather(self.api_seen.wait(), self.slice_seen.wait()), 30)
        self.pending = None
        return (self.api_at - t0) * 1000, (self.slice_at - t0) * 1000


async def bounded(coros: list[Any], limit: int = 32) -> None:
    sem = asyncio.Semaphore(limit)

    async def run(c: Any) -> None:
        async with sem:
            await c

    await asyncio.gather(*(run(c) for c in coros))


async def make_pod(api: ApiClient, ns: str, name: str, app: str, ip: str, node: str) -> None:
    await api.create(PODS, {"metadata": {"name": name, "labels": {"app": app}},
                            "spec": {"nodeName": node, "containers": [{"name": "c", "image": "nginx"}]}}, ns)
    await api.patch(PODS, name, pod_status(ip, True), ns, subresource="status")


async def wait_ready_endpoints(api: ApiClient, ns: str, want: int, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        items = (await api.list_all(SLICES, ns))["items"]
        got = sum(1 for s in items for e in s.get("endpoints") or [] if e["conditions"]["ready"])
        if got >= want:
            return
        await asyncio.sleep(0.5)
    raise TimeoutError(f"only {got}/{want} ready endpoints in {ns}")


async def scenario(api: ApiClient, ns: str, services: int, pods_per_service: int, flips: int) -> Obj:
    await api.create(NAMESPACES, {"metadata": {"name": ns}})
    apps = [f"app{i}" for i in range(services)]
    await bounded([api.create(SERVICES, {"metadata": {"name": f"svc{i}"}, "spec": {
        "selector": {"app": app}, "ports": [{"port": 80, "targetPort": 8080}]}}, ns) for i, app in enumerate(apps)])
    pods = [(f"p{i}", apps[i // pods_per_service], f"10.{100 + i // 62500}.{i // 250 % 250}.{i % 250 + 1}")
            for i in range(services * pods_per_service)]
    t = time.perf_counter()
    await bounded([make_pod(api, ns, n, app, ip, f"node-{i % 2 + 1}") for i, (n, app, ip) in enumerate(pods)])
    await wait_ready_endpoints(api, ns, len(pods))
    setup = time.perf_counter() - t
    await asyncio.sleep(1.0)  # let trailing writes settle before counting
    probe = Probe(api, ns)
    await probe.start()
    await asyncio.sleep(0.2)
    probe.slice_modified = 0
    api_ms, slice_ms = [], []
    state = {name: True for name, _, _ in pods}
    rng = random.Random(7)
    for _ in range(flips):
        name, _, ip = rng.choice(pods)
        state[name] = not state[name]
        a, s = await probe.flip(name, ip, state[name])
        api_ms.append(a)
        slice_ms.append(s)
    await asyncio.sleep(0.5)
    await probe.stop()
    return {"setup_s": setup, "api": api_ms, "slice": slice_ms, "writes_per_change": probe.slice_modified / flips}


async def main(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        # no node agents: the pods are fakes whose status this script writes, on nodes that post no
        # heartbeats -- so the node lifecycle controller must not fail them (and evict their pods)
        os.environ["KUBESVC_NODE_MONITOR_GRACE_PERIOD"] = "86400"
        cluster = start_cluster(Path(tmp) / "data", Path(tmp) / "kcache", "--nodes", "0", "--dns-port", "0",
                                timeout=60)
        try:
            async with ApiClient.from_kubeconfig(cluster.kubeconfig, timeout=60) as api:
                for i, zone in ((1, "zone-a"), (2, "zone-b")):
                    await api.create(NODES, {"metadata": {"name": f"node-{i}",
                                                          "labels": {"topology.kubernetes.io/zone": zone}}})
                rows = [(f"1 Service x {args.pods} pods", await scenario(api, "bench-one", 1, args.pods, args.flips)),
                        (f"{args.services} Services x 3 pods",
                         await scenario(api, "bench-many", args.services, 3, args.flips))]
        finally:
            cluster.stop()
    print(f"\n{'shape':<26}{'setup':>8}{'api p50':>9}{'api p99':>9}{'slice p50':>11}{'slice p99':>11}"
          f"{'p99 ratio':>11}{'writes/change':>15}")
    for label, r in rows:
        a50, a99, s50, s99 = pct(r["api"], 50), pct(r["api"], 99), pct(r["slice"], 50), pct(r["slice"], 99)
        print(f"{label:<26}{r['setup_s']:>7.1f}s{a50:>7.1f}ms{a99:>7.1f}ms{s50:>9.1f}ms{s99:>9.1f}ms"
              f"{s99 / a99:>10.1f}x{r['writes_per_change']:>15.2f}")
    print(f"\n{args.flips} sequential Ready flips per shape; api = the status write's own pod watch event "
          "(baseline), slice = the EndpointSlice watch event carrying it.\nGoal: slice p99 < 100 ms, "
          "1.00 slice write per pod change.")


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--pods", type=int, default=1000)
    p.add_argument("--services", type=int, default=1000)
    p.add_argument("--flips", type=int, default=200)
    asyncio.run(main(p.parse_args()))
