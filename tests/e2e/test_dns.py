"""Cluster DNS against a running ``kubesvc up``, with the real dig and dnspython.

Headless endpoints are written by hand as selectorless Services plus
EndpointSlices, so these tests do not depend on pods running; the server
under test reads slices the same way whoever writes them.
"""

from __future__ import annotations

import json
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request

import dns.message
import dns.query
import dns.rcode
import dns.resolver
import pytest

from kubesvc.testing.cluster import Cluster

pytestmark = [pytest.mark.e2e, pytest.mark.slow]
DIG = shutil.which("dig")
Z = "svc.cluster.local"


@pytest.fixture(scope="module")
def dns_port(cluster: Cluster) -> int:
    """Where the cluster's DNS serves on 127.0.0.1 (53 when free, else what `up` printed)."""
    for line in cluster.output:
        m = re.search(r"kubesvc dns: serving on .*127\.0\.0\.1:(\d+)", line)
        if m:
            return int(m.group(1))
    raise AssertionError("kubesvc up did not report its DNS address:\n" + "".join(cluster.output))


def dig(port: int, *args: str) -> str:
    if DIG is None:
        pytest.skip("dig is not installed (dnsutils)")
    p = subprocess.run([DIG, "@127.0.0.1", "-p", str(port), "+tries=1", "+time=3", *args],
                       capture_output=True, text=True, timeout=30)
    return p.stdout


def short(port: int, *args: str) -> list[str]:
    return sorted(dig(port, "+short", *args).split())


def status(port: int, *args: str) -> str:
    m = re.search(r"status: (\w+)", dig(port, *args))
    return m.group(1) if m else "no answer"


def query(port: int, name: str, rdtype: str = "A", tcp: bool = False) -> dns.message.Message:
    q = dns.message.make_query(name, rdtype)
    fn = dns.query.tcp if tcp else dns.query.udp
    return fn(q, "127.0.0.1", port=port, timeout=3)


def apply(cluster: Cluster, *objs: dict) -> None:
    cluster.kubectl("apply", "-f", "-", input=json.dumps({"apiVersion": "v1", "kind": "List", "items": list(objs)}))


def svc(name: str, ns: str = "default", **spec: object) -> dict:
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name, "namespace": ns}, "spec": spec}


def endpoint_slice(name: str, service: str, ips: list[str], *, ready: bool = True, hostnames: bool = False,
                   ns: str = "default", ports: list[dict] | None = None) -> dict:
    eps = []
    for i, ip in enumerate(ips):
        ep: dict = {"addresses": [ip], "conditions": {"ready": ready}}
        if hostnames:
            ep["hostname"] = f"web-{i}"
        eps.append(ep)
    return {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice", "addressType": "IPv4",
            "metadata": {"name": name, "namespace": ns, "labels": {"kubernetes.io/service-name": service}},
            "endpoints": eps, "ports": ports or [{"name": "http", "port": 8080, "protocol": "TCP"}]}


def eventually(fn, timeout: float = 5.0):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while True:
        try:
            return fn()
        except AssertionError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def test_kube_dns_service_published(cluster: Cluster, dns_port: int) -> None:
    """kube-system/kube-dns sits at 10.0.0.10 with dns, dns-tcp and metrics, endpoints at the server."""
    s = json.loads(cluster.kubectl("get", "svc", "kube-dns", "-n", "kube-system", "-o", "json").stdout)
    assert s["spec"]["clusterIP"] == "10.0.0.10"
    assert [(p["name"], p["port"], p["protocol"]) for p in s["spec"]["ports"]] == [
        ("dns", 53, "UDP"), ("dns-tcp", 53, "TCP"), ("metrics", 9153, "TCP")]
    slices = json.loads(cluster.kubectl("get", "endpointslices", "-n", "kube-system", "-l",
                                        "kubernetes.io/service-name=kube-dns", "-o", "json").stdout)["items"]
    assert slices and slices[0]["endpoints"][0]["conditions"]["ready"]
    ports = {p["name"]: p["port"] for p in slices[0]["ports"]}
    addr = slices[0]["endpoints"][0]["addresses"][0]
    r = dns.query.udp(dns.message.make_query("kube-dns.kube-system.svc.cluster.local.", "A"), addr,
                      port=ports["dns"], timeout=3)
    assert r.answer[0][0].address == "10.0.0.10"
    assert short(dns_port, f"kube-dns.kube-system.{Z}") == ["10.0.0.10"]
    assert short(dns_port, "-x", "10.0.0.10") == [f"kube-dns.kube-system.{Z}."]


