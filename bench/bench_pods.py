"""Pod start latency (create → Ready) on 2 network-namespace nodes, and the cost of an idle pod.

Starts ``kubesvc up --nodes 2`` (root), then for each batch size creates that
many pods at once (``pause``, half on each node, as a ReplicaSet burst would),
timing each pod from its create request to the watch event that shows it
Ready: p50, p99, total.  With the batch running, sums RSS and open files of
the pods' processes (per pod) and of the two agents.  Baseline from the same
run: the same number of bare namespaces + veth + ``sleep`` made directly with
``ip`` (no API, no agent), the floor of what a pod needs from the kernel.

Below the table, the CPU seconds each component of this cluster used during
each batch (``up``: the API server; ``components``: controllers, DNS,
proxies; ``agent``: both node agents; ``(sys)``: their kernel part), which
says where a pod's start cost goes.  Only the started cluster's own process
tree is counted, not other clusters on the machine.

Fairness: the batches start only once both nodes are Ready and a small
warm-up batch (not reported) has gone through each agent, so the first
figure measures pod starts, not agents still connecting, building their
launcher or loading code; and this client has opened as many API connections
as it sends requests at once (a controller creating pods holds its
connections open), so its TLS handshakes are not timed as pod starts.

Goal: p99 < 1 s at 100 pods; total time growing no faster than linearly.
Run as root: ``python bench/bench_pods.py [--sizes 10,100,500]``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from kubesvc.api.resources import by_plural
from kubesvc.client.rest import ApiClient
from kubesvc.testing.cluster import start_cluster

PODS = by_plural("", "v1", "pods")
CREATE_PARALLEL = 50  # create requests in flight at once


def pct(values: list[float], p: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, int(round(p / 100 * (len(s) - 1))))]


def _ready(pod: dict) -> bool:
    return any(c.get("type") == "Ready" and c.get("status") == "True"
               for c in (pod.get("status") or {}).get("conditions") or [])


def _pod(name: str, node: str) -> dict:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "labels": {"bench": "1"}},
            "spec": {"nodeName": node, "terminationGracePeriodSeconds": 1,
                     "containers": [{"name": "c", "image": "registry.k8s.io/pause:3.10"}]}}


def _pids(netns: str) -> list[int]:
    out = subprocess.run(["ip", "netns", "pids", netns], capture_output=True, text=True).stdout
    return [int(x) for x in out.split()]


def _rss_kib(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def _fds(pid: int) -> int:
    try:
        return len(list(Path(f"/proc/{pid}/fd").iterdir()))
    except OSError:
        return 0


def _descendants(root: int) -> set[int]:
    """``root`` and every process below it (by parent pid): this cluster's processes, not another's."""
    parent: dict[int, int] = {}
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                parent[int(entry.name)] = int(Path(f"/proc/{entry.name}/stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                continue
    tree, grew = {root}, True
    while grew:
        more = {pid for pid, pp in parent.items() if pp in tree and pid not in tree}
        tree |= more
        grew = bool(more)
    return tree


def cpu_by_component(root: int) -> dict[str, float]:
    """CPU seconds (user+system) so far of the cluster's processes (those under ``root``), by component,
    and of this process.

    ``up`` is the API server; ``components`` the controllers, DNS and proxies; ``agent`` the node
    agents; ``(sys)`` the part spent in the kernel.
    """
    tick = os.sysconf("SC_CLK_TCK")
    out: dict[str, float] = {}
    for pid in _descendants(root):
        try:
            argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
            stat = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if b"-m" not in argv[:3] or b"kubesvc" not in argv[:4]:
            continue
        i = argv.index(b"-m")
        comp = argv[i + 2].decode() if len(argv) > i + 2 else "?"
        out[comp] = out.get(comp, 0.0) + (int(stat[11]) + int(stat[12])) / tick
        out[comp + "(sys)"] = out.get(comp + "(sys)", 0.0) + int(stat[12]) / tick
    t = os.times()
    out["bench"] = t.user + t.system
    return out


async def batch(api: ApiClient, n: int, prefix: str = "bench") -> dict[str, float]:
    names = [f"{prefix}-{n}-{i}" for i in range(n)]
    created: dict[str, float] = {}
    ready: dict[str, float] = {}
    done = asyncio.Event()

    async def watch() -> None:
        async for _, obj in api.watch(PODS, "default", label_selector="bench=1", timeout_seconds=600):
            name = obj.get("metadata", {}).get("name")
            if name in created and name not in ready and _ready(obj):
                ready[name] = time.perf_counter()
                if len(ready) == n:
                    done.set()
                    return

    w = asyncio.create_task(watch())
    await asyncio.sleep(0.3)
    sem = asyncio.Semaphore(CREATE_PARALLEL)

    async def create(i: int, name: str) -> None:
        async with sem:
            created[name] = time.perf_counter()
            await api.create(PODS, _pod(name, f"node-{1 + i % 2}"), "default")

    t0 = time.perf_counter()
    await asyncio.gather(*(create(i, x) for i, x in enumerate(names)))
    await asyncio.wait_for(done.wait(), 300)
    total = time.perf_counter() - t0
    w.cancel()
    lat = [ready[x] - created[x] for x in names]
    return {"p50": pct(lat, 50), "p99": pct(lat, 99), "total": total}


def idle_cost(n: int) -> dict[str, float]:
    netns = [line.split()[0] for line in subprocess.run(["ip", "netns", "list"], capture_output=True,
                                                        text=True).stdout.splitlines() if line.startswith("ks-p-")]
    pids = [p for ns in netns for p in _pids(ns)]
    agents = [p for ns in ("ks-node-1", "ks-node-2") for p in _pids(ns)
              if b"agent" in Path(f"/proc/{p}/cmdline").read_bytes()]
    return {"rss_kib_per_pod": sum(map(_rss_kib, pids)) / max(n, 1), "fds_per_pod": sum(map(_fds, pids)) / max(n, 1),
            "agents_rss_mib": sum(map(_rss_kib, agents)) / 1024, "agents_fds": sum(map(_fds, agents))}


async def delete_all(api: ApiClient) -> None:
    await api.delete_collection(PODS, "default", label_selector="bench=1")
    while (await api.list(PODS, "default", label_selector="bench=1")).get("items"):
        await asyncio.sleep(0.5)


def baseline(n: int) -> float:
    """n namespaces, each with a veth and a sleep process, made directly: the kernel's floor."""
    t0 = time.perf_counter()
    procs = []
    for i in range(n):
        ns = f"ks-bench-{i}"
        subprocess.run(["ip", "-batch", "-"], input=f"netns add {ns}\nlink add kb{i} type veth peer name eth0 netns {ns}\n",
                       text=True, check=True)
        subprocess.run(["ip", "-n", ns, "-batch", "-"], input=f"link set lo up\naddr add 10.99.{i // 250}.{i % 250 + 2}/16 dev eth0\n"
                       "link set eth0 up\n", text=True, check=True)
        procs.append(subprocess.Popen(["ip", "netns", "exec", ns, "sleep", "600"]))
    took = time.perf_counter() - t0
    for p in procs:
        p.kill()
        p.wait()
    subprocess.run(["ip", "-force", "-batch", "-"], input="".join(f"netns del ks-bench-{i}\n" for i in range(n)),
                   text=True)
    return took


