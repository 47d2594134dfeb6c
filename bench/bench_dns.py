"""Cluster DNS: queries/s, p99 latency at load and freshness, next to dnsmasq.

Starts ``kubesvc up`` (the API), creates ``--services`` Services in namespace
``bench``, then runs in the same run, each in its own process on loopback:

* ours: ``kubesvc dns --kubeconfig ...`` answering from its watch cache;
* baseline: dnsmasq (Debian ``dnsmasq-base``) answering the same names from a
  hosts file, authoritative for cluster.local, with no upstream.

The query mix is the same for both: 90% names that exist (A), 10% names that
do not (NXDOMAIN), shuffled.  The load generator is dnsperf when installed,
else a small multi-process UDP generator in this file.  Figures:

* max queries/s (dnsperf, 100 queries outstanding);
* p50/p99/p99.9 latency at a fixed offered load: dnsperf sends 16,800 q/s
  (CoreDNS's published per-core figure, or 80% of the lower max rate if that
  is less) to each server in turn, twice, and reports every answer's latency
  as it timed it (``-v``); a lost query counts as its 2 s timeout;
* the same with a Service change every 100 ms (our answer cache is dropped on
  each; dnsmasq gets SIGHUP, which clears its cache and re-reads its hosts);
* freshness: from a Service create (or an ExternalName change) being
  acknowledged by the API to the new answer being served, polling every ms.

With ``--pin`` (two or more CPUs) the load generator runs pinned to CPU 0 and
each server (ours and dnsmasq alike) to the last CPU, so dnsperf's threads do
not preempt the server under test; on a machine busy with other work that
makes things worse (the server cannot move off a busy CPU), so it is off by
default.

Latency is measured with dnsperf at ``nice 10`` (``--client-nice``), for both
servers alike: on a 2-core machine the load generator's threads otherwise
preempt the server under test, and a server that uses more CPU per query (ours
is Python) is then woken later, which is the load generator's cost, not the
server's (upstream measures from other machines).  The same figures at equal
priority are printed below them, so nothing is hidden.

Ours runs as ``kubesvc dns --workers 2`` by default (two processes on one
port, SO_REUSEPORT; as Kubernetes runs kube-dns as two replicas), since one
Python process waits for a core at the tail; ``--workers 1`` measures one.

Goals: >= 0.5x dnsmasq's rate; p99 < 5 ms; fresh within 100 ms.  Traffic stays
on 127.0.0.1.  Run: ``python bench/bench_dns.py [--services 200] [--duration 10]``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from multiprocessing import Pool
from pathlib import Path

import dns.message
import dns.rcode

from kubesvc.testing.cluster import start_cluster

ZONE = "svc.cluster.local"
CORE_DNS_PER_CORE = 16_800
PIN = {"client": [], "server": []}  # taskset prefixes, set in main()


def set_pinning(enabled: bool) -> str:
    """Load generator on CPU 0, servers on the last CPU; returns how, for the report."""
    n = os.cpu_count() or 1
    if not enabled or n < 2 or shutil.which("taskset") is None:
        PIN["client"], PIN["server"] = [], []
        return "not pinned"
    PIN["client"], PIN["server"] = ["taskset", "-c", "0"], ["taskset", "-c", str(n - 1)]
    return f"dnsperf pinned to CPU 0, each server to CPU {n - 1}"


def free_port() -> int:
    """A port free for both UDP and TCP on 127.0.0.1 (both servers bind both)."""
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u, socket.socket() as t:
            u.bind(("127.0.0.1", 0))
            port = int(u.getsockname()[1])
            try:
                t.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port


def pct(values: list[float], p: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, int(round(p / 100 * (len(s) - 1))))] if s else float("nan")


def wait_answer(port: int, name: str, want: str, timeout: float = 10.0, every: float = 0.001) -> float:
    """Poll until ``want`` appears in the answer to ``name``; the monotonic time it did."""
    deadline = time.monotonic() + timeout
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(every)
        while time.monotonic() < deadline:
            q = dns.message.make_query(name, "A")
            s.sendto(q.to_wire(), ("127.0.0.1", port))
            try:
                while True:
                    r = dns.message.from_wire(s.recv(65535))
                    if r.id == q.id:
                        break
            except (TimeoutError, dns.exception.DNSException):
                continue
            if want in r.to_text():
                return time.monotonic()
            time.sleep(every)
    raise TimeoutError(f"{name} never answered {want}")


# ------------------------------------------------------------------ load generation

def dnsperf(port: int, queries: Path, seconds: float, qps: int = 0, per_query: bool = False,
            nice: int = 0) -> dict:
    """One dnsperf run; with ``per_query``, every answer's latency as dnsperf itself timed it (``-v``)."""
    cmd = [*(["nice", "-n", str(nice)] if nice else []), *PIN["client"], "dnsperf", "-s", "127.0.0.1", "-p", str(port), "-d", str(queries), "-l", str(seconds),
           "-c", "8", "-q", "200", "-t", "2"]
    if qps:
        cmd += ["-Q", str(qps)]
    if per_query:
        cmd += ["-v"]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 30).stdout
    result = {"qps": float(re.search(r"Queries per second:\s+([\d.]+)", out).group(1)),
              "lost": int(re.search(r"Queries lost:\s+(\d+)", out).group(1)),
              "avg": float(re.search(r"Average Latency \(s\):\s+([\d.]+)", out).group(1)) * 1000}
    if per_query:  # "> NOERROR name A 0.000123" per answer ("> T name A" when lost: the 2 s timeout)
        lat = [float(m.group(1)) for m in re.finditer(r"^> \S+ \S+ \S+ ([\d.]+)$", out, re.M)]
        result["lat"] = lat + [2.0] * result["lost"]
    return result


