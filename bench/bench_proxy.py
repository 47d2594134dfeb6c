"""The nftables data plane: sync cost at scale, data path overhead, programming latency.

    sudo python bench/bench_proxy.py [--sizes 1000,10000] [--seconds 5] [--skip-datapath] [--skip-e2e]
    sudo python bench/bench_proxy.py --only-e2e [--flips 200] [--nodes 2] [--services 1000]

(a) Sync cost: N Services x 10 endpoints planned and applied with the real
nft in a fresh network namespace: full sync time, then one endpoint change
(replan that Service, assemble, apply one partial transaction): time and
transaction size, median of several; the ratio between the largest and
smallest N is what matters (cost should follow the change, not the cluster).
(b) Data path: wrk (keep-alive and Connection: close) and iperf3 from one pod
to another, through a ClusterIP and directly to the pod IP, same run; ratio.
(c) Network programming latency end to end, with 1,000 Services programmed
(see :func:`e2e_latency`): a real ``kubesvc up`` (API server, EndpointSlice
controller), a real ``kubesvc proxy`` process per node namespace; the bench
flips pods' Ready condition and times each change from the status write's
acknowledgement to its rules being in the kernel on every node, next to the
API's own write→watch latency and the EndpointSlice controller's, same run.
Before it, the proxy alone: a proxier in this process (real nft, no API)
gets an EndpointSlice event and is timed until its transaction returned.
Everything lives in ``ks-bench*`` namespaces deleted at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import copy
import json
import os
import random
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from bench_endpoints import (
    NAMESPACES,
    NODES,
    PODS,
    SERVICES,
    SLICES,
    bounded,
    make_pod,
    pct,
    pod_status,
    wait_ready_endpoints,
)

from kubesvc.client.rest import ApiClient
from kubesvc.proxy.applier import Applier
from kubesvc.proxy.model import Endpoint, NodeInfo, ServicePort
from kubesvc.proxy.nftables import Nft
from kubesvc.proxy.planner import Plans, assemble, plan_service
from kubesvc.proxy.proxier import PortIds, Proxier, ProxyConfig
from kubesvc.testing.cluster import start_cluster

NODE = NodeInfo("node-1", ("172.18.0.2",), "10.244.1.0/24", "10.244.0.0/16")
TAG = str(os.getpid() % 100000)


def sh(*args: str, check: bool = True) -> str:
    p = subprocess.run(args, capture_output=True, text=True)
    if check and p.returncode != 0:
        raise RuntimeError(f"{' '.join(args)}: {p.stderr}")
    return p.stdout


def netns(name: str) -> str:
    sh("ip", "netns", "add", name)
    sh("ip", "-n", name, "link", "set", "lo", "up")
    return name


def world(n: int) -> tuple[dict[str, tuple[ServicePort, ...]], dict[str, Any]]:
    services, endpoints = {}, {}
    for i in range(n):
        key = f"default/s{i}"
        services[key] = (ServicePort("default", f"s{i}", "http", "tcp", 80, f"10.{1 + i // 65536}.{i // 256 % 256}.{i % 256}"),)
        endpoints[key] = {("http", "tcp"): tuple(Endpoint(f"10.244.{i % 250}.{j + 1}", 8080, node_name="node-2")
                                                 for j in range(10))}
    return services, endpoints


def sync_cost(n: int, rounds: int = 9) -> dict[str, float]:
    ns = netns(f"ks-bench{TAG}-sync")
    try:
        services, endpoints = world(n)
        nft = Nft(netns=ns)
        ids, applier = PortIds(), Applier(nft)
        t0 = time.perf_counter()
        plans = Plans({k: plan_service(services[k], endpoints[k], NODE, ids) for k in services})  # as the proxier keeps them
        t_plan = time.perf_counter() - t0
        t0 = time.perf_counter()
        full = applier.sync(assemble(plans, NODE))
        t_full = time.perf_counter() - t0
        times, sizes = [], []
        key = "default/s7"
        for r in range(rounds):
            eps = dict(endpoints[key])
            base = endpoints[key][("http", "tcp")]
            eps[("http", "tcp")] = base[:-1] if r % 2 == 0 else base  # remove / restore one endpoint
            t0 = time.perf_counter()
            plans[key] = plan_service(services[key], eps, NODE, ids)
            res = applier.sync(assemble(plans, NODE), {key})
            times.append(time.perf_counter() - t0)
            sizes.append(res.size)
        t0 = time.perf_counter()
        applier.need_full = True
        applier.sync(assemble(plans, NODE))
        t_refull = time.perf_counter() - t0
        return {"plan_all": t_plan, "full_first": t_full, "full_again": t_refull, "full_bytes": full.size,
                "change_ms": statistics.median(times) * 1000, "change_bytes": statistics.median(sizes)}
    finally:
        nft.close()
        sh("ip", "netns", "del", ns, check=False)


SERVER = r"""
import asyncio, sys
RESP = b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nok\n"
CLOSE = b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nConnection: close\r\n\r\nok\n"
class P(asyncio.Protocol):
    def connection_made(self, t): self.t, self.buf = t, b""
    def data_received(self, d):
        self.buf += d
        while b"\r\n\r\n" in self.buf:
            head, _, self.buf = self.buf.partition(b"\r\n\r\n")
            if b"onnection: close" in head or b"onnection: Close" in head:
                self.t.write(CLOSE); self.t.close(); return
            self.t.write(RESP)
