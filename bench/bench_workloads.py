"""Workload benchmark: Deployment of N replicas -> all pods bound -> Deployment available.

Runs a real ``kubesvc up`` with two fake nodes (:class:`FakeNodes`, which marks
each pod Ready as soon as it is bound, standing in for the node agent), then
for N in 10, 100, 500:

* baseline: the API alone creating N pods directly (16 in flight; the pods
  name a scheduler that does not exist, so nothing else happens to them);
* ``create deployment --replicas=N``: per pod, the time from the create call
  to the pod being bound (seen with ``spec.nodeName`` on a watch), to it being
  Ready, and the time until the Deployment reports N available.

Prints p50/p99 per pod and the ratio of "all bound" to the baseline's
"all created" from the same run.  Usage: ``python bench/bench_workloads.py
[--sizes 10,100,500]``.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from kubesvc.api.resources import by_kind
from kubesvc.client.informer import Informer
from kubesvc.client.rest import ApiClient
from kubesvc.testing.cluster import start_cluster
from kubesvc.testing.fakenodes import FakeNodes

PODS = by_kind("v1", "Pod")
DEPLOYMENTS = by_kind("apps/v1", "Deployment")
NAMESPACES = by_kind("v1", "Namespace")


def pct(xs: list[float], p: float) -> float:
    if not xs:
        return float("nan")
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))]


class Watcher:
    """First time each pod is seen bound and seen Ready; the Deployment's available count."""

    def __init__(self, client: ApiClient) -> None:
        assert PODS and DEPLOYMENTS
        self.seen: dict[str, float] = {}  # first seen on the watch: created
        self.bound: dict[str, float] = {}
        self.ready: dict[str, float] = {}
        self.available: dict[str, float] = {}
        self.want: dict[str, int] = {}
        self.pods = Informer(client, PODS, namespace="bench")
        self.deploys = Informer(client, DEPLOYMENTS, namespace="bench")
        self.pods.add_handler(self._pod, lambda o, n: self._pod(n), None)
        self.deploys.add_handler(self._dep, lambda o, n: self._dep(n), None)

    def _pod(self, p: dict[str, Any]) -> None:
        name = p["metadata"]["name"]
        now = time.monotonic()
        self.seen.setdefault(name, now)
        if (p.get("spec") or {}).get("nodeName"):
            self.bound.setdefault(name, now)
        if any(c.get("type") == "Ready" and c.get("status") == "True" for c in (p.get("status") or {}).get("conditions") or []):
            self.ready.setdefault(name, now)

    def _dep(self, d: dict[str, Any]) -> None:
        name = d["metadata"]["name"]
        if name in self.want and (d.get("status") or {}).get("availableReplicas") == self.want[name]:
            self.available.setdefault(name, time.monotonic())

    async def start(self) -> None:
        self.pods.start()
        self.deploys.start()
        await asyncio.gather(self.pods.wait_synced(30), self.deploys.wait_synced(30))

    async def stop(self) -> None:
        await self.pods.stop()
        await self.deploys.stop()


async def baseline(client: ApiClient, n: int) -> tuple[float, list[float]]:
    assert PODS
    sem = asyncio.Semaphore(16)
    lat: list[float] = []
    t0 = time.monotonic()

    async def one(i: int) -> None:
        body = {"metadata": {"name": f"base-{n}-{i}"},
                "spec": {"schedulerName": "nobody", "containers": [{"name": "c", "image": "nginx"}]}}
        async with sem:
            await client.create(PODS, body, "bench")
        lat.append(time.monotonic() - t0)

    await asyncio.gather(*(one(i) for i in range(n)))
    total = time.monotonic() - t0
    await client.delete_collection(PODS, "bench", label_selector=None, field_selector="spec.schedulerName=nobody")
    return total, lat


async def deployment_run(client: ApiClient, w: Watcher, n: int) -> dict[str, Any]:
    assert DEPLOYMENTS and PODS
    name = f"bench-{n}"
    w.want[name] = n
    body = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name},
            "spec": {"replicas": n, "selector": {"matchLabels": {"app": name}},
                     "template": {"metadata": {"labels": {"app": name}},
                                  "spec": {"containers": [{"name": "c", "image": "nginx"}]}}}}
    t0 = time.monotonic()
    await client.create(DEPLOYMENTS, body, "bench")
    async with asyncio.timeout(120 + n):
        while name not in w.available:
            await asyncio.sleep(0.01)
    mine = [k for k in w.bound if k.startswith(name + "-")]
    bound = [w.bound[k] - t0 for k in mine]
    ready = [w.ready[k] - t0 for k in mine if k in w.ready]
    created = [w.seen[k] - t0 for k in mine]
    to_bind = [w.bound[k] - w.seen[k] for k in mine]
    out = {"n": n, "all_bound": max(bound), "created": created, "to_bind": to_bind, "bound": bound, "ready": ready, "available": w.available[name] - t0}
    await client.delete(DEPLOYMENTS, name, "bench", propagation_policy="Background")
    async with asyncio.timeout(120):
        while any(k.startswith(name + "-") for k in w.pods.store.keys()):
            await asyncio.sleep(0.1)
    return out


async def run(kubeconfig: Path, sizes: list[int]) -> None:
    assert NAMESPACES
    async with ApiClient.from_kubeconfig(kubeconfig, timeout=60) as client:
        await client.create(NAMESPACES, {"metadata": {"name": "bench"}})
        w = Watcher(client)
        await w.start()
        try:
            print(f"{'N':>5} {'base all':>9} {'base p50':>9} {'base p99':>9} | {'bound all':>9} {'bound p50':>9} "
                  f"{'bound p99':>9} {'ready p50':>9} {'ready p99':>9} {'available':>9} | {'ratio':>6}")
            for n in sizes:
                btotal, blat = await baseline(client, n)
                r = await deployment_run(client, w, n)
                print(f"{n:>5} {btotal:>9.3f} {pct(blat, 50):>9.3f} {pct(blat, 99):>9.3f} | "
                      f"{r['all_bound']:>9.3f} {pct(r['bound'], 50):>9.3f} {pct(r['bound'], 99):>9.3f} "
                      f"{pct(r['ready'], 50):>9.3f} {pct(r['ready'], 99):>9.3f} {r['available']:>9.3f} | "
                      f"{r['all_bound'] / btotal:>6.2f}", flush=True)
                print(f"      all pods created (seen) after {max(r['created']):.3f} s; created->bound per pod "
                      f"p50 {pct(r['to_bind'], 50) * 1000:.1f} ms p99 {pct(r['to_bind'], 99) * 1000:.1f} ms; "
                      f"mean time per pod to bind {statistics.mean(r['bound']) / 1:.3f} s", flush=True)
        finally:
            await w.stop()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="10,100,500")
    args = ap.parse_args()
    sizes = [int(x) for x in args.sizes.split(",")]
    with tempfile.TemporaryDirectory(prefix="bench-workloads-") as d:
        c = start_cluster(Path(d) / "data", Path(d) / "kcache")
        try:
            with FakeNodes(c.kubeconfig, ["node-a", "node-b"]):
                asyncio.run(run(c.kubeconfig, sizes))
        finally:
            c.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
