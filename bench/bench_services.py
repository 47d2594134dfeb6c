"""Service create latency with allocation when 1,000 and when 10,000 Services exist.

Starts ``kubesvc apiserver`` (sqlite storage, TLS, client certificates) in
processes of their own and, from this process over HTTPS:

1. one apiserver is filled to 1,000 Services (automatic clusterIPs) and
   1,000 ConfigMaps, a second one to 10,000 of each (50 concurrent clients);
2. on both, in alternating rounds (so that other load on the machine hits
   both sizes alike), one request at a time: the latency of creating a
   NodePort Service (an automatic clusterIP and node port are allocated) and,
   as the baseline with no allocation, of creating a ConfigMap of about the
   same size; the measured objects are deleted after each round (node ports
   are scarce).

It prints medians and p99 and the ratio of the two Service medians (goal: at
most 1.2: allocation cost must not grow with the number of Services), with
the ConfigMap ratio next to it.  A second section times the allocation
planner alone (plan + commit, no I/O) with 1,000 / 10,000 / 50,000 addresses
in use.

Run: ``python bench/bench_services.py [--samples 400] [--sizes 1000,10000] [--storage memory://]``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp
import orjson

from kubesvc.client.config import load_kubeconfig
from kubesvc.registry.service.allocation import plan_allocations
from kubesvc.registry.service.config import ServiceConfig
from kubesvc.registry.service.defaults import default_service
from kubesvc.registry.service.ipallocator import IPAllocator
from kubesvc.registry.service.portallocator import PortAllocator

NS = "bench"


def pct(values: list[float], p: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, int(round(p / 100 * (len(s) - 1))))] if s else float("nan")


def service(name: str, node_port: bool) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "selector": {"app": name},
        "ports": [{"name": "http", "port": 80, "targetPort": 8080}, {"name": "https", "port": 443, "targetPort": 8443}],
    }
    if node_port:
        spec["type"] = "NodePort"
    return {"apiVersion": "v1", "kind": "Service",
            "metadata": {"name": name, "namespace": NS, "labels": {"app": name, "bench": "yes"}}, "spec": spec}


def configmap(name: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": name, "namespace": NS, "labels": {"app": name, "bench": "yes"}},
            "data": {"selector": name, "ports": "http 80 8080; https 443 8443", "type": "NodePort"}}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Api:
    def __init__(self, base: str, session: aiohttp.ClientSession) -> None:
        self.base, self.session = base, session

    async def post(self, path: str, body: dict[str, Any]) -> None:
        async with self.session.post(f"{self.base}{path}", data=orjson.dumps(body)) as r:
            payload = await r.read()
            if r.status != 201:
                raise RuntimeError(f"POST {path} answered {r.status}: {payload[:300]!r}")

    async def delete(self, path: str) -> None:
        async with self.session.delete(f"{self.base}{path}") as r:
            await r.read()
            if r.status != 200:
                raise RuntimeError(f"DELETE {path} answered {r.status}")

    async def fill(self, start: int, stop: int, clients: int) -> None:
        """Services fill-<i> (automatic clusterIP) and ConfigMaps fill-<i>, for i in [start, stop)."""
        todo = iter(range(start, stop))

        async def worker() -> None:
            for i in todo:
                await self.post(f"/api/v1/namespaces/{NS}/services", service(f"fill-{i}", node_port=False))
                await self.post(f"/api/v1/namespaces/{NS}/configmaps", configmap(f"fill-{i}"))

        await asyncio.gather(*(worker() for _ in range(clients)))

    async def measure(self, tag: str, samples: int) -> tuple[list[float], list[float]]:
        """One create at a time, Service and ConfigMap alternating; then delete what was measured."""
        svc_lat: list[float] = []
        cm_lat: list[float] = []
        for i in range(samples):
            name = f"m{tag}-{i}"
            t0 = time.perf_counter()
            await self.post(f"/api/v1/namespaces/{NS}/services", service(name, node_port=True))
            t1 = time.perf_counter()
            await self.post(f"/api/v1/namespaces/{NS}/configmaps", configmap(name))
            t2 = time.perf_counter()
            svc_lat.append(t1 - t0)
            cm_lat.append(t2 - t1)
        for i in range(samples):
            await self.delete(f"/api/v1/namespaces/{NS}/services/m{tag}-{i}")
            await self.delete(f"/api/v1/namespaces/{NS}/configmaps/m{tag}-{i}")
        return svc_lat, cm_lat


def planner_alone(levels: tuple[int, ...], samples: int) -> dict[int, list[float]]:
    """plan_allocations + commit for a NodePort Service with N addresses (and 1,000 node ports) taken.

    No I/O.  The levels are measured in alternation, so drift hits them alike.
    """
    cfg = ServiceConfig()
    allocs = {}
    for n in levels:
        ips, ports = IPAllocator(cfg.service_cidr, random.Random(n)), PortAllocator(cfg.node_port_range, random.Random(n))
        for _ in range(n):
            ips.allocate_next()
        for _ in range(1000):
            ports.allocate_next()
        allocs[n] = (ips, ports)
    lat: dict[int, list[float]] = {n: [] for n in levels}
    for i in range(samples):
        for n, (ips, ports) in allocs.items():
            svc = service(f"p-{i}", node_port=True)
            default_service(svc, cfg)
            t0 = time.perf_counter()
            plan_allocations(svc, None, ips, ports).commit()
            lat[n].append(time.perf_counter() - t0)
            plan_allocations(None, svc, ips, ports).commit()  # give it back: the fill level stays put
    return lat


async def start_apiserver(tmp: Path, storage: str) -> tuple[subprocess.Popen[str], Path]:
    data = tmp / f"data-{len(list(tmp.iterdir()))}"
    extra = ["--storage", storage] if storage else []
    proc = subprocess.Popen([sys.executable, "-m", "kubesvc", "apiserver", "--data-dir", str(data),
                             "--port", str(free_port()), *extra], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert proc.stdout is not None
    for line in proc.stdout:
        if "kubesvc is up" in line:
            return proc, data / "kubeconfig"
    raise SystemExit("apiserver did not start")


async def main_async(args: argparse.Namespace) -> dict[int, tuple[list[float], list[float]]]:
    """One apiserver per size, filled first; then the sizes are measured in alternation."""
    tmp = Path(tempfile.mkdtemp(prefix="kubesvc-bench-svc-"))
    procs: list[subprocess.Popen[str]] = []
    sessions: list[aiohttp.ClientSession] = []
    results: dict[int, tuple[list[float], list[float]]] = {n: ([], []) for n in args.sizes}
    try:
        apis: dict[int, Api] = {}
        for size in args.sizes:
            proc, kubeconfig = await start_apiserver(tmp, args.storage)
            procs.append(proc)
            cfg = load_kubeconfig(kubeconfig)
            headers = {**cfg.auth_headers, "Content-Type": "application/json"}
            session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=cfg.ssl_context, limit=0), headers=headers)
            sessions.append(session)
            api = apis[size] = Api(cfg.server.rstrip("/"), session)
            await api.post("/api/v1/namespaces", {"metadata": {"name": NS}})
            t = time.perf_counter()
            await api.fill(0, size, args.clients)
            print(f"filled to {size} Services + {size} ConfigMaps in {time.perf_counter() - t:.1f}s", flush=True)
        for size, api in apis.items():
            await api.measure(f"warm{size}", 20)
        rounds = 10  # alternate the sizes in rounds, so load from elsewhere on the machine hits them alike
        for r in range(rounds):
            for size, api in apis.items():
                svc, cm = await api.measure(f"{size}r{r}", args.samples // rounds)
                results[size][0].extend(svc)
                results[size][1].extend(cm)
    finally:
        for session in sessions:
            await session.close()
        for proc in procs:
            proc.send_signal(signal.SIGTERM)
            proc.wait(30)
    return results


def report(results: dict[int, tuple[list[float], list[float]]], sizes: list[int], samples: int, storage: str) -> None:
    ms = 1000.0
    print(f"\nCreate latency over HTTPS, one request at a time ({samples} samples per size, {storage or 'sqlite'}):")
    print(f"  {'existing':>9}  {'Service (NodePort, alloc)':>30}  {'ConfigMap (baseline)':>28}  {'svc/cm':>6}")
    for size in sizes:
        svc, cm = results[size]
        print(f"  {size:>9}  p50 {statistics.median(svc) * ms:6.2f} ms  p99 {pct(svc, 99) * ms:6.2f} ms   "
              f"p50 {statistics.median(cm) * ms:6.2f} ms  p99 {pct(cm, 99) * ms:6.2f} ms  "
              f"{statistics.median(svc) / statistics.median(cm):6.2f}")
    lo, hi = sizes[0], sizes[-1]
    svc_ratio = statistics.median(results[hi][0]) / statistics.median(results[lo][0])
    cm_ratio = statistics.median(results[hi][1]) / statistics.median(results[lo][1])
    extra = [statistics.median(results[n][0]) - statistics.median(results[n][1]) for n in (lo, hi)]
    print(f"  ratio of medians {hi} / {lo}: Services {svc_ratio:.2f} (goal <= 1.2), ConfigMaps {cm_ratio:.2f} (baseline)")
    print(f"  what a Service adds over a ConfigMap (median difference): {extra[0] * ms:.2f} ms at {lo}, "
          f"{extra[1] * ms:.2f} ms at {hi}")


def report_planner(samples: int) -> None:
    print("\nAllocation planner alone (plan + commit of a NodePort Service: 1 clusterIP, 2 node ports; no I/O):")
    levels = (1000, 10000, 50000)
    lat = planner_alone(levels, samples)
    base = statistics.median(lat[levels[0]])
    for n in levels:
        med = statistics.median(lat[n])
        print(f"  {n:>6} IPs in use: p50 {med * 1e6:6.1f} us  p99 {pct(lat[n], 99) * 1e6:6.1f} us  "
              f"ratio to {levels[0]}: {med / base:.2f}")


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--samples", type=int, default=400)
    p.add_argument("--clients", type=int, default=50)
    p.add_argument("--storage", default="", help="storage URL for the apiserver (default: sqlite in a temp dir)")
    p.add_argument("--sizes", type=lambda s: [int(x) for x in s.split(",")], default=[1000, 10000])
    args = p.parse_args()
    os.environ.setdefault("PYTHONWARNINGS", "ignore")
    results = asyncio.run(main_async(args))
    report(results, args.sizes, args.samples, args.storage)
    report_planner(5000)


if __name__ == "__main__":
    main()
