"""Deployments, ReplicaSets, the scheduler and node lifecycle against a real ``kubesvc up``.

Nodes are fake (:class:`kubesvc.testing.fakenodes.FakeNodes`): Ready Nodes
with renewed Leases whose pods are marked Ready at once, standing in for the
node agent.  Everything else is real: kubectl 1.32, the apiserver, and the
controllers in ``kubesvc up`` (with a 3 s node grace period and a 2 s
eviction delay so a dead node's pods move within seconds).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from kubesvc.testing.cluster import Cluster, start_cluster
from kubesvc.testing.fakenodes import FakeNodes

NODES = ["node-a", "node-b"]


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    base = tmp_path_factory.mktemp("workloads")
    saved = {k: os.environ.get(k) for k in ("KUBESVC_NODE_MONITOR_GRACE_PERIOD", "KUBESVC_POD_EVICTION_DELAY")}
    os.environ.update(KUBESVC_NODE_MONITOR_GRACE_PERIOD="3", KUBESVC_POD_EVICTION_DELAY="2")
    try:
        c = start_cluster(base / "data", base / "kcache")
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    yield c
    assert c.stop() == 0


@pytest.fixture(scope="module")
def nodes(cluster: Cluster) -> Iterator[FakeNodes]:
    with FakeNodes(cluster.kubeconfig, NODES, lease_period=0.5) as n:
        yield n


def wait_for(what: str, cond: Callable[[], Any], timeout: float = 30.0) -> Any:
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = cond()
        if last:
            return last
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what} (last: {last!r})")


def get(cluster: Cluster, *args: str) -> Any:
    return json.loads(cluster.kubectl("get", *args, "-o", "json").stdout)


def pods(cluster: Cluster, selector: str) -> list[dict]:
    return [p for p in get(cluster, "pods", "-l", selector)["items"] if not p["metadata"].get("deletionTimestamp")]


def rollout(cluster: Cluster, name: str) -> str:
    return cluster.kubectl("rollout", "status", f"deployment/{name}", "--timeout=60s", timeout=70).stdout


def test_create_deployment_spreads_over_nodes(cluster: Cluster, nodes: FakeNodes) -> None:
    """3 replicas from `kubectl create deployment` land 2+1 on two nodes and the rollout completes."""
    cluster.kubectl("create", "deployment", "web", "--image=nginx", "--replicas=3", "--port=80")
    assert 'deployment "web" successfully rolled out' in rollout(cluster, "web")
    ps = pods(cluster, "app=web")
    assert len(ps) == 3
    assert sorted(Counter(p["spec"]["nodeName"] for p in ps).values()) == [1, 2]
    d = get(cluster, "deployment", "web")
    st = d["status"]
    assert (st["replicas"], st["updatedReplicas"], st["readyReplicas"], st["availableReplicas"]) == (3, 3, 3, 3)
    assert st["observedGeneration"] == d["metadata"]["generation"]
    conds = {c["type"]: c for c in st["conditions"]}
    assert conds["Available"]["reason"] == "MinimumReplicasAvailable"
    assert conds["Progressing"]["reason"] == "NewReplicaSetAvailable"
    rs = get(cluster, "rs", "-l", "app=web")["items"][0]
    h = rs["metadata"]["labels"]["pod-template-hash"]
    assert conds["Progressing"]["message"] == f'ReplicaSet "web-{h}" has successfully progressed.'
    assert rs["metadata"]["name"] == f"web-{h}"
    assert rs["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "1"
    ref = rs["metadata"]["ownerReferences"][0]
    assert (ref["kind"], ref["controller"], ref["blockOwnerDeletion"]) == ("Deployment", True, True)
    assert all(p["metadata"]["labels"]["pod-template-hash"] == h for p in ps)
    assert all(p["metadata"]["name"].startswith(f"web-{h}-") for p in ps)


def test_scale_up_and_down(cluster: Cluster, nodes: FakeNodes) -> None:
    """`kubectl scale` grows and shrinks the ReplicaSet; terminating pods don't count."""
    cluster.kubectl("scale", "deployment/web", "--replicas=5")
    rollout(cluster, "web")
    wait_for("5 pods", lambda: len(pods(cluster, "app=web")) == 5)
    cluster.kubectl("scale", "deployment/web", "--replicas=2")
    wait_for("2 pods", lambda: len(get(cluster, "pods", "-l", "app=web")["items"]) == 2)
    d = wait_for("status 2", lambda: (x := get(cluster, "deployment", "web"))["status"].get("replicas") == 2 and x)
    assert d["status"]["availableReplicas"] == 2


