"""Storage throughput, write latency and watch fan-out, each against a baseline
measured in the same run on the same disk.

    python bench/bench_storage.py [--writes 5000] [--writers 50]

(a) MemoryStore and (b) SqliteStore: ``--writers`` asyncio tasks create
``--writes`` Service-sized (~1.5 KB) objects in total; creates/s and p50/p99
latency of one create.  (c) Baselines: plain sqlite3 (WAL, synchronous=FULL,
like the store) inserting the same rows with one commit per insert, and with
one commit per batch of 50.  Then the time for one event to reach 100 watchers,
against a bare asyncio.Queue fan-out to 100 tasks.
"""

from __future__ import annotations

import argparse
import asyncio
import sqlite3
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import orjson

from kubesvc.storage import MemoryStore, SqliteStore, Store


def service(i: int) -> dict[str, Any]:
    """A Service about the size the API stores: ~1.5 KB of JSON."""
    name = f"svc-{i:06}"
    spec = {
        "type": "ClusterIP",
        "selector": {"app": name, "tier": "backend"},
        "ports": [
            {"name": "http", "protocol": "TCP", "port": 80, "targetPort": 8080},
            {"name": "https", "protocol": "TCP", "port": 443, "targetPort": 8443},
        ],
        "clusterIP": f"10.0.{i // 250 % 256}.{i % 250 + 2}",
        "clusterIPs": [f"10.0.{i // 250 % 256}.{i % 250 + 2}"],
        "ipFamilies": ["IPv4"],
        "ipFamilyPolicy": "SingleStack",
        "sessionAffinity": "None",
        "internalTrafficPolicy": "Cluster",
    }
    applied = orjson.dumps({"apiVersion": "v1", "kind": "Service", "metadata": {"name": name}, "spec": spec})
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {
            "name": name,
            "namespace": "default",
            "uid": f"6c1f0a6e-1d2b-4c3d-9e8f-{i:012}",
            "creationTimestamp": "2024-01-01T00:00:00Z",
            "labels": {"app": name, "tier": "backend", "team": "platform"},
            "annotations": {"kubectl.kubernetes.io/last-applied-configuration": applied.decode()},
            "managedFields": [
                {
                    "manager": "kubectl-client-side-apply",
                    "operation": "Update",
                    "apiVersion": "v1",
                    "time": "2024-01-01T00:00:00Z",
                    "fieldsType": "FieldsV1",
                }
            ],
        },
        "spec": spec,
        "status": {"loadBalancer": {}},
    }


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))]


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.2f} ms"


async def run_writers(store: Store, objs: list[dict[str, Any]], writers: int) -> tuple[float, list[float]]:
    """Creates/s and per-create latencies with ``writers`` concurrent tasks."""
    latencies: list[float] = []
    chunks = [objs[w::writers] for w in range(writers)]

    async def writer(chunk: list[dict[str, Any]]) -> None:
        for obj in chunk:
            t0 = time.perf_counter()
            await store.create(f"/registry/services/default/{obj['metadata']['name']}", obj)
            latencies.append(time.perf_counter() - t0)

    t0 = time.perf_counter()
    await asyncio.gather(*(writer(c) for c in chunks))
    elapsed = time.perf_counter() - t0
    return len(objs) / elapsed, latencies


def raw_sqlite(path: Path, rows: list[tuple[str, int, bytes]], per_commit: int) -> float:
    """Plain sqlite3 inserts/s, same pragmas and table as SqliteStore."""
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    conn.execute(
        "CREATE TABLE objects (key TEXT PRIMARY KEY, revision INTEGER NOT NULL, value BLOB NOT NULL)"
    )
    t0 = time.perf_counter()
    for start in range(0, len(rows), per_commit):
        conn.execute("BEGIN")
        for row in rows[start : start + per_commit]:
            conn.execute("INSERT INTO objects VALUES (?, ?, ?)", row)
        conn.execute("COMMIT")
    elapsed = time.perf_counter() - t0
    conn.close()
    return len(rows) / elapsed


async def store_fanout(watchers: int, events: int) -> tuple[list[float], list[float]]:
    """Per event: time from create() to the last of ``watchers`` receiving it,
    and every single delivery's latency."""
    store = MemoryStore()
    arrivals: dict[int, list[float]] = {}
    starts: dict[int, float] = {}
    done = asyncio.Event()

    async def consume(w: Any) -> None:
        async for ev in w:
            got = arrivals.setdefault(ev.revision, [])
            got.append(time.perf_counter())
            if len(got) == watchers:
                done.set()

    ws = [store.watch("/registry/services", after_revision=0) for _ in range(watchers)]
    tasks = [asyncio.create_task(consume(w)) for w in ws]
    for i in range(events):
        done.clear()
        t0 = time.perf_counter()
        stored = await store.create(f"/registry/services/default/s{i}", service(i))
        starts[stored.revision] = t0
        await done.wait()
    for w in ws:
        w.close()
    await asyncio.gather(*tasks)
    await store.close()
    last = [max(arrivals[r]) - t0 for r, t0 in starts.items()]
    each = [a - t0 for r, t0 in starts.items() for a in arrivals[r]]
    return last, each