def test_cluster_ip_service_srv_ptr_and_case(cluster: Cluster, dns_port: int) -> None:
    """A, SRV for named ports only, PTR, case-insensitive names, NODATA vs NXDOMAIN."""
    apply(cluster, svc("clusterip-service", clusterIP="10.0.10.10", selector={"app": "x"}, ports=[
        {"name": "http", "port": 80, "protocol": "TCP"}, {"name": "dns", "port": 53, "protocol": "UDP"}]))
    name = f"clusterip-service.default.{Z}"
    assert eventually(lambda: _eq(short(dns_port, name), ["10.0.10.10"]))
    assert short(dns_port, name.upper()) == ["10.0.10.10"]
    assert short(dns_port, "SRV", f"_http._tcp.{name}") == sorted(["0", "100", "80", f"{name}."])
    assert short(dns_port, "SRV", f"_dns._udp.{name}") == sorted(["0", "100", "53", f"{name}."])
    assert status(dns_port, "SRV", f"_dns._tcp.{name}") == "NXDOMAIN"
    assert short(dns_port, "-x", "10.0.10.10") == [f"{name}."]
    out = dig(dns_port, "AAAA", name)  # exists, no IPv6: NODATA with the SOA
    assert "status: NOERROR" in out and "ANSWER: 0" in out and "SOA" in out
    assert status(dns_port, f"missing.default.{Z}") == "NXDOMAIN"
    assert status(dns_port, f"clusterip-service.nons.{Z}") == "NXDOMAIN"
    assert short(dns_port, "TXT", "dns-version.cluster.local") == ['"1.1.0"']
    assert "ns.dns.cluster.local." in dig(dns_port, "SOA", "cluster.local", "+short")
    assert short(dns_port, "10-244-1-5.default.pod.cluster.local") == ["10.244.1.5"]


def _eq(got: list[str], want: list[str]) -> bool:
    assert got == want, f"{got} != {want}"
    return True


def test_search_path_short_names(cluster: Cluster, dns_port: int) -> None:
    """A pod's resolv.conf search path (ndots:5) resolves short names, via dnspython."""
    apply(cluster, svc("clusterip-service", clusterIP="10.0.10.10", selector={"app": "x"},
                       ports=[{"name": "http", "port": 80}]))
    r = dns.resolver.Resolver(configure=False)
    r.nameservers, r.port = ["127.0.0.1"], dns_port
    r.search = [dns.name.from_text(s) for s in (f"default.{Z}", Z, "cluster.local")]
    r.ndots = 5
    for name, ip in [("clusterip-service", "10.0.10.10"), ("clusterip-service.default", "10.0.10.10"),
                     ("kube-dns.kube-system", "10.0.0.10")]:
        assert eventually(lambda n=name, i=ip: _eq([a.address for a in r.resolve(n, "A", search=True)], [i]))


