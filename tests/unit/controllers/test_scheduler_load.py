"""The scheduler's per-node counts follow pod events and agree with a scan of the cache."""

from __future__ import annotations

from kubesvc.client.config import ClientConfig
from kubesvc.client.rest import ApiClient
from kubesvc.controllers.scheduler import Scheduler
from kubesvc.controllers.scheduling import Load


def pod(name: str, node: str = "", owner: str = "", phase: str = "Running", deleting: bool = False) -> dict:
    meta: dict = {"name": name, "namespace": "ns", "uid": f"u-{name}"}
    if owner:
        meta["ownerReferences"] = [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": owner, "uid": owner,
                                    "controller": True}]
    if deleting:
        meta["deletionTimestamp"] = "2024-01-01T00:00:00Z"
    return {"metadata": meta, "spec": {"nodeName": node} if node else {}, "status": {"phase": phase}}


def node(name: str) -> dict:
    return {"metadata": {"name": name}, "status": {"conditions": [{"type": "Ready", "status": "True"}]}}


def test_counts_follow_adds_updates_and_deletes() -> None:
    s = Scheduler(ApiClient(ClientConfig(server="http://127.0.0.1:1")))
    for n in ("a", "b"):
        s.nodes.store.put(node(n))
    events = [pod("p1", "a", "rs1"), pod("p2", "a", "rs2"), pod("p3", "b", "rs1"), pod("p4")]
    for p in events:
        s.pods.store.put(p)
        s._pod_changed(p)
    assert s.node_load("rs1") == {"a": Load(2, 1), "b": Load(1, 1)}
    moved = pod("p3", "b", "rs1", phase="Succeeded")  # finished: no longer counted
    s._pod_changed(moved)
    s._pod_changed(pod("p4", "b", "rs1"))  # bound
    s._pod_deleted(pod("p2", "a", "rs2"))
    s._pod_changed(pod("p1", "a", "rs1", deleting=True))
    assert s.node_load("rs1") == {"b": Load(1, 1)}
    s.assumed["ns/p9"] = ("a", "rs1")
    assert s.node_load("rs1") == {"a": Load(1, 1), "b": Load(1, 1)}
    assert s.node_load("") == {"a": Load(1, 0), "b": Load(1, 0)}
    s.nodes.store.remove("b")  # counts of a node that is gone are not offered
    assert s.node_load("rs1") == {"a": Load(1, 1)}