def test_set_image_rolls_to_new_replicaset_and_undo(cluster: Cluster, nodes: FakeNodes) -> None:
    """set image makes revision 2; history lists both; undo brings the first template back as revision 3."""
    cluster.kubectl("scale", "deployment/web", "--replicas=3")
    rollout(cluster, "web")
    cluster.kubectl("set", "image", "deployment/web", "nginx=nginx:1.27")
    assert "successfully rolled out" in rollout(cluster, "web")
    rss = {r["metadata"]["annotations"]["deployment.kubernetes.io/revision"]: r
           for r in get(cluster, "rs", "-l", "app=web")["items"]}
    assert set(rss) == {"1", "2"}
    assert rss["2"]["spec"]["replicas"] == 3 and rss["1"]["spec"]["replicas"] == 0
    assert rss["2"]["metadata"]["annotations"]["deployment.kubernetes.io/desired-replicas"] == "3"
    assert rss["2"]["metadata"]["annotations"]["deployment.kubernetes.io/max-replicas"] == "4"
    assert all(p["spec"]["containers"][0]["image"] == "nginx:1.27" for p in pods(cluster, "app=web"))
    hist = cluster.kubectl("rollout", "history", "deployment/web").stdout
    assert "REVISION" in hist and "\n1 " in hist and "\n2 " in hist
    cluster.kubectl("rollout", "undo", "deployment/web")
    rollout(cluster, "web")
    d = get(cluster, "deployment", "web")
    assert d["spec"]["template"]["spec"]["containers"][0]["image"] == "nginx"
    assert d["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "3"
    first = get(cluster, "rs", rss["1"]["metadata"]["name"])
    assert first["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "3"
    assert first["spec"]["replicas"] == 3
    wait_for("old pods gone", lambda: all(p["spec"]["containers"][0]["image"] == "nginx"
                                          for p in get(cluster, "pods", "-l", "app=web")["items"]))


def test_rollout_restart_makes_a_new_replicaset(cluster: Cluster, nodes: FakeNodes) -> None:
    """`kubectl rollout restart` changes the template annotation, so a new ReplicaSet rolls out."""
    before = {r["metadata"]["name"] for r in get(cluster, "rs", "-l", "app=web")["items"]}
    cluster.kubectl("rollout", "restart", "deployment/web")
    rollout(cluster, "web")
    after = {r["metadata"]["name"]: r for r in get(cluster, "rs", "-l", "app=web")["items"]}
    new = set(after) - before
    assert len(new) == 1
    assert after[new.pop()]["spec"]["replicas"] == 3


RECREATE = """
apiVersion: apps/v1
kind: Deployment
metadata: {name: rec}
spec:
  replicas: 2
  strategy: {type: Recreate}
  selector: {matchLabels: {app: rec}}
  template:
    metadata: {labels: {app: rec}}
    spec: {containers: [{name: c, image: "nginx:1.26"}]}
"""


def test_recreate_strategy(cluster: Cluster, nodes: FakeNodes) -> None:
    """Recreate scales the old ReplicaSet to 0 and waits for its pods before the new one starts."""
    cluster.kubectl("apply", "-f", "-", input=RECREATE)
    rollout(cluster, "rec")
    cluster.kubectl("set", "image", "deployment/rec", "c=nginx:1.27")
    mixed = False
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        images = {p["spec"]["containers"][0]["image"] for p in get(cluster, "pods", "-l", "app=rec")["items"]}
        mixed = mixed or len(images) > 1
        d = get(cluster, "deployment", "rec")
        if d["status"].get("updatedReplicas") == 2 and d["status"].get("availableReplicas") == 2 \
                and images == {"nginx:1.27"}:
            break
        time.sleep(0.1)
    assert images == {"nginx:1.27"}
    assert not mixed, "Recreate ran old and new pods at the same time"
    assert "successfully rolled out" in rollout(cluster, "rec")


def test_deleting_a_deployment_deletes_its_replicasets_and_pods(cluster: Cluster, nodes: FakeNodes) -> None:
    """The garbage collector follows the ownerReferences the controllers wrote."""
    cluster.kubectl("delete", "deployment", "rec")
    wait_for("rs gone", lambda: not get(cluster, "rs", "-l", "app=rec")["items"])
    wait_for("pods gone", lambda: not get(cluster, "pods", "-l", "app=rec")["items"])


def test_orphan_pod_is_adopted_and_released(cluster: Cluster, nodes: FakeNodes) -> None:
    """A matching bare pod is adopted (and the surplus removed); relabelling a pod releases it."""
    ps = pods(cluster, "app=web")
    victim = ps[0]["metadata"]["name"]
    cluster.kubectl("label", "pod", victim, "app=other", "--overwrite")
    wait_for("released", lambda: not get(cluster, "pod", victim)["metadata"].get("ownerReferences"))
    wait_for("replaced", lambda: len(pods(cluster, "app=web")) == 3)
    cluster.kubectl("delete", "pod", victim, "--wait=false")


def test_node_that_stops_renewing_its_lease_loses_its_pods(cluster: Cluster, nodes: FakeNodes) -> None:
    """NotReady after the grace period, tainted unreachable, pods evicted and recreated on the other node."""
    on_b = [p for p in pods(cluster, "app=web") if p["spec"]["nodeName"] == "node-b"]
    assert on_b
    nodes.silence("node-b")
    try:
        wait_for("node-b NotReady", lambda: "NotReady" in cluster.kubectl("get", "node", "node-b").stdout)
        node = get(cluster, "node", "node-b")
        ready = next(c for c in node["status"]["conditions"] if c["type"] == "Ready")
        assert (ready["status"], ready["reason"]) == ("Unknown", "NodeStatusUnknown")
        assert ready["message"] == "Kubelet stopped posting node status."
        taints = {(t["key"], t["effect"]) for t in node["spec"]["taints"]}
        assert taints == {("node.kubernetes.io/unreachable", "NoSchedule"),
                          ("node.kubernetes.io/unreachable", "NoExecute")}

        def moved() -> bool:
            ps = pods(cluster, "app=web")
            return len(ps) == 3 and all(p["spec"].get("nodeName") == "node-a" for p in ps) and all(
                any(c["type"] == "Ready" and c["status"] == "True" for c in p["status"].get("conditions", []))
                for p in ps)
        wait_for("pods moved to node-a", moved, timeout=40)
        assert "successfully rolled out" in rollout(cluster, "web")
    finally:
        nodes.revive("node-b")
    wait_for("node-b Ready", lambda: not get(cluster, "node", "node-b")["spec"].get("taints"))


def test_node_selector(cluster: Cluster, nodes: FakeNodes) -> None:
    """Pods with a nodeSelector go only to matching nodes."""
    cluster.kubectl("label", "node", "node-b", "disk=ssd")
    spec = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "ssd"},
            "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "ssd"}},
                     "template": {"metadata": {"labels": {"app": "ssd"}},
                                  "spec": {"nodeSelector": {"disk": "ssd"},
                                           "containers": [{"name": "c", "image": "nginx"}]}}}}
    cluster.kubectl("apply", "-f", "-", input=json.dumps(spec))
    rollout(cluster, "ssd")
    assert {p["spec"]["nodeName"] for p in pods(cluster, "app=ssd")} == {"node-b"}
    cluster.kubectl("delete", "deployment", "ssd")


