"""Endpoints follow pods, against a real ``kubesvc up`` (after upstream's endpointslice e2e tests).

Pods do not run here: each test creates Pods through the API and writes their
status (IP, phase, Ready) itself through the /status subresource, on fake Nodes
that carry zones -- which is all the controllers look at.  Every test works in
its own namespace.
"""

from __future__ import annotations

import itertools
import time
import urllib.request
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import pytest
from kubernetes import client as k8s
from kubernetes.client.rest import ApiException

from kubesvc.api.addressplan import NODE_NETWORK_GATEWAY
from kubesvc.testing.cluster import Cluster, start_cluster

pytestmark = pytest.mark.e2e
T = TypeVar("T")
MANAGED_BY = "endpointslice.kubernetes.io/managed-by"
SERVICE_NAME = "kubernetes.io/service-name"
_ns_counter = itertools.count(1)


# ---------------------------------------------------------------- helpers

def wait_for(fn: Callable[[], T], what: str, timeout: float = 15.0) -> T:
    """Poll ``fn`` until it returns something truthy (and return it)."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        try:
            last = fn()
        except (ApiException, AssertionError, KeyError, IndexError) as e:
            last = e
        else:
            if last:
                return last
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}; last: {last!r}")


class Env:
    """One namespace on the cluster, with the official client's APIs."""

    def __init__(self, cluster: Cluster) -> None:
        self.cluster = cluster
        self.api_client = cluster.client()
        self.core = k8s.CoreV1Api(self.api_client)
        self.disc = k8s.DiscoveryV1Api(self.api_client)
        self.ns = f"ep-{next(_ns_counter)}"
        self.core.create_namespace({"metadata": {"name": self.ns}})

    def service(self, name: str, selector: dict[str, str] | None, ports: list[dict[str, Any]] | None = None,
                **spec: Any) -> Any:
        body = {"metadata": {"name": name},
                "spec": {"ports": ports or [{"name": "http", "port": 80, "targetPort": 80}], **spec}}
        if selector is not None:
            body["spec"]["selector"] = selector
        return self.core.create_namespaced_service(self.ns, body)

    def pod(self, name: str, ip: str | None, *, labels: dict[str, str] | None = None, ready: bool = True,
            node: str = "node-1", ports: list[dict[str, Any]] | None = None) -> None:
        body = {"metadata": {"name": name, "labels": labels or {"app": "web"}},
                "spec": {"nodeName": node,
                         "containers": [{"name": "c", "image": "nginx", "ports": ports or []}]}}
        self.core.create_namespaced_pod(self.ns, body)
        if ip:
            self.set_status(name, ip, ready)

    def set_status(self, name: str, ip: str, ready: bool) -> None:
        status = {"phase": "Running", "podIP": ip, "podIPs": [{"ip": ip}],
                  "conditions": [{"type": "Ready", "status": "True" if ready else "False",
                                  "lastTransitionTime": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}]}
        self.core.patch_namespaced_pod_status(name, self.ns, {"status": status})

    def slices(self, svc: str) -> list[Any]:
        return self.disc.list_namespaced_endpoint_slice(self.ns, label_selector=f"{SERVICE_NAME}={svc}").items

    def endpoints(self, name: str) -> Any:
        return self.core.read_namespaced_endpoints(name, self.ns)


def ready_ips(slices: list[Any]) -> set[str]:
    return {a for s in slices for e in s.endpoints or [] if e.conditions.ready for a in e.addresses}


def all_ips(slices: list[Any]) -> set[str]:
    return {a for s in slices for e in s.endpoints or [] for a in e.addresses}


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """Our own ``kubesvc up`` without node agents: the pods here are fakes whose status the tests write."""
    base = tmp_path_factory.mktemp("cluster")
    with pytest.MonkeyPatch.context() as mp:
        # fake nodes post no heartbeats: keep the node lifecycle controller from failing them and their pods
        mp.setenv("KUBESVC_NODE_MONITOR_GRACE_PERIOD", "86400")
        c = start_cluster(base / "data", base / "kcache", "--nodes", "0", "--dns-port", "0")
    yield c
    rc = c.stop()
    assert rc == 0, f"kubesvc up exited with {rc}"


@pytest.fixture(scope="module")
def nodes(cluster: Cluster) -> Iterator[None]:
    """Fake nodes (no agent) with zones."""
    core = k8s.CoreV1Api(cluster.client())
    for i, zone in ((1, "zone-a"), (2, "zone-b")):
        core.create_node({"metadata": {"name": f"node-{i}", "labels": {"topology.kubernetes.io/zone": zone}}})
    yield


