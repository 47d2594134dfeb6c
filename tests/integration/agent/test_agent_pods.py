"""Pods on network-namespace nodes, end to end: kubectl in, curl and namespaces checked on the host."""

from __future__ import annotations

import json
import subprocess

import pytest
from agent_helpers import get_pod, links, netns_names, pids_in, pod_ready, run_pod, wait_for

from kubesvc.api import addressplan as plan
from kubesvc.testing.cluster import Cluster

pytestmark = [pytest.mark.root, pytest.mark.slow]


def _curl(url: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["curl", "-s", "-i", "--max-time", "3", url], capture_output=True, text=True)


def test_nodes_register_with_addresses_cidr_and_lease(cluster: Cluster) -> None:
    """Each agent registers its Node as the kubelet does, and renews its Lease."""
    nodes = {n["metadata"]["name"]: n for n in json.loads(cluster.kubectl("get", "nodes", "-o", "json").stdout)["items"]}
    assert set(nodes) == {"node-1", "node-2"}
    n1 = nodes["node-1"]
    assert n1["spec"]["podCIDR"] == plan.node_pod_cidr(1)
    assert {"type": "InternalIP", "address": plan.node_ip(1)} in n1["status"]["addresses"]
    assert n1["metadata"]["labels"]["kubernetes.io/hostname"] == "node-1"
    ready = next(c for c in n1["status"]["conditions"] if c["type"] == "Ready")
    assert (ready["status"], ready["reason"]) == ("True", "KubeletReady")
    lease = json.loads(cluster.kubectl("get", "lease", "-n", "kube-node-lease", "node-1", "-o", "json").stdout)
    assert lease["spec"]["holderIdentity"] == "node-1"


def test_nginx_pod_runs_and_answers_from_the_host(cluster: Cluster) -> None:
    """An nginx pod gets an IP from its node's CIDR and serves the welcome page to the host."""
    run_pod(cluster, "web1", "node-1", "nginx", extra={"ports": [{"containerPort": 80}]})
    pod = wait_for(lambda: pod_ready(cluster, "web1"), 30, "web1 Ready")
    st = pod["status"]
    assert st["phase"] == "Running" and st["hostIP"] == plan.node_ip(1)
    assert st["podIP"].startswith("10.244.1.")
    cs = st["containerStatuses"][0]
    assert cs["ready"] and cs["started"] and "running" in cs["state"]
    r = wait_for(lambda: (x := _curl(f"http://{st['podIP']}/")).returncode == 0 and x, 10, "nginx answers")
    assert "Welcome to nginx!" in r.stdout and "Server: nginx" in r.stdout
    logs = cluster.kubectl("logs", "web1").stdout
    assert '"GET / HTTP/1.1" 200' in logs


def test_pod_to_pod_across_nodes(cluster: Cluster) -> None:
    """agnhost netexec on node-2 dials agnhost on node-1 over the pod network."""
    for name, node in (("ag1", "node-1"), ("ag2", "node-2")):
        run_pod(cluster, name, node, "registry.k8s.io/e2e-test-images/agnhost:2.52",
                args=["netexec", "--http-port=8080", "--udp-port=8081"])
    p1 = wait_for(lambda: pod_ready(cluster, "ag1"), 30, "ag1 Ready")
    p2 = wait_for(lambda: pod_ready(cluster, "ag2"), 30, "ag2 Ready")
    ip1, ip2 = p1["status"]["podIP"], p2["status"]["podIP"]

    def dial(proto: str) -> dict[str, list[str]] | None:
        r = _curl(f"http://{ip2}:8080/dial?request=hostname&host={ip1}&port={8080 if proto == 'http' else 8081}"
                  f"&protocol={proto}&tries=1")
        body = r.stdout.split("\n\n", 1)[-1]  # text mode turned CRLF into LF
        out = json.loads(body) if r.returncode == 0 and body.startswith("{") else {}
        return out if out.get("responses") else None

    assert wait_for(lambda: dial("http"), 10, "http dial")["responses"] == ["ag1"]
    assert wait_for(lambda: dial("udp"), 10, "udp dial")["responses"] == ["ag1"]
    assert _curl(f"http://{ip1}:8080/echo?msg=hi").stdout.endswith("hi")


def test_resolv_conf_hostname_and_env(cluster: Cluster) -> None:
    """Inside the pod: cluster DNS resolv.conf, hostname = pod name, downward API and service env."""
    run_pod(cluster, "shell1", "node-2", "busybox",
            command=["sh", "-c", "cat /etc/resolv.conf; echo host=$(hostname); env; sleep 3600"],
            extra={"env": [{"name": "MY_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
                           {"name": "MY_NS", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}},
                           {"name": "GREETING", "value": "in-$(MY_NS)"}]})
    pod = wait_for(lambda: pod_ready(cluster, "shell1"), 30, "shell1 Ready")
    logs = wait_for(lambda: (o := cluster.kubectl("logs", "shell1").stdout) and "KUBERNETES" in o and o, 10, "logs")
    assert "nameserver 10.0.0.10" in logs
    assert "search default.svc.cluster.local svc.cluster.local cluster.local" in logs
    assert "options ndots:5" in logs
    assert "host=shell1" in logs
    assert f"MY_IP={pod['status']['podIP']}" in logs and "GREETING=in-default" in logs
    assert "KUBERNETES_SERVICE_HOST=10.0.0.1" in logs and "KUBERNETES_PORT_443_TCP_PROTO=tcp" in logs
    host_resolv = open("/etc/resolv.conf").read()
    assert "10.0.0.10" not in host_resolv  # seen only inside the pod


