"""API objects to slim records, and the index's reverse maps kept in step on every write."""

from __future__ import annotations

from dnsfixtures import endpoint_slice, service

from kubesvc.dns.index import MemoryIndex
from kubesvc.dns.records import Pod, Port, pod_record, service_record, slice_record


def test_service_record_fields() -> None:
    """Names are lower-cased, ports keep their protocol, ExternalName loses its final dot."""
    rec = service_record(service("Web", "NS1", ip="10.0.0.5", ports=[("HTTP", 80, "TCP"), ("", 81, "UDP")]))
    assert (rec.namespace, rec.name, rec.cluster_ips, rec.headless) == ("ns1", "web", ("10.0.0.5",), False)
    assert rec.ports == (Port("http", "tcp", 80), Port("", "udp", 81))
    ext = service_record(service("e", type="ExternalName", external="Example.COM."))
    assert (ext.external_name, ext.cluster_ips, ext.headless) == ("example.com", (), False)
    assert service_record(service("h")).headless


def test_tolerate_unready_annotation_counts_as_publish_not_ready() -> None:
    """The old annotation still publishes not-ready addresses, as the specification says."""
    obj = service("h")
    obj["metadata"]["annotations"] = {"service.alpha.kubernetes.io/tolerate-unready-endpoints": "true"}
    assert service_record(obj).publish_not_ready


def test_slice_record_ready_defaults_and_bad_addresses() -> None:
    """An unset ready condition counts as ready; endpoints without a valid address are dropped."""
    obj = endpoint_slice("s", "svc", [("10.1.1.1", "a", None), ("10.1.1.2", "", False), ("bogus", "", True)])
    rec = slice_record(obj)
    assert [(e.addresses, e.hostname, e.ready) for e in rec.endpoints] == [
        (("10.1.1.1",), "a", True), (("10.1.1.2",), "", False)]
    assert rec.service == "svc"


def test_index_updates_and_deletes_keep_reverse_maps() -> None:
    """Replacing or deleting an object removes its old addresses from every index."""
    idx = MemoryIndex()
    seen = []
    idx.on_change(lambda: seen.append(idx.serial))
    idx.put_service(service_record(service("a", ip="10.0.0.5")))
    idx.put_service(service_record(service("a", ip="10.0.0.6")))
    assert idx.reverse("10.0.0.5") == [] and idx.reverse("10.0.0.6") == [("default", "a", "")]
    idx.put_slice(slice_record(endpoint_slice("a-1", "a", [("10.1.1.1", "", True)])))
    assert idx.reverse("10.1.1.1") == [("default", "a", "10-1-1-1")]
    idx.put_slice(slice_record(endpoint_slice("a-1", "a", [("10.1.1.2", "x", True)])))
    assert idx.reverse("10.1.1.1") == [] and [e.hostname for e in idx.endpoints("default", "a")] == ["x"]
    idx.delete_slice("default", "a-1")
    idx.delete_service("default", "a")
    assert idx.endpoints("default", "a") == [] and not idx.has_namespace("default")
    assert idx.reverse("10.0.0.6") == [] and idx.reverse("10.1.1.2") == []
    assert len(seen) == 6 and seen == sorted(seen)


def _pod(name: str, ns: str = "default", **status: object) -> dict:
    return {"metadata": {"name": name, "namespace": ns}, "status": status}


def test_pod_record_addresses() -> None:
    """podIPs first, podIP when the list is missing; addresses in canonical form; bad ones dropped."""
    assert pod_record(_pod("p", "NS", podIP="10.244.1.5", podIPs=[{"ip": "10.244.1.5"}, {"ip": "fd00:0::5"}])) == \
        Pod("ns", "p", ("10.244.1.5", "fd00::5"))
    assert pod_record(_pod("p", podIP="10.244.1.6")).ips == ("10.244.1.6",)
    assert pod_record(_pod("p")).ips == ()
    assert pod_record(_pod("p", podIP="bogus", podIPs=[{"ip": 7}, "x"])).ips == ()
    assert pod_record({"metadata": {"name": "p", "namespace": "d"}}).ips == ()


def test_index_pods_by_namespace_and_address() -> None:
    """has_pod is true only for a pod's own address in its own namespace, and follows updates and deletes."""
    idx = MemoryIndex()
    seen = []
    idx.on_change(lambda: seen.append(idx.serial))
    idx.put_pod(Pod("default", "a", ("10.244.1.5",)))
    assert idx.has_pod("default", "10.244.1.5") and not idx.has_pod("other", "10.244.1.5")
    assert not idx.has_pod("default", "10.244.1.6")
    idx.put_pod(Pod("default", "a", ("10.244.1.6",)))
    assert not idx.has_pod("default", "10.244.1.5") and idx.has_pod("default", "10.244.1.6")
    idx.put_pod(Pod("other", "b", ("10.244.1.6",)))  # a reused address: both namespaces own it
    idx.delete_pod("default", "a")
    assert not idx.has_pod("default", "10.244.1.6") and idx.has_pod("other", "10.244.1.6")
    assert len(seen) == 4


def test_unchanged_records_are_not_changes() -> None:
    """Writing a record equal to the cached one (a status heartbeat, a label edit) tells no listener."""
    idx = MemoryIndex()
    seen = []
    idx.on_change(lambda: seen.append(idx.serial))
    for _ in range(3):
        idx.put_service(service_record(service("a", ip="10.0.0.5")))
        idx.put_slice(slice_record(endpoint_slice("a-1", "a", [("10.1.1.1", "", True)])))
        idx.put_pod(Pod("default", "p", ("10.244.1.5",)))
    idx.delete_pod("default", "nothere")
    idx.delete_service("default", "nothere")
    idx.delete_slice("default", "nothere")
    assert len(seen) == 3
    idx.put_slice(slice_record(endpoint_slice("a-1", "a", [("10.1.1.1", "", False)])))  # readiness is a change
    assert len(seen) == 4
