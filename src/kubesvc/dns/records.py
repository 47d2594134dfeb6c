"""Slim, frozen views of the API objects DNS answers from.

The watch cache converts each Service, EndpointSlice and Pod into these records
once, on ingest, so the answering step never walks a full object dict and
never has to guess at missing fields.  Everything the answer depends on is
here; everything else (labels, status, managedFields...) is dropped, which
also keeps the cache small at tens of thousands of objects.
"""

from __future__ import annotations

import functools
import ipaddress
from dataclasses import dataclass
from typing import Any

Obj = dict[str, Any]

TOLERATE_UNREADY = "service.alpha.kubernetes.io/tolerate-unready-endpoints"
SERVICE_NAME_LABEL = "kubernetes.io/service-name"


@dataclass(frozen=True, slots=True)
class Port:
    """A named (or unnamed: ``name == ""``) port with its protocol, lower-cased for matching."""

    name: str
    protocol: str
    port: int


@dataclass(frozen=True, slots=True)
class Service:
    namespace: str
    name: str
    type: str
    cluster_ips: tuple[str, ...]  # empty for headless and ExternalName
    headless: bool
    external_name: str
    ports: tuple[Port, ...]
    publish_not_ready: bool


@dataclass(frozen=True, slots=True)
class Endpoint:
    """One endpoint of a slice; ``ports`` are the slice's (they apply to each endpoint)."""

    addresses: tuple[str, ...]
    hostname: str  # the endpoint's hostname, or "" (the answer uses the dashed IP then)
    ready: bool
    ports: tuple[Port, ...]


@dataclass(frozen=True, slots=True)
class Pod:
    """What ``pods verified`` needs of a Pod: where it is and its addresses (CoreDNS keeps the same)."""

    namespace: str
    name: str
    ips: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Slice:
    namespace: str
    name: str
    service: str  # the kubernetes.io/service-name label
    endpoints: tuple[Endpoint, ...]


def _ports(items: list[Obj] | None, number_key: str) -> tuple[Port, ...]:
    out = []
    for p in items or ():
        number = p.get(number_key)
        if isinstance(number, int) and 0 < number < 65536:
            out.append(Port(str(p.get("name") or "").lower(), str(p.get("protocol") or "TCP").lower(), number))
    return tuple(out)


def _valid_ip(text: object) -> bool:
    return isinstance(text, str) and _parses_as_ip(text)


@functools.lru_cache(maxsize=65536)
def _parses_as_ip(text: str) -> bool:
    """Memoised: a 100-endpoint slice is re-read on every write, and parsing its addresses dominated."""
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


@functools.lru_cache(maxsize=65536)
def _canonical_ip(text: str) -> str:
    """The address as ``parse.undash`` spells it (``fd00:0::7`` → ``fd00::7``), so lookups compare equal."""
    return str(ipaddress.ip_address(text))


def service_record(obj: Obj) -> Service:
    """The part of a Service that names and addresses depend on."""
    meta = obj.get("metadata") or {}
    spec = obj.get("spec") or {}
    svc_type = str(spec.get("type") or "ClusterIP")
    ips = spec.get("clusterIPs") or ([spec["clusterIP"]] if spec.get("clusterIP") else [])
    headless = spec.get("clusterIP") == "None" and svc_type != "ExternalName"
    cluster_ips = () if svc_type == "ExternalName" else tuple(ip for ip in ips if _valid_ip(ip))
    annotations = meta.get("annotations") or {}
    return Service(
        namespace=str(meta.get("namespace") or "").lower(),
        name=str(meta.get("name") or "").lower(),
        type=svc_type,
        cluster_ips=cluster_ips,
        headless=headless,
        external_name=str(spec.get("externalName") or "").rstrip(".").lower() if svc_type == "ExternalName" else "",
        ports=_ports(spec.get("ports"), "port"),
        publish_not_ready=bool(spec.get("publishNotReadyAddresses"))
        or str(annotations.get(TOLERATE_UNREADY, "")).lower() == "true",
    )


def slice_record(obj: Obj) -> Slice:
    """The endpoints of an EndpointSlice; ``ready`` unset counts as ready, as the API says."""
    meta = obj.get("metadata") or {}
    ports = _ports(obj.get("ports"), "port")
    endpoints = []
    for ep in obj.get("endpoints") or ():
        addresses = tuple(a for a in ep.get("addresses") or () if _valid_ip(a))
        if not addresses:
            continue
        ready = (ep.get("conditions") or {}).get("ready")
        endpoints.append(Endpoint(addresses, str(ep.get("hostname") or "").lower(), ready is not False, ports))
    return Slice(
        namespace=str(meta.get("namespace") or "").lower(),
        name=str(meta.get("name") or ""),
        service=str((meta.get("labels") or {}).get(SERVICE_NAME_LABEL) or "").lower(),
        endpoints=tuple(endpoints),
    )


def pod_record(obj: Obj) -> Pod:
    """A Pod's addresses (``status.podIPs``, else ``status.podIP``); none until one is assigned.

    A terminating pod keeps its addresses until it is deleted: it still exists and may
    still answer (CoreDNS, too, leaves a pod in its cache until the delete).
    """
    meta = obj.get("metadata") or {}
    status = obj.get("status") or {}
    listed = [entry.get("ip") for entry in status.get("podIPs") or () if isinstance(entry, dict)]
    ips = [ip for ip in listed or [status.get("podIP")] if _valid_ip(ip)]
    return Pod(
        namespace=str(meta.get("namespace") or "").lower(),
        name=str(meta.get("name") or ""),
        ips=tuple(dict.fromkeys(_canonical_ip(ip) for ip in ips)),
    )


def dashed(ip: str) -> str:
    """``10.244.1.5`` → ``10-244-1-5``; IPv6 colons become dashes (CoreDNS's endpoint hostname)."""
    return ip.replace(".", "-").replace(":", "-")


def endpoint_hostname(ep: Endpoint, ip: str) -> str:
    return ep.hostname or dashed(ip)
