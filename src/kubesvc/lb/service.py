"""What the LoadBalancer controller reads from a Service: a small frozen view.

Only this module knows the field and annotation names, so the controller and
the allocator reason over plain values.  The MetalLB annotations are honoured
next to our own because people copy manifests written for MetalLB.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from kubesvc.lb.allocator import AllocationError, Request
from kubesvc.lb.pools import IPAddress

OUR_CLASS = "kubesvc.io/lb"
IPS_ANNOTATIONS = ("kubesvc.io/loadBalancerIPs", "metallb.universe.tf/loadBalancerIPs")
SHARING_ANNOTATIONS = ("kubesvc.io/allow-shared-ip", "metallb.universe.tf/allow-shared-ip")
POOL_ANNOTATIONS = ("kubesvc.io/address-pool", "metallb.universe.tf/address-pool")

Obj = dict[str, Any]


@dataclass(frozen=True)
class LBService:
    """The parts of one Service that allocation and announcement depend on."""

    key: str
    ours: bool  # type LoadBalancer, and loadBalancerClass unset or ours
    requested: tuple[str, ...]  # spec.loadBalancerIP or the annotation, as written
    request: Request
    etp_local: bool
    status_ips: tuple[str, ...]  # status.loadBalancer.ingress[].ip
    created: str  # metadata.creationTimestamp (RFC 3339 sorts as text)


def _first(annotations: dict[str, Any], names: tuple[str, ...]) -> str:
    for n in names:
        v = annotations.get(n)
        if isinstance(v, str) and v.strip():
            return v.strip()
    return ""


def is_ours(svc: Obj, our_class: str = OUR_CLASS) -> bool:
    spec = svc.get("spec") or {}
    cls = spec.get("loadBalancerClass")
    return spec.get("type") == "LoadBalancer" and (cls in (None, "") or cls == our_class)


def view(svc: Obj, our_class: str = OUR_CLASS) -> LBService:
    meta, spec = svc.get("metadata") or {}, svc.get("spec") or {}
    ann = meta.get("annotations") or {}
    key = f"{meta.get('namespace', '')}/{meta.get('name', '')}"
    requested = _first(ann, IPS_ANNOTATIONS)
    ips = tuple(x.strip() for x in requested.split(",") if x.strip()) if requested else ()
    if not ips and spec.get("loadBalancerIP"):
        ips = (str(spec["loadBalancerIP"]).strip(),)
    etp_local = spec.get("externalTrafficPolicy") == "Local"
    selector = spec.get("selector") or {}
    backend = ",".join(f"{k}={v}" for k, v in sorted(selector.items())) if etp_local else ""
    ports = frozenset((str(p.get("protocol") or "TCP"), int(p.get("port") or 0))
                      for p in spec.get("ports") or [] if isinstance(p, dict))
    ingress = ((svc.get("status") or {}).get("loadBalancer") or {}).get("ingress") or []
    return LBService(
        key=key, ours=is_ours(svc, our_class), requested=ips,
        request=Request(key, ports, _first(ann, SHARING_ANNOTATIONS), backend, _first(ann, POOL_ANNOTATIONS)),
        etp_local=etp_local, status_ips=tuple(str(i["ip"]) for i in ingress if isinstance(i, dict) and i.get("ip")),
        created=str(meta.get("creationTimestamp") or ""))


def requested_ip(s: LBService) -> IPAddress | None:
    """The address the Service asks for (the first of our family), ``None`` if it asks for none."""
    for text in s.requested:
        try:
            ip = ipaddress.ip_address(text)
        except ValueError:
            raise AllocationError(f"requested address {text!r} is not an IP address") from None
        if ip.version == s.request.family:
            return ip
    if s.requested:
        raise AllocationError(f"no IPv{s.request.family} address among the requested {', '.join(s.requested)}")
    return None


def status_ip(s: LBService) -> IPAddress | None:
    """The address already in status (what a restarted controller must keep), if one parses."""
    for text in s.status_ips:
        try:
            ip = ipaddress.ip_address(text)
        except ValueError:
            continue
        if ip.version == s.request.family:
            return ip
    return None


def restore_order(services: Iterable[LBService]) -> list[LBService]:
    """Rebuild order after a restart: Services already holding an address first, then oldest first.

    Re-assigning the holders before anyone allocates is what keeps every
    address where it was; a pending Service can then only take a free one.
    """
    return sorted((s for s in services if s.ours), key=lambda s: (not s.status_ips, s.created, s.key))


def ingress(ip: IPAddress | None) -> list[Obj]:
    """status.loadBalancer.ingress for an address (empty: pending)."""
    return [{"ip": str(ip), "ipMode": "VIP"}] if ip is not None else []
