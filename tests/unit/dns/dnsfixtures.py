"""A static fake index, built from API-shaped objects, for the DNS table tests (shared helpers)."""

from __future__ import annotations

from typing import Any

from kubesvc.dns.index import MemoryIndex
from kubesvc.dns.records import service_record, slice_record


def service(name: str, ns: str = "default", *, ip: str | list[str] = "", type: str = "ClusterIP",
            ports: list[tuple[str, int, str]] = (), external: str = "", pnr: bool = False) -> dict[str, Any]:
    ips = [ip] if isinstance(ip, str) else ip
    spec: dict[str, Any] = {"type": type, "ports": [{"name": n, "port": p, "protocol": proto} for n, p, proto in ports]}
    if type == "ExternalName":
        spec["externalName"] = external
    else:
        spec["clusterIP"] = ips[0] if ips[0] else "None"
        spec["clusterIPs"] = ips if ips[0] else ["None"]
    if pnr:
        spec["publishNotReadyAddresses"] = True
    return {"metadata": {"name": name, "namespace": ns}, "spec": spec}


def endpoint_slice(name: str, svc: str, endpoints: list[tuple[str, str, bool | None]], ns: str = "default",
                   ports: list[tuple[str, int, str]] = ()) -> dict[str, Any]:
    eps = []
    for ip, host, ready in endpoints:
        ep: dict[str, Any] = {"addresses": [ip], "conditions": {} if ready is None else {"ready": ready}}
        if host:
            ep["hostname"] = host
        eps.append(ep)
    return {"metadata": {"name": name, "namespace": ns, "labels": {"kubernetes.io/service-name": svc}},
            "addressType": "IPv4", "endpoints": eps,
            "ports": [{"name": n, "port": p, "protocol": proto} for n, p, proto in ports]}


def static_index(*, synced: bool = True) -> MemoryIndex:
    idx = MemoryIndex(synced=True)
    for obj in (
        service("svc1", ip="10.0.0.100", ports=[("http", 80, "TCP"), ("", 8080, "TCP"), ("dns", 53, "UDP")]),
        service("hdls", ports=[("http", 80, "TCP")]),
        service("hdls-empty", ports=[("http", 80, "TCP")]),
        service("hdls-pub", ports=[("http", 80, "TCP")], pnr=True),
        service("ext", type="ExternalName", external="example.com"),
        service("ext-ip", type="ExternalName", external="192.0.2.7"),
        service("ext-in", type="ExternalName", external="svc1.default.svc.cluster.local"),
        service("ext-gone", type="ExternalName", external="nothere.default.svc.cluster.local"),
        service("dual", ip=["10.0.0.101", "fd00::101"]),
        service("v6", ip="fd00::102"),
        service("svc2", "other", ip="10.0.0.200", ports=[("web", 443, "TCP")]),
    ):
        idx.put_service(service_record(obj))
    for obj in (
        endpoint_slice("hdls-abc", "hdls", [("10.244.1.2", "web-0", True), ("10.244.1.3", "", None),
                                            ("10.244.1.4", "", False)], ports=[("http", 8080, "TCP")]),
        endpoint_slice("hdls-empty-abc", "hdls-empty", [("10.244.1.5", "", False)], ports=[("http", 8080, "TCP")]),
        endpoint_slice("hdls-pub-abc", "hdls-pub", [("10.244.1.9", "", False)], ports=[("http", 8080, "TCP")]),
        endpoint_slice("svc1-abc", "svc1", [("10.244.2.2", "", True)], ports=[("http", 8080, "TCP")]),
    ):
        idx.put_slice(slice_record(obj))
    idx.serial = 1
    if not synced:
        idx._synced = False
    return idx
