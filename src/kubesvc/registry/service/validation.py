"""Service validation with upstream's rules, field paths, messages and order.

Mirrors ``ValidateService`` / ``ValidateServiceUpdate`` of
``pkg/apis/core/validation`` (1.31-1.32 era).  The order of the checks is
upstream's so that a request with several problems produces the same
bracketed list as a real apiserver.  Input is the Service as a JSON dict
(after defaulting); missing fields read as Go's zero values.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from kubesvc.api.errors import FieldError, duplicate, forbidden, invalid, not_supported, required
from kubesvc.api.validation import names
from kubesvc.api.validation.govalue import GoValue, go_quote, ip_family_slice, string_slice
from kubesvc.api.validation.meta import (
    FIELD_IMMUTABLE,
    name_is_dns1035_label,
    validate_labels,
    validate_object_meta,
    validate_object_meta_update,
)

Obj = Mapping[str, Any]

CLUSTER_IP = "ClusterIP"
NODE_PORT = "NodePort"
LOAD_BALANCER = "LoadBalancer"
EXTERNAL_NAME = "ExternalName"
NONE = "None"

SUPPORTED_TYPES = (CLUSTER_IP, EXTERNAL_NAME, LOAD_BALANCER, NODE_PORT)  # sorted, as sets.List
SUPPORTED_AFFINITY = ("ClientIP", NONE)
SUPPORTED_PROTOCOLS = ("SCTP", "TCP", "UDP")
SUPPORTED_TRAFFIC_POLICIES = ("Cluster", "Local")
SUPPORTED_IP_FAMILIES = ("IPv4", "IPv6")
SUPPORTED_IP_FAMILY_POLICIES = ("PreferDualStack", "RequireDualStack", "SingleStack")
#: at 1.31/1.32 only PreferClose; newer releases add PreferSameZone / PreferSameNode
SUPPORTED_TRAFFIC_DISTRIBUTIONS = ("PreferClose",)
MAX_CLIENT_IP_AFFINITY_SECONDS = 86400

ANNOTATION_TOPOLOGY_MODE = "service.kubernetes.io/topology-mode"
ANNOTATION_TOPOLOGY_HINTS = "service.kubernetes.io/topology-aware-hints"
ANNOTATION_LB_SOURCE_RANGES = "service.beta.kubernetes.io/load-balancer-source-ranges"
LB_ONLY = "may only be used when `type` is 'LoadBalancer'"


# --------------------------------------------------------------------------
# small readers (Go zero values for missing fields)


def spec_of(svc: Obj) -> Obj:
    spec = svc.get("spec")
    return spec if isinstance(spec, Mapping) else {}


def ports_of(svc: Obj) -> list[Obj]:
    ports = spec_of(svc).get("ports")
    return [p if isinstance(p, Mapping) else {} for p in ports] if isinstance(ports, list) else []


def cluster_ips(svc: Obj) -> list[str]:
    ips = spec_of(svc).get("clusterIPs")
    return list(ips) if isinstance(ips, list) else []


def svc_type(svc: Obj) -> str:
    return spec_of(svc).get("type") or ""


def is_headless(svc: Obj | None) -> bool:
    if svc is None:
        return False
    ips = cluster_ips(svc)
    return len(ips) == 1 and ips[0] == NONE


def externally_accessible(svc: Obj) -> bool:
    t = svc_type(svc)
    return t in (LOAD_BALANCER, NODE_PORT) or (t == CLUSTER_IP and bool(spec_of(svc).get("externalIPs")))


def needs_health_check(svc: Obj) -> bool:
    return svc_type(svc) == LOAD_BALANCER and spec_of(svc).get("externalTrafficPolicy") == "Local"


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def port_key_text(protocol: str, port: int) -> GoValue:
    """The %#v of the (protocol, port) key upstream reports for a duplicate port."""
    return GoValue(
        f"core.ServicePort{{Name:\"\", Protocol:{go_quote(protocol)}, AppProtocol:(*string)(nil), "
        f"Port:{port}, TargetPort:intstr.IntOrString{{Type:0, IntVal:0, StrVal:\"\"}}, NodePort:0}}"
    )


# --------------------------------------------------------------------------
# ValidateService


