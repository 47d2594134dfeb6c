"""From pods to endpoints: the per-pod facts every endpoints controller shares.

Upstream keeps these in ``k8s.io/endpointslice`` (utils.go, util/) and the
legacy Endpoints controller reuses them; so do we.  Everything here is a pure
function over the plain JSON dicts the API returns.  The keys and equality
rules decide churn: an endpoint is *the same* endpoint while its addresses,
hostname and target pod stay the same (so a readiness flip is an in-place
update), and it *changed* only when a field the slice carries differs, with
the pod's resourceVersion ignored.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from kubesvc.api.selectors import LabelSelector, selector_from_set

Obj = dict[str, Any]

LABEL_SERVICE_NAME = "kubernetes.io/service-name"
LABEL_MANAGED_BY = "endpointslice.kubernetes.io/managed-by"
LABEL_SKIP_MIRROR = "endpointslice.kubernetes.io/skip-mirror"
LABEL_HEADLESS = "service.kubernetes.io/headless"
LABEL_ZONE = "topology.kubernetes.io/zone"
ANNOTATION_TRIGGER_TIME = "endpoints.kubernetes.io/last-change-trigger-time"
ANNOTATION_OVER_CAPACITY = "endpoints.kubernetes.io/over-capacity"
ANNOTATION_LEADER = "control-plane.alpha.kubernetes.io/leader"
ANNOTATION_LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"
ANNOTATION_TOPOLOGY_MODE = "service.kubernetes.io/topology-mode"
ANNOTATION_TOPOLOGY_AWARE_HINTS = "service.kubernetes.io/topology-aware-hints"  # the older name
CONTROLLER_NAME = "endpointslice-controller.k8s.io"
MIRRORING_CONTROLLER_NAME = "endpointslicemirroring-controller.k8s.io"
RESERVED_LABELS = frozenset({LABEL_SERVICE_NAME, LABEL_MANAGED_BY, LABEL_HEADLESS})
CLOSE_TRAFFIC = frozenset({"PreferClose", "PreferSameZone", "PreferSameNode"})

EndpointKey = tuple[tuple[str, ...], str, str, str]
PortKey = tuple[tuple[str, int, str, str], ...]


# --- services ----------------------------------------------------------------

def service_selector(svc: Obj) -> LabelSelector | None:
    """The Service's pod selector, or None when it has none (selectorless: hands off).

    A ``{}`` selector is treated as absent, as it is after a round trip
    through upstream's Go types (``omitempty`` drops the empty map).
    """
    sel = (svc.get("spec") or {}).get("selector")
    return selector_from_set(sel) if sel else None


def is_headless(svc: Obj) -> bool:
    ip = (svc.get("spec") or {}).get("clusterIP")
    return ip in (None, "", "None")


def hints_enabled(svc: Obj) -> bool:
    """Topology-aware hints asked for: ``topology-mode: Auto``, or else the older ``topology-aware-hints: auto``.

    When ``topology-mode`` is present it decides alone (``Disabled`` wins over
    the older annotation), as upstream's hintsEnabled.
    """
    annotations = (svc.get("metadata") or {}).get("annotations") or {}
    value = annotations.get(ANNOTATION_TOPOLOGY_MODE)
    if value is None:
        value = annotations.get(ANNOTATION_TOPOLOGY_AWARE_HINTS)
    return value in ("Auto", "auto")


def address_types(svc: Obj) -> list[str]:
    """Slice address types from ``spec.ipFamilies``; older Services fall back to the clusterIP's family."""
    spec = svc.get("spec") or {}
    out = [f for f in ("IPv4", "IPv6") if f in (spec.get("ipFamilies") or [])]
    if out:
        return out
    ip = spec.get("clusterIP")
    if ip and ip != "None":
        return [family_of(ip) or "IPv4"]
    return ["IPv4", "IPv6"]