@pytest.fixture
def env(cluster: Cluster, nodes: None) -> Env:
    return Env(cluster)


# ---------------------------------------------------------------- tests

def test_kubernetes_service_has_endpoints(cluster: Cluster) -> None:
    """default/kubernetes: Endpoints and a slice with the same address and port, the API server's."""
    core, disc = k8s.CoreV1Api(cluster.client()), k8s.DiscoveryV1Api(cluster.client())
    ep = wait_for(lambda: core.read_namespaced_endpoints("kubernetes", "default"), "kubernetes Endpoints")
    assert [a.ip for a in ep.subsets[0].addresses] == [NODE_NETWORK_GATEWAY]
    assert [(p.name, p.port, p.protocol) for p in ep.subsets[0].ports] == [("https", cluster.port, "TCP")]
    assert ep.metadata.labels == {"endpointslice.kubernetes.io/skip-mirror": "true"}
    slices = wait_for(lambda: disc.list_namespaced_endpoint_slice(
        "default", label_selector=f"{SERVICE_NAME}=kubernetes").items, "kubernetes slice")
    assert [s.metadata.name for s in slices] == ["kubernetes"]
    assert all_ips(slices) == {NODE_NETWORK_GATEWAY}
    assert [(p.name, p.port) for p in slices[0].ports] == [("https", cluster.port)]


def test_controller_metrics_are_served(env: Env) -> None:
    """``kubesvc up`` says where its controllers' /metrics are; they carry upstream's endpoint_slice_controller_*."""
    from prometheus_client.parser import text_string_to_metric_families

    line = next(x for x in env.cluster.output if "kubesvc controllers: metrics on " in x)
    url = line.split(" on ", 1)[1].strip()
    env.service("metered", {"app": "metered"})
    env.pod("metered-1", "10.244.1.40", labels={"app": "metered"})
    wait_for(lambda: ready_ips(env.slices("metered")) == {"10.244.1.40"}, "the endpoint")

    def scrape() -> dict[str, float]:
        with urllib.request.urlopen(url, timeout=10) as resp:
            text = resp.read().decode()
        return {f"{s.name}{sorted(s.labels.items())}": s.value
                for fam in text_string_to_metric_families(text) for s in fam.samples}

    m = scrape()
    assert m["endpoint_slice_controller_syncs[('result', 'success')]"] >= 1
    assert m["endpoint_slice_controller_changes[('operation', 'create')]"] >= 1
    assert m["endpoint_slice_controller_num_endpoint_slices[]"] >= 1
    assert m["endpoint_slice_controller_endpoints_desired[]"] >= 1
    assert m["endpoint_slice_controller_endpoints_added_per_sync_count[]"] >= 1
    assert m["workqueue_adds_total[('name', 'endpointslice')]"] >= 1
    assert m["workqueue_work_duration_seconds_count[('name', 'endpointslice')]"] >= 1
    assert "workqueue_depth[('name', 'replicaset')]" in m


def test_selector_matching_nothing_then_service_deleted(env: Env) -> None:
    """One placeholder slice (0 endpoints, 0 ports) and an empty Endpoints; both go with the Service."""
    env.service("empty", {"app": "nothing"})
    slices = wait_for(lambda: env.slices("empty"), "placeholder slice")
    assert len(slices) == 1
    s = slices[0]
    assert not s.endpoints and not s.ports and s.metadata.labels[MANAGED_BY] == "endpointslice-controller.k8s.io"
    assert s.metadata.generate_name == "empty-"
    assert [(r.kind, r.name, r.controller, r.block_owner_deletion) for r in s.metadata.owner_references] == [
        ("Service", "empty", True, True)]
    ep = wait_for(lambda: env.endpoints("empty"), "Endpoints")
    assert not ep.subsets
    env.core.delete_namespaced_service("empty", env.ns)
    wait_for(lambda: not env.slices("empty"), "slices garbage-collected", timeout=30)

    def endpoints_gone() -> bool:
        try:
            env.endpoints("empty")
        except ApiException as e:
            return e.status == 404
        return False
    wait_for(endpoints_gone, "Endpoints deleted")


