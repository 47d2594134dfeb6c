"""Small frozen views of the API objects the proxy reasons about.

Services, EndpointSlices and Nodes arrive as JSON dicts; the proxy converts
each one once, on ingest, into the few typed facts the planner needs (as
upstream's ServicePort and Endpoint interfaces do).  Views are hashable and
compare by value, so the change trackers can tell a real change from one that
flipped back, and the planner never touches a raw dict.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from typing import Any

Obj = dict[str, Any]

SERVICE_PROXY_NAME_LABEL = "service.kubernetes.io/service-proxy-name"
HEADLESS_LABEL = "service.kubernetes.io/headless"
SERVICE_NAME_LABEL = "kubernetes.io/service-name"
TRIGGER_TIME_ANNOTATION = "endpoints.kubernetes.io/last-change-trigger-time"
ZONE_LABEL = "topology.kubernetes.io/zone"
DEFAULT_AFFINITY_TIMEOUT = 10800


@dataclass(frozen=True)
class ServicePort:
    """One (service, port) as the data plane programs it."""

    namespace: str
    name: str
    port_name: str
    protocol: str  # "tcp" | "udp" | "sctp" (nft spelling)
    port: int
    cluster_ip: str
    node_port: int = 0
    external_ips: tuple[str, ...] = ()
    lb_ips: tuple[str, ...] = ()
    source_ranges: tuple[str, ...] = ()
    affinity_timeout: int = 0  # seconds; 0 = no session affinity
    etp_local: bool = False
    itp_local: bool = False
    health_check_node_port: int = 0

    @property
    def service_key(self) -> str:
        return f"{self.namespace}/{self.name}"

    @property
    def key(self) -> str:
        """``ns/name:port-name/proto``: unique per service port, stable across syncs."""
        return f"{self.namespace}/{self.name}:{self.port_name}/{self.protocol}"


@dataclass(frozen=True)
class Endpoint:
    """One backend address for one service port."""

    ip: str
    port: int
    ready: bool = True
    serving: bool = True
    terminating: bool = False
    node_name: str = ""
    zone_hints: tuple[str, ...] | None = None

    @property
    def addr(self) -> str:
        return f"{self.ip}:{self.port}"


@dataclass(frozen=True)
class NodeInfo:
    """What the planner needs to know about the node it programs."""

    name: str
    ips: tuple[str, ...] = ()
    pod_cidr: str = ""  # this node's pods: the "local traffic" detector
    cluster_cidr: str = ""  # all pods: ClusterIP traffic from elsewhere is masqueraded
    zone: str = ""
    labels: tuple[tuple[str, str], ...] = field(default=())
    primary_ip: str = ""  # the first InternalIP (else ExternalIP), as kube-proxy picks the node IP
    nodeport_ips: tuple[str, ...] | None = None  # addresses accepting NodePorts; None: all but loopback


def should_skip(svc: Obj) -> bool:
    """Upstream's ShouldSkipService plus the service-proxy-name label selector."""
    meta = svc.get("metadata") or {}
    labels = meta.get("labels") or {}
    if SERVICE_PROXY_NAME_LABEL in labels or HEADLESS_LABEL in labels:
        return True
    spec = svc.get("spec") or {}
    if spec.get("type") == "ExternalName":
        return True
    return spec.get("clusterIP") in (None, "", "None")


def _is_ipv4(text: str) -> bool:
    try:
        return ipaddress.ip_address(text).version == 4
    except ValueError:
        return False


def service_ports(svc: Obj) -> tuple[ServicePort, ...]:
    """Every IPv4 port of a proxied Service (empty if the Service is skipped)."""
    if should_skip(svc):
        return ()
    meta, spec = svc.get("metadata") or {}, svc.get("spec") or {}
    cluster_ip = spec.get("clusterIP") or ""
    if not _is_ipv4(cluster_ip):
        return ()
    status_lb = ((svc.get("status") or {}).get("loadBalancer") or {}).get("ingress") or []
    lb_ips = tuple(i["ip"] for i in status_lb
                   if i.get("ip") and _is_ipv4(i["ip"]) and i.get("ipMode") in (None, "VIP"))
    if spec.get("type") != "LoadBalancer":
        lb_ips = ()
    affinity = 0
    if spec.get("sessionAffinity") == "ClientIP":
        cfg = ((spec.get("sessionAffinityConfig") or {}).get("clientIP") or {})
        affinity = int(cfg.get("timeoutSeconds") or DEFAULT_AFFINITY_TIMEOUT)
    external = spec.get("type") in ("NodePort", "LoadBalancer")
    common = dict(
        namespace=meta.get("namespace", ""), name=meta.get("name", ""), cluster_ip=cluster_ip,
        external_ips=tuple(ip for ip in spec.get("externalIPs") or () if _is_ipv4(ip)),
        lb_ips=lb_ips, source_ranges=tuple(spec.get("loadBalancerSourceRanges") or ()) if lb_ips else (),
        affinity_timeout=affinity,
        etp_local=spec.get("externalTrafficPolicy") == "Local",
        itp_local=spec.get("internalTrafficPolicy") == "Local",
        health_check_node_port=int(spec.get("healthCheckNodePort") or 0) if external else 0,
    )
    out = []
    for p in spec.get("ports") or ():
        proto = str(p.get("protocol") or "TCP").lower()
        if proto not in ("tcp", "udp", "sctp") or not p.get("port"):
            continue
        out.append(ServicePort(port_name=p.get("name") or "", protocol=proto, port=int(p["port"]),
                               node_port=int(p.get("nodePort") or 0) if external else 0, **common))
    return tuple(out)


