"""Builders for Services, EndpointSlices and a planned+applied fake table."""

from __future__ import annotations

from typing import Any

from kubesvc.proxy.applier import Applier
from kubesvc.proxy.model import NodeInfo, merge_slices, service_ports, slice_view
from kubesvc.proxy.planner import plan
from kubesvc.proxy.proxier import PortIds
from kubesvc.testing.fakenft import FakeNft
from kubesvc.testing.nfttrace import Outcome, Packet, trace

NODE_IP = "172.18.0.2"
NODE = NodeInfo("node-1", (NODE_IP,), "10.244.1.0/24", "10.244.0.0/16")
LOCAL_IPS = ("127.0.0.1", NODE_IP, "10.244.1.1")


def service(name: str = "web", ns: str = "default", *, ip: str = "10.0.0.5", ports: Any = None,
            type: str = "ClusterIP", labels: dict[str, str] | None = None, **spec: Any) -> dict[str, Any]:
    status = spec.pop("status", {})
    ports = ports or [{"name": "http", "port": 80, "protocol": "TCP"}]
    return {"metadata": {"namespace": ns, "name": name, "labels": labels or {}},
            "spec": {"type": type, "clusterIP": ip, "ports": ports, **spec}, "status": status}


def endpoint(ip: str, node: str = "node-1", ready: bool = True, serving: bool | None = None,
             terminating: bool = False, zones: list[str] | None = None) -> dict[str, Any]:
    cond: dict[str, Any] = {"ready": ready, "terminating": terminating}
    cond["serving"] = ready if serving is None else serving
    e: dict[str, Any] = {"addresses": [ip], "nodeName": node, "conditions": cond}
    if zones is not None:
        e["hints"] = {"forZones": [{"name": z} for z in zones]}
    return e


def endpoint_slice(svc: str, *eps: dict[str, Any], ns: str = "default", name: str | None = None,
                   ports: Any = None, trigger: str = "") -> dict[str, Any]:
    meta: dict[str, Any] = {"namespace": ns, "name": name or f"{svc}-abc",
                            "labels": {"kubernetes.io/service-name": svc}}
    if trigger:
        meta["annotations"] = {"endpoints.kubernetes.io/last-change-trigger-time": trigger}
    return {"metadata": meta, "addressType": "IPv4",
            "ports": ports or [{"name": "http", "port": 8080, "protocol": "TCP"}], "endpoints": list(eps)}


def program(services: list[dict[str, Any]], slices: list[dict[str, Any]], node: NodeInfo = NODE,
            fake: FakeNft | None = None) -> FakeNft:
    """Plan and apply (full sync) into a fake; returns the fake."""
    fake = fake or FakeNft(local_ips=LOCAL_IPS)
    svc_ports = {f"{s['metadata']['namespace']}/{s['metadata']['name']}": service_ports(s) for s in services}
    views = [v for v in (slice_view(s) for s in slices) if v]
    eps = {key: merge_slices([v for v in views if v.service_key == key]) for key in svc_ports}
    Applier(fake).sync(plan(svc_ports, eps, node, PortIds()))
    return fake


def reach(fake: FakeNft, src: str, dst: str, dport: int = 80, proto: str = "tcp",
          from_node: bool = False) -> set[Outcome]:
    return trace(fake, Packet(src, dst, proto, dport, from_node))


def endpoints_of(outcomes: set[Outcome]) -> set[str]:
    return {o.endpoint for o in outcomes if o.endpoint}


def verdicts(outcomes: set[Outcome]) -> set[str]:
    return {o.verdict for o in outcomes}