def service_owner_ref(svc: Obj) -> Obj:
    m = svc.get("metadata") or {}
    return {"apiVersion": "v1", "kind": "Service", "name": m.get("name", ""), "uid": m.get("uid", ""),
            "controller": True, "blockOwnerDeletion": True}


# --- pods ----------------------------------------------------------------------

def is_pod_ready(pod: Obj) -> bool:
    for c in (pod.get("status") or {}).get("conditions") or []:
        if c.get("type") == "Ready":
            return c.get("status") == "True"
    return False


def ready_transition_time(pod: Obj) -> str:
    """When the pod's readiness last changed: the time its endpoints changed because of it."""
    for c in (pod.get("status") or {}).get("conditions") or []:
        if c.get("type") == "Ready":
            return str(c.get("lastTransitionTime") or "")
    return ""


def is_terminating(pod: Obj) -> bool:
    return bool((pod.get("metadata") or {}).get("deletionTimestamp"))


def pod_ips(pod: Obj) -> list[str]:
    status = pod.get("status") or {}
    ips = [p.get("ip", "") for p in status.get("podIPs") or [] if p.get("ip")]
    if not ips and status.get("podIP"):
        ips = [status["podIP"]]
    return ips


def should_pod_be_in_endpoints(pod: Obj, include_terminating: bool) -> bool:
    """Not Succeeded/Failed, has an IP, and (unless asked) not being deleted."""
    if (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed"):
        return False
    if not pod_ips(pod):
        return False
    return include_terminating or not is_terminating(pod)


def should_set_hostname(pod: Obj, svc: Obj) -> bool:
    spec = pod.get("spec") or {}
    return bool(spec.get("hostname")) and spec.get("subdomain") == _name(svc) and _ns(pod) == _ns(svc)


def find_port(pod: Obj, svc_port: Obj) -> int | None:
    """The pod's port for a Service port: a number as is; a name looked up by name *and* protocol."""
    target = svc_port.get("targetPort", svc_port.get("port"))
    if isinstance(target, int):
        return target
    if isinstance(target, str) and target.isdigit():
        return int(target)
    proto = svc_port.get("protocol") or "TCP"
    spec = pod.get("spec") or {}
    sidecars = [c for c in spec.get("initContainers") or [] if c.get("restartPolicy") == "Always"]
    for container in [*(spec.get("containers") or []), *sidecars]:
        for p in container.get("ports") or []:
            if p.get("name") == target and (p.get("protocol") or "TCP") == proto:
                return int(p["containerPort"])
    return None


def endpoint_ports(svc: Obj, pod: Obj) -> list[Obj]:
    """The slice ports this pod offers; a Service port the pod cannot resolve is left out."""
    spec = svc.get("spec") or {}
    out: list[Obj] = []
    for sp in spec.get("ports") or []:
        num = find_port(pod, sp)
        if num is None:
            continue
        port: Obj = {"name": sp.get("name") or "", "port": num, "protocol": sp.get("protocol") or "TCP"}
        if sp.get("appProtocol"):
            port["appProtocol"] = sp["appProtocol"]
        out.append(port)
    return out


def pod_to_endpoint(pod: Obj, node: Obj | None, svc: Obj, address_type: str) -> Obj:
    """One slice endpoint for a pod (upstream's podToEndpoint), with PreferClose hints."""
    serving = is_pod_ready(pod)
    terminating = is_terminating(pod)
    publish = bool((svc.get("spec") or {}).get("publishNotReadyAddresses"))
    ready = publish or (serving and not terminating)
    m = pod.get("metadata") or {}
    ep: Obj = {
        "addresses": [ip for ip in pod_ips(pod) if family_of(ip) == address_type],
        "conditions": {"ready": ready, "serving": serving, "terminating": terminating},
        "targetRef": {"kind": "Pod", "namespace": m.get("namespace", ""), "name": m.get("name", ""),
                      "uid": m.get("uid", "")},
    }
    node_name = (pod.get("spec") or {}).get("nodeName")
    if node_name:
        ep["nodeName"] = node_name
    zone = (((node or {}).get("metadata") or {}).get("labels") or {}).get(LABEL_ZONE)
    if zone:
        ep["zone"] = zone
    if should_set_hostname(pod, svc):
        ep["hostname"] = pod["spec"]["hostname"]
    # topology-mode Auto overrides trafficDistribution; its hints are allocated per zone later (.topologycache)
    hints = None if hints_enabled(svc) else _hints(ep, (svc.get("spec") or {}).get("trafficDistribution"))
    if hints:
        ep["hints"] = hints
    return ep


def _hints(ep: Obj, traffic: str | None) -> Obj | None:
    """Zone (and node) hints for ready endpoints when the Service prefers close traffic (KEP-4444)."""
    if traffic not in CLOSE_TRAFFIC or not ep["conditions"]["ready"]:
        return None
    hints: Obj = {}
    if ep.get("zone"):
        hints["forZones"] = [{"name": ep["zone"]}]
    if traffic == "PreferSameNode" and ep.get("nodeName"):
        hints["forNodes"] = [{"name": ep["nodeName"]}]
    return hints or None


# --- identity and equality ----------------------------------------------------

def endpoint_key(ep: Obj) -> EndpointKey:
    """What makes an endpoint *the same* one: addresses, hostname and the pod it names."""
    ref = ep.get("targetRef") or {}
    return (tuple(sorted(ep.get("addresses") or ())), ep.get("hostname") or "",
            ref.get("namespace") or "", ref.get("name") or "")


def _ref(ref: Obj | None) -> Obj:
    return {k: v for k, v in (ref or {}).items() if v not in (None, "") and k != "resourceVersion"}


def endpoints_equal_beyond_key(a: Obj, b: Obj, *, compare_hints: bool = True) -> bool:
    """Same node, zone, conditions, hints and target (its resourceVersion aside).

    Hints allocated per zone (topology-mode Auto) are not the pod's own
    facts: they are checked slice by slice afterwards, so ``compare_hints``
    is off for those Services.
    """
    ca, cb = a.get("conditions") or {}, b.get("conditions") or {}
    return (a.get("nodeName") == b.get("nodeName") and a.get("zone") == b.get("zone")
            and all(ca.get(k) == cb.get(k) for k in ("ready", "serving", "terminating"))
            and (not compare_hints or (a.get("hints") or None) == (b.get("hints") or None))
            and _ref(a.get("targetRef")) == _ref(b.get("targetRef")))


def port_key(ports: Iterable[Obj] | None) -> PortKey:
    """An order-free key for a list of endpoint ports: slices are grouped by it."""
    return tuple(sorted((p.get("name") or "", int(p.get("port") or 0), p.get("protocol") or "TCP",
                         p.get("appProtocol") or "") for p in ports or ()))


def owned_by(obj: Obj, owner_uid: str, kind: str) -> bool:
    return any(r.get("uid") == owner_uid and r.get("kind") == kind and r.get("apiVersion") == "v1"
               for r in (obj.get("metadata") or {}).get("ownerReferences") or [])


def nodes_by_name(nodes: Iterable[Obj]) -> Mapping[str, Obj]:
    return {(n.get("metadata") or {}).get("name", ""): n for n in nodes}


def family_of(ip: str) -> str | None:
    """``IPv4``/``IPv6`` for an address the API has validated (a colon is IPv6); None for nothing.

    Not a parser: this runs for every pod of every sync, and ``ipaddress`` was
    a third of a 1,000-pod sync's time.  Unvalidated input (hand-written
    Endpoints) goes through :func:`ipaddress.ip_address` instead.
    """
    if not ip:
        return None
    return "IPv6" if ":" in ip else "IPv4"


def _name(obj: Obj) -> str:
    return str((obj.get("metadata") or {}).get("name") or "")


def _ns(obj: Obj) -> str:
    return str((obj.get("metadata") or {}).get("namespace") or "")