def test_unknown_image_is_err_image_pull_with_event(cluster: Cluster) -> None:
    """An image outside the catalog, without a command: ErrImagePull/ImagePullBackOff and an Event."""
    run_pod(cluster, "noimg", "node-1", "example.com/nope:1.0")

    def waiting() -> str | None:
        pod = get_pod(cluster, "noimg")
        st = ((pod or {}).get("status") or {}).get("containerStatuses") or [{}]
        return (st[0].get("state") or {}).get("waiting", {}).get("reason")

    assert wait_for(waiting, 20, "waiting reason") in ("ErrImagePull", "ImagePullBackOff")
    ev = cluster.kubectl("get", "events", "--field-selector", "involvedObject.name=noimg", "-o", "json").stdout
    msgs = [e["message"] for e in json.loads(ev)["items"]]
    assert any("Failed to pull image" in m and "nginx" in m and "agnhost" in m for m in msgs)
    assert wait_for(lambda: waiting() == "ImagePullBackOff", 20, "ImagePullBackOff")


def test_failing_command_goes_to_crash_loop_back_off(cluster: Cluster) -> None:
    """A command that exits non-zero: restarts with back-off, CrashLoopBackOff, previous logs kept."""
    run_pod(cluster, "crash1", "node-2", "busybox", command=["sh", "-c", "echo boom; exit 3"])

    def crashloop() -> dict | None:
        pod = get_pod(cluster, "crash1")
        cs = (((pod or {}).get("status") or {}).get("containerStatuses") or [{}])[0]
        return cs if cs.get("state", {}).get("waiting", {}).get("reason") == "CrashLoopBackOff" else None

    cs = wait_for(crashloop, 30, "CrashLoopBackOff")
    assert cs["restartCount"] >= 1
    assert cs["lastState"]["terminated"]["exitCode"] == 3
    assert cs["lastState"]["terminated"]["reason"] == "Error"
    assert "boom" in cluster.kubectl("logs", "crash1", "--previous").stdout
    pod = get_pod(cluster, "crash1")
    assert pod is not None and pod["status"]["phase"] == "Running"


def test_command_not_found_and_never_restart(cluster: Cluster) -> None:
    """restartPolicy Never: a missing program ends the pod Failed with StartError (exit 128)."""
    run_pod(cluster, "nocmd", "node-1", "busybox", command=["/no/such/program"], spec={"restartPolicy": "Never"})
    pod = wait_for(lambda: (p := get_pod(cluster, "nocmd")) and p["status"].get("phase") == "Failed" and p,
                   20, "Failed")
    term = pod["status"]["containerStatuses"][0]["state"]["terminated"]
    assert term["reason"] == "StartError" and term["exitCode"] == 128


def test_readiness_probe_on_closed_port_keeps_pod_unready(cluster: Cluster) -> None:
    """A readiness probe against a closed port: Running but not Ready, with Unhealthy events."""
    run_pod(cluster, "probe1", "node-1", "nginx",
            extra={"readinessProbe": {"httpGet": {"path": "/", "port": 81}, "periodSeconds": 1}})
    wait_for(lambda: (p := get_pod(cluster, "probe1")) and p["status"].get("phase") == "Running", 20, "Running")

    def unhealthy() -> bool:
        ev = cluster.kubectl("get", "events", "--field-selector", "involvedObject.name=probe1", "-o", "json").stdout
        return any(e["reason"] == "Unhealthy" and "Readiness probe failed" in e["message"]
                   for e in json.loads(ev)["items"])

    wait_for(unhealthy, 20, "Unhealthy event")
    assert pod_ready(cluster, "probe1") is None


def test_delete_removes_namespace_veth_and_processes(cluster: Cluster) -> None:
    """Graceful delete: the pod goes from the API, and its namespace, veth and processes from the node."""
    run_pod(cluster, "gone1", "node-2", "busybox", command=["sleep", "3600"])
    pod = wait_for(lambda: pod_ready(cluster, "gone1"), 30, "gone1 Ready")
    from kubesvc.agent.podnet import pod_netns, pod_veth

    uid = pod["metadata"]["uid"]
    ns, veth = pod_netns(uid), pod_veth(uid)
    assert ns in netns_names() and veth in links("ks-node-2")
    pids = pids_in(ns)
    assert pids
    cluster.kubectl("delete", "pod", "gone1", "--wait=true", timeout=60)
    assert get_pod(cluster, "gone1") is None
    assert ns not in netns_names()
    wait_for(lambda: veth not in links("ks-node-2"), 5, "veth gone")
    assert not any(subprocess.run(["kill", "-0", str(p)], capture_output=True).returncode == 0 for p in pids)