def validate_service(svc: Obj) -> list[FieldError]:
    """Every create-time rule; also the tail of :func:`validate_service_update`."""
    meta = svc.get("metadata") if isinstance(svc.get("metadata"), Mapping) else {}
    errs = validate_object_meta(meta, True, name_is_dns1035_label, "metadata")
    errs += _validate_topology_annotations(meta)
    errs += _validate_type_specific(svc)
    port_names: set[str] = set()
    ports = ports_of(svc)
    for i, port in enumerate(ports):
        errs += validate_service_port(port, len(ports) > 1, port_names, f"spec.ports[{i}]")
    spec = spec_of(svc)
    if spec.get("selector") is not None:
        errs += validate_labels(spec.get("selector"), "spec.selector")
    errs += _validate_session_affinity(spec)
    errs += validate_cluster_ips_related_fields(svc)
    errs += _validate_external_ips(spec)
    errs += _validate_type_and_ports(svc)
    errs += _validate_source_ranges(svc, meta)
    errs += _validate_allocate_lb_node_ports(svc)
    errs += validate_load_balancer_class(None, svc)
    errs += _validate_external_traffic_policy(svc)
    errs += _validate_internal_traffic_policy(svc)
    errs += _validate_traffic_distribution(spec)
    return dedupe(errs)


def _validate_topology_annotations(meta: Obj) -> list[FieldError]:
    ann = meta.get("annotations") or {}
    if ANNOTATION_TOPOLOGY_MODE in ann and ANNOTATION_TOPOLOGY_HINTS in ann:
        if ann[ANNOTATION_TOPOLOGY_MODE] != ann[ANNOTATION_TOPOLOGY_HINTS]:
            return [
                invalid(
                    f"metadata.annotations[{ANNOTATION_TOPOLOGY_MODE}]",
                    ann[ANNOTATION_TOPOLOGY_MODE],
                    f"must match annotations[{ANNOTATION_TOPOLOGY_HINTS}] when both are specified",
                )
            ]
    return []


def _validate_type_specific(svc: Obj) -> list[FieldError]:
    spec, t = spec_of(svc), svc_type(svc)
    errs: list[FieldError] = []
    if not ports_of(svc) and not is_headless(svc) and t != EXTERNAL_NAME:
        errs.append(required("spec.ports"))
    if t in (LOAD_BALANCER, NODE_PORT) and is_headless(svc):
        errs.append(invalid("spec.clusterIPs[0]", NONE, f"may not be set to 'None' for {t} services"))
    elif t == EXTERNAL_NAME:
        if cluster_ips(svc):
            errs.append(forbidden("spec.clusterIPs", "may not be set for ExternalName services"))
        if spec.get("ipFamilies"):
            errs.append(forbidden("spec.ipFamilies", "may not be set for ExternalName services"))
        if spec.get("ipFamilyPolicy") is not None:
            errs.append(forbidden("spec.ipFamilyPolicy", "may not be set for ExternalName services"))
        cname = str(spec.get("externalName") or "").removesuffix(".")
        if cname:
            errs += names.validate_dns1123_subdomain(cname, "spec.externalName")
        else:
            errs.append(required("spec.externalName"))
    return errs


def validate_service_port(port: Obj, require_name: bool, seen: set[str], path: str) -> list[FieldError]:
    """validateServicePort: name, port, protocol, targetPort, appProtocol."""
    errs: list[FieldError] = []
    name = port.get("name") or ""
    if require_name and not name:
        errs.append(required(f"{path}.name"))
    elif name:
        errs += names.validate_dns1123_label(name, f"{path}.name")
        if name in seen:
            errs.append(duplicate(f"{path}.name", name))
        else:
            seen.add(name)
    number = _int(port.get("port"))
    errs += [invalid(f"{path}.port", number, m) for m in names.is_valid_port_num(number)]
    protocol = port.get("protocol") or ""
    if not protocol:
        errs.append(required(f"{path}.protocol"))
    elif protocol not in SUPPORTED_PROTOCOLS:
        errs.append(not_supported(f"{path}.protocol", protocol, SUPPORTED_PROTOCOLS))
    errs += names.validate_port_num_or_name(port.get("targetPort"), f"{path}.targetPort")
    if port.get("appProtocol") is not None:
        errs += names.validate_qualified_name(str(port["appProtocol"]), f"{path}.appProtocol")
    # headless services may keep a targetPort different from port (upstream tolerates it)
    return errs


