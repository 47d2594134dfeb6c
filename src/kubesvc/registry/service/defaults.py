"""Service defaulting, split the way upstream applies it.

Upstream fills a Service in three places, and the order matters for which
error a bad request sees:

1. at decode, ``SetDefaults_Service`` (:func:`apply_decode_defaults`);
2. in the registry before allocation: ``patchAllocatedValues`` (update only:
   re-applying the same YAML keeps what was allocated), ``normalizeClusterIPs``
   (``clusterIP`` and ``clusterIPs`` kept in step) and ``initIPFamilyFields``
   (``ipFamilyPolicy``/``ipFamilies``, which depend on the cluster's ranges
   and can fail with field errors);
3. in ``PrepareForUpdate``, ``dropTypeDependentFields`` (clears what a type
   change made meaningless, when the client did not also change it).

:func:`default_service` and :func:`default_service_update` run 1-2 for the
registry; the allocation planner re-runs the IP-family step (it is
idempotent) and reports its errors, then runs step 3 on updates.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from kubesvc.api.errors import FieldError, invalid
from kubesvc.api.validation.govalue import string_slice
from kubesvc.api.validation.names import ip_family
from kubesvc.registry.service.config import ServiceConfig
from kubesvc.registry.service.validation import (
    CLUSTER_IP,
    EXTERNAL_NAME,
    LOAD_BALANCER,
    NODE_PORT,
    NONE,
    cluster_ips,
    externally_accessible,
    needs_health_check,
    svc_type,
    validate_cluster_ips_related_fields,
)

Obj = dict[str, Any]

DEFAULT_CLIENT_IP_TIMEOUT = 10800
SINGLE_STACK = "SingleStack"
PREFER_DUAL_STACK = "PreferDualStack"
REQUIRE_DUAL_STACK = "RequireDualStack"


def _spec(svc: Obj) -> Obj:
    spec = svc.get("spec")
    if not isinstance(spec, dict):
        spec = svc["spec"] = {}
    return spec


def _other_family(fam: str) -> str:
    return "IPv6" if fam == "IPv4" else "IPv4"


# --------------------------------------------------------------------------
# 1. decode-time defaults (SetDefaults_Service)


def apply_decode_defaults(svc: Obj) -> None:
    spec = _spec(svc)
    if not spec.get("sessionAffinity"):
        spec["sessionAffinity"] = NONE
    if spec["sessionAffinity"] == NONE:
        spec.pop("sessionAffinityConfig", None)
    elif spec["sessionAffinity"] == "ClientIP":
        config = spec.get("sessionAffinityConfig")
        client_ip = config.get("clientIP") if isinstance(config, dict) else None
        if not isinstance(client_ip, dict) or client_ip.get("timeoutSeconds") is None:
            spec["sessionAffinityConfig"] = {"clientIP": {"timeoutSeconds": DEFAULT_CLIENT_IP_TIMEOUT}}
    if not spec.get("type"):
        spec["type"] = CLUSTER_IP
    for port in spec.get("ports") or []:
        if not isinstance(port, dict):
            continue
        if not port.get("protocol"):
            port["protocol"] = "TCP"
        if port.get("targetPort") in (None, 0, ""):
            port["targetPort"] = port.get("port", 0)
    if externally_accessible(svc) and not spec.get("externalTrafficPolicy"):
        spec["externalTrafficPolicy"] = "Cluster"
    if spec.get("internalTrafficPolicy") is None and spec["type"] in (NODE_PORT, LOAD_BALANCER, CLUSTER_IP):
        spec["internalTrafficPolicy"] = "Cluster"
    if spec["type"] == LOAD_BALANCER:
        if spec.get("allocateLoadBalancerNodePorts") is None:
            spec["allocateLoadBalancerNodePorts"] = True
        status = svc.get("status") if isinstance(svc.get("status"), dict) else {}
        lb = status.get("loadBalancer") if isinstance(status.get("loadBalancer"), dict) else {}
        for ing in lb.get("ingress") or []:
            if isinstance(ing, dict) and ing.get("ip") and ing.get("ipMode") is None:
                ing["ipMode"] = "VIP"


# --------------------------------------------------------------------------
# 2. registry-time defaults


def normalize_cluster_ips(new: Obj, old: Obj | None) -> None:
    """Keep ``clusterIP``/``clusterIPs`` in step for clients that only know one of them."""
    spec = _spec(new)
    if old is None:
        if spec.get("clusterIP") and not spec.get("clusterIPs"):
            spec["clusterIPs"] = [spec["clusterIP"]]
        return
    old_spec = _spec(old)
    old_ips, old_ip = cluster_ips(old), old_spec.get("clusterIP") or ""
    if old_ips and not spec.get("clusterIPs") and old_ip == (spec.get("clusterIP") or ""):
        spec["clusterIPs"] = list(old_ips)  # an old client patched something else
    new_ip = spec.get("clusterIP") or ""
    if old_ip != new_ip:
        same_plural = cluster_ips(new) == old_ips
        if old_ip and not new_ip:
            if same_plural:
                spec.pop("clusterIPs", None)  # cleared singular: clear plural on their behalf
        elif same_plural:
            spec["clusterIPs"] = [new_ip]


def _needs_node_port(svc: Obj) -> bool:
    return svc_type(svc) in (NODE_PORT, LOAD_BALANCER)


def _node_ports(svc: Obj) -> set[int]:
    return {p.get("nodePort") for p in _spec(svc).get("ports") or [] if isinstance(p, dict) and p.get("nodePort")}


def patch_allocated_values(new: Obj, old: Obj) -> None:
    """Fill values we allocated earlier that a re-applied manifest leaves out."""
    spec, old_spec = _spec(new), _spec(old)
    if svc_type(old) != EXTERNAL_NAME and svc_type(new) != EXTERNAL_NAME:
        if not spec.get("clusterIP") and old_spec.get("clusterIP"):
            spec["clusterIP"] = old_spec["clusterIP"]
        if not spec.get("clusterIPs") and cluster_ips(old):
            spec["clusterIPs"] = list(cluster_ips(old))
    if _needs_node_port(old) and _needs_node_port(new):
        used = _node_ports(old) & _node_ports(new)
        by_name = {
            p.get("name") or "": p.get("nodePort") or 0 for p in old_spec.get("ports") or [] if isinstance(p, dict)
        }
        for p in spec.get("ports") or []:
            if isinstance(p, dict) and not p.get("nodePort"):
                value = by_name.get(p.get("name") or "", 0)
                if value and value not in used:
                    p["nodePort"] = value
    if needs_health_check(old) and needs_health_check(new):
        if not spec.get("healthCheckNodePort") and old_spec.get("healthCheckNodePort"):
            spec["healthCheckNodePort"] = old_spec["healthCheckNodePort"]


def _matching_prefer_dual_stack(new: Obj, old: Obj | None) -> bool:
    """A PreferDualStack service is never auto-upgraded/downgraded by cluster changes."""
    if old is None:
        return False
    spec, old_spec = _spec(new), _spec(old)
    if spec.get("ipFamilyPolicy") is None or svc_type(old) != svc_type(new):
        return False
    if svc_type(new) not in (CLUSTER_IP, NODE_PORT, LOAD_BALANCER):
        return False
    if spec.get("ipFamilyPolicy") != PREFER_DUAL_STACK:
        return False
    if old_spec.get("ipFamilyPolicy") not in (None, PREFER_DUAL_STACK):
        return False
    return cluster_ips(old) == cluster_ips(new) and (old_spec.get("ipFamilies") or []) == (
        spec.get("ipFamilies") or []
    )


def _default_policy(new: Obj, old: Obj | None) -> None:
    spec = _spec(new)
    if spec.get("ipFamilyPolicy") is not None:
        return
    if old is not None and _spec(old).get("ipFamilyPolicy") is not None:
        spec["ipFamilyPolicy"] = _spec(old)["ipFamilyPolicy"]
    elif spec.get("clusterIP") == NONE and not spec.get("selector"):
        spec["ipFamilyPolicy"] = REQUIRE_DUAL_STACK  # headless + selectorless
    else:
        spec["ipFamilyPolicy"] = SINGLE_STACK


def _update_prep(new: Obj, old: Obj) -> list[FieldError]:
    """On update, SingleStack truncates unchanged dual fields; other policies may not shrink them."""
    spec, old_spec = _spec(new), _spec(old)
    ips, fams = cluster_ips(new), list(spec.get("ipFamilies") or [])
    old_fams = list(old_spec.get("ipFamilies") or [])
    if spec["ipFamilyPolicy"] == SINGLE_STACK:
        if ips == cluster_ips(old) and len(ips) > 1:
            spec["clusterIPs"] = ips[:1]
        if fams == old_fams and len(fams) > 1:
            spec["ipFamilies"] = fams[:1]
        return []
    errs: list[FieldError] = []
    if ips and len(ips) < len(cluster_ips(old)):
        errs.append(
            invalid("spec.ipFamilyPolicy", spec["ipFamilyPolicy"], "must be 'SingleStack' to release the secondary cluster IP")
        )
    if fams and len(fams) < len(old_fams):
        errs.append(
            invalid("spec.ipFamilyPolicy", spec["ipFamilyPolicy"], "must be 'SingleStack' to release the secondary IP family")
        )
    return errs


def _infer_families(new: Obj, configured: Sequence[str]) -> list[FieldError]:
    """Policy/shape agreement, then ``ipFamilies`` inferred from the user's ``clusterIPs``."""
    spec = _spec(new)
    ips = cluster_ips(new)
    fams = spec.setdefault("ipFamilies", []) if isinstance(spec.get("ipFamilies"), list) else None
    if fams is None:
        fams = spec["ipFamilies"] = []
    errs: list[FieldError] = []
    if spec["ipFamilyPolicy"] == SINGLE_STACK:
        why = "must be 'RequireDualStack' or 'PreferDualStack' when multiple {} are specified"
        if len(ips) == 2:
            errs.append(invalid("spec.ipFamilyPolicy", SINGLE_STACK, why.format("cluster IPs")))
        if len(fams) == 2:
            errs.append(invalid("spec.ipFamilyPolicy", SINGLE_STACK, why.format("IP families")))
    for i, ip in enumerate(ips):
        if ip == NONE:
            break
        fam = ip_family(ip) or "unknown"
        if i >= len(fams):
            if fam not in configured:
                errs.append(
                    invalid(f"spec.clusterIPs[{i}]", string_slice(ips), f"{fam} is not configured on this cluster")
                )
            else:
                fams.append(fam)
    return errs