def latency_at(ports: dict[str, int], queries: Path, seconds: float, qps: int, rounds: int = 2,
               during: Callable[[str], contextlib.AbstractContextManager[object]] | None = None,
               nice: int = 0) -> dict:
    """p50/p99/p99.9 per server at the same offered load, from dnsperf's own per-query timing.

    No prober of our own: on a 2-core machine a Python prober's sleeps and wake-ups are
    themselves milliseconds of noise.  Servers take turns (A, B, A, B) so that a burst of
    load from elsewhere on the machine does not land on one server only.  ``during(name)``
    wraps each run (the churn below).
    """
    lat: dict[str, list[float]] = {name: [] for name in ports}
    sent: dict[str, list[float]] = {name: [] for name in ports}
    for _ in range(rounds):
        for name, port in ports.items():
            with during(name) if during else contextlib.nullcontext():
                r = dnsperf(port, queries, seconds, qps=qps, per_query=True, nice=nice)
            lat[name] += r["lat"]
            sent[name].append(r["qps"])
    return {name: {"qps": statistics.mean(sent[name]), "n": len(v), "p50": pct(v, 50) * 1000,
                   "p99": pct(v, 99) * 1000, "p999": pct(v, 99.9) * 1000} for name, v in lat.items()}


class Churn:
    """A Service change every ``every`` seconds while a latency run lasts, for both servers alike.

    Each change patches the ExternalName of ``bench/churn`` through the API (so the API server
    works the same during both runs); our server then drops its answer cache, and dnsmasq is
    sent SIGHUP, which makes it re-read its hosts file and clear its cache: the nearest thing
    it has to a change.  ``changes`` counts what was applied.
    """

    def __init__(self, cluster, masq_pid: int, every: float = 0.1) -> None:  # type: ignore[no-untyped-def]
        from kubernetes import client

        self.api = client.CoreV1Api(cluster.client())
        self.masq_pid, self.every = masq_pid, every
        self.api.create_namespaced_service("bench", {"metadata": {"name": "churn"}, "spec": {
            "type": "ExternalName", "externalName": "churn-0.example"}})
        self.changes: dict[str, int] = {}

    @contextlib.contextmanager
    def __call__(self, name: str) -> Iterator[None]:
        stop = threading.Event()

        def run() -> None:
            i = 0
            while not stop.wait(self.every):
                i += 1
                self.api.patch_namespaced_service("churn", "bench", {"spec": {"externalName": f"churn-{i}.example"}})
                if name == "dnsmasq":
                    os.kill(self.masq_pid, signal.SIGHUP)
                self.changes[name] = self.changes.get(name, 0) + 1

        t = threading.Thread(target=run, daemon=True)
        t.start()
        try:
            yield
        finally:
            stop.set()
            t.join()


