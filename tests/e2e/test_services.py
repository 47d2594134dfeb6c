"""Services against a running `kubesvc up`, as a user drives them (issue 3).

The seed's manifests verbatim; defaults as ``kubectl get -o yaml`` shows
them; ClusterIP and NodePort allocation with upstream's errors word for word;
every type transition; ``kubectl get``/``describe`` columns and fields;
200 concurrent creates; a SIGKILL in the middle of them; the start-up repair
of duplicates written straight into storage.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import re
import signal
import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import yaml

from kubesvc.cli.seed import SEED_CLUSTERIP, SEED_TEMPLATE
from kubesvc.testing.cluster import Cluster, start_cluster

pytestmark = pytest.mark.e2e

# The seed document's two manifests, verbatim (comments included): kubesvc.cli.seed

SERVICE_NET = ipaddress.ip_network("10.0.0.0/16")
STATIC_IPS = 256  # KEP-3070: min(max(16, 65536/16), 256) lowest addresses kept for explicit requests
STATIC_PORTS = 86  # KEP-3668: min(max(16, 2768/32), 128)
NOT_IN_RANGE = "the provided IP ({ip}) is not in the valid range. The range of valid IPs is 10.0.0.0/16"


def manifest(name: str, ns: str | None = None, meta: dict[str, Any] | None = None, **spec: Any) -> str:
    md: dict[str, Any] = {"name": name, **(meta or {})}
    if ns:
        md["namespace"] = ns
    spec.setdefault("selector", {"app": name})
    return yaml.safe_dump({"apiVersion": "v1", "kind": "Service", "metadata": md, "spec": spec}, sort_keys=False)


def apply(cluster: Cluster, doc: str, *args: str) -> str:
    return cluster.kubectl("apply", "-f", "-", *args, input=doc).stdout.strip()


def get(cluster: Cluster, name: str, *args: str) -> dict[str, Any]:
    return json.loads(cluster.kubectl("get", "svc", name, "-o", "json", *args).stdout)


def spec_of(cluster: Cluster, name: str, *args: str) -> dict[str, Any]:
    return get(cluster, name, *args)["spec"]


def fails(cluster: Cluster, doc: str, verb: str = "create") -> str:
    p = cluster.kubectl(verb, "-f", "-", input=doc, check=False)
    assert p.returncode == 1, p.stdout
    return p.stderr.strip()


def offset(ip: str) -> int:
    return int(ipaddress.ip_address(ip)) - int(SERVICE_NET.network_address)


def in_upper_band(ip: str) -> bool:
    return ipaddress.ip_address(ip) in SERVICE_NET and STATIC_IPS < offset(ip) < SERVICE_NET.num_addresses - 1


def node_ports(spec: dict[str, Any]) -> list[int]:
    return [p["nodePort"] for p in spec.get("ports") or [] if p.get("nodePort")]


def rows(out: str) -> dict[str, list[str]]:
    lines = out.strip().splitlines()
    return {ln.split()[0]: ln.split() for ln in lines[1:]}


@pytest.fixture
def ns(cluster: Cluster, request: pytest.FixtureRequest) -> Any:
    """A namespace of the test's own, deleted after it (its Services' addresses are freed)."""
    name = re.sub(r"[^a-z0-9]+", "-", request.node.name.lower())[:50].strip("-")
    cluster.kubectl("create", "namespace", name)
    yield name
    cluster.kubectl("delete", "svc", "--all", "-n", name, "--wait=false", check=False)
    cluster.kubectl("delete", "namespace", name, "--wait=false", check=False)


# ---------------------------------------------------------------------------
# the seed


def test_seed_template_is_accepted_with_its_cluster_ip(cluster: Cluster, ns: str) -> None:
    assert apply(cluster, SEED_TEMPLATE, "-n", ns) == "service/my-service created"
    spec = spec_of(cluster, "my-service", "-n", ns)
    assert spec["clusterIP"] == "10.0.10.10" and spec["clusterIPs"] == ["10.0.10.10"]
    assert spec["ports"] == [{"protocol": "TCP", "port": 80, "targetPort": 9376}]
    assert apply(cluster, SEED_TEMPLATE, "-n", ns) == "service/my-service unchanged"
    # the same address for a second Service, and one outside the range: upstream's words
    other = SEED_TEMPLATE.replace("name: my-service", "name: other-service")
    assert fails(cluster, other, "apply") == (
        'The Service "other-service" is invalid: spec.clusterIPs: Invalid value: []string{"10.0.10.10"}: '
        "failed to allocate IP 10.0.10.10: provided IP is already allocated"
    )
    outside = other.replace("10.0.10.10", "10.1.0.5")
    assert fails(cluster, outside) == (
        'The Service "other-service" is invalid: spec.clusterIPs: Invalid value: []string{"10.1.0.5"}: '
        "failed to allocate IP 10.1.0.5: " + NOT_IN_RANGE.format(ip="10.1.0.5")
    )
    broadcast = other.replace("10.0.10.10", "10.0.255.255")
    assert fails(cluster, broadcast).endswith(NOT_IN_RANGE.format(ip="10.0.255.255"))


def test_seed_clusterip_service_defaults_and_upper_band(cluster: Cluster, ns: str) -> None:
    assert apply(cluster, SEED_CLUSTERIP, "-n", ns) == "service/clusterip-service created"
    out = yaml.safe_load(cluster.kubectl("get", "svc", "clusterip-service", "-n", ns, "-o", "yaml").stdout)
    spec = out["spec"]
    assert in_upper_band(spec["clusterIP"]), spec["clusterIP"]
    assert spec["clusterIPs"] == [spec["clusterIP"]]
    assert spec["type"] == "ClusterIP"
    assert spec["sessionAffinity"] == "None" and "sessionAffinityConfig" not in spec
    assert spec["ipFamilies"] == ["IPv4"] and spec["ipFamilyPolicy"] == "SingleStack"
    assert spec["internalTrafficPolicy"] == "Cluster"
    for absent in ("externalTrafficPolicy", "allocateLoadBalancerNodePorts", "healthCheckNodePort"):
        assert absent not in spec
    assert out["status"] == {"loadBalancer": {}}
    # the smallest manifest: protocol TCP and targetPort = port are filled in
    apply(cluster, "apiVersion: v1\nkind: Service\nmetadata:\n  name: tiny\nspec:\n  ports:\n  - port: 8080\n", "-n", ns)
    tiny = spec_of(cluster, "tiny", "-n", ns)
    assert tiny["ports"] == [{"port": 8080, "protocol": "TCP", "targetPort": 8080}]
    assert tiny["type"] == "ClusterIP" and in_upper_band(tiny["clusterIP"])
    # ClientIP affinity gets upstream's 3 hours
    apply(cluster, manifest("sticky", ns, ports=[{"port": 80}], sessionAffinity="ClientIP"))
    assert spec_of(cluster, "sticky", "-n", ns)["sessionAffinityConfig"] == {"clientIP": {"timeoutSeconds": 10800}}


def test_automatic_addresses_are_distinct_and_from_the_upper_band(cluster: Cluster, ns: str) -> None:
    docs = "---\n".join(manifest(f"auto-{i}", ns, ports=[{"port": 80}]) for i in range(30))
    apply(cluster, docs)
    items = json.loads(cluster.kubectl("get", "svc", "-n", ns, "-o", "json").stdout)["items"]
    ips = [s["spec"]["clusterIP"] for s in items]
    assert len(ips) == 30 and len(set(ips)) == 30
    assert all(in_upper_band(ip) for ip in ips), ips


# ---------------------------------------------------------------------------
# node ports


def test_node_ports_explicit_automatic_and_shared(cluster: Cluster, ns: str) -> None:
    apply(cluster, manifest("web", ns, type="NodePort", ports=[
        {"name": "http", "port": 80, "nodePort": 30080}, {"name": "https", "port": 443, "nodePort": 30443}]))
    spec = spec_of(cluster, "web", "-n", ns)
    assert node_ports(spec) == [30080, 30443]
    assert spec["externalTrafficPolicy"] == "Cluster" and "healthCheckNodePort" not in spec
    row = rows(cluster.kubectl("get", "svc", "web", "-n", ns).stdout)["web"]
    assert row[1:5] == ["NodePort", spec["clusterIP"], "<none>", "80:30080/TCP,443:30443/TCP"]
    apply(cluster, manifest("auto", ns, type="NodePort", ports=[{"name": "a", "port": 80}, {"name": "b", "port": 8080}]))
    auto = node_ports(spec_of(cluster, "auto", "-n", ns))
    assert len(auto) == 2 and auto[0] != auto[1]
    assert all(30000 + STATIC_PORTS <= p <= 32767 for p in auto), auto  # automatic ports come from the upper band
    # TCP and UDP of one port number share one node port, automatic or explicit
    apply(cluster, manifest("dns", ns, type="NodePort", ports=[
        {"name": "dns", "port": 53, "protocol": "UDP"}, {"name": "dns-tcp", "port": 53, "protocol": "TCP"}]))
    shared = node_ports(spec_of(cluster, "dns", "-n", ns))
    assert len(shared) == 2 and shared[0] == shared[1]
    apply(cluster, manifest("dns2", ns, type="NodePort", ports=[
        {"name": "dns", "port": 53, "protocol": "UDP"}, {"name": "dns-tcp", "port": 53, "protocol": "TCP", "nodePort": 30053}]))
    assert node_ports(spec_of(cluster, "dns2", "-n", ns)) == [30053, 30053]
    # a taken port and one outside the range: upstream's words
    assert fails(cluster, manifest("web2", ns, type="NodePort", ports=[{"port": 80, "nodePort": 30080}])) == (
        'The Service "web2" is invalid: spec.ports[0].nodePort: Invalid value: 30080: provided port is already allocated'
    )
    assert fails(cluster, manifest("web2", ns, type="NodePort", ports=[{"port": 80, "nodePort": 29999}])) == (
        'The Service "web2" is invalid: spec.ports[0].nodePort: Invalid value: 29999: '
        "provided port is not in the valid range. The range of valid ports is 30000-32767"
    )


def test_load_balancer_health_check_and_no_node_ports(cluster: Cluster, ns: str) -> None:
    apply(cluster, manifest("lb-local", ns, type="LoadBalancer", externalTrafficPolicy="Local", ports=[{"port": 80}]))
    spec = spec_of(cluster, "lb-local", "-n", ns)
    hc = spec["healthCheckNodePort"]
    assert 30000 <= hc <= 32767 and hc not in node_ports(spec) and len(node_ports(spec)) == 1
    assert spec["allocateLoadBalancerNodePorts"] is True
    apply(cluster, manifest("lb-hc", ns, type="LoadBalancer", externalTrafficPolicy="Local",
                            healthCheckNodePort=30090, ports=[{"port": 80}]))
    assert spec_of(cluster, "lb-hc", "-n", ns)["healthCheckNodePort"] == 30090
    # allocateLoadBalancerNodePorts: false takes no node port (explicit ones are still honoured)
    # a class no controller here serves, so the address stays <pending>
    apply(cluster, manifest("lb-none", ns, type="LoadBalancer", allocateLoadBalancerNodePorts=False,
                            loadBalancerClass="example.com/elsewhere",
                            ports=[{"name": "a", "port": 80}, {"name": "b", "port": 81, "nodePort": 30091}]))
    spec = spec_of(cluster, "lb-none", "-n", ns)
    assert [p.get("nodePort") for p in spec["ports"]] == [None, 30091]
    row = rows(cluster.kubectl("get", "svc", "lb-none", "-n", ns).stdout)["lb-none"]
    assert row[1:5] == ["LoadBalancer", spec["clusterIP"], "<pending>", "80/TCP,81:30091/TCP"]


def test_load_balancer_status_shows_in_external_ip(cluster: Cluster, ns: str) -> None:
    apply(cluster, manifest("lb-st", ns, type="LoadBalancer", ports=[{"port": 80}]))
    apply(cluster, manifest("ci-st", ns, ports=[{"port": 80}]))

    def patch_status(name: str, ingress: list[dict[str, Any]]) -> Any:
        body = json.dumps({"status": {"loadBalancer": {"ingress": ingress}}})
        return cluster.kubectl("patch", "svc", name, "-n", ns, "--subresource=status", "--type=merge", "-p", body,
                               check=False)

    assert patch_status("lb-st", [{"ip": "172.18.255.200"}, {"hostname": "lb.example.com"}]).returncode == 0
    status = get(cluster, "lb-st", "-n", ns)["status"]
    assert status["loadBalancer"]["ingress"] == [{"ip": "172.18.255.200", "ipMode": "VIP"}, {"hostname": "lb.example.com"}]
    row = rows(cluster.kubectl("get", "svc", "lb-st", "-n", ns).stdout)["lb-st"]
    assert row[3] == "172.18.255.200,lb.example.com"
    p = patch_status("lb-st", [{"ip": "not-an-ip"}])
    assert p.stderr.strip() == (
        'The Service "lb-st" is invalid: status.loadBalancer.ingress[0].ip: Invalid value: "not-an-ip": '
        "must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)"
    )
    p = patch_status("lb-st", [{"hostname": "10.1.2.3"}])
    assert p.stderr.strip() == (
        'The Service "lb-st" is invalid: status.loadBalancer.ingress[0].hostname: Invalid value: "10.1.2.3": '
        "must be a DNS name, not an IP address"
    )
    p = patch_status("ci-st", [{"ip": "172.18.255.201"}])
    assert p.stderr.strip() == (
        'The Service "ci-st" is invalid: status.loadBalancer.ingress: Forbidden: '
        "may only be used when `spec.type` is 'LoadBalancer'"
    )
    # leaving LoadBalancer clears the status
    apply(cluster, manifest("lb-st", ns, type="ClusterIP", ports=[{"port": 80}]))
    assert get(cluster, "lb-st", "-n", ns)["status"] == {"loadBalancer": {}}


def test_dry_run_and_replace_take_nothing_and_keep_everything(cluster: Cluster, ns: str) -> None:
    doc = manifest("dr", ns, type="NodePort", clusterIP="10.0.10.99", ports=[{"name": "http", "port": 80, "nodePort": 30099}])
    out = cluster.kubectl("create", "--dry-run=server", "-f", "-", "-o", "json", input=doc).stdout
    assert json.loads(out)["spec"]["clusterIP"] == "10.0.10.99"
    assert cluster.kubectl("create", "-f", "-", input=doc).stdout.strip() == "service/dr created"
    # a PUT of the manifest without the allocated values keeps them (upstream's patchAllocatedValues)
    bare = manifest("np-put", ns, type="NodePort", ports=[{"name": "http", "port": 80}])
    cluster.kubectl("create", "-f", "-", input=bare)
    before = spec_of(cluster, "np-put", "-n", ns)
    assert cluster.kubectl("replace", "-f", "-", input=bare).stdout.strip() == "service/np-put replaced"
    after = spec_of(cluster, "np-put", "-n", ns)
    assert after["clusterIP"] == before["clusterIP"] and node_ports(after) == node_ports(before)


# ---------------------------------------------------------------------------
# type transitions


def test_type_transitions_allocate_and_release(cluster: Cluster, ns: str) -> None:
    ports = [{"name": "http", "port": 80}]
    apply(cluster, manifest("tt", ns, ports=ports))
    ip = spec_of(cluster, "tt", "-n", ns)["clusterIP"]
    # ClusterIP -> NodePort: keeps the IP, gets a node port
    assert apply(cluster, manifest("tt", ns, type="NodePort", ports=ports)) == "service/tt configured"
    spec = spec_of(cluster, "tt", "-n", ns)
    assert spec["clusterIP"] == ip and len(node_ports(spec)) == 1
    np = node_ports(spec)[0]
    # NodePort -> LoadBalancer: keeps both
    apply(cluster, manifest("tt", ns, type="LoadBalancer", ports=ports))
    spec = spec_of(cluster, "tt", "-n", ns)
    assert spec["clusterIP"] == ip and node_ports(spec) == [np]
    assert spec["allocateLoadBalancerNodePorts"] is True and spec["externalTrafficPolicy"] == "Cluster"
    # LoadBalancer -> ClusterIP: keeps the IP, drops and frees the node port and the LB-only fields
    apply(cluster, manifest("tt", ns, type="ClusterIP", ports=ports))
    spec = spec_of(cluster, "tt", "-n", ns)
    assert spec["clusterIP"] == ip and node_ports(spec) == []
    for gone in ("allocateLoadBalancerNodePorts", "externalTrafficPolicy"):
        assert gone not in spec
    apply(cluster, manifest("takes-np", ns, type="NodePort", ports=[{"port": 80, "nodePort": np}]))
    # ClusterIP -> ExternalName: the IP and families go, and the IP is free for another Service
    apply(cluster, manifest("tt", ns, type="ExternalName", externalName="db.example.com", ports=ports))
    spec = spec_of(cluster, "tt", "-n", ns)
    for gone in ("clusterIP", "clusterIPs", "ipFamilies", "ipFamilyPolicy"):
        assert gone not in spec
    apply(cluster, manifest("takes-ip", ns, clusterIP=ip, ports=ports))
    assert spec_of(cluster, "takes-ip", "-n", ns)["clusterIP"] == ip
    # ExternalName -> ClusterIP: a fresh address
    apply(cluster, manifest("tt", ns, type="ClusterIP", ports=ports))
    spec = spec_of(cluster, "tt", "-n", ns)
    assert in_upper_band(spec["clusterIP"]) and spec["clusterIP"] != ip and spec["clusterIPs"] == [spec["clusterIP"]]
    # NodePort -> ExternalName frees the node port too
    apply(cluster, manifest("np-en", ns, type="NodePort", ports=[{"port": 80, "nodePort": 30095}]))
    apply(cluster, manifest("np-en", ns, type="ExternalName", externalName="db.example.com", ports=[{"port": 80}]))
    assert node_ports(spec_of(cluster, "np-en", "-n", ns)) == []
    apply(cluster, manifest("takes-30095", ns, type="NodePort", ports=[{"port": 80, "nodePort": 30095}]))


def test_headless_stays_headless(cluster: Cluster, ns: str) -> None:
    apply(cluster, manifest("hl", ns, clusterIP="None"))
    apply(cluster, manifest("hl", ns, selector={"app": "other"}, ports=[{"port": 80}]))
    spec = spec_of(cluster, "hl", "-n", ns)
    assert spec["clusterIP"] == "None" and spec["clusterIPs"] == ["None"] and spec["ports"][0]["port"] == 80
    assert fails(cluster, manifest("hl", ns, type="NodePort", ports=[{"port": 80}]), "apply") == (
        "The Service \"hl\" is invalid: spec.clusterIPs[0]: Invalid value: \"None\": "
        "may not be set to 'None' for NodePort services"
    )
    row = rows(cluster.kubectl("get", "svc", "hl", "-n", ns).stdout)["hl"]
    assert row[1:5] == ["ClusterIP", "None", "<none>", "80/TCP"]


def test_delete_frees_everything(cluster: Cluster, ns: str) -> None:
    docs = [
        manifest("d-np", ns, type="NodePort", clusterIP="10.0.10.70", ports=[{"port": 80, "nodePort": 30170}]),
        manifest("d-lb", ns, type="LoadBalancer", clusterIP="10.0.10.71", externalTrafficPolicy="Local",
                 healthCheckNodePort=30171, ports=[{"port": 80, "nodePort": 30172}]),
    ]
    for _ in range(2):  # the second round only works if delete freed every address and port
        for doc in docs:
            assert cluster.kubectl("create", "-f", "-", input=doc).stdout.strip().endswith("created")
        cluster.kubectl("delete", "svc", "d-np", "d-lb", "-n", ns)


# ---------------------------------------------------------------------------
# kubectl get / describe


def test_get_columns_per_type_and_describe(cluster: Cluster, ns: str) -> None:
    apply(cluster, "---\n".join([
        manifest("c-ip", ns, clusterIP="10.0.10.90", ports=[{"port": 80}]),
        manifest("c-headless", ns, clusterIP="None"),
        manifest("c-np", ns, type="NodePort", ports=[{"name": "http", "port": 80, "nodePort": 30081},
                                                     {"name": "https", "port": 443, "nodePort": 30444}]),
        manifest("c-lb", ns, type="LoadBalancer", loadBalancerClass="example.com/elsewhere",
                 ports=[{"port": 80, "protocol": "UDP"}]),
        manifest("c-en", ns, type="ExternalName", externalName="my.database.example.com"),
        manifest("c-eip", ns, externalIPs=["203.0.113.5", "203.0.113.6"], ports=[{"port": 80}]),
    ]))
    out = cluster.kubectl("get", "svc", "-n", ns).stdout
    assert out.splitlines()[0].split() == ["NAME", "TYPE", "CLUSTER-IP", "EXTERNAL-IP", "PORT(S)", "AGE"]
    r = rows(out)
    lb = spec_of(cluster, "c-lb", "-n", ns)
    np = spec_of(cluster, "c-np", "-n", ns)
    assert r["c-ip"][1:5] == ["ClusterIP", "10.0.10.90", "<none>", "80/TCP"]
    assert r["c-headless"][1:5] == ["ClusterIP", "None", "<none>", "<none>"]
    assert r["c-np"][1:5] == ["NodePort", np["clusterIP"], "<none>", "80:30081/TCP,443:30444/TCP"]
    assert r["c-lb"][1:5] == ["LoadBalancer", lb["clusterIP"], "<pending>", f"80:{node_ports(lb)[0]}/UDP"]
    assert r["c-en"][1:5] == ["ExternalName", "<none>", "my.database.example.com", "<none>"]
    assert r["c-eip"][3:5] == ["203.0.113.5,203.0.113.6", "80/TCP"]
    wide = cluster.kubectl("get", "svc", "-n", ns, "-o", "wide").stdout
    assert wide.splitlines()[0].split()[-1] == "SELECTOR"
    assert rows(wide)["c-np"][-1] == "app=c-np"
    assert rows(wide)["c-en"][-1] == "app=c-en"

    desc = cluster.kubectl("describe", "svc", "c-np", "-n", ns).stdout
    fields = {m.group(1): m.group(2).strip() for m in re.finditer(r"^([A-Za-z ]+):[ \t]*(.*)$", desc, re.M)}
    assert fields["Type"] == "NodePort"
    assert fields["IP Family Policy"] == "SingleStack" and fields["IP Families"] == "IPv4"
    assert fields["IP"] == np["clusterIP"] and fields["IPs"] == np["clusterIP"]
    assert fields["Session Affinity"] == "None" and fields["External Traffic Policy"] == "Cluster"
    assert fields["Selector"] == "app=c-np"
    assert "Endpoints" in fields and fields["Events"] == "<none>"
    assert re.search(r"^Port:\s+http\s+80/TCP$", desc, re.M)
    assert re.search(r"^TargetPort:\s+80/TCP$", desc, re.M)
    assert re.search(r"^NodePort:\s+http\s+30081/TCP$", desc, re.M)
    assert re.search(r"^NodePort:\s+https\s+30444/TCP$", desc, re.M)
    desc = cluster.kubectl("describe", "svc", "c-lb", "-n", ns).stdout
    assert re.search(r"^Type:\s+LoadBalancer$", desc, re.M)
    desc = cluster.kubectl("describe", "svc", "c-en", "-n", ns).stdout
    assert re.search(r"^External Name:\s+my.database.example.com$", desc, re.M)


# ---------------------------------------------------------------------------
# concurrency, crash, repair


def _core(cluster: Cluster, pool: int = 64) -> Any:
    from kubernetes import client, config

    cfg = client.Configuration()
    config.load_kube_config(config_file=str(cluster.kubeconfig), client_configuration=cfg)
    cfg.connection_pool_maxsize = pool
    cfg.retries = False
    return client.CoreV1Api(client.ApiClient(cfg))


def _body(name: str, *, ip: str = "", node_port: int = 0, node_port_type: bool = False) -> dict[str, Any]:
    port: dict[str, Any] = {"name": "tcp", "port": 80}
    ports = [port, {"name": "udp", "port": 80, "protocol": "UDP"}]
    spec: dict[str, Any] = {"selector": {"app": name}, "ports": ports}
    if ip:
        spec["clusterIP"] = ip
    if node_port or node_port_type:
        spec["type"] = "NodePort"
    if node_port:
        port["nodePort"] = node_port
    return {"metadata": {"name": name}, "spec": spec}


def _mixed_requests(n: int, distinct: bool) -> list[tuple[str, dict[str, Any], str, int]]:
    """(name, body, explicit IP, explicit nodePort): explicit and automatic IPs and node ports, mixed."""
    out = []
    for i in range(n):
        k = i // 4
        ip = f"10.0.0.{20 + (k if distinct else k % 30)}" if i % 4 == 0 else ""
        # shared ports sit in the static band (30000-30085), which automatic picks avoid; distinct ones
        # (a run on its own cluster) go above it
        np = ((30200 + k) if distinct else (30010 + k % 30)) if i % 4 == 1 else 0
        out.append((f"c{i}", _body(f"c{i}", ip=ip, node_port=np, node_port_type=i % 4 == 2), ip, np))
    return out


def _assert_no_duplicates(services: list[Any]) -> None:
    ips = Counter(ip for s in services for ip in (s.spec.cluster_ips or []) if ip != "None")
    assert not [ip for ip, n in ips.items() if n > 1], "duplicate cluster IPs"
    ports = Counter(np for s in services for np in
                    {p.node_port for p in s.spec.ports or [] if p.node_port} | ({s.spec.health_check_node_port} - {None}))
    assert not [p for p, n in ports.items() if n > 1], "duplicate node ports"


def test_200_concurrent_creates_never_duplicate(cluster: Cluster, ns: str) -> None:
    from kubernetes.client.exceptions import ApiException

    v1 = _core(cluster)
    requests = _mixed_requests(200, distinct=False)
    results: dict[str, str] = {}

    def create(req: tuple[str, dict[str, Any], str, int]) -> None:
        name, body, _, _ = req
        try:
            v1.create_namespaced_service(ns, body)
            results[name] = "ok"
        except ApiException as e:
            results[name] = json.loads(e.body)["message"]

    with ThreadPoolExecutor(50) as pool:
        list(pool.map(create, requests))
    created = {s.metadata.name: s for s in v1.list_namespaced_service(ns).items}
    assert set(created) == {n for n, r in results.items() if r == "ok"}
    # each of the 30 explicit IPs and 30 explicit node ports was given exactly once; the losers got upstream's error
    ip_winners = [r[2] for r in requests if r[2] and results[r[0]] == "ok"]
    np_winners = [r[3] for r in requests if r[3] and results[r[0]] == "ok"]
    assert len(ip_winners) == len(set(ip_winners)) == 30
    assert len(np_winners) == len(set(np_winners)) == 30
    for name, _, ip, np in requests:
        if results[name] == "ok":
            s = created[name].spec
            assert not ip or s.cluster_ip == ip
            assert not np or s.ports[0].node_port == np == s.ports[1].node_port
        elif ip:
            assert results[name].endswith(f"failed to allocate IP {ip}: provided IP is already allocated")
        else:
            assert results[name].endswith(f"Invalid value: {np}: provided port is already allocated")
    assert len(created) == 160
    _assert_no_duplicates(v1.list_service_for_all_namespaces().items)


@pytest.mark.slow
def test_sigkill_during_concurrent_creates_leaks_and_duplicates_nothing(tmp_path: Path) -> None:
    c = start_cluster(tmp_path / "data", tmp_path / "cache")
    requests = _mixed_requests(400, distinct=True)
    done = threading.Event()
    ok: list[str] = []
    try:
        v1 = _core(c)

        def create(req: tuple[str, dict[str, Any], str, int]) -> None:
            try:
                v1.create_namespaced_service("default", req[1], _request_timeout=10)
                ok.append(req[0])
                if len(ok) >= 80:
                    done.set()
            except Exception:  # noqa: BLE001 - the server dies under us: any failure is expected
                pass

        with ThreadPoolExecutor(50) as pool:
            futures = [pool.submit(create, r) for r in requests]
            assert done.wait(60), "creates did not get going"
            c.proc.send_signal(signal.SIGKILL)
            for f in futures:
                f.result()
    finally:
        c.stop(signal.SIGKILL)
    assert 80 <= len(ok) < len(requests)

    c2 = start_cluster(tmp_path / "data", tmp_path / "cache")
    try:
        v1 = _core(c2)
        stored = {s.metadata.name: s for s in v1.list_service_for_all_namespaces().items}
        assert set(ok) <= set(stored)
        _assert_no_duplicates(list(stored.values()))
        # no leak: every explicit IP and node port not held by a stored Service can be taken now
        held_ips = {s.spec.cluster_ip for s in stored.values()}
        held_ports = {p.node_port for s in stored.values() for p in s.spec.ports or [] if p.node_port}
        retry = [(f"again-{name}", _body(f"again-{name}", ip=ip, node_port=np))
                 for name, _, ip, np in requests
                 if name not in stored and ((ip and ip not in held_ips) or (np and np not in held_ports))]
        assert retry, "the kill came too late to leave any request unfinished"
        for _name, body in retry:
            v1.create_namespaced_service("default", body)
        _assert_no_duplicates(v1.list_service_for_all_namespaces().items)
    finally:
        assert c2.stop() == 0


def test_repair_at_start_up_fixes_duplicates_written_into_storage(tmp_path: Path) -> None:
    from kubesvc.api.resources import by_plural
    from kubesvc.storage import open_store

    c = start_cluster(tmp_path / "data", tmp_path / "cache")
    try:
        apply(c, manifest("first", type="NodePort", clusterIP="10.0.10.80",
                          ports=[{"name": "dns", "port": 53, "protocol": "UDP", "nodePort": 30280},
                                 {"name": "dns-tcp", "port": 53, "protocol": "TCP", "nodePort": 30280}]))
        first = get(c, "first")
    finally:
        assert c.stop() == 0

    services = by_plural("", "v1", "services")
    assert services is not None

    async def write_duplicate() -> None:
        store = open_store(f"sqlite:///{tmp_path / 'data' / 'state.db'}")
        try:
            dup = json.loads(json.dumps(first))
            dup["metadata"].update(name="second", uid="00000000-0000-0000-0000-000000000002",
                                   creationTimestamp="2099-01-01T00:00:00Z")
            dup["metadata"].pop("resourceVersion")
            await store.create(services.key("default", "second"), dup)
        finally:
            await store.close()  # type: ignore[attr-defined]

    asyncio.run(write_duplicate())
    c2 = start_cluster(tmp_path / "data", tmp_path / "cache")
    try:
        log = "".join(c2.output)
        assert "service allocation repair" in log
        kept, moved = spec_of(c2, "first"), spec_of(c2, "second")
        assert kept["clusterIP"] == "10.0.10.80" and node_ports(kept) == [30280, 30280]
        assert in_upper_band(moved["clusterIP"]) and moved["clusterIPs"] == [moved["clusterIP"]]
        assert node_ports(moved)[0] == node_ports(moved)[1] != 30280
        events = json.loads(c2.kubectl("get", "events", "--field-selector", "involvedObject.name=second",
                                       "-o", "json").stdout)["items"]
        assert sorted(e["reason"] for e in events) == ["ClusterIPAlreadyAllocated", "PortAlreadyAllocated"]
        assert all(e["type"] == "Warning" for e in events)
        msgs = {e["reason"]: e["message"] for e in events}
        assert msgs["ClusterIPAlreadyAllocated"] == (
            f"Cluster IP [IPv4]:10.0.10.80 was assigned to multiple services; this service now has {moved['clusterIP']}"
        )
        desc = c2.kubectl("describe", "svc", "second").stdout
        assert "ClusterIPAlreadyAllocated" in desc and "PortAlreadyAllocated" in desc
        # the repaired state is consistent: the old values stay taken, the new ones too
        assert fails(c2, manifest("third", clusterIP="10.0.10.80", ports=[{"port": 80}])).endswith(
            "provided IP is already allocated")
        assert fails(c2, manifest("third", clusterIP=moved["clusterIP"], ports=[{"port": 80}])).endswith(
            "provided IP is already allocated")
    finally:
        assert c2.stop() == 0