@dataclass(frozen=True)
class SliceView:
    """The parts of one EndpointSlice the proxy uses."""

    service_key: str
    ports: tuple[tuple[str, str, int], ...]  # (name, protocol, port)
    endpoints: tuple[Endpoint, ...]  # port 0 here: the port comes from ``ports``
    trigger_time: str = ""


def slice_view(obj: Obj) -> SliceView | None:
    """None for slices the proxy ignores (no service-name label, not IPv4)."""
    meta = obj.get("metadata") or {}
    svc = (meta.get("labels") or {}).get(SERVICE_NAME_LABEL)
    if not svc or obj.get("addressType", "IPv4") != "IPv4":
        return None
    ports = tuple((p.get("name") or "", str(p.get("protocol") or "TCP").lower(), int(p.get("port") or 0))
                  for p in obj.get("ports") or () if p.get("port"))
    eps = []
    for e in obj.get("endpoints") or ():
        addrs = e.get("addresses") or ()
        if not addrs or not _is_ipv4(addrs[0]):
            continue
        cond = e.get("conditions") or {}
        ready = cond.get("ready") is not False  # nil means ready, as upstream
        serving = ready if cond.get("serving") is None else bool(cond["serving"])
        zones = (e.get("hints") or {}).get("forZones")
        eps.append(Endpoint(
            ip=addrs[0], port=0, ready=ready, serving=serving, terminating=bool(cond.get("terminating")),
            node_name=e.get("nodeName") or "",
            # an empty forZones is no hint at all (upstream counts ZoneHints().Len() == 0 as missing)
            zone_hints=tuple(z.get("name", "") for z in zones) if zones else None))
    trig = (meta.get("annotations") or {}).get(TRIGGER_TIME_ANNOTATION, "")
    return SliceView(f"{meta.get('namespace', '')}/{svc}", ports, tuple(eps), trig)


def merge_slices(slices: list[SliceView]) -> dict[tuple[str, str], tuple[Endpoint, ...]]:
    """Endpoints per (port name, protocol), deduplicated by address (a ready copy wins)."""
    out: dict[tuple[str, str], dict[str, Endpoint]] = {}
    for sl in slices:
        for name, proto, port in sl.ports:
            bucket = out.setdefault((name, proto), {})
            for e in sl.endpoints:
                ep = Endpoint(e.ip, port, e.ready, e.serving, e.terminating, e.node_name, e.zone_hints)
                old = bucket.get(ep.addr)
                if old is None or (ep.ready and not old.ready):
                    bucket[ep.addr] = ep
    return {k: tuple(v[a] for a in sorted(v)) for k, v in out.items()}


def node_info(node: Obj | None, name: str, cluster_cidr: str = "") -> NodeInfo:
    """The local node's addresses, pod CIDR and zone (empty facts if the Node is unknown)."""
    if not node:
        return NodeInfo(name=name, cluster_cidr=cluster_cidr)
    meta, spec = node.get("metadata") or {}, node.get("spec") or {}
    addrs = (node.get("status") or {}).get("addresses") or ()
    ips = tuple(a["address"] for a in addrs
                if a.get("type") in ("InternalIP", "ExternalIP") and _is_ipv4(a.get("address", "")))
    primary = next((a["address"] for kind in ("InternalIP", "ExternalIP") for a in addrs
                    if a.get("type") == kind and _is_ipv4(a.get("address", ""))), "")
    cidr = spec.get("podCIDR") or ""
    labels = meta.get("labels") or {}
    return NodeInfo(name=name, ips=ips, pod_cidr=cidr if "." in cidr else "",
                    cluster_cidr=cluster_cidr, zone=labels.get(ZONE_LABEL, ""),
                    labels=tuple(sorted(labels.items())), primary_ip=primary)