def init_ip_family_fields(new: Obj, old: Obj | None, configured: Sequence[str]) -> list[FieldError]:
    """initIPFamilyFields: default ``ipFamilyPolicy`` and ``ipFamilies`` for this cluster.

    ``configured`` lists the cluster's families, default (primary range) first.
    Returns upstream's field errors (the request then fails with 422).
    """
    if svc_type(new) == EXTERNAL_NAME or _matching_prefer_dual_stack(new, old):
        return []
    _default_policy(new, old)
    errs = validate_cluster_ips_related_fields(new)
    if errs:
        return errs
    errs = _update_prep(new, old) if old is not None else []
    errs += _infer_families(new, configured)
    if errs:
        return errs
    spec = _spec(new)
    fams: list[str] = spec["ipFamilies"]
    policy = spec["ipFamilyPolicy"]
    if spec.get("clusterIP") == NONE and not spec.get("selector"):
        if not fams:
            fams.append(configured[0])
        if len(fams) < 2 and policy != SINGLE_STACK:
            fams.append(_other_family(fams[0]))  # allowed even on a single-stack cluster
        return []
    if policy == REQUIRE_DUAL_STACK and len(configured) < 2:
        errs.append(invalid("spec.ipFamilyPolicy", policy, "this cluster is not configured for dual-stack services"))
    for i, fam in enumerate(fams):
        if fam not in configured:
            errs.append(invalid(f"spec.ipFamilies[{i}]", fam, "not configured on this cluster"))
    if errs:
        return errs
    if not fams:
        fams.append(configured[0])
    if policy != SINGLE_STACK and len(fams) == 1 and len(configured) == 2:
        fams.append(_other_family(fams[0]))
    return []