def _validate_session_affinity(spec: Obj) -> list[FieldError]:
    errs: list[FieldError] = []
    affinity = spec.get("sessionAffinity") or ""
    if not affinity:
        errs.append(required("spec.sessionAffinity"))
    elif affinity not in SUPPORTED_AFFINITY:
        errs.append(not_supported("spec.sessionAffinity", affinity, SUPPORTED_AFFINITY))
    config = spec.get("sessionAffinityConfig")
    if affinity == "ClientIP":
        errs += _validate_client_ip_config(config)
    elif affinity == NONE and config is not None:
        errs.append(forbidden("spec.sessionAffinityConfig", "must not be set when session affinity is None"))
    return errs


def _validate_client_ip_config(config: Any) -> list[FieldError]:
    path, why = "spec.sessionAffinityConfig", "when session affinity type is ClientIP"
    if not isinstance(config, Mapping):
        return [required(path, why)]
    client_ip = config.get("clientIP")
    if not isinstance(client_ip, Mapping):
        return [required(f"{path}.clientIP", why)]
    timeout = client_ip.get("timeoutSeconds")
    if timeout is None:
        return [required(f"{path}.clientIP.timeoutSeconds", why)]
    timeout = _int(timeout)
    if timeout <= 0 or timeout > MAX_CLIENT_IP_AFFINITY_SECONDS:
        return [
            invalid(
                f"{path}.clientIP.timeoutSeconds",
                timeout,
                f"must be greater than 0 and less than {MAX_CLIENT_IP_AFFINITY_SECONDS}",
            )
        ]
    return []


def _validate_external_ips(spec: Obj) -> list[FieldError]:
    errs: list[FieldError] = []
    for i, ip in enumerate(spec.get("externalIPs") or []):
        path = f"spec.externalIPs[{i}]"
        bad = names.validate_ip(ip, path)
        errs += bad if bad else names.validate_non_special_ip(ip, path)
    return errs


def _validate_type_and_ports(svc: Obj) -> list[FieldError]:
    errs: list[FieldError] = []
    t = svc_type(svc)
    if not t:
        errs.append(required("spec.type"))
    elif t not in SUPPORTED_TYPES:
        errs.append(not_supported("spec.type", t, SUPPORTED_TYPES))
    ports = ports_of(svc)
    if t == CLUSTER_IP:
        for i, p in enumerate(ports):
            if _int(p.get("nodePort")) != 0:
                errs.append(forbidden(f"spec.ports[{i}].nodePort", "may not be used when `type` is 'ClusterIP'"))
    node_ports: set[tuple[str, int]] = set()
    for i, p in enumerate(ports):
        np = _int(p.get("nodePort"))
        if np == 0:
            continue
        key = (p.get("protocol") or "", np)
        if key in node_ports:
            errs.append(duplicate(f"spec.ports[{i}].nodePort", np))
        node_ports.add(key)
    seen: set[tuple[str, int]] = set()
    for i, p in enumerate(ports):
        key = (p.get("protocol") or "", _int(p.get("port")))
        if key in seen:
            errs.append(duplicate(f"spec.ports[{i}]", port_key_text(*key)))
        seen.add(key)
    return errs


def _validate_source_ranges(svc: Obj, meta: Obj) -> list[FieldError]:
    errs: list[FieldError] = []
    is_lb = svc_type(svc) == LOAD_BALANCER
    ranges = spec_of(svc).get("loadBalancerSourceRanges") or []
    annotations = meta.get("annotations") or {}
    if ranges:
        path = "spec.LoadBalancerSourceRanges"  # sic: upstream's capitalised path
        if not is_lb:
            errs.append(forbidden(path, LB_ONLY))
        for i, value in enumerate(ranges):
            errs += names.validate_cidr(str(value).strip(), f"{path}[{i}]")
    elif ANNOTATION_LB_SOURCE_RANGES in annotations:
        path = f"metadata.annotations[{ANNOTATION_LB_SOURCE_RANGES}]"
        if not is_lb:
            errs.append(forbidden(path, LB_ONLY))
        value = str(annotations[ANNOTATION_LB_SOURCE_RANGES]).strip()
        if value:
            for cidr in value.split(","):
                errs += names.validate_cidr(cidr.strip(), path)
    return errs


def _validate_allocate_lb_node_ports(svc: Obj) -> list[FieldError]:
    value = spec_of(svc).get("allocateLoadBalancerNodePorts")
    is_lb = svc_type(svc) == LOAD_BALANCER
    if value is not None and not is_lb:
        return [forbidden("spec.allocateLoadBalancerNodePorts", LB_ONLY)]
    if is_lb and value is None:
        return [required("allocateLoadBalancerNodePorts")]  # sic: upstream omits "spec."
    return []


