"""API server throughput and watch latency, next to the storage alone.

Starts ``kubesvc apiserver`` (sqlite storage, TLS, client certificates) in its
own process, then from this process over HTTPS:

* 50 concurrent clients (connections opened first, as keep-alive clients do)
  create ConfigMaps of ~1.5 KB: creates/s, p50, p99;
* 100 concurrent watchers on one namespace while objects are created one at a
  time: delivery latency from the create request to each watcher, p50/p99;
* baseline in the same run: the SqliteStore alone committing the same objects
  with 50 concurrent writers (the ceiling), and the ratio.

Goal on a 2-core machine: >= 1,000 writes/s at p99 < 100 ms; watch p99 < 50 ms.
Run: ``python bench/bench_apiserver.py [--creates 3000] [--watchers 100]``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiohttp
import orjson

from kubesvc.client.config import load_kubeconfig
from kubesvc.storage import open_store

PAYLOAD = "x" * 1200


def pct(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    s = sorted(values)
    return s[min(len(s) - 1, int(round(p / 100 * (len(s) - 1))))]


def configmap(ns: str, name: str) -> dict:
    return {"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": name, "namespace": ns, "labels": {"bench": "yes", "app": "web"}},
            "data": {"payload": PAYLOAD, "key": name}}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def run_creates(base: str, session: aiohttp.ClientSession, ns: str, n: int, conc: int) -> tuple[float, list[float]]:
    lat: list[float] = []
    counter = iter(range(n))

    async def worker() -> None:
        for i in counter:
            body = orjson.dumps(configmap(ns, f"cm-{i}"))
            t0 = time.perf_counter()
            async with session.post(f"{base}/api/v1/namespaces/{ns}/configmaps", data=body,
                                    headers={"Content-Type": "application/json"}) as r:
                await r.read()
                if r.status != 201:
                    raise RuntimeError(f"create failed: {r.status}")
            lat.append(time.perf_counter() - t0)

    async def warm() -> None:  # open the keep-alive connections (TLS handshakes) before timing
        async with session.get(f"{base}/api/v1/namespaces/{ns}") as r:
            await r.read()

    await asyncio.gather(*(warm() for _ in range(conc)))
    t = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(conc)))
    return time.perf_counter() - t, lat


async def run_watch(base: str, session: aiohttp.ClientSession, ns: str, watchers: int, events: int) -> list[float]:
    sent: dict[str, float] = {}
    lat: list[float] = []
    async with session.get(f"{base}/api/v1/namespaces/{ns}/configmaps") as r:
        rv = (await r.json())["metadata"]["resourceVersion"]
    ready = 0
    done = asyncio.Event()

    async def watcher() -> None:
        nonlocal ready
        url = f"{base}/api/v1/namespaces/{ns}/configmaps?watch=true&resourceVersion={rv}&timeoutSeconds=120"
        async with session.get(url, timeout=aiohttp.ClientTimeout(total=None)) as r:
            ready += 1
            seen = 0
            async for line in r.content:
                now = time.perf_counter()
                ev = orjson.loads(line)
                name = ev["object"]["metadata"]["name"]
                lat.append(now - sent[name])
                seen += 1
                if seen >= events:
                    return

    tasks = [asyncio.create_task(watcher()) for _ in range(watchers)]
    while ready < watchers:
        await asyncio.sleep(0.05)
    await asyncio.sleep(0.2)
    for i in range(events):
        name = f"w-{i}"
        sent[name] = time.perf_counter()
        async with session.post(f"{base}/api/v1/namespaces/{ns}/configmaps",
                                data=orjson.dumps(configmap(ns, name)),
                                headers={"Content-Type": "application/json"}) as r:
            await r.read()
        await asyncio.sleep(0.02)
    await asyncio.wait_for(asyncio.gather(*tasks), 60)
    done.set()
    return lat


async def storage_alone(path: str, n: int, conc: int) -> tuple[float, list[float]]:
    store = open_store(f"sqlite:///{path}")
    lat: list[float] = []
    counter = iter(range(n))

    async def worker() -> None:
        for i in counter:
            obj = configmap("default", f"cm-{i}")
            t0 = time.perf_counter()
            await store.create(f"/registry/core/configmaps/default/cm-{i}", obj)
            lat.append(time.perf_counter() - t0)

    t = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(conc)))
    el = time.perf_counter() - t
    await store.close()
    return el, lat


async def main_async(args: argparse.Namespace) -> None:
    tmp = Path(tempfile.mkdtemp(prefix="kubesvc-bench-"))
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "kubesvc", "apiserver", "--data-dir", str(tmp / "data"),
                             "--port", str(port)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            if "kubesvc is up" in line:
                break
        else:
            raise SystemExit("apiserver did not start")
        cfg = load_kubeconfig(tmp / "data" / "kubeconfig")
        conn = aiohttp.TCPConnector(ssl=cfg.ssl_context, limit=0)
        async with aiohttp.ClientSession(connector=conn, headers={**cfg.auth_headers, "Content-Type": "application/json"}) as session:
            base = cfg.server.rstrip("/")
            for ns in ("bench", "bench-watch"):
                async with session.post(f"{base}/api/v1/namespaces", data=orjson.dumps({"metadata": {"name": ns}})) as r:
                    await r.read()
            el, lat = await run_creates(base, session, "bench", args.creates, args.clients)
            wlat = await run_watch(base, session, "bench-watch", args.watchers, args.events)
        s_el, s_lat = await storage_alone(str(tmp / "alone.db"), args.creates, args.clients)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(20)
    api_rate = args.creates / el
    store_rate = args.creates / s_el
    print(f"API server creates over HTTPS ({args.clients} clients, {args.creates} ConfigMaps of ~1.5 KB, sqlite):")
    print(f"  {api_rate:8.0f} creates/s   p50 {pct(lat, 50) * 1000:6.1f} ms   p99 {pct(lat, 99) * 1000:6.1f} ms")
    print(f"  baseline, the storage alone (same objects, {args.clients} writers): {store_rate:8.0f} creates/s   "
          f"p50 {pct(s_lat, 50) * 1000:6.1f} ms   p99 {pct(s_lat, 99) * 1000:6.1f} ms")
    print(f"  ratio API/storage: {api_rate / store_rate:.2f}   (goal: >= 1000 creates/s at p99 < 100 ms)")
    print(f"Watch delivery to {args.watchers} watchers ({args.events} events, create request -> event received):")
    print(f"  p50 {pct(wlat, 50) * 1000:6.1f} ms   p99 {pct(wlat, 99) * 1000:6.1f} ms   "
          f"max {max(wlat) * 1000:6.1f} ms   mean {statistics.mean(wlat) * 1000:6.1f} ms   (goal: p99 < 50 ms)")
    print(f"  deliveries: {len(wlat)} of {args.watchers * args.events}")


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--creates", type=int, default=3000)
    p.add_argument("--clients", type=int, default=50)
    p.add_argument("--watchers", type=int, default=100)
    p.add_argument("--events", type=int, default=100)
    args = p.parse_args()
    os.environ.setdefault("PYTHONWARNINGS", "ignore")
    asyncio.run(main_async(args))


if __name__ == "__main__":
    main()