async def queue_fanout(watchers: int, events: int) -> tuple[list[float], list[float]]:
    """Baseline: put one item in ``watchers`` asyncio.Queues read by as many tasks."""
    queues: list[asyncio.Queue[float | None]] = [asyncio.Queue() for _ in range(watchers)]
    arrivals: list[float] = []
    done = asyncio.Event()

    async def consume(q: asyncio.Queue[float | None]) -> None:
        while await q.get() is not None:
            arrivals.append(time.perf_counter())
            if len(arrivals) == watchers:
                done.set()

    tasks = [asyncio.create_task(consume(q)) for q in queues]
    last: list[float] = []
    each: list[float] = []
    for _ in range(events):
        arrivals.clear()
        done.clear()
        t0 = time.perf_counter()
        for q in queues:
            q.put_nowait(t0)
        await done.wait()
        last.append(max(arrivals) - t0)
        each += [a - t0 for a in arrivals]
    for q in queues:
        q.put_nowait(None)
    await asyncio.gather(*tasks)
    return last, each


async def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--writes", type=int, default=5000)
    parser.add_argument("--writers", type=int, default=50)
    parser.add_argument("--watchers", type=int, default=100)
    parser.add_argument("--events", type=int, default=300)
    args = parser.parse_args()

    objs = [service(i) for i in range(args.writes)]
    size = statistics.mean(len(orjson.dumps(o)) for o in objs)
    rows = [
        (f"/registry/services/default/{o['metadata']['name']}", i + 1, orjson.dumps(o))
        for i, o in enumerate(objs)
    ]
    print(f"{args.writes} creates of ~{size:.0f}-byte Services, {args.writers} concurrent writers")

    with tempfile.TemporaryDirectory(prefix="bench-storage-") as tmp:
        tmpdir = Path(tmp)
        raw_each = raw_sqlite(tmpdir / "raw1.db", rows, 1)
        raw_batch = raw_sqlite(tmpdir / "raw50.db", rows, 50)

        memory = MemoryStore()
        mem_rate, mem_lat = await run_writers(memory, objs, args.writers)
        await memory.close()

        sqlite_store = SqliteStore(tmpdir / "state.db")
        sql_rate, sql_lat = await run_writers(sqlite_store, objs, args.writers)
        batches = await _batch_count(sqlite_store, objs[:1000], args.writers)
        await sqlite_store.close()

    print("\nbaseline (c): plain sqlite3, WAL + synchronous=FULL, same rows, same disk")
    print(f"  one commit per insert     {raw_each:9.0f} inserts/s")
    print(f"  one commit per 50 inserts {raw_batch:9.0f} inserts/s")
    print("\ncreates/s (ratio to raw commit-per-insert | to raw commit-per-50)")
    for label, rate, lat in (("(a) MemoryStore", mem_rate, mem_lat), ("(b) SqliteStore", sql_rate, sql_lat)):
        print(
            f"  {label:16} {rate:9.0f}/s  x{rate / raw_each:5.2f} | x{rate / raw_batch:5.2f}"
            f"   latency p50 {ms(pct(lat, 50))}  p99 {ms(pct(lat, 99))}"
        )
    print(f"  SqliteStore group commit: {batches}")
    goal = 3000
    print(f"  goal SqliteStore >= {goal} creates/s: {'met' if sql_rate >= goal else 'NOT met'}")

    last, each = await store_fanout(args.watchers, args.events)
    base_last, base_each = await queue_fanout(args.watchers, args.events)
    print(f"\nwatch fan-out: one event to {args.watchers} watchers (MemoryStore, {args.events} events)")
    print("  measured from the create() call; baseline: bare asyncio.Queue per consumer task, from put()")
    for label, mine, base in (("to the last watcher", last, base_last), ("each delivery", each, base_each)):
        p50, p99, b50, b99 = pct(mine, 50), pct(mine, 99), pct(base, 50), pct(base, 99)
        print(
            f"  {label:20} p50 {ms(p50)} (x{p50 / b50:.2f})  p99 {ms(p99)} (x{p99 / b99:.2f})"
            f"   baseline p50 {ms(b50)} p99 {ms(b99)}"
        )


async def _batch_count(store: SqliteStore, objs: list[dict[str, Any]], writers: int) -> str:
    """Average batch size seen by the persistence layer, from a short extra run."""
    persistence = store._persistence
    original = persistence.write_batch
    sizes: list[int] = []

    def counting(writes: Any, revision: int) -> None:
        sizes.append(len(writes))
        original(writes, revision)

    persistence.write_batch = counting  # type: ignore[method-assign]
    renamed = [{**o, "metadata": {**o["metadata"], "name": o["metadata"]["name"] + "-b"}} for o in objs]
    await run_writers(store, renamed, writers)
    persistence.write_batch = original  # type: ignore[method-assign]
    return f"{len(objs)} creates in {len(sizes)} transactions (mean {statistics.mean(sizes):.1f} per commit)"


if __name__ == "__main__":
    asyncio.run(main())