def validate_load_balancer_class(old: Obj | None, svc: Obj) -> list[FieldError]:
    """Qualified name, LoadBalancer only, and fixed once set while the type stays LoadBalancer."""
    errs: list[FieldError] = []
    new_class = spec_of(svc).get("loadBalancerClass")
    if old is not None and svc_type(old) == LOAD_BALANCER and svc_type(svc) == LOAD_BALANCER:
        if spec_of(old).get("loadBalancerClass") != new_class:
            shown = new_class if new_class is not None else GoValue("null")
            errs.append(invalid("spec.loadBalancerClass", shown, "may not change once set"))
    if svc_type(svc) == LOAD_BALANCER:
        if new_class is not None:
            errs += names.validate_qualified_name(str(new_class), "spec.loadBalancerClass")
    elif new_class is not None:
        errs.append(forbidden("spec.loadBalancerClass", LB_ONLY))
    return errs


def _validate_external_traffic_policy(svc: Obj) -> list[FieldError]:
    spec = spec_of(svc)
    errs: list[FieldError] = []
    etp = spec.get("externalTrafficPolicy") or ""
    if not externally_accessible(svc):
        if etp:
            errs.append(
                invalid("spec.externalTrafficPolicy", etp, "may only be set for externally-accessible services")
            )
    elif not etp:
        errs.append(required("spec.externalTrafficPolicy"))
    elif etp not in SUPPORTED_TRAFFIC_POLICIES:
        errs.append(not_supported("spec.externalTrafficPolicy", etp, SUPPORTED_TRAFFIC_POLICIES))
    hc = _int(spec.get("healthCheckNodePort"))
    if not needs_health_check(svc):
        if hc != 0:
            errs.append(
                invalid(
                    "spec.healthCheckNodePort",
                    hc,
                    "may only be set when `type` is 'LoadBalancer' and `externalTrafficPolicy` is 'Local'",
                )
            )
    elif hc == 0:
        errs.append(required("spec.healthCheckNodePort"))
    else:
        errs += [invalid("spec.healthCheckNodePort", hc, m) for m in names.is_valid_port_num(hc)]
    return errs


def _validate_internal_traffic_policy(svc: Obj) -> list[FieldError]:
    itp = spec_of(svc).get("internalTrafficPolicy")
    if itp is None:
        if svc_type(svc) in (NODE_PORT, LOAD_BALANCER, CLUSTER_IP):
            return [required("spec.internalTrafficPolicy")]
        return []
    if itp not in SUPPORTED_TRAFFIC_POLICIES:
        return [not_supported("spec.internalTrafficPolicy", itp, SUPPORTED_TRAFFIC_POLICIES)]
    return []


def _validate_traffic_distribution(spec: Obj) -> list[FieldError]:
    value = spec.get("trafficDistribution")
    if value is None or value in SUPPORTED_TRAFFIC_DISTRIBUTIONS:
        return []
    return [not_supported("spec.trafficDistribution", value, SUPPORTED_TRAFFIC_DISTRIBUTIONS)]


# --------------------------------------------------------------------------
# ValidateServiceClusterIPsRelatedFields (also the allocator's pre-check)


