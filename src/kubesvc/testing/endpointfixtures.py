"""Builders for endpoint tests: a Service, pods with status, and nodes with zones, as plain dicts.

Shared by the EndpointSlice and Endpoints controller tests so both speak about
the same pods: ``pod(i)`` has IP ``10.244.<i // 250>.<i % 250 + 1>``, label
``app=web``, node ``node-1`` (zone-a) and is Ready unless told otherwise.
"""

from __future__ import annotations

from typing import Any

Obj = dict[str, Any]

SVC_UID = "svc-uid-1"


def service(name: str = "web", *, selector: dict[str, str] | None = None, ports: list[Obj] | None = None,
            cluster_ip: str = "10.0.0.20", families: list[str] | None = None, labels: dict[str, str] | None = None,
            publish: bool = False, traffic: str | None = None, uid: str = SVC_UID) -> Obj:
    spec: Obj = {"selector": {"app": "web"} if selector is None else selector,
                 "ports": [{"name": "http", "port": 80, "targetPort": 8080, "protocol": "TCP"}] if ports is None else ports,
                 "clusterIP": cluster_ip, "ipFamilies": families or ["IPv4"], "type": "ClusterIP"}
    if publish:
        spec["publishNotReadyAddresses"] = True
    if traffic:
        spec["trafficDistribution"] = traffic
    return {"apiVersion": "v1", "kind": "Service",
            "metadata": {"name": name, "namespace": "default", "uid": uid, "labels": labels or {},
                         "creationTimestamp": "2024-01-01T00:00:00Z"},
            "spec": spec}


def pod(i: int, *, ready: bool = True, ip: str | None = None, node: str = "node-1", phase: str = "Running",
        terminating: bool = False, ports: list[Obj] | None = None, hostname: str = "", subdomain: str = "",
        labels: dict[str, str] | None = None, ready_at: str = "2024-01-01T00:00:10Z") -> Obj:
    p: Obj = {"apiVersion": "v1", "kind": "Pod",
              "metadata": {"name": f"pod-{i}", "namespace": "default", "uid": f"uid-{i}",
                           "labels": {"app": "web"} if labels is None else labels, "resourceVersion": "1"},
              "spec": {"nodeName": node, "containers": [{"name": "c", "image": "x", "ports": ports or []}]},
              "status": {"phase": phase,
                         "conditions": [{"type": "Ready", "status": "True" if ready else "False",
                                         "lastTransitionTime": ready_at}]}}
    addr = ip if ip is not None else f"10.244.{i // 250}.{i % 250 + 1}"
    if addr:
        p["status"]["podIP"] = addr
        p["status"]["podIPs"] = [{"ip": addr}]
    if terminating:
        p["metadata"]["deletionTimestamp"] = "2024-01-01T00:01:00Z"
    if hostname:
        p["spec"]["hostname"] = hostname
    if subdomain:
        p["spec"]["subdomain"] = subdomain
    return p


NODES = {"node-1": {"metadata": {"name": "node-1", "labels": {"topology.kubernetes.io/zone": "zone-a"}}},
         "node-2": {"metadata": {"name": "node-2", "labels": {"topology.kubernetes.io/zone": "zone-b"}}}}