async def main():
    s = await asyncio.get_running_loop().create_server(P, "0.0.0.0", int(sys.argv[1]), backlog=4096, reuse_address=True)
    await s.serve_forever()
asyncio.run(main())
"""


def datapath(seconds: int, rounds: int = 4) -> dict[str, float]:
    node, srv, cli = f"ks-bench{TAG}-n", f"ks-bench{TAG}-s", f"ks-bench{TAG}-c"
    procs: list[subprocess.Popen[bytes]] = []
    try:
        netns(node)
        sh("ip", "netns", "exec", node, "sysctl", "-qw", "net.ipv4.ip_forward=1")
        for i, (ns, ip) in enumerate(((srv, "10.244.1.5"), (cli, "10.244.1.9"))):
            netns(ns)
            sh("ip", "-n", node, "link", "add", f"v{i}", "type", "veth", "peer", "name", "eth0", "netns", ns)
            sh("ip", "-n", node, "addr", "add", "10.244.1.1/32", "dev", f"v{i}")
            sh("ip", "-n", node, "link", "set", f"v{i}", "up")
            sh("ip", "-n", node, "route", "add", f"{ip}/32", "dev", f"v{i}")
            sh("ip", "-n", ns, "addr", "add", f"{ip}/32", "dev", "eth0")
            sh("ip", "-n", ns, "link", "set", "eth0", "up")
            sh("ip", "-n", ns, "route", "add", "10.244.1.1", "dev", "eth0")
            sh("ip", "-n", ns, "route", "add", "default", "via", "10.244.1.1")
        procs.append(subprocess.Popen(["ip", "netns", "exec", srv, sys.executable, "-c", SERVER, "8080"]))
        procs.append(subprocess.Popen(["ip", "netns", "exec", srv, "iperf3", "-s", "-p", "5201"],
                                      stdout=subprocess.DEVNULL))
        ids = PortIds()
        ep = Endpoint("10.244.1.5", 8080)
        plans = {"default/web": plan_service((ServicePort("default", "web", "http", "tcp", 80, "10.0.0.5"),),
                                             {("http", "tcp"): (ep,)}, NODE, ids),
                 "default/perf": plan_service((ServicePort("default", "perf", "p", "tcp", 5201, "10.0.0.6"),),
                                              {("p", "tcp"): (Endpoint("10.244.1.5", 5201),)}, NODE, ids)}
        nft = Nft(netns=node)
        Applier(nft).sync(assemble(plans, NODE))
        nft.close()
        time.sleep(1)
        out: dict[str, float] = {}
        samples: dict[str, list[float]] = {}
        # each measurement `rounds` times, the order swapped every round so neither side is
        # favoured; best kept, and each round's clusterIP/direct ratio kept for the median
        for label, extra in (("keepalive", []), ("close", ["-H", "Connection: close"])):
            for r in range(rounds):
                pair = (("direct", "http://10.244.1.5:8080/"), ("clusterip", "http://10.0.0.5/"))
                for target, url in (pair if r % 2 == 0 else pair[::-1]):
                    text = sh("ip", "netns", "exec", cli, "wrk", "-t2", "-c32", f"-d{seconds}s", *extra, url)
                    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1))  # type: ignore[union-attr]
                    out[f"wrk_{label}_{target}"] = max(rps, out.get(f"wrk_{label}_{target}", 0))
                    samples.setdefault(f"wrk_{label}_{target}", []).append(rps)
        for r in range(rounds):
            pair = (("direct", "10.244.1.5"), ("clusterip", "10.0.0.6"))
            for target, ip in (pair if r % 2 == 0 else pair[::-1]):
                text = sh("ip", "netns", "exec", cli, "iperf3", "-c", ip, "-p", "5201", "-t", str(seconds), "-f", "g")
                gbps = float(re.findall(r"([\d.]+) Gbits/sec.*receiver", text)[-1])
                out[f"iperf_{target}"] = max(gbps, out.get(f"iperf_{target}", 0))
                samples.setdefault(f"iperf_{target}", []).append(gbps)
        # the machine is shared and noisy: every sample is reported, so a ratio comes with its spread
        for k, v in samples.items():
            out[f"{k}_samples"] = v  # type: ignore[assignment]
        for k in ("wrk_keepalive", "wrk_close", "iperf"):
            per_round = [c / d for d, c in zip(samples[f"{k}_direct"], samples[f"{k}_clusterip"], strict=True)]
            out[f"{k}_median_ratio"] = statistics.median(per_round)
        return out
    finally:
        for p in procs:
            p.terminate()
            p.wait()
        for ns in (cli, srv, node):
            sh("ip", "netns", "del", ns, check=False)


async def programming_latency(n: int = 1000, changes: int = 100) -> list[float]:
    ns = netns(f"ks-bench{TAG}-npl")
    try:
        nft = Nft(netns=ns)
        p = Proxier(ProxyConfig("node-1", cluster_cidr="10.244.0.0/16"), nft)
        p.synced = {"services": True, "endpointslices": True}
        for i in range(n):
            p.on_service(None, {"metadata": {"namespace": "default", "name": f"s{i}"},
                                "spec": {"clusterIP": f"10.1.{i // 256}.{i % 256}",
                                         "ports": [{"name": "http", "port": 80}]}})
            p.on_slice(None, _slice(i, 10))
        await p.sync()
        out = []
        for c in range(changes):
            i = c * 7 % n
            old = _slice(i, 10)
            new = copy.deepcopy(old)
            new["endpoints"][c % 10]["conditions"]["ready"] = False
            t0 = time.perf_counter()
            p.on_slice(old, new)
            await p.sync()
            out.append(time.perf_counter() - t0)
            p.on_slice(new, old)
            await p.sync()
        nft.close()
        return out
    finally:
        sh("ip", "netns", "del", ns, check=False)


def _slice(i: int, k: int) -> dict[str, Any]:
    return {"metadata": {"namespace": "default", "name": f"s{i}-x", "labels": {"kubernetes.io/service-name": f"s{i}"}},
            "addressType": "IPv4", "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}],
            "endpoints": [{"addresses": [f"10.244.{i % 250}.{j + 1}"], "nodeName": "node-2",
                           "conditions": {"ready": True}} for j in range(k)]}


# ----------------------------------------------------------------------------------------------------------------
# (c) end to end: API server + EndpointSlice controller + one real proxy process per node namespace

E2E_NS = "bench-npl"


class NodeStream:
    """One node's ``/debug/programmed`` stream: every applied transaction, as the proxy reports it.

    The proxy runs in the node's namespace and serves on its loopback; the
    socket is created in a thread that joined that namespace.
    """

    def __init__(self, node: str, netns_name: str, port: int = 10249) -> None:
        self.node, self.netns, self.port = node, netns_name, port
        self.records: list[dict[str, Any]] = []
        self.changed = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def _connect(self) -> socket.socket:
        from kubesvc.proxy.netns import setns_net

        out: list[Any] = []

        def inside() -> None:
            try:
                with open(f"/run/netns/{self.netns}") as f:
                    setns_net(f.fileno())
                s = socket.create_connection(("127.0.0.1", self.port), timeout=2)
                s.setblocking(False)
                out.append(s)
            except OSError as e:
                out.append(e)

        t = threading.Thread(target=inside)
        t.start()
        t.join()
        if isinstance(out[0], OSError):
            raise out[0]
        return out[0]

    async def start(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while True:
            try:
                sock = self._connect()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                await asyncio.sleep(0.2)
        reader, writer = await asyncio.open_connection(sock=sock, limit=1 << 24)
        writer.write(b"GET /debug/programmed?since=0 HTTP/1.0\r\nHost: proxy\r\n\r\n")  # 1.0: no chunking
        status = await reader.readline()
        if b" 200 " not in status:
            raise RuntimeError(f"{self.node}: /debug/programmed answered {status!r}")
        while (await reader.readline()).strip():
            pass
        self._task = asyncio.create_task(self._read(reader, writer))

    async def _read(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while line := await reader.readline():
                self.records.append(json.loads(line))
                self.changed.set()
        finally:
            writer.close()

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    def services(self) -> int:
        return self.records[-1]["services"] if self.records else 0

    def carried(self, slice_key: str, rv: str, start: int) -> float | None:
        """When the first transaction carrying ``slice_key`` at version ``rv`` or later returned."""
        for rec in self.records[start:]:
            got = rec["slices"].get(slice_key)
            if got is not None and (got == rv or (got.isdigit() and rv.isdigit() and int(got) >= int(rv))):
                return float(rec["at"])
        return None

    async def wait_carried(self, slice_key: str, rv: str, start: int, timeout: float) -> float:
        deadline = time.monotonic() + timeout
        while (at := self.carried(slice_key, rv, start)) is None:
            self.changed.clear()
            left = deadline - time.monotonic()
            if left <= 0 or self._task is None or self._task.done():
                raise TimeoutError(f"{self.node} never programmed {slice_key}@{rv}")
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self.changed.wait(), left)
        return at


class FlipProbe:
    """Watches the namespace's Pods and EndpointSlices; notes when each side shows the pending flip
    (wall clock, as the proxies report theirs) and which slice version carries it."""

    def __init__(self, api: Any, ns: str) -> None:
        self.api, self.ns = api, ns
        self.pending: tuple[str, bool] | None = None
        self.pod_at = self.slice_at = 0.0
        self.slice_key, self.slice_rv = "", ""
        self.seen_pod, self.seen_slice = asyncio.Event(), asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        for resource, handler in ((PODS, self._on_pod), (SLICES, self._on_slice)):
            rv = (await self.api.list(resource, self.ns, limit=1))["metadata"]["resourceVersion"]
            self._tasks.append(asyncio.create_task(self._watch(resource, rv, handler)))

    async def _watch(self, resource: Any, rv: str, handler: Any) -> None:
        async for etype, obj in self.api.watch(resource, self.ns, resource_version=rv, timeout_seconds=3600):
            if etype == "MODIFIED":
                handler(obj)

    async def stop(self) -> None:
        for t in self._tasks:
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    def arm(self, name: str, ready: bool) -> None:
        self.pending = (name, ready)
        self.seen_pod.clear()
        self.seen_slice.clear()

    def _on_pod(self, obj: dict[str, Any]) -> None:
        if not self.pending or self.seen_pod.is_set() or obj["metadata"]["name"] != self.pending[0]:
            return
        ready = any(c["type"] == "Ready" and c["status"] == "True" for c in obj["status"].get("conditions", []))
        if ready == self.pending[1]:
            self.pod_at = time.time()
            self.seen_pod.set()

    def _on_slice(self, obj: dict[str, Any]) -> None:
        if not self.pending or self.seen_slice.is_set():
            return
        for ep in obj.get("endpoints") or []:
            if (ep.get("targetRef") or {}).get("name") == self.pending[0] \
                    and bool(ep["conditions"].get("ready")) == self.pending[1]:
                self.slice_at = time.time()
                self.slice_key = f"{self.ns}/{obj['metadata']['name']}"
                self.slice_rv = obj["metadata"]["resourceVersion"]
                self.seen_slice.set()


class KernelCheck:
    """Reads the kernel itself (nft get element) to confirm a node's rules match what the flips say.

    Per Service the pool verdict is ``goto pick-K`` with K its ready
    endpoints, or the reject chain at none; the pool's id (mark) is read
    once per node from the ``service-ips`` map by the Service's clusterIP.
    """

    def __init__(self, netns_name: str) -> None:
        self.netns = netns_name
        self.marks: dict[str, str] = {}

    def _get(self, set_name: str, key: str) -> str:
        out = sh("ip", "netns", "exec", self.netns, "nft", "get", "element", "ip", "kubesvc", set_name,
                 "{", key, "}")
        m = re.search(r"elements = \{ .* : (.+?) \}", out)
        if not m:
            raise RuntimeError(f"{self.netns}: no element {key} in {set_name}: {out!r}")
        return m.group(1).strip()

    def verdict(self, cluster_ip: str) -> str:
        if cluster_ip not in self.marks:
            self.marks[cluster_ip] = self._get("service-ips", f"{cluster_ip} . tcp . 80")
        return self._get("pools", self.marks[cluster_ip])


def expected_verdict(ready: int) -> str:
    return f"goto pick-{ready}" if ready else "goto reject-chain"


async def e2e_latency(services: int, pods_per_service: int, flips: int, nodes: int,
                      verify_every: int = 1) -> dict[str, Any]:
    """The (c) scenario; returns per-flip latencies (ms) by stage, all from the status write being sent."""
    names = [f"node-{i + 1}" for i in range(nodes)]
    spaces = {n: f"ks-bench{TAG}-{n}" for n in names}
    procs: list[subprocess.Popen[bytes]] = []
    streams: list[NodeStream] = []
    with tempfile.TemporaryDirectory() as tmp:
        # the pods are fakes whose status this script writes, on nodes that post no heartbeats:
        # the node lifecycle controller must not fail them (as bench_endpoints)
        os.environ["KUBESVC_NODE_MONITOR_GRACE_PERIOD"] = "86400"
        cluster = start_cluster(Path(tmp) / "data", Path(tmp) / "kcache", "--nodes", "0", "--dns-port", "0",
                                timeout=90)
        try:
            async with ApiClient.from_kubeconfig(cluster.kubeconfig, timeout=120) as api:
                for i, n in enumerate(names):
                    await api.create(NODES, {"metadata": {"name": n}, "spec": {"podCIDR": f"10.244.{i + 1}.0/24"}})
                    await api.patch(NODES, n, {"status": {"addresses": [
                        {"type": "InternalIP", "address": f"172.18.0.{i + 2}"}]}}, subresource="status")
                await api.create(NAMESPACES, {"metadata": {"name": E2E_NS}})
                t = time.perf_counter()
                svc = await asyncio.gather(*[api.create(SERVICES, {"metadata": {"name": f"svc{i}"}, "spec": {
                    "selector": {"app": f"app{i}"}, "ports": [{"port": 80, "targetPort": 8080}]}}, E2E_NS)
                    for i in range(services)])
                cluster_ips = [s["spec"]["clusterIP"] for s in svc]
                pods = [(f"p{i}", i // pods_per_service, f"10.{100 + i // 62500}.{i // 250 % 250}.{i % 250 + 1}")
                        for i in range(services * pods_per_service)]
                await bounded([make_pod(api, E2E_NS, n, f"app{s}", ip, names[i % nodes])
                               for i, (n, s, ip) in enumerate(pods)])
                await wait_ready_endpoints(api, E2E_NS, len(pods))
                setup = time.perf_counter() - t
                t = time.perf_counter()
                for n in names:
                    netns(spaces[n])
                    log_file = open(Path(tmp) / f"proxy-{n}.log", "wb")  # noqa: SIM115 -- the child keeps it
                    procs.append(subprocess.Popen(
                        # a process of its own per node, as kube-proxy; it reaches the API on the host's
                        # loopback and programs (and serves /metrics) inside the node's namespace
                        [sys.executable, "-m", "kubesvc", "proxy", "--netns", spaces[n],
                         "--kubeconfig", str(cluster.kubeconfig), "--node-name", n,
                         "--cluster-cidr", "10.244.0.0/16", "--metrics-bind-address", "127.0.0.1:10249"],
                        stdout=log_file, stderr=subprocess.STDOUT))
                    streams.append(NodeStream(n, spaces[n]))
                for st in streams:
                    await st.start()
                deadline = time.monotonic() + 180
                while any(st.services() < services for st in streams):
                    if time.monotonic() > deadline or any(p.poll() is not None for p in procs):
                        logs = "".join(f"\n--- {n}:\n" + (Path(tmp) / f"proxy-{n}.log").read_text()[-3000:]
                                       for n in names)
                        raise RuntimeError("proxies did not program every Service: "
                                           + ", ".join(f"{st.node} {st.services()}" for st in streams) + logs)
                    await asyncio.sleep(0.2)
                proxies_up = time.perf_counter() - t
                await asyncio.sleep(2.0)  # let the initial syncs' follow-ups settle
                checks = {st.node: KernelCheck(st.netns) for st in streams}
                probe = FlipProbe(api, E2E_NS)
                await probe.start()
                await asyncio.sleep(0.3)
                rows: dict[str, list[float]] = {k: [] for k in ("ack", "pod", "slice", *names, "all")}
                ready = {n: True for n, _, _ in pods}
                ready_count = [pods_per_service] * services
                verified = 0
                rng = random.Random(11)
                for f in range(flips):
                    name, s, ip = rng.choice(pods)
                    ready[name] = not ready[name]
                    ready_count[s] += 1 if ready[name] else -1
                    starts = [len(st.records) for st in streams]
                    probe.arm(name, ready[name])
                    t_send = time.time()
                    await api.patch(PODS, name, pod_status(ip, ready[name]), E2E_NS, subresource="status")
                    t_ack = time.time()
                    await asyncio.wait_for(asyncio.gather(probe.seen_pod.wait(), probe.seen_slice.wait()), 30)
                    done = await asyncio.gather(*[st.wait_carried(probe.slice_key, probe.slice_rv, start, 30)
                                                  for st, start in zip(streams, starts, strict=True)])
                    for key, at in (("ack", t_ack), ("pod", probe.pod_at), ("slice", probe.slice_at),
                                    *zip(names, done, strict=True), ("all", max(done))):
                        rows[key].append((at - t_send) * 1000)
                    if verify_every and f % verify_every == 0:
                        want = expected_verdict(ready_count[s])
                        for n, chk in checks.items():
                            got = await asyncio.to_thread(chk.verdict, cluster_ips[s])
                            if got != want:
                                raise AssertionError(f"{n}: kernel says {got!r} for svc{s}, the flips say {want!r}")
                        verified += 1
                await probe.stop()
        finally:
            for st in streams:
                await st.stop()
            for p in procs:
                p.terminate()
            for p in procs:
                try:
                    p.wait(20)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()
            for ns_name in spaces.values():
                sh("ip", "netns", "del", ns_name, check=False)
            cluster.stop()
    return {"rows": rows, "setup_s": setup, "proxies_s": proxies_up, "verified": verified, "flips": flips,
            "names": names}


def print_e2e(r: dict[str, Any], services: int, pods_per_service: int, nodes: int) -> None:
    rows = r["rows"]
    from_ack = [a - k for a, k in zip(rows["all"], rows["ack"], strict=True)]
    print(f"(c) end to end, {services} Services x {pods_per_service} pods on {nodes} nodes, {r['flips']} sequential "
          f"Ready flips (setup {r['setup_s']:.0f}s, proxies programmed all in {r['proxies_s']:.1f}s).\n"
          "    'in the kernel' = the proxy's record of the transaction carrying the slice's resourceVersion, "
          "stamped when `nft -f` returned\n    (streamed from each proxy's /debug/programmed); "
          f"the kernel itself (nft get element) matched the flips after {r['verified']}/{r['flips']} of them.")
    print(f"    {'from the status write being sent':<44}{'p50':>9}{'p99':>9}{'max':>9}")
    labels = [("ack", "write acknowledged (API round trip)"), ("pod", "pod watch event (API baseline)"),
              ("slice", "slice watch event (EndpointSlice baseline)"),
              *((n, f"rules in the kernel on {n}") for n in r["names"]), ("all", "rules in the kernel on every node")]
    for key, label in labels:
        v = rows[key]
        print(f"    {label:<44}{pct(v, 50):>7.1f}ms{pct(v, 99):>7.1f}ms{max(v):>7.1f}ms")
    print(f"(c) readiness acknowledged -> rules in the kernel on every node: p50 {pct(from_ack, 50):.1f} ms, "
          f"p99 {pct(from_ack, 99):.1f} ms (goal p99 < 250 ms)")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="1000,10000")
    ap.add_argument("--seconds", type=int, default=5)
    ap.add_argument("--skip-datapath", action="store_true")
    ap.add_argument("--rounds", type=int, default=4, help="(b): alternating rounds per measurement")
    ap.add_argument("--skip-e2e", action="store_true", help="leave out (c) end to end")
    ap.add_argument("--only-e2e", action="store_true", help="run (c) end to end alone")
    ap.add_argument("--services", type=int, default=1000, help="(c): Services programmed (default %(default)s)")
    ap.add_argument("--pods-per-service", type=int, default=3)
    ap.add_argument("--nodes", type=int, default=2, help="(c): node namespaces, each with its proxy")
    ap.add_argument("--flips", type=int, default=200, help="(c): sequential pod Ready flips timed")
    args = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("needs root (network namespaces, nftables)")
    if not args.only_e2e:
        simple(args)
    if not args.skip_e2e:
        r = asyncio.run(e2e_latency(args.services, args.pods_per_service, args.flips, args.nodes))
        print_e2e(r, args.services, args.pods_per_service, args.nodes)


def simple(args: argparse.Namespace) -> None:
    """(a), (b) and the proxy-alone part of (c)."""
    results = {}
    for n in (int(x) for x in args.sizes.split(",") if x):
        r = results[n] = sync_cost(n)
        print(f"(a) {n:>6} services x 10 endpoints: plan all {r['plan_all']:.2f}s, full sync {r['full_first']:.2f}s "
              f"({r['full_bytes'] / 1e6:.1f} MB), full resync {r['full_again']:.2f}s; one endpoint change "
              f"{r['change_ms']:.1f} ms, {r['change_bytes']:.0f} bytes", flush=True)
    if len(results) > 1:
        lo, hi = min(results), max(results)
        print(f"    one-change ratio {hi}/{lo}: {results[hi]['change_ms'] / results[lo]['change_ms']:.2f} (goal <= 1.5)")
    if not args.skip_datapath:
        d = datapath(args.seconds, args.rounds)
        def spread(k: str, fmt: str) -> str:
            return "/".join(format(x, fmt) for x in d[k + "_samples"])  # type: ignore[attr-defined]

        for k in ("wrk_keepalive", "wrk_close"):
            print(f"(b) {k}: direct {d[k + '_direct']:.0f} req/s, clusterIP {d[k + '_clusterip']:.0f} req/s, "
                  f"ratio {d[k + '_clusterip'] / d[k + '_direct']:.2f} (goal >= 0.9), median of per-round ratios "
                  f"{d[k + '_median_ratio']:.2f}; samples direct "
                  f"{spread(k + '_direct', '.0f')}, clusterIP {spread(k + '_clusterip', '.0f')}")
        print(f"(b) iperf3: direct {d['iperf_direct']:.1f} Gbit/s, clusterIP {d['iperf_clusterip']:.1f} Gbit/s, "
              f"ratio {d['iperf_clusterip'] / d['iperf_direct']:.2f} (goal >= 0.9), median of per-round ratios "
              f"{d['iperf_median_ratio']:.2f}; samples direct "
              f"{spread('iperf_direct', '.1f')}, clusterIP {spread('iperf_clusterip', '.1f')}")
    lat = sorted(asyncio.run(programming_latency()))
    print(f"(c) the proxy alone (in process, no API), 1000 services, slice event -> rules in kernel: "
          f"p50 {lat[len(lat) // 2] * 1000:.1f} ms, p99 {lat[int(len(lat) * 0.99) - 1] * 1000:.1f} ms", flush=True)


if __name__ == "__main__":
    main()
