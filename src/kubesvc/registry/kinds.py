"""Strategies for the kinds with rules beyond the generic ones.

Services have their own package (:mod:`kubesvc.registry.service`); everything
else small enough to read at a glance lives here.
"""

from __future__ import annotations

from typing import Any

from kubesvc.api import errors
from kubesvc.api.errors import FieldError
from kubesvc.api.resources import Resource, by_plural
from kubesvc.api.selectors import from_label_selector_dict
from kubesvc.registry.podspec import default_pod_spec, validate_pod_spec
from kubesvc.registry.strategy import Strategy

Obj = dict[str, Any]


def _res(group: str, plural: str) -> Resource:
    r = by_plural(group, "v1", plural)
    assert r is not None, plural
    return r


class NamespaceStrategy(Strategy):
    """Namespaces carry the ``kubernetes`` finalizer until their contents are gone."""

    has_status = True

    def initial_status(self, obj: Obj) -> Any:
        return {"phase": "Active"}

    def prepare_for_create(self, obj: Obj) -> None:
        super().prepare_for_create(obj)
        obj["spec"] = {"finalizers": ["kubernetes"]}

    def prepare_for_update(self, obj: Obj, old: Obj) -> None:
        super().prepare_for_update(obj, old)
        obj["spec"] = old.get("spec") or {}

    def default(self, obj: Obj) -> None:
        m = obj.setdefault("metadata", {})
        if m.get("name"):
            m.setdefault("labels", {})["kubernetes.io/metadata.name"] = m["name"]


class PodStrategy(Strategy):
    has_status = True

    def initial_status(self, obj: Obj) -> Any:
        return {"phase": "Pending", "qosClass": "BestEffort"}

    def default(self, obj: Obj) -> None:
        spec = obj.setdefault("spec", {})
        if isinstance(spec, dict):
            default_pod_spec(spec)
            spec.setdefault("serviceAccountName", "default")
            spec.setdefault("serviceAccount", spec["serviceAccountName"])
            spec.setdefault("priority", 0)

    def validate(self, obj: Obj) -> list[FieldError]:
        return validate_pod_spec(obj.get("spec"), "spec")

    def validate_update(self, obj: Obj, old: Obj) -> list[FieldError]:
        errs = self.validate(obj)
        new_spec, old_spec = dict(obj.get("spec") or {}), dict(old.get("spec") or {})
        # upstream allows only a few pod spec fields to change; images above all
        for s in (new_spec, old_spec):
            s.pop("activeDeadlineSeconds", None)
            s.pop("tolerations", None)
            s["containers"] = [{k: v for k, v in c.items() if k != "image"} for c in s.get("containers") or []]
            if not old_spec.get("nodeName"):
                s.pop("nodeName", None)
        if new_spec != old_spec:
            errs.append(errors.forbidden("spec", "pod updates may not change fields other than `spec.containers[*].image`,"
                                         "`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,"
                                         "`spec.tolerations` (only additions to existing tolerations),"
                                         "`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)"))
        return errs


class WorkloadStrategy(Strategy):
    """Deployments and ReplicaSets: generation, replicas and a selector matching the template."""

    has_status = True
    has_generation = True
    is_deployment = False

    def default(self, obj: Obj) -> None:
        spec = obj.setdefault("spec", {})
        if not isinstance(spec, dict):
            return
        spec.setdefault("replicas", 1)
        if self.is_deployment:
            spec.setdefault("strategy", {"type": "RollingUpdate"})
            st = spec["strategy"]
            if st.get("type", "RollingUpdate") == "RollingUpdate":
                st.setdefault("type", "RollingUpdate")
                ru = st.setdefault("rollingUpdate", {})
                ru.setdefault("maxUnavailable", "25%")
                ru.setdefault("maxSurge", "25%")
            spec.setdefault("revisionHistoryLimit", 10)
            spec.setdefault("progressDeadlineSeconds", 600)
        tmpl = spec.get("template")
        if isinstance(tmpl, dict) and isinstance(tmpl.get("spec"), dict):
            default_pod_spec(tmpl["spec"])
            tmpl.setdefault("metadata", {}).setdefault("creationTimestamp", None)

    def validate(self, obj: Obj) -> list[FieldError]:
        spec = obj.get("spec") or {}
        errs: list[FieldError] = []
        replicas = spec.get("replicas")
        if not isinstance(replicas, int) or replicas < 0:
            errs.append(errors.invalid("spec.replicas", replicas, "must be greater than or equal to 0"))
        sel = spec.get("selector")
        if not sel or not (sel.get("matchLabels") or sel.get("matchExpressions")):
            errs.append(errors.required("spec.selector"))
            errs.append(errors.invalid("spec.selector", sel or {}, "empty selector is invalid for deployment"
                                       if self.is_deployment else "empty selector is invalid for replicaset"))
        tmpl = spec.get("template") or {}
        labels = (tmpl.get("metadata") or {}).get("labels") or {}
        if sel and (sel.get("matchLabels") or sel.get("matchExpressions")):
            try:
                ok = from_label_selector_dict(sel).matches(labels)
            except errors.StatusError as e:
                errs.append(errors.invalid("spec.selector", sel, e.message))
                ok = True
            if not ok:
                errs.append(errors.invalid("spec.template.metadata.labels", labels,
                                           "`selector` does not match template `labels`"))
        errs += validate_pod_spec(tmpl.get("spec"), "spec.template.spec")
        return errs

    def validate_update(self, obj: Obj, old: Obj) -> list[FieldError]:
        errs = self.validate(obj)
        if (obj.get("spec") or {}).get("selector") != (old.get("spec") or {}).get("selector"):
            errs.append(errors.invalid("spec.selector", (obj.get("spec") or {}).get("selector"), "field is immutable"))
        return errs