def test_headless_ready_endpoints_hostnames_and_srv(cluster: Cluster, dns_port: int) -> None:
    """Headless: ready endpoints only, hostnames, SRV per endpoint; none ready is NXDOMAIN."""
    apply(cluster, svc("web", clusterIP="None", ports=[{"name": "http", "port": 80}]),
          svc("web-down", clusterIP="None", ports=[{"name": "http", "port": 80}]),
          svc("web-pub", clusterIP="None", publishNotReadyAddresses=True, ports=[{"name": "http", "port": 80}]),
          endpoint_slice("web-a", "web", ["10.244.1.10", "10.244.1.11"], hostnames=True),
          endpoint_slice("web-b", "web", ["10.244.1.12"], ready=False),
          endpoint_slice("web-down-a", "web-down", ["10.244.1.20"], ready=False),
          endpoint_slice("web-pub-a", "web-pub", ["10.244.1.30"], ready=False))
    name = f"web.default.{Z}"
    assert eventually(lambda: _eq(short(dns_port, name), ["10.244.1.10", "10.244.1.11"]))
    assert short(dns_port, f"web-0.{name}") == ["10.244.1.10"]
    srv = dig(dns_port, "+short", "SRV", f"_http._tcp.{name}").splitlines()
    assert sorted(line.split()[2:] for line in srv) == [["8080", f"web-0.{name}."], ["8080", f"web-1.{name}."]]
    assert short(dns_port, "-x", "10.244.1.11") == [f"web-1.{name}."]
    assert status(dns_port, f"web-down.default.{Z}") == "NXDOMAIN"
    assert short(dns_port, f"web-pub.default.{Z}") == ["10.244.1.30"]
    # readiness changes are served at once
    apply(cluster, endpoint_slice("web-down-a", "web-down", ["10.244.1.20"], ready=True))
    assert eventually(lambda: _eq(short(dns_port, f"web-down.default.{Z}"), ["10.244.1.20"]))


def test_external_name(cluster: Cluster, dns_port: int) -> None:
    """ExternalName: a CNAME even when the target cannot be resolved; an IP is answered as an A."""
    apply(cluster, svc("ext", type="ExternalName", externalName="nothing-here.invalid"),
          svc("ext-ip", type="ExternalName", externalName="192.0.2.44"),
          svc("ext-in", type="ExternalName", externalName=f"kube-dns.kube-system.{Z}"))
    out = eventually(lambda: _has(dig(dns_port, f"ext.default.{Z}"), "CNAME"))
    assert "nothing-here.invalid." in out and "status: SERVFAIL" not in out
    assert short(dns_port, f"ext-ip.default.{Z}") == ["192.0.2.44"]
    assert short(dns_port, f"ext-in.default.{Z}") == ["10.0.0.10", f"kube-dns.kube-system.{Z}."]


def _has(out: str, text: str) -> str:
    assert text in out, out
    return out


def test_big_headless_truncates_and_tcp_serves_all(cluster: Cluster, dns_port: int) -> None:
    """500 endpoints: UDP sets TC (EDNS0 size respected), dig retries over TCP and gets all 500."""
    # 25 small slices, not 5 large ones: the apiserver's read_body can cut a large request body short
    slices = [endpoint_slice(f"big-{s}", "big", [f"10.244.{20 + s}.{i + 1}" for i in range(20)])
              for s in range(25)]
    apply(cluster, svc("big", clusterIP="None", ports=[{"name": "http", "port": 80}]), *slices)
    name = f"big.default.{Z}"
    eventually(lambda: _eq([str(len(short(dns_port, "+tcp", name)))], ["500"]), 10)
    udp = dig(dns_port, "+notcp", "+ignore", "+bufsize=1232", name)
    flags = re.search(r"flags: ([a-z ]+);", udp)
    assert flags and "tc" in flags.group(1).split(), udp
    assert "MSG SIZE  rcvd:" in udp and int(udp.split("MSG SIZE  rcvd:")[1].split()[0]) <= 1232
    full = dig(dns_port, name)  # dig falls back to TCP on TC
    assert "ANSWER: 500" in full
    assert len(query(dns_port, name, tcp=True).answer[0]) == 500