NODES = by_plural("", "v1", "nodes")


async def nodes_ready(api: ApiClient, names: list[str], timeout: float = 60) -> None:
    """Until every named node reports Ready (an agent still registering would skew the first batch)."""
    deadline = time.monotonic() + timeout
    while True:
        items = (await api.list(NODES)).get("items") or []
        ready = {n["metadata"]["name"] for n in items if _ready(n)}
        if set(names) <= ready:
            return
        if time.monotonic() > deadline:
            raise TimeoutError(f"nodes not Ready after {timeout:.0f}s: {sorted(set(names) - ready)}")
        await asyncio.sleep(0.2)


async def main_async(c, sizes: list[int]) -> None:  # type: ignore[no-untyped-def]
    api = ApiClient.from_kubeconfig(c.kubeconfig)
    root = c.proc.pid
    try:
        await nodes_ready(api, ["node-1", "node-2"])
        await batch(api, 4, prefix="warmup")  # not reported: first pod on each agent, connections warm
        await delete_all(api)
        await asyncio.gather(*(api.list(NODES) for _ in range(CREATE_PARALLEL)))  # this client's connections
        print(f"{'pods':>5} {'p50 ms':>8} {'p99 ms':>8} {'total s':>8} {'pods/s':>7} {'baseline s':>10} "
              f"{'ratio':>6} {'RSS/pod KiB':>11} {'fds/pod':>7} {'agents MiB':>10}")
        cpu: list[str] = []
        for n in sizes:
            c0 = cpu_by_component(root)
            r = await batch(api, n)
            c1 = cpu_by_component(root)
            cpu.append(f"{n:>5} pods, CPU s during the batch: " + ", ".join(
                f"{k} {c1[k] - c0.get(k, 0.0):.2f}" for k in sorted(c1) if c1[k] - c0.get(k, 0.0) >= 0.005))
            cost = idle_cost(n)
            await delete_all(api)
            base = baseline(n)
            print(f"{n:>5} {r['p50'] * 1000:>8.0f} {r['p99'] * 1000:>8.0f} {r['total']:>8.2f} {n / r['total']:>7.1f} "
                  f"{base:>10.2f} {r['total'] / base:>6.1f} {cost['rss_kib_per_pod']:>11.0f} "
                  f"{cost['fds_per_pod']:>7.1f} {cost['agents_rss_mib']:>10.1f}", flush=True)
        print("\n".join(cpu))
    finally:
        await api.close()


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="10,100,500")
    args = ap.parse_args()
    sizes = [int(x) for x in args.sizes.split(",")]
    with tempfile.TemporaryDirectory() as d:
        c = start_cluster(Path(d) / "data", Path(d) / "kcache", "--nodes", "2", timeout=180)
        try:
            asyncio.run(main_async(c, sizes))
        finally:
            c.stop(timeout=120)
    return 0


if __name__ == "__main__":
    sys.exit(main())