def _wires(queries: Path) -> list[bytes]:
    wires = []
    for line in queries.read_text().splitlines():
        name, rdtype = line.split()
        wires.append(dns.message.make_query(name, rdtype).to_wire())
    return wires


def _worker(args: tuple[int, list[bytes], float, int]) -> tuple[int, list[float]]:
    """One process: keep ``depth`` queries in flight for ``seconds``; count answers, sample latency."""
    port, wires, seconds, depth = args
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.connect(("127.0.0.1", port))
    s.settimeout(1.0)
    sent: dict[int, float] = {}
    done, lat, i = 0, [], 0
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        while len(sent) < depth:
            ident = i % 65536
            w = wires[i % len(wires)]
            s.send(ident.to_bytes(2, "big") + w[2:])
            sent[ident] = time.perf_counter()
            i += 1
        try:
            data = s.recv(65535)
        except TimeoutError:
            sent.clear()
            continue
        t = sent.pop(int.from_bytes(data[:2], "big"), None)
        if t is not None:
            done += 1
            if done % 16 == 0:
                lat.append(time.perf_counter() - t)
    return done, lat


def pyload(port: int, queries: Path, seconds: float, procs: int = 1) -> dict:
    wires = _wires(queries)
    with Pool(procs) as pool:
        results = pool.map(_worker, [(port, wires, seconds, 16)] * procs)
    lat = [x for _, ls in results for x in ls]
    return {"qps": sum(n for n, _ in results) / seconds, "lost": 0,
            "p50": pct(lat, 50) * 1000, "p99": pct(lat, 99) * 1000}


# ------------------------------------------------------------------ setup

def create_services(cluster, n: int) -> list[tuple[str, str]]:  # type: ignore[no-untyped-def]
    cluster.kubectl("create", "namespace", "bench")
    items, out = [], []
    for i in range(n):
        ip = f"10.0.{100 + i // 250}.{i % 250 + 1}"
        items.append({"apiVersion": "v1", "kind": "Service", "metadata": {"name": f"svc-{i}", "namespace": "bench"},
                      "spec": {"clusterIP": ip, "ports": [{"name": "http", "port": 80}]}})
        out.append((f"svc-{i}.bench.{ZONE}", ip))
    for start in range(0, n, 100):
        cluster.kubectl("apply", "-f", "-", input=json.dumps({"apiVersion": "v1", "kind": "List",
                                                               "items": items[start:start + 100]}))
    return out


def write_inputs(tmp: Path, names: list[tuple[str, str]]) -> tuple[Path, Path]:
    rnd = random.Random(7)
    lines = [f"{name} A" for name, _ in names] * 9 + [f"missing-{i}.bench.{ZONE} A" for i in range(len(names))]
    rnd.shuffle(lines)
    queries = tmp / "queries.txt"
    queries.write_text("\n".join(lines) + "\n")
    hosts = tmp / "hosts"
    hosts.write_text("".join(f"{ip} {name}\n" for name, ip in names))
    os.chmod(tmp, 0o755)
    os.chmod(hosts, 0o644)
    return queries, hosts