def test_pods_becoming_ready_and_not_ready(env: Env) -> None:
    env.service("web", {"app": "web"})
    env.pod("a", "10.244.1.5")
    env.pod("b", "10.244.2.7", node="node-2")
    env.pod("c", None)  # no IP yet: no endpoint
    wait_for(lambda: ready_ips(env.slices("web")) == {"10.244.1.5", "10.244.2.7"}, "both ready")
    (s,) = env.slices("web")
    eps = {e.target_ref.name: e for e in s.endpoints}
    assert eps["b"].zone == "zone-b" and eps["b"].node_name == "node-2"
    assert (eps["a"].target_ref.kind, eps["a"].target_ref.namespace) == ("Pod", env.ns)
    assert [(p.name, p.port, p.protocol) for p in s.ports] == [("http", 80, "TCP")]
    out = wait_for(lambda: env.cluster.kubectl("get", "ep", "web", "-n", env.ns).stdout.split("\n")[1]
                   if "10.244.2.7" in env.cluster.kubectl("get", "ep", "web", "-n", env.ns).stdout else "", "ep")
    assert out.split()[:2] == ["web", "10.244.1.5:80,10.244.2.7:80"]

    env.set_status("a", "10.244.1.5", ready=False)
    wait_for(lambda: ready_ips(env.slices("web")) == {"10.244.2.7"}, "a not ready")
    (s,) = env.slices("web")
    a = next(e for e in s.endpoints if e.target_ref.name == "a")
    assert (a.conditions.ready, a.conditions.serving, a.conditions.terminating) == (False, False, False)
    ep = wait_for(lambda: env.endpoints("web").subsets[0].not_ready_addresses, "notReadyAddresses")
    assert [x.ip for x in ep] == ["10.244.1.5"]
    describe = env.cluster.kubectl("describe", "svc", "web", "-n", env.ns).stdout
    assert any(line.split() == ["Endpoints:", "10.244.2.7:80"] for line in describe.splitlines()), describe

    env.set_status("c", "10.244.1.9", ready=True)
    wait_for(lambda: "10.244.1.9" in ready_ips(env.slices("web")), "c gets an IP")
    assert len(env.slices("web")) == 1


def test_named_target_port(env: Env) -> None:
    """Pods whose named port resolves to 3000 or 3001 land in two slices and two subsets."""
    env.service("named", {"app": "named"}, ports=[{"name": "http", "port": 80, "targetPort": "web"}])
    for name, ip, port in (("p1", "10.244.1.11", 3000), ("p2", "10.244.1.12", 3001)):
        env.pod(name, ip, labels={"app": "named"}, ports=[{"name": "web", "containerPort": port}])
    slices = wait_for(lambda: (s := env.slices("named")) and len(all_ips(s)) == 2 and s, "two slices")
    assert sorted((s.ports[0].port, tuple(all_ips([s]))) for s in slices) == [
        (3000, ("10.244.1.11",)), (3001, ("10.244.1.12",))]
    subsets = wait_for(lambda: (ss := env.endpoints("named").subsets) and len(ss) == 2 and ss, "two subsets")
    assert sorted(s.ports[0].port for s in subsets) == [3000, 3001]


def test_slices_deleted_or_edited_by_hand_are_repaired(env: Env) -> None:
    env.service("fix", {"app": "fix"})
    env.pod("f1", "10.244.1.21", labels={"app": "fix"})
    wait_for(lambda: ready_ips(env.slices("fix")) == {"10.244.1.21"}, "slice")
    (s,) = env.slices("fix")
    s.endpoints[0].conditions.ready = False
    s.endpoints.append(k8s.V1Endpoint(addresses=["1.2.3.4"], conditions=k8s.V1EndpointConditions(ready=True)))
    env.disc.replace_namespaced_endpoint_slice(s.metadata.name, env.ns, s)
    wait_for(lambda: ready_ips(env.slices("fix")) == {"10.244.1.21"} and all_ips(env.slices("fix")) == {"10.244.1.21"},
             "edit repaired")
    env.disc.delete_namespaced_endpoint_slice(s.metadata.name, env.ns)
    repaired = wait_for(lambda: [x for x in env.slices("fix") if x.metadata.name != s.metadata.name], "recreated")
    assert ready_ips(repaired) == {"10.244.1.21"}