class DeploymentStrategy(WorkloadStrategy):
    is_deployment = True


class StatusStrategy(Strategy):
    has_status = True


class CreateOnUpdateStrategy(Strategy):
    allow_create_on_update = True


class EndpointSliceStrategy(Strategy):
    has_generation = True


class IPAddressPoolStrategy(Strategy):
    """kubesvc.io/v1 IPAddressPool: LoadBalancer addresses (kubesvc.lb reads them).

    Malformed or dangerous pools are refused here, at write time, so a typo is
    an API error the user sees rather than a pool the controller quietly skips.
    """

    has_status = True
    has_generation = True

    def default(self, obj: Obj) -> None:
        spec = obj.setdefault("spec", {})
        if isinstance(spec, dict):
            spec.setdefault("autoAssign", True)
            spec.setdefault("avoidBuggyIPs", False)

    def validate(self, obj: Obj) -> list[FieldError]:
        spec = obj.get("spec")
        if not isinstance(spec, dict):
            return [errors.required("spec")]
        addrs = spec.get("addresses")
        if not isinstance(addrs, list) or not addrs:
            return [errors.required("spec.addresses")]
        errs: list[FieldError] = []
        for i, a in enumerate(addrs):
            msg = pool_range_problem(a)
            if msg:
                errs.append(errors.invalid(f"spec.addresses[{i}]", a, msg))
        for f in ("autoAssign", "avoidBuggyIPs"):
            if not isinstance(spec.get(f), bool):
                errs.append(errors.invalid(f"spec.{f}", spec.get(f), "must be a boolean"))
        return errs


def pool_range_problem(text: Any) -> str:
    """Why ``text`` is not a usable pool entry (a CIDR or ``first-last``), or ``""``.

    Kept here (registry may not import kubesvc.lb): the same rule as
    ``kubesvc.lb.pools.parse_range``, with the cluster's own networks reserved
    (the node addresses, pods, services) as the issue asks.
    """
    import ipaddress

    from kubesvc.api import addressplan as plan

    if not isinstance(text, str):
        return "must be a CIDR (192.168.1.0/24) or a range (192.168.1.10-192.168.1.20)"
    try:
        if "-" in text:
            lo, hi = (ipaddress.ip_address(x.strip()) for x in text.split("-", 1))
            if lo.version != hi.version or lo > hi:
                return "range start must not be after its end, and both of one IP family"
            nets = list(ipaddress.summarize_address_range(lo, hi))  # type: ignore[type-var]
        else:
            nets = [ipaddress.ip_network(text.strip(), strict=False)]
    except ValueError:
        return "must be a CIDR (192.168.1.0/24) or a range (192.168.1.10-192.168.1.20)"
    node_addrs = ipaddress.ip_network(plan.NODE_NETWORK_GATEWAY + "/24", strict=False)
    for what, reserved in (("the node addresses", node_addrs), ("the pod CIDR", plan.POD_CIDR),
                           ("the service CIDR", plan.SERVICE_CIDR)):
        r = ipaddress.ip_network(reserved)
        if any(n.version == r.version and n.overlaps(r) for n in nets):  # type: ignore[arg-type]
            return f"overlaps {what} ({r})"
    if any(n.is_multicast or n.is_unspecified for n in nets):
        return "must not be multicast or unspecified"
    return ""


def default_strategies() -> dict[Resource, Strategy]:
    """Every non-service kind's strategy (the service one needs allocators)."""
    out: dict[Resource, Strategy] = {}
    for cls, group, plural in (
        (NamespaceStrategy, "", "namespaces"),
        (PodStrategy, "", "pods"),
        (StatusStrategy, "", "nodes"),
        (CreateOnUpdateStrategy, "", "endpoints"),
        (CreateOnUpdateStrategy, "", "events"),
        (DeploymentStrategy, "apps", "deployments"),
        (WorkloadStrategy, "apps", "replicasets"),
        (EndpointSliceStrategy, "discovery.k8s.io", "endpointslices"),
        (IPAddressPoolStrategy, "kubesvc.io", "ipaddresspools"),
    ):
        r = _res(group, plural)
        out[r] = cls(r)
    return out
