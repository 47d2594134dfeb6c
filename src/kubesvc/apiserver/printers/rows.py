"""Row builders for every kind except Pod (see pod.py).

Each function takes the object as stored (a JSON dict) and ``now`` and returns
all cells, wide ones included: the apiserver always prints wide and kubectl
drops the ``priority: 1`` columns itself unless ``-o wide`` is given.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from kubesvc.apiserver.printers.format import (
    NONE,
    UNKNOWN,
    containers_and_images,
    format_labels,
    format_selector,
    join_host_port,
    selector_string,
    since,
    with_more,
)

Row = list[Any]
NODE_ROLE_PREFIX = "node-role.kubernetes.io/"
NODE_ROLE_LABEL = "kubernetes.io/role"


def _name(obj: dict[str, Any]) -> str:
    return (obj.get("metadata") or {}).get("name", "")


def _age(obj: dict[str, Any], now: datetime) -> str:
    return since((obj.get("metadata") or {}).get("creationTimestamp"), now)


# --- Service -----------------------------------------------------------------

def _lb_ingress(status: dict[str, Any]) -> str:
    seen = set()
    for ing in ((status.get("loadBalancer") or {}).get("ingress")) or []:
        if ing.get("ip"):
            seen.add(ing["ip"])
        elif ing.get("hostname"):
            seen.add(ing["hostname"])
    return ",".join(sorted(seen))


def service_external_ip(svc: dict[str, Any]) -> str:
    """EXTERNAL-IP: spec.externalIPs, the load balancer's ingress, ``<pending>``, or the DNS name."""
    spec = svc.get("spec") or {}
    external = list(spec.get("externalIPs") or [])
    stype = spec.get("type", "")
    if stype in ("ClusterIP", "NodePort"):
        return ",".join(external) if external else NONE
    if stype == "LoadBalancer":
        lb = _lb_ingress(svc.get("status") or {})
        if external:
            return ",".join(([*lb.split(",")] if lb else []) + external)
        return lb or "<pending>"
    if stype == "ExternalName":
        return spec.get("externalName", "")
    return UNKNOWN


def service_ports(ports: list[dict[str, Any]] | None) -> str:
    """``80/TCP`` or ``80:30080/TCP`` per port, comma-joined; ``<none>`` without ports."""
    pieces = []
    for p in ports or []:
        proto = p.get("protocol", "")
        if p.get("nodePort"):
            pieces.append(f"{p.get('port', 0)}:{p['nodePort']}/{proto}")
        else:
            pieces.append(f"{p.get('port', 0)}/{proto}")
    return ",".join(pieces) or NONE


def service_row(svc: dict[str, Any], now: datetime) -> Row:
    spec = svc.get("spec") or {}
    ips = spec.get("clusterIPs") or ([spec["clusterIP"]] if spec.get("clusterIP") else [])
    return [_name(svc), spec.get("type", ""), ips[0] if ips else NONE, service_external_ip(svc),
            service_ports(spec.get("ports")), _age(svc, now), format_labels(spec.get("selector"))]


# --- Endpoints and EndpointSlices --------------------------------------------

def format_endpoints(ep: dict[str, Any]) -> str:
    """``ip:port`` for every address and port, at most three then `` + N more...``."""
    subsets = ep.get("subsets") or []
    if not subsets:
        return NONE
    shown: list[str] = []
    count = 0
    for ss in subsets:
        addrs = ss.get("addresses") or []
        ports = ss.get("ports") or []
        if not ports:  # headless services may have no ports
            count += len(addrs)
            shown.extend(a.get("ip", "") for a in addrs)
            continue
        for port in ports:
            count += len(addrs)
            shown.extend(join_host_port(a.get("ip", ""), port.get("port", 0)) for a in addrs)
    if count > 3:
        return f"{','.join(shown[:3])} + {count - 3} more..."
    return ",".join(shown)


def endpoints_row(ep: dict[str, Any], now: datetime) -> Row:
    return [_name(ep), format_endpoints(ep), _age(ep, now)]


def endpointslice_row(es: dict[str, Any], now: datetime) -> Row:
    ports = []
    for p in es.get("ports") or []:
        if p.get("port") is not None:
            ports.append(str(p["port"]))
        elif p.get("name") is not None:
            ports.append(p["name"])
        else:
            ports.append("*")
    addrs = [a for e in es.get("endpoints") or [] for a in e.get("addresses") or []]
    return [_name(es), es.get("addressType", ""), with_more(ports, len(ports)),
            with_more(addrs, len(addrs)), _age(es, now)]


# --- Nodes and namespaces ----------------------------------------------------

def node_roles(labels: dict[str, str]) -> str:
    roles = set()
    for k, v in labels.items():
        if k.startswith(NODE_ROLE_PREFIX) and k[len(NODE_ROLE_PREFIX):]:
            roles.add(k[len(NODE_ROLE_PREFIX):])
        elif k == NODE_ROLE_LABEL and v:
            roles.add(v)
    return ",".join(sorted(roles)) or NONE