def test_selectorless_service_endpoints_are_mirrored(env: Env) -> None:
    """Hand-written Endpoints of a selectorless Service: mirrored, updated in place, removed."""
    env.service("ext", None)
    env.core.create_namespaced_endpoints(env.ns, {
        "metadata": {"name": "ext", "labels": {"team": "x"}},
        "subsets": [{"addresses": [{"ip": "10.1.2.3"}], "ports": [{"name": "http", "port": 80}]}]})
    slices = wait_for(lambda: env.slices("ext"), "mirrored slice")
    assert len(slices) == 1 and all_ips(slices) == {"10.1.2.3"}
    s = slices[0]
    assert s.metadata.labels[MANAGED_BY] == "endpointslicemirroring-controller.k8s.io"
    assert s.metadata.labels["team"] == "x" and [p.port for p in s.ports] == [80]
    assert s.metadata.owner_references[0].kind == "Endpoints"
    env.core.patch_namespaced_endpoints("ext", env.ns, {"subsets": [
        {"addresses": [{"ip": "10.2.3.4"}], "ports": [{"name": "http", "port": 80}]}]})
    updated = wait_for(lambda: (x := env.slices("ext")) and all_ips(x) == {"10.2.3.4"} and x, "mirrored update")
    assert [x.metadata.name for x in updated] == [s.metadata.name]
    env.core.delete_namespaced_endpoints("ext", env.ns)
    wait_for(lambda: not env.slices("ext"), "mirrored slices removed")


def test_mirroring_over_1000_addresses_warns_and_is_counted(env: Env) -> None:
    """A subset of 1,001 addresses: 1,000 mirrored, upstream's TooManyAddressesToMirror event, and the metrics say so."""
    env.service("big", None)
    ips = [f"10.3.{i // 250}.{i % 250 + 1}" for i in range(1001)]
    env.core.create_namespaced_endpoints(env.ns, {
        "metadata": {"name": "big"}, "subsets": [{"addresses": [{"ip": ip} for ip in ips],
                                                  "ports": [{"name": "http", "port": 80}]}]})
    slices = wait_for(lambda: env.slices("big"), "mirrored slice")
    assert len(all_ips(slices)) == 1000

    def warned() -> bool:
        evs = env.core.list_namespaced_event(env.ns).items
        return any(e.reason == "TooManyAddressesToMirror" and e.type == "Warning" and e.involved_object.kind == "Endpoints"
                   and e.message == "A max of 1000 addresses can be mirrored to EndpointSlices per Endpoints subset. "
                                    "1 addresses were skipped" for e in evs)

    wait_for(warned, "the TooManyAddressesToMirror event")
    line = next(x for x in env.cluster.output if "kubesvc controllers: metrics on " in x)
    with urllib.request.urlopen(line.split(" on ", 1)[1].strip(), timeout=10) as resp:
        text = resp.read().decode()
    assert 'endpoint_slice_mirroring_controller_changes{operation="create"}' in text
    skipped = [x for x in text.splitlines() if x.startswith("endpoint_slice_mirroring_controller_addresses_skipped_per_sync_sum")]
    assert skipped and float(skipped[0].split()[-1]) >= 1
    desired = [x for x in text.splitlines() if x.startswith("endpoint_slice_mirroring_controller_endpoints_desired ")]
    assert desired and float(desired[0].split()[-1]) >= 1000


@pytest.mark.slow
def test_1000_pods_make_10_slices(env: Env) -> None:
    env.service("big", {"app": "big"})
    with ThreadPoolExecutor(16) as pool:
        list(pool.map(lambda i: env.pod(f"b{i}", f"10.244.{i // 250 + 10}.{i % 250 + 1}", labels={"app": "big"}),
                      range(1000)))
    slices = wait_for(lambda: (x := env.slices("big")) and len(ready_ips(x)) == 1000 and x, "1000 endpoints", 60)
    # at most 100 per slice; how pods arriving in batches pack depends on timing, as upstream
    # (a batch that does not fit the fullest slice opens a new one), so only the bounds are exact
    sizes = sorted(len(s.endpoints) for s in slices)
    assert sum(sizes) == 1000 and all(n <= 100 for n in sizes) and len(slices) >= 10
    ep = wait_for(lambda: (e := env.endpoints("big")).subsets and len(e.subsets[0].addresses) == 1000 and e,
                  "Endpoints with 1000 addresses", 30)
    assert "endpoints.kubernetes.io/over-capacity" not in (ep.metadata.annotations or {})
    out = env.cluster.kubectl("get", "endpointslices", "-n", env.ns).stdout
    assert out.splitlines()[0].split() == ["NAME", "ADDRESSTYPE", "PORTS", "ENDPOINTS", "AGE"]
    rows = out.splitlines()[1:]
    assert all(line.split()[1:3] == ["IPv4", "80"] for line in rows)
    assert sum("+ 97 more..." in line for line in rows) == sizes.count(100)
