"""The official `kubernetes` Python client against `kubesvc up`, unchanged."""

from __future__ import annotations

import threading
import time

import pytest

from kubesvc.testing.cluster import Cluster

pytestmark = pytest.mark.e2e
kubernetes = pytest.importorskip("kubernetes")
from kubernetes import client, watch  # noqa: E402


def _svc(name: str, port: int = 80) -> client.V1Service:
    return client.V1Service(
        metadata=client.V1ObjectMeta(name=name, labels={"app": "py"}),
        spec=client.V1ServiceSpec(selector={"app": "py"}, ports=[client.V1ServicePort(port=port, target_port=8080)]),
    )


def test_create_list_patch_delete(cluster: Cluster) -> None:
    """POST without Content-Type or kind works; defaults come back; patch is strategic merge."""
    v1 = client.CoreV1Api(cluster.client())
    created = v1.create_namespaced_service("default", _svc("py-svc"))
    assert created.spec.type == "ClusterIP"
    assert created.spec.ports[0].protocol == "TCP"
    assert created.spec.session_affinity == "None"
    names = [s.metadata.name for s in v1.list_namespaced_service("default").items]
    assert "py-svc" in names and "kubernetes" in names
    patched = v1.patch_namespaced_service("py-svc", "default", {"metadata": {"labels": {"extra": "yes"}}})
    assert patched.metadata.labels == {"app": "py", "extra": "yes"}
    selected = v1.list_namespaced_service("default", label_selector="extra=yes,app in (py)").items
    assert [s.metadata.name for s in selected] == ["py-svc"]
    v1.delete_namespaced_service("py-svc", "default")
    with pytest.raises(client.ApiException) as e:
        v1.read_namespaced_service("py-svc", "default")
    assert e.value.status == 404


def test_conflict_on_stale_resource_version(cluster: Cluster) -> None:
    v1 = client.CoreV1Api(cluster.client())
    cm = v1.create_namespaced_config_map("default", client.V1ConfigMap(metadata=client.V1ObjectMeta(name="cas"), data={"a": "1"}))
    cm.data = {"a": "2"}
    v1.replace_namespaced_config_map("cas", "default", cm)  # cm carries the old resourceVersion
    cm.data = {"a": "3"}
    with pytest.raises(client.ApiException) as e:
        v1.replace_namespaced_config_map("cas", "default", cm)
    assert e.value.status == 409
    assert "the object has been modified" in e.value.body
    v1.delete_namespaced_config_map("cas", "default")


def test_watch_stream_replays_then_follows(cluster: Cluster) -> None:
    """watch.Watch().stream opens with no resourceVersion: existing objects come first as ADDED."""
    api = cluster.client()
    v1 = client.CoreV1Api(api)
    v1.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name="pywatch")))
    v1.create_namespaced_config_map("pywatch", client.V1ConfigMap(metadata=client.V1ObjectMeta(name="before")))
    seen: list[tuple[str, str]] = []

    def run() -> None:
        w = watch.Watch()
        for ev in w.stream(v1.list_namespaced_config_map, namespace="pywatch", timeout_seconds=6):
            seen.append((ev["type"], ev["object"].metadata.name))
            if ev["type"] == "DELETED":
                w.stop()

    t = threading.Thread(target=run)
    t.start()
    time.sleep(1.0)
    v1.create_namespaced_config_map("pywatch", client.V1ConfigMap(metadata=client.V1ObjectMeta(name="after")))
    v1.delete_namespaced_config_map("after", "pywatch")
    t.join(15)
    assert seen[0] == ("ADDED", "before")
    assert ("ADDED", "after") in seen and ("DELETED", "after") in seen


def test_apps_and_status_subresource(cluster: Cluster) -> None:
    """A spec write ignores status and bumps generation; a status write ignores spec."""
    apps = client.AppsV1Api(cluster.client())
    body = {
        "metadata": {"name": "gen"},
        "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "gen"}},
                 "template": {"metadata": {"labels": {"app": "gen"}},
                              "spec": {"containers": [{"name": "c", "image": "nginx"}]}}},
        "status": {"replicas": 99},
    }
    d = apps.create_namespaced_deployment("default", body)
    assert d.metadata.generation == 1 and not (d.status and d.status.replicas)
    d = apps.patch_namespaced_deployment("gen", "default", {"spec": {"replicas": 2}})
    assert d.metadata.generation == 2
    d = apps.patch_namespaced_deployment("gen", "default", {"metadata": {"labels": {"x": "y"}}})
    assert d.metadata.generation == 2
    s = apps.patch_namespaced_deployment_status("gen", "default", {"status": {"replicas": 5}, "spec": {"replicas": 7}})
    assert s.status.replicas == 5 and s.spec.replicas == 2
    apps.delete_namespaced_deployment("gen", "default")