def start_dnsmasq(port: int, hosts: Path) -> subprocess.Popen[bytes]:
    exe = shutil.which("dnsmasq") or "/usr/sbin/dnsmasq"
    return subprocess.Popen([*PIN["server"], exe, "--keep-in-foreground", "--no-resolv", "--no-hosts", f"--addn-hosts={hosts}",
                             "--listen-address=127.0.0.1", "--bind-interfaces", f"--port={port}",
                             "--local=/cluster.local/", "--cache-size=10000", "--pid-file=", "--user=root",
                             "--dns-forward-max=1000"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def start_ours(port: int, kubeconfig: Path, workers: int = 1) -> subprocess.Popen[bytes]:
    return subprocess.Popen([*PIN["server"], sys.executable, "-m", "kubesvc", "dns", "--kubeconfig", str(kubeconfig),
                             "--workers", str(workers), "--listen", f"127.0.0.1:{port}", "--upstream", "127.0.0.1:9", "--metrics", "none"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def freshness(cluster, port: int, trials: int) -> tuple[list[float], list[float]]:  # type: ignore[no-untyped-def]
    """ms from the API acknowledging a create / an ExternalName change to the new answer."""
    created, changed = [], []
    for i in range(trials):
        ip = f"10.0.200.{i + 1}"
        body = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": f"fresh-{i}", "namespace": "bench"},
                "spec": {"clusterIP": ip, "ports": [{"port": 80}]}}
        cluster.kubectl("create", "-f", "-", input=json.dumps(body))
        acked = time.monotonic()
        created.append((wait_answer(port, f"fresh-{i}.bench.{ZONE}", ip) - acked) * 1000)
    ext = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "fresh-ext", "namespace": "bench"},
           "spec": {"type": "ExternalName", "externalName": "target-0.example"}}
    cluster.kubectl("apply", "-f", "-", input=json.dumps(ext))
    wait_answer(port, f"fresh-ext.bench.{ZONE}", "target-0.example")
    for i in range(1, trials + 1):
        ext["spec"]["externalName"] = f"target-{i}.example"
        cluster.kubectl("apply", "-f", "-", input=json.dumps(ext))
        acked = time.monotonic()
        changed.append((wait_answer(port, f"fresh-ext.bench.{ZONE}", f"target-{i}.example") - acked) * 1000)
    return created, changed


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--services", type=int, default=200)
    ap.add_argument("--duration", type=float, default=10)
    ap.add_argument("--trials", type=int, default=20)
    ap.add_argument("--pin", action="store_true", help="dnsperf on CPU 0, each server on the last CPU")
    ap.add_argument("--workers", type=int, default=2,
                    help="`kubesvc dns --workers` (default %(default)s, as kube-dns runs two replicas; 1 to compare)")
    ap.add_argument("--client-nice", type=int, default=10,
                    help="nice value of dnsperf in the latency runs (default %(default)s; 0: equal priority)")
    args = ap.parse_args()
    pinning = set_pinning(args.pin)
    have_dnsperf = shutil.which("dnsperf") is not None
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        cluster = start_cluster(tmp / "data", tmp / "kcache", "--dns-port", "0")
        procs: list[subprocess.Popen[bytes]] = []
        try:
            names = create_services(cluster, args.services)
            queries, hosts = write_inputs(tmp, names)
            ours_port, masq_port = free_port(), free_port()
            procs += [start_ours(ours_port, cluster.kubeconfig, args.workers), start_dnsmasq(masq_port, hosts)]
            wait_answer(ours_port, names[-1][0], names[-1][1], timeout=30, every=0.05)
            if procs[1].poll() is not None:
                raise RuntimeError(f"dnsmasq exited at once ({procs[1].returncode})")
            wait_answer(masq_port, names[-1][0], names[-1][1], timeout=10, every=0.05)
            load = dnsperf if have_dnsperf else pyload
            print(f"load generator: {'dnsperf' if have_dnsperf else 'python (dnsperf not installed)'}; "
                  f"{args.services} services; mix 90% A hits / 10% NXDOMAIN; {os.cpu_count()} CPUs; {pinning}; "
                  f"kubesvc dns --workers {args.workers}", flush=True)
            load(ours_port, queries, 1)  # warm up both
            load(masq_port, queries, 1)
            ours = load(ours_port, queries, args.duration)
            masq = load(masq_port, queries, args.duration)
            rate = int(min(CORE_DNS_PER_CORE, 0.8 * ours["qps"], 0.8 * masq["qps"]))
            churned: dict = {}
            same: dict = {}
            if have_dnsperf:
                servers = {"ours": ours_port, "dnsmasq": masq_port}
                at = latency_at(servers, queries, min(5, args.duration), rate, nice=args.client_nice)
                ours_l, masq_l = at["ours"], at["dnsmasq"]
                if args.client_nice:  # the same, the load generator competing on equal terms
                    same = latency_at(servers, queries, min(5, args.duration), rate)
                churn = Churn(cluster, procs[1].pid)
                churned = latency_at(servers, queries, min(5, args.duration), rate, during=churn,
                                     nice=args.client_nice)
                churned["changes"] = churn.changes
            else:
                ours_l, masq_l, rate = ours, masq, int(ours["qps"])
            created, changed = freshness(cluster, ours_port, args.trials)
        finally:
            for p in procs:
                p.send_signal(signal.SIGTERM)
                p.wait(10)
            cluster.stop()

    ratio = ours["qps"] / masq["qps"]
    print(f"{'figure':44} {'kubesvc dns':>12} {'dnsmasq':>12} {'ratio':>7}  goal")
    print(f"{'queries/s (max, 200 outstanding)':44} {ours['qps']:12,.0f} {masq['qps']:12,.0f} {ratio:7.2f}  "
          f">= 0.5x dnsmasq {'OK' if ratio >= 0.5 else 'MISSED'}; CoreDNS 16,800/core "
          f"{'OK' if ours['qps'] >= CORE_DNS_PER_CORE else 'MISSED'}")
    print(f"{'queries lost':44} {ours['lost']:12} {masq['lost']:12}")
    print(f"{f'p50 latency at {rate:,} q/s (ms)':44} {ours_l['p50']:12.3f} {masq_l['p50']:12.3f}")
    print(f"{f'p99 latency at {rate:,} q/s (ms)':44} {ours_l['p99']:12.3f} {masq_l['p99']:12.3f} "
          f"{ours_l['p99'] / masq_l['p99']:7.2f}  < 5 ms {'OK' if ours_l['p99'] < 5 else 'MISSED'}")
    if "p999" in ours_l:
        print(f"{f'p99.9 latency at {rate:,} q/s (ms)':44} {ours_l['p999']:12.3f} {masq_l['p999']:12.3f}")
        print(f"{'offered load reached (q/s) / answers timed':44} {ours_l['qps']:7,.0f}/{ours_l['n']:<6,} "
              f"{masq_l['qps']:7,.0f}/{masq_l['n']:<6,}")
    if same:
        print("the same with dnsperf at the servers' own priority (competing with them for the 2 cores):")
        for p, key in (("p50", "p50"), ("p99", "p99"), ("p99.9", "p999")):
            print(f"{f'  {p} latency at {rate:,} q/s (ms)':44} {same['ours'][key]:12.3f} {same['dnsmasq'][key]:12.3f}")
    if churned:
        secs = 2 * min(5, args.duration)
        changes = "/".join(f"{churned['changes'].get(n, 0) / secs:.0f}" for n in ("ours", "dnsmasq"))
        print(f"with a Service change every 100 ms ({changes} changes/s applied during each server's runs):")
        for p, key in (("p50", "p50"), ("p99", "p99"), ("p99.9", "p999")):
            print(f"{f'  {p} latency at {rate:,} q/s (ms)':44} {churned['ours'][key]:12.3f} "
                  f"{churned['dnsmasq'][key]:12.3f}")
    for label, vals in (("fresh after create (ms) p50/p90/max", created),
                        ("fresh after ExternalName change (ms) p50/p90/max", changed)):
        print(f"{label:44} {statistics.median(vals):6.1f}/{pct(vals, 90):.1f}/{max(vals):.1f}"
              f"{'':14} < 100 ms {'OK' if max(vals) < 100 else 'MISSED'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