def validate_cluster_ips_related_fields(svc: Obj) -> list[FieldError]:
    """clusterIP/clusterIPs agreement, families, policy, dual-stack shape."""
    if svc_type(svc) == EXTERNAL_NAME:
        return []
    spec = spec_of(svc)
    ips = cluster_ips(svc)
    shown = string_slice(spec.get("clusterIPs") if isinstance(spec.get("clusterIPs"), list) else None)
    errs: list[FieldError] = []
    if spec.get("clusterIP"):
        if not ips:
            errs.append(required("spec.clusterIPs"))
        elif ips[0] != spec.get("clusterIP"):
            errs.append(invalid("spec.clusterIPs", shown, "first value must match `clusterIP`"))
    elif ips:
        errs.append(invalid("spec.clusterIPs", shown, "must be empty when `clusterIP` is not specified"))
    errs += _validate_families_and_policy(spec)
    bad_ips = False
    for i, ip in enumerate(ips):
        if i == 0 and ip == NONE:
            if len(ips) > 1:
                bad_ips = True
                errs.append(invalid("spec.clusterIPs", shown, "'None' must be the first and only value"))
            continue
        bad = names.validate_ip(ip, f"spec.clusterIPs[{i}]")
        bad_ips = bad_ips or bool(bad)
        errs += bad
    if len(ips) > 2:
        errs.append(invalid("spec.clusterIPs", shown, "may only hold up to 2 values"))
    if bad_ips:
        return errs
    if len(ips) > 1 and len({names.ip_family(ip) for ip in ips}) != len(ips):
        errs.append(invalid("spec.clusterIPs", shown, "may specify no more than one IP for each IP family"))
    families = spec.get("ipFamilies") or []
    if not is_headless(svc) and ips and families:
        for i, ip in enumerate(ips[: len(families)]):
            fam = names.ip_family(ip)
            if families[i] == "IPv4" and fam == "IPv6":
                errs.append(invalid(f"spec.clusterIPs[{i}]", ip, f"expected an IPv4 value as indicated by `ipFamilies[{i}]`"))
            if families[i] == "IPv6" and fam != "IPv6":
                errs.append(invalid(f"spec.clusterIPs[{i}]", ip, f"expected an IPv6 value as indicated by `ipFamilies[{i}]`"))
    return errs


def _validate_families_and_policy(spec: Obj) -> list[FieldError]:
    errs: list[FieldError] = []
    seen: set[str] = set()
    for i, fam in enumerate(spec.get("ipFamilies") or []):
        if fam not in SUPPORTED_IP_FAMILIES:
            errs.append(not_supported(f"spec.ipFamilies[{i}]", fam, SUPPORTED_IP_FAMILIES))
        if fam in seen:
            errs.append(duplicate(f"spec.ipFamilies[{i}]", fam))
        seen.add(fam)
    policy = spec.get("ipFamilyPolicy")
    if policy is not None and policy not in SUPPORTED_IP_FAMILY_POLICIES:
        errs.append(not_supported("spec.ipFamilyPolicy", policy, SUPPORTED_IP_FAMILY_POLICIES))
    return errs


# --------------------------------------------------------------------------
# ValidateServiceUpdate


def validate_service_update(new: Obj, old: Obj) -> list[FieldError]:
    """Metadata immutability, clusterIP/ipFamily changes, LB class, HC port, then every create rule."""
    new_meta = new.get("metadata") if isinstance(new.get("metadata"), Mapping) else {}
    old_meta = old.get("metadata") if isinstance(old.get("metadata"), Mapping) else {}
    errs = validate_object_meta_update(new_meta, old_meta, "metadata")
    errs += _validate_cluster_ips_change(old, new)
    errs += _validate_ip_families_change(old, new)
    errs += validate_load_balancer_class(old, new)
    if needs_health_check(old) and needs_health_check(new):
        if _int(spec_of(new).get("healthCheckNodePort")) != _int(spec_of(old).get("healthCheckNodePort")):
            errs.append(forbidden("spec.healthCheckNodePort", FIELD_IMMUTABLE))
    return dedupe(errs + validate_service(new))


def _policy_value(spec: Obj) -> Any:
    policy = spec.get("ipFamilyPolicy")
    return GoValue("null") if policy is None else policy


def _validate_cluster_ips_change(old: Obj, new: Obj) -> list[FieldError]:
    """validateUpgradeDowngradeClusterIPs: why clusterIP is immutable (except via ExternalName)."""
    if EXTERNAL_NAME in (svc_type(new), svc_type(old)):
        return []
    if is_headless(old) and is_headless(new):
        return []
    old_ips, new_ips = cluster_ips(old), cluster_ips(new)
    shown = string_slice(spec_of(new).get("clusterIPs") if isinstance(spec_of(new).get("clusterIPs"), list) else None)
    errs: list[FieldError] = []
    if len(old_ips) == len(new_ips):
        for i, ip in enumerate(old_ips):
            if ip != new_ips[i]:
                errs.append(invalid(f"spec.clusterIPs[{i}]", shown, "may not change once set"))
    elif len(old_ips) > len(new_ips):
        if not new_ips:
            errs.append(invalid("spec.clusterIPs[0]", shown, "primary clusterIP can not be unset"))
        if old_ips and new_ips and new_ips[0] != old_ips[0]:
            errs.append(invalid("spec.clusterIPs[0]", shown, "may not change once set"))
        if len(new_ips) == 1 and spec_of(new).get("ipFamilyPolicy") != "SingleStack":
            errs.append(
                invalid(
                    "spec.ipFamilyPolicy",
                    _policy_value(spec_of(new)),
                    "must be set to 'SingleStack' when releasing the secondary clusterIP",
                )
            )
    elif old_ips and new_ips[0] != old_ips[0]:
        errs.append(invalid("spec.clusterIPs[0]", shown, "may not change once set"))
    return errs