def _node_address(status: dict[str, Any], atype: str) -> str:
    for a in status.get("addresses") or []:
        if a.get("type") == atype:
            return a.get("address", "")
    return NONE


def node_row(node: dict[str, Any], now: datetime) -> Row:
    spec, status = node.get("spec") or {}, node.get("status") or {}
    conds = {c.get("type"): c for c in status.get("conditions") or []}
    state = []
    if "Ready" in conds:
        state.append("Ready" if conds["Ready"].get("status") == "True" else "NotReady")
    if not state:
        state.append("Unknown")
    if spec.get("unschedulable"):
        state.append("SchedulingDisabled")
    info = status.get("nodeInfo") or {}
    return [_name(node), ",".join(state), node_roles((node.get("metadata") or {}).get("labels") or {}),
            _age(node, now), info.get("kubeletVersion", ""),
            _node_address(status, "InternalIP"), _node_address(status, "ExternalIP"),
            info.get("osImage") or UNKNOWN, info.get("kernelVersion") or UNKNOWN,
            info.get("containerRuntimeVersion") or UNKNOWN]


def namespace_row(ns: dict[str, Any], now: datetime) -> Row:
    return [_name(ns), (ns.get("status") or {}).get("phase", ""), _age(ns, now)]


# --- Events ------------------------------------------------------------------

def event_row(ev: dict[str, Any], now: datetime) -> Row:
    """Last Seen, Type, Reason, Object, Subobject, Source, Message, First Seen, Count, Name."""
    first = since(ev.get("firstTimestamp"), now) if ev.get("firstTimestamp") else since(ev.get("eventTime"), now)
    last = since(ev.get("lastTimestamp"), now) if ev.get("lastTimestamp") else first
    count = ev.get("count") or 0
    series = ev.get("series")
    if series:
        last = since(series.get("lastObservedTime"), now)
        count = series.get("count") or 0
    elif count == 0:
        count = 1  # singleton events from the events.k8s.io API carry no count
    inv = ev.get("involvedObject") or {}
    kind = (inv.get("kind") or "").lower()
    target = f"{kind}/{inv['name']}" if inv.get("name") else kind
    source = ev.get("source") or {}
    component = source.get("component") or ev.get("reportingComponent") or ""
    host = source.get("host") or ev.get("reportingInstance") or ""
    return [last, ev.get("type", ""), ev.get("reason", ""), target, inv.get("fieldPath", ""),
            f"{component}, {host}" if host else component, (ev.get("message") or "").strip(),
            first, int(count), _name(ev)]


# --- Config and identity ------------------------------------------------------

def configmap_row(cm: dict[str, Any], now: datetime) -> Row:
    return [_name(cm), len(cm.get("data") or {}) + len(cm.get("binaryData") or {}), _age(cm, now)]


def serviceaccount_row(sa: dict[str, Any], now: datetime) -> Row:
    return [_name(sa), len(sa.get("secrets") or []), _age(sa, now)]


def lease_row(lease: dict[str, Any], now: datetime) -> Row:
    return [_name(lease), (lease.get("spec") or {}).get("holderIdentity") or "", _age(lease, now)]


def ipaddresspool_row(pool: dict[str, Any], now: datetime) -> Row:
    spec, status = pool.get("spec") or {}, pool.get("status") or {}
    addrs = [str(a) for a in spec.get("addresses") or []]
    return [_name(pool), with_more(addrs, len(addrs), empty=NONE), spec.get("autoAssign", True) is not False,
            _age(pool, now), int(status.get("assignedIPv4", 0)) + int(status.get("assignedIPv6", 0)),
            int(status.get("availableIPv4", 0)) + int(status.get("availableIPv6", 0))]


# --- Workloads ----------------------------------------------------------------

def deployment_row(d: dict[str, Any], now: datetime) -> Row:
    spec, status = d.get("spec") or {}, d.get("status") or {}
    replicas = spec.get("replicas")
    replicas = 1 if replicas is None else replicas
    names, images = containers_and_images((spec.get("template") or {}).get("spec"))
    return [_name(d), f"{status.get('readyReplicas', 0)}/{replicas}", int(status.get("updatedReplicas", 0)),
            int(status.get("availableReplicas", 0)), _age(d, now), names, images,
            selector_string(spec.get("selector"))]


def replicaset_row(rs: dict[str, Any], now: datetime) -> Row:
    spec, status = rs.get("spec") or {}, rs.get("status") or {}
    replicas = spec.get("replicas")
    replicas = 1 if replicas is None else replicas
    names, images = containers_and_images((spec.get("template") or {}).get("spec"))
    return [_name(rs), int(replicas), int(status.get("replicas", 0)), int(status.get("readyReplicas", 0)),
            _age(rs, now), names, images, format_selector(spec.get("selector"))]


def generic_row(obj: dict[str, Any], now: datetime) -> Row:
    return [_name(obj), _age(obj, now)]