def test_unschedulable_pod_gets_failed_scheduling_event(cluster: Cluster, nodes: FakeNodes) -> None:
    """No node fits: Pending, PodScheduled=False/Unschedulable, and upstream's FailedScheduling text."""
    cluster.kubectl("cordon", "node-a")
    try:
        pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "nowhere"},
               "spec": {"nodeSelector": {"disk": "hdd"}, "containers": [{"name": "c", "image": "nginx"}]}}
        cluster.kubectl("apply", "-f", "-", input=json.dumps(pod))
        msg = ("0/2 nodes are available: 1 node(s) didn't match Pod's node affinity/selector, "
               "1 node(s) were unschedulable. preemption: 0/2 nodes are available: "
               "2 Preemption is not helpful for scheduling.")
        wait_for("event", lambda: msg in cluster.kubectl("describe", "pod", "nowhere").stdout)
        out = cluster.kubectl("describe", "pod", "nowhere").stdout
        assert "FailedScheduling" in out and "Pending" in out
        p = get(cluster, "pod", "nowhere")
        cond = next(c for c in p["status"]["conditions"] if c["type"] == "PodScheduled")
        assert (cond["status"], cond["reason"], cond["message"]) == ("False", "Unschedulable", msg)
        cluster.kubectl("label", "node", "node-b", "disk=hdd", "--overwrite")
        wait_for("scheduled once a node fits", lambda: get(cluster, "pod", "nowhere")["spec"].get("nodeName"))
        assert get(cluster, "pod", "nowhere")["spec"]["nodeName"] == "node-b"
    finally:
        cluster.kubectl("uncordon", "node-a")
        cluster.kubectl("delete", "pod", "nowhere", "--wait=false")