def _validate_ip_families_change(old: Obj, new: Obj) -> list[FieldError]:
    """validateUpgradeDowngradeIPFamilies (headless services may change families)."""
    if EXTERNAL_NAME in (svc_type(new), svc_type(old)):
        return []
    if is_headless(new) != is_headless(old) or is_headless(new):
        return []
    new_spec = spec_of(new)
    old_fams = list(spec_of(old).get("ipFamilies") or [])
    new_fams = list(new_spec.get("ipFamilies") or [])
    fams_shown = ip_family_slice(new_spec.get("ipFamilies") if isinstance(new_spec.get("ipFamilies"), list) else None)
    ips_shown = string_slice(new_spec.get("clusterIPs") if isinstance(new_spec.get("clusterIPs"), list) else None)
    errs: list[FieldError] = []
    if len(old_fams) == len(new_fams):
        for i, fam in enumerate(old_fams):
            if fam != new_fams[i]:
                errs.append(invalid("spec.ipFamilies[0]", fams_shown, "may not change once set"))
    elif len(old_fams) > len(new_fams):
        if not cluster_ips(new):
            errs.append(invalid("spec.ipFamilies[0]", fams_shown, "primary ipFamily can not be unset"))
        if new_fams and new_fams[0] != old_fams[0]:
            errs.append(invalid("spec.ipFamilies[0]", ips_shown, "may not change once set"))
        if len(new_fams) == 1 and new_spec.get("ipFamilyPolicy") != "SingleStack":
            errs.append(
                invalid(
                    "spec.ipFamilyPolicy",
                    _policy_value(new_spec),
                    "must be set to 'SingleStack' when releasing the secondary ipFamily",
                )
            )
    elif old_fams and new_fams and new_fams[0] != old_fams[0]:
        errs.append(invalid("spec.ipFamilies[0]", ips_shown, "may not change once set"))
    return errs


def dedupe(errs: list[FieldError]) -> list[FieldError]:
    """ErrorList.ToAggregate drops errors whose text repeats; keep the first of each."""
    seen: set[str] = set()
    out: list[FieldError] = []
    for e in errs:
        text = str(e)
        if text not in seen:
            seen.add(text)
            out.append(e)
    return out


# --------------------------------------------------------------------------
# ValidateServiceStatusUpdate (metadata is checked by the generic registry)

SUPPORTED_LB_IP_MODES = ("Proxy", "VIP")


def validate_service_status_update(new: Obj, old: Obj) -> list[FieldError]:
    """ValidateLoadBalancerStatus: ingress only on LoadBalancer, IPs, ipMode, hostnames."""
    status = new.get("status")
    lb = status.get("loadBalancer") if isinstance(status, Mapping) else None
    ingress = (lb.get("ingress") if isinstance(lb, Mapping) else None) or []
    path = "status.loadBalancer.ingress"
    if svc_type(new) != LOAD_BALANCER and ingress:
        return [forbidden(path, "may only be used when `spec.type` is 'LoadBalancer'")]
    errs: list[FieldError] = []
    for i, ing in enumerate(ingress):
        at = f"{path}[{i}]"
        ip = ing.get("ip") or ""
        if ip:
            errs += names.validate_ip(ip, f"{at}.ip")
        mode = ing.get("ipMode")
        if mode is None:
            if ip:
                errs.append(required(f"{at}.ipMode", "must be specified when `ip` is set"))
        elif not ip:
            errs.append(forbidden(f"{at}.ipMode", "may not be specified when `ip` is not set"))
        elif mode not in SUPPORTED_LB_IP_MODES:
            errs.append(not_supported(f"{at}.ipMode", mode, SUPPORTED_LB_IP_MODES))
        hostname = ing.get("hostname") or ""
        if hostname:
            errs += names.validate_dns1123_subdomain(hostname, f"{at}.hostname")
            if names.parse_ip(hostname) is not None:
                errs.append(invalid(f"{at}.hostname", hostname, "must be a DNS name, not an IP address"))
    return errs
