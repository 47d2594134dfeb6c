"""Object lifecycle through the real API: garbage collection, namespaces, finalizers, service accounts."""

from __future__ import annotations

import json
import time
from collections.abc import Callable

import pytest

from kubesvc.testing.cluster import Cluster

pytestmark = pytest.mark.e2e


def eventually(check: Callable[[], bool], timeout: float = 20.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def _exists(c: Cluster, *args: str) -> bool:
    return c.kubectl("get", *args, check=False).returncode == 0


def _owned_cm(c: Cluster, name: str, owner: dict, block: bool = False) -> None:
    ref = {"apiVersion": "v1", "kind": "ConfigMap", "name": owner["metadata"]["name"],
           "uid": owner["metadata"]["uid"], "blockOwnerDeletion": block}
    body = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "ownerReferences": [ref]}}
    c.kubectl("create", "-f", "-", input=json.dumps(body))


def _cm(c: Cluster, name: str) -> dict:
    c.kubectl("create", "configmap", name)
    return json.loads(c.kubectl("get", "cm", name, "-o", "json").stdout)


def test_background_cascade(cluster: Cluster) -> None:
    """Deleting an owner deletes its dependents (background propagation, kubectl's default)."""
    owner = _cm(cluster, "gc-owner")
    _owned_cm(cluster, "gc-child", owner)
    cluster.kubectl("delete", "cm", "gc-owner")
    eventually(lambda: not _exists(cluster, "cm", "gc-child"), what="dependent to be collected")


def test_orphan_keeps_dependents(cluster: Cluster) -> None:
    owner = _cm(cluster, "orph-owner")
    _owned_cm(cluster, "orph-child", owner)
    cluster.kubectl("delete", "cm", "orph-owner", "--cascade=orphan")
    eventually(lambda: not _exists(cluster, "cm", "orph-owner"), what="owner to go")
    child = json.loads(cluster.kubectl("get", "cm", "orph-child", "-o", "json").stdout)
    assert not child["metadata"].get("ownerReferences")
    cluster.kubectl("delete", "cm", "orph-child")


def test_foreground_waits_for_dependents(cluster: Cluster) -> None:
    owner = _cm(cluster, "fg-owner")
    _owned_cm(cluster, "fg-child", owner, block=True)
    cluster.kubectl("delete", "cm", "fg-owner", "--cascade=foreground")
    eventually(lambda: not _exists(cluster, "cm", "fg-owner") and not _exists(cluster, "cm", "fg-child"),
               what="foreground deletion to finish")


def test_finalizer_holds_deletion(cluster: Cluster) -> None:
    """A finalizer keeps the object with a deletionTimestamp until it is removed."""
    body = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "fin", "finalizers": ["example.com/hold"]}}
    cluster.kubectl("create", "-f", "-", input=json.dumps(body))
    cluster.kubectl("delete", "cm", "fin", "--wait=false")
    cm = json.loads(cluster.kubectl("get", "cm", "fin", "-o", "json").stdout)
    assert cm["metadata"]["deletionTimestamp"]
    cluster.kubectl("patch", "cm", "fin", "--type=merge", "-p", '{"metadata":{"finalizers":null}}')
    eventually(lambda: not _exists(cluster, "cm", "fin"), what="finalized object to go")


def test_namespace_deletion_removes_contents(cluster: Cluster) -> None:
    cluster.kubectl("create", "namespace", "doomed")
    cluster.kubectl("-n", "doomed", "create", "configmap", "inside")
    cluster.kubectl("-n", "doomed", "create", "service", "clusterip", "insvc", "--tcp=80:80")
    cluster.kubectl("delete", "namespace", "doomed", "--wait=false")
    p = cluster.kubectl("-n", "doomed", "create", "configmap", "late", check=False)
    if p.returncode != 0:
        assert "because it is being terminated" in p.stderr or "not found" in p.stderr
    eventually(lambda: not _exists(cluster, "namespace", "doomed"), timeout=30, what="namespace to be deleted")


def test_default_service_account_in_new_namespace(cluster: Cluster) -> None:
    cluster.kubectl("create", "namespace", "with-sa")
    eventually(lambda: _exists(cluster, "-n", "with-sa", "serviceaccount", "default"), what="default SA")
