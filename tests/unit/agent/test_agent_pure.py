"""The agent's pure parts: IP allocation, image catalog, env, status, probes, back-off, network plans."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest

from kubesvc.agent import images
from kubesvc.agent.backoff import Backoff
from kubesvc.agent.env import EnvError, container_env, expand, service_env
from kubesvc.agent.hostnet import NodeNet, host_plan, host_route_plan, node_plan
from kubesvc.agent.ipam import IpAllocator, PoolExhausted
from kubesvc.agent.podnet import hosts_file, pod_netns, pod_veth, resolv_conf
from kubesvc.agent.probes import ProbeSpec, ProbeTracker
from kubesvc.agent.status import ContainerRecord, phase, pod_status

# ---------------------------------------------------------------- ipam


def test_ipam_allocates_round_robin_skipping_gateway_and_persists(tmp_path: Path) -> None:
    """Addresses start at .2 (.1 is the node bridge) and go round-robin like host-local CNI:
    a released address is not handed out again at once; a reloaded allocator keeps every holder."""
    a = IpAllocator("10.244.1.0/24", tmp_path / "ipam.json")
    assert a.allocate("p1") == "10.244.1.2"
    assert a.allocate("p2") == "10.244.1.3"
    assert a.allocate("p1") == "10.244.1.2"  # idempotent
    a.release("p1")
    b = IpAllocator("10.244.1.0/24", tmp_path / "ipam.json")
    assert b.get("p2") == "10.244.1.3" and b.get("p1") is None
    assert b.allocate("p3") == "10.244.1.4"  # not .2 again: a replaced pod gets a new address


def test_ipam_wraps_around_to_free_addresses() -> None:
    a = IpAllocator("10.244.1.0/29")  # usable .2-.6
    got = [a.allocate(f"p{i}") for i in range(5)]
    assert got == [f"10.244.1.{i}" for i in range(2, 7)]
    a.release("p1")
    assert a.allocate("p9") == "10.244.1.3"


def test_ipam_assign_refuses_a_held_address_and_the_gateway() -> None:
    a = IpAllocator("10.244.1.0/24")
    a.assign("p1", "10.244.1.7")
    with pytest.raises(ValueError):
        a.assign("p2", "10.244.1.7")
    with pytest.raises(ValueError):
        a.assign("p2", "10.244.1.1")
    assert a.allocate("p2") == "10.244.1.2"


def test_ipam_exhaustion() -> None:
    a = IpAllocator("10.244.1.0/30")  # hosts .1 (gateway) and .2
    assert a.allocate("p1") == "10.244.1.2"
    with pytest.raises(PoolExhausted):
        a.allocate("p2")


# ---------------------------------------------------------------- images


@pytest.mark.parametrize("image,name", [
    ("nginx", "nginx"), ("nginx:1.25", "nginx"), ("docker.io/library/nginx@sha256:abc", "nginx"),
    ("registry.k8s.io/e2e-test-images/agnhost:2.52", "agnhost"), ("curlimages/curl:8.5.0", "curl"),
    ("registry.k8s.io/pause:3.10", "pause"), ("localhost:5000/busybox", "busybox"),
])
def test_image_name(image: str, name: str) -> None:
    assert images.image_name(image) == name


def test_resolve_follows_entrypoint_and_cmd_rules() -> None:
    """command replaces ENTRYPOINT, args replace CMD; stand-ins for catalog programs."""
    nginx = images.resolve("nginx:1.27", None, None)
    assert nginx[-3:] == ["kubesvc.agent.images.nginx", "-g", "daemon off;"]
    ag = images.resolve("registry.k8s.io/e2e-test-images/agnhost:2.52", None, ["netexec", "--http-port=8080"])
    assert ag[-3:] == ["kubesvc.agent.images.agnhost", "netexec", "--http-port=8080"]
    assert images.resolve("registry.k8s.io/pause:3.10", None, None) == ["sleep", "infinity"]
    sleep = images.resolve("busybox", ["sleep"], ["10"])
    assert sleep[0].endswith("/sleep") and sleep[1:] == ["10"]
    assert images.resolve("busybox", None, ["sleep", "5"])[1:] == ["5"]
    assert images.resolve("whatever/unknown", ["sh", "-c", "true"], None)[1:] == ["-c", "true"]


def test_resolve_unknown_image_and_missing_program() -> None:
    with pytest.raises(images.ImageNotFound):
        images.resolve("example.com/nope", None, ["x"])
    with pytest.raises(images.ExecNotFound, match="executable file not found"):
        images.resolve("busybox", ["no-such-program-xyz"], None)


# ---------------------------------------------------------------- env

SVC = {"metadata": {"name": "my-svc", "namespace": "default"},
       "spec": {"clusterIP": "10.0.3.4", "ports": [{"name": "http", "port": 80, "protocol": "TCP"},
                                                   {"name": "dns", "port": 53, "protocol": "UDP"}]}}
K8S = {"metadata": {"name": "kubernetes", "namespace": "default"},
       "spec": {"clusterIP": "10.0.0.1", "ports": [{"name": "https", "port": 443, "protocol": "TCP"}]}}
OTHER = {"metadata": {"name": "elsewhere", "namespace": "other"},
         "spec": {"clusterIP": "10.0.9.9", "ports": [{"port": 1}]}}
HEADLESS = {"metadata": {"name": "headless", "namespace": "default"},
            "spec": {"clusterIP": "None", "ports": [{"port": 1}]}}


def _pod(**spec: object) -> dict:
    return {"metadata": {"name": "p", "namespace": "default", "uid": "u1", "labels": {"app": "x"}},
            "spec": {"nodeName": "node-1", **spec}, "status": {"podIP": "10.244.1.5", "hostIP": "172.18.0.2"}}


def test_service_env_names_and_docker_links() -> None:
    env = service_env([SVC])
    assert env["MY_SVC_SERVICE_HOST"] == "10.0.3.4"
    assert env["MY_SVC_SERVICE_PORT"] == "80"
    assert env["MY_SVC_SERVICE_PORT_HTTP"] == "80" and env["MY_SVC_SERVICE_PORT_DNS"] == "53"
    assert env["MY_SVC_PORT"] == "tcp://10.0.3.4:80"
    assert env["MY_SVC_PORT_53_UDP"] == "udp://10.0.3.4:53"
    assert env["MY_SVC_PORT_53_UDP_PROTO"] == "udp" and env["MY_SVC_PORT_80_TCP_ADDR"] == "10.0.3.4"


def test_container_env_links_fieldrefs_and_expansion() -> None:
    c = {"env": [{"name": "IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
                 {"name": "APP", "valueFrom": {"fieldRef": {"fieldPath": "metadata.labels['app']"}}},
                 {"name": "URL", "value": "http://$(IP):80/$$(IP)/$(NOPE)"}]}
    env = container_env(_pod(), c, [SVC, K8S, OTHER, HEADLESS], lambda k, n: None)
    assert env["IP"] == "10.244.1.5" and env["APP"] == "x"
    assert env["URL"] == "http://10.244.1.5:80/$(IP)/$(NOPE)"
    assert "MY_SVC_SERVICE_HOST" in env and "KUBERNETES_SERVICE_HOST" in env
    assert "ELSEWHERE_SERVICE_HOST" not in env and "HEADLESS_SERVICE_HOST" not in env


def test_enable_service_links_false_keeps_only_kubernetes() -> None:
    env = container_env(_pod(enableServiceLinks=False), {}, [SVC, K8S], lambda k, n: None)
    assert "KUBERNETES_SERVICE_HOST" in env and "MY_SVC_SERVICE_HOST" not in env


def test_configmap_and_secret_refs() -> None:
    objs = {("ConfigMap", "cm"): {"data": {"a": "1"}},
            ("Secret", "s"): {"data": {"pw": base64.b64encode(b"hunter2").decode()}}}
    c = {"env": [{"name": "A", "valueFrom": {"configMapKeyRef": {"name": "cm", "key": "a"}}},
                 {"name": "PW", "valueFrom": {"secretKeyRef": {"name": "s", "key": "pw"}}}],
         "envFrom": [{"configMapRef": {"name": "cm"}, "prefix": "CM_"}]}
    env = container_env(_pod(), c, [], lambda k, n: objs.get((k, n)))
    assert (env["A"], env["PW"], env["CM_a"]) == ("1", "hunter2", "1")
    with pytest.raises(EnvError, match='configmap "missing" not found'):
        container_env(_pod(), {"env": [{"name": "X", "valueFrom": {"configMapKeyRef": {"name": "missing", "key": "k"}}}]},
                      [], lambda k, n: None)


def test_expand_escapes() -> None:
    assert expand("$(A)-$$(A)-$(B)", {"A": "1"}) == "1-$(A)-$(B)"


# ---------------------------------------------------------------- status

def _rec(state: str, **kw: object) -> ContainerRecord:
    return ContainerRecord("c", "nginx", state=state, **kw)  # type: ignore[arg-type]


@pytest.mark.parametrize("policy,recs,want", [
    ("Always", [_rec("running")], "Running"),
    ("Always", [_rec("waiting")], "Pending"),
    ("Always", [_rec("waiting", last_terminated={"exitCode": 1})], "Running"),
    ("Never", [_rec("terminated", exit_code=0)], "Succeeded"),
    ("Never", [_rec("terminated", exit_code=2)], "Failed"),
    ("OnFailure", [_rec("terminated", exit_code=0)], "Succeeded"),
    ("OnFailure", [_rec("terminated", exit_code=1)], "Running"),
    ("Always", [_rec("terminated", exit_code=0)], "Running"),
])
def test_phase(policy: str, recs: list[ContainerRecord], want: str) -> None:
    assert phase(policy, True, False, recs) == want


def test_pod_status_conditions_and_ips() -> None:
    pod = _pod(restartPolicy="Always", containers=[{"name": "c"}])
    ready = pod_status(pod, [], [_rec("running", ready=True, started=True, started_at="t0")],
                       pod_ip="10.244.1.5", host_ip="172.18.0.2", start_time="t0", now="t1")
    conds = {c["type"]: c for c in ready["conditions"]}
    assert ready["phase"] == "Running" and ready["podIPs"] == [{"ip": "10.244.1.5"}]
    assert all(conds[t]["status"] == "True" for t in ("Ready", "ContainersReady", "Initialized", "PodScheduled"))
    assert ready["containerStatuses"][0]["state"] == {"running": {"startedAt": "t0"}}
    pod["status"] = ready
    unready = pod_status(pod, [], [_rec("running", ready=False)], pod_ip="10.244.1.5", host_ip="172.18.0.2",
                         start_time="t0", now="t2")
    c2 = {c["type"]: c for c in unready["conditions"]}
    assert c2["Ready"]["status"] == "False" and c2["Ready"]["reason"] == "ContainersNotReady"
    assert c2["Ready"]["message"] == "containers with unready status: [c]"
    assert c2["Ready"]["lastTransitionTime"] == "t2" and c2["Initialized"]["lastTransitionTime"] == "t1"


def test_pod_status_init_pending() -> None:
    init = [ContainerRecord("init", "busybox", state="running")]
    st = pod_status(_pod(), init, [_rec("waiting", reason="PodInitializing")], pod_ip=None,
                    host_ip="h", start_time="t", now="t")
    conds = {c["type"]: c for c in st["conditions"]}
    assert st["phase"] == "Pending" and conds["Initialized"]["status"] == "False"
    assert conds["Initialized"]["message"] == "containers with incomplete status: [init]"
    assert "podIP" not in st


# ---------------------------------------------------------------- probes and back-off

def test_probe_spec_defaults() -> None:
    s = ProbeSpec.parse({"httpGet": {"port": 80}})
    assert s is not None and (s.period, s.timeout, s.success_threshold, s.failure_threshold) == (10, 1, 1, 3)
    assert ProbeSpec.parse(None) is None


def test_probe_tracker_thresholds() -> None:
    """Readiness starts failed and needs successThreshold; liveness starts fine and needs failureThreshold."""
    spec = ProbeSpec("tcpSocket", {}, success_threshold=2, failure_threshold=3)
    r = ProbeTracker(spec, "readiness")
    assert not r.verdict
    assert not r.record(True) and r.record(True) and r.verdict
    live = ProbeTracker(spec, "liveness")
    assert live.verdict
    assert not live.record(False) and not live.record(False)
    assert not live.record(True)  # the run of failures is broken
    assert not live.record(False) and not live.record(False) and live.record(False) and not live.verdict


def test_backoff_doubles_caps_and_resets() -> None:
    b = Backoff()
    assert [b.next(1) for _ in range(7)] == [0, 10, 20, 40, 80, 160, 300]
    assert b.next(1) == 300
    assert b.next(601) == 0


# ---------------------------------------------------------------- network plans and files

def test_network_plans() -> None:
    nodes = [NodeNet(1), NodeNet(2)]
    hp = host_plan(nodes)
    assert hp[:3] == ["link add kubesvc0 type bridge", "addr add 172.18.0.1/16 dev kubesvc0", "link set kubesvc0 up"]
    assert "link add ksn2 type veth peer name eth0 netns ks-node-2" in hp
    assert host_route_plan(nodes) == ["route add 10.244.1.0/24 via 172.18.0.2", "route add 10.244.2.0/24 via 172.18.0.3"]
    np = node_plan(nodes[0], nodes)
    assert "addr add 172.18.0.2/16 dev eth0" in np and "addr add 10.244.1.1/24 dev cbr0" in np
    assert "route add 10.244.2.0/24 via 172.18.0.3" in np and "route add 10.244.1.0/24 via 172.18.0.2" not in np


def test_pod_names_fit_linux_limits() -> None:
    assert pod_netns("abc").startswith("ks-p-") and len(pod_veth("0" * 36)) <= 15


def test_resolv_conf_policies() -> None:
    pod = {"metadata": {"namespace": "shop"}, "spec": {}}
    assert resolv_conf(pod) == ("nameserver 10.0.0.10\nsearch shop.svc.cluster.local svc.cluster.local cluster.local\n"
                                "options ndots:5\n")
    default = {"metadata": {"namespace": "x"}, "spec": {"dnsPolicy": "Default"}}
    assert resolv_conf(default, "nameserver 1.1.1.1\nsearch corp\n") == "nameserver 1.1.1.1\nsearch corp\n"
    none = {"metadata": {}, "spec": {"dnsPolicy": "None", "dnsConfig": {
        "nameservers": ["9.9.9.9"], "options": [{"name": "ndots", "value": "2"}]}}}
    assert resolv_conf(none) == "nameserver 9.9.9.9\noptions ndots:2\n"


def test_hosts_file_names_the_pod() -> None:
    text = hosts_file({"metadata": {"name": "web"}, "spec": {"hostAliases": [{"ip": "1.2.3.4", "hostnames": ["a"]}]}},
                      "10.244.1.9")
    assert "10.244.1.9\tweb" in text and "1.2.3.4\ta" in text