def test_freshness_create_and_change(cluster: Cluster, dns_port: int) -> None:
    """A new Service, and a changed one, are answered within a second (the goal is 100 ms)."""
    t0 = time.monotonic()
    apply(cluster, svc("fresh", clusterIP="10.0.10.77", ports=[{"port": 80}]))
    eventually(lambda: _eq(short(dns_port, f"fresh.default.{Z}"), ["10.0.10.77"]), 5)
    assert time.monotonic() - t0 < 3
    cluster.kubectl("delete", "svc", "fresh")
    eventually(lambda: _eq([status(dns_port, f"fresh.default.{Z}")], ["NXDOMAIN"]), 5)


def test_metrics(cluster: Cluster, dns_port: int) -> None:
    """/metrics counts queries by type and answers by rcode, with a latency histogram."""
    short(dns_port, f"kube-dns.kube-system.{Z}")
    slices = json.loads(cluster.kubectl("get", "endpointslice", "kube-dns-kubesvc", "-n", "kube-system",
                                        "-o", "json").stdout)
    port = {p["name"]: p["port"] for p in slices["ports"]}["metrics"]
    host = slices["endpoints"][0]["addresses"][0]
    text = urllib.request.urlopen(f"http://{host}:{port}/metrics", timeout=5).read().decode()
    assert 'kubesvc_dns_requests_total{proto="udp",type="A"}' in text
    assert 'kubesvc_dns_responses_total{proto="udp",rcode="NXDOMAIN"}' in text
    assert "kubesvc_dns_request_duration_seconds_bucket" in text


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_standalone_dns_with_dead_upstream(cluster: Cluster) -> None:
    """`kubesvc dns` alone: cluster names answer; outside names SERVFAIL fast when upstream is dead."""
    port, dead = _free_port(), _free_port()
    proc = subprocess.Popen([sys.executable, "-m", "kubesvc", "dns", "--kubeconfig", str(cluster.kubeconfig),
                             "--listen", f"127.0.0.1:{port}", "--upstream", f"127.0.0.1:{dead}",
                             "--metrics", "none", "--ttl", "7"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True)
    try:
        out = eventually(lambda: _has(dig(port, f"kubernetes.default.{Z}"), "10.0.0.1"), 10)
        assert re.search(r"\s7\s+IN\s+A\s+10\.0\.0\.1", out)
        t0 = time.monotonic()
        assert status(port, "example.com") == "SERVFAIL"
        assert time.monotonic() - t0 < 2
    finally:
        proc.terminate()
        assert proc.wait(10) == 0


def _listeners(port: int) -> set[int]:
    """Pids of the processes holding a UDP socket on 127.0.0.1:port (from `ss`)."""
    out = subprocess.run(["ss", "-Hulnp", f"sport = :{port}"], capture_output=True, text=True).stdout
    return {int(p) for p in re.findall(r"pid=(\d+)", out)}


def test_workers_share_the_port_answer_fresh_and_go_with_the_first(cluster: Cluster) -> None:
    """`--workers 2`: two processes on one port, both current with the API; they stop with the first."""
    port = _free_port()
    proc = subprocess.Popen([sys.executable, "-m", "kubesvc", "dns", "--kubeconfig", str(cluster.kubeconfig),
                             "--listen", f"127.0.0.1:{port}", "--upstream", "127.0.0.1:9", "--metrics", "none",
                             "--workers", "2"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)

    def two_listeners() -> set[int]:
        pids = _listeners(port)
        assert len(pids) == 2, pids
        return pids

    def fresh() -> None:
        assert short(port, f"workers-web.default.{Z}") == ["10.0.77.7"]

    def none_left() -> None:
        assert not _listeners(port)

    try:
        assert proc.pid in eventually(two_listeners, 20)
        apply(cluster, svc("workers-web", clusterIP="10.0.77.7", ports=[{"port": 80}]))
        # dig uses a new source port each time and the kernel spreads sources over the two sockets,
        # so twenty answers in a row almost surely include both workers': every one must be fresh
        for _ in range(20):
            eventually(fresh, 5)
    finally:
        proc.kill()  # no clean stop: the extra worker must notice on its own
        proc.wait(10)
    eventually(none_left, 10)