def test_pods_of_a_deleted_node_are_deleted(cluster: Cluster, nodes: FakeNodes) -> None:
    """Pod GC: pods bound to a Node that no longer exists go, and their controller replaces them."""
    cluster.kubectl("scale", "deployment/web", "--replicas=4")
    rollout(cluster, "web")
    on_b = {p["metadata"]["name"] for p in pods(cluster, "app=web") if p["spec"]["nodeName"] == "node-b"}
    assert on_b
    nodes.delete_node("node-b")
    wait_for("pods of node-b gone", lambda: not on_b & {p["metadata"]["name"]
                                                        for p in get(cluster, "pods", "-l", "app=web")["items"]})
    rollout(cluster, "web")
    assert {p["spec"]["nodeName"] for p in pods(cluster, "app=web")} == {"node-a"}


def test_kubesvc_run_creates_the_seeds_deployment(cluster: Cluster, nodes: FakeNodes) -> None:
    """`kubesvc run` with the seed's flags makes the Deployment kubectl of that day made."""
    cmd = [sys.executable, "-m", "kubesvc", "run", "nginx-for-service", "--image=nginx", "--replicas=2",
           "--port=80", "--labels=app=nginx-for-svc", "--kubeconfig", str(cluster.kubeconfig)]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=30)
    assert p.returncode == 0, p.stderr
    assert p.stdout.strip() == "deployment.apps/nginx-for-service created"
    d = get(cluster, "deployment", "nginx-for-service")
    assert d["metadata"]["labels"] == {"app": "nginx-for-svc"}
    assert d["spec"]["selector"] == {"matchLabels": {"app": "nginx-for-svc"}}
    c = d["spec"]["template"]["spec"]["containers"][0]
    assert (c["name"], c["image"], c["ports"][0]["containerPort"]) == ("nginx-for-service", "nginx", 80)
    rollout(cluster, "nginx-for-service")
    assert len(pods(cluster, "app=nginx-for-svc")) == 2
    again = subprocess.run(cmd, capture_output=True, text=True, timeout=30)
    assert again.returncode == 1
    assert again.stderr.strip() == ('kubesvc: Error from server (AlreadyExists): deployments.apps '
                                    '"nginx-for-service" already exists')