# --------------------------------------------------------------------------
# 3. PrepareForUpdate's dropTypeDependentFields


def drop_type_dependent_fields(new: Obj, old: Obj) -> None:
    """Clear fields the new type does not use, unless the client changed them too."""
    spec, old_spec = _spec(new), _spec(old)
    if svc_type(old) != EXTERNAL_NAME and svc_type(new) == EXTERNAL_NAME:
        if (spec.get("clusterIP") or "") == (old_spec.get("clusterIP") or "") and cluster_ips(new) == cluster_ips(old):
            spec.pop("clusterIP", None)
            spec.pop("clusterIPs", None)
        if (spec.get("ipFamilies") or None) == (old_spec.get("ipFamilies") or None):
            spec.pop("ipFamilies", None)
        if spec.get("ipFamilyPolicy") == old_spec.get("ipFamilyPolicy"):
            spec.pop("ipFamilyPolicy", None)
    if _needs_node_port(old) and not _needs_node_port(new) and _node_ports(new) <= _node_ports(old):
        for p in spec.get("ports") or []:
            if isinstance(p, dict):
                p.pop("nodePort", None)
    if needs_health_check(old) and not needs_health_check(new):
        if (spec.get("healthCheckNodePort") or 0) == (old_spec.get("healthCheckNodePort") or 0):
            spec.pop("healthCheckNodePort", None)
    if svc_type(old) == LOAD_BALANCER and svc_type(new) != LOAD_BALANCER:
        new_alloc, old_alloc = spec.get("allocateLoadBalancerNodePorts"), old_spec.get("allocateLoadBalancerNodePorts")
        if new_alloc is not None and new_alloc == old_alloc:
            spec.pop("allocateLoadBalancerNodePorts", None)
        if spec.get("loadBalancerClass") == old_spec.get("loadBalancerClass"):
            spec.pop("loadBalancerClass", None)
    if externally_accessible(old) and not externally_accessible(new):
        if (spec.get("externalTrafficPolicy") or "") == (old_spec.get("externalTrafficPolicy") or ""):
            spec.pop("externalTrafficPolicy", None)
    if svc_type(new) != LOAD_BALANCER:
        status = new.get("status")
        if isinstance(status, dict):
            status["loadBalancer"] = {}


# --------------------------------------------------------------------------
# entry points


def default_service(svc: Obj, cfg: ServiceConfig) -> None:
    """All create-time defaults, in upstream's order (IP-family errors are left to the planner)."""
    apply_decode_defaults(svc)
    normalize_cluster_ips(svc, None)
    init_ip_family_fields(svc, None, cfg.ip_families)


def default_service_update(new: Obj, old: Obj, cfg: ServiceConfig) -> None:
    """Update-time defaults: decode defaults, carry over allocated values, keep IP fields in step."""
    apply_decode_defaults(new)
    patch_allocated_values(new, old)
    normalize_cluster_ips(new, old)
    init_ip_family_fields(new, old, cfg.ip_families)
