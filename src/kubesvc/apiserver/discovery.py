"""API discovery documents, built once from the resource table.

kubectl asks ``/api`` and ``/apis`` for *aggregated* discovery
(apidiscovery.k8s.io/v2) and needs the exact Content-Type back, or it falls
back to the legacy documents (APIVersions, APIGroupList, APIResourceList per
group-version); both forms are served.  Short names and categories must be
present: ``kubectl get svc`` and ``kubectl get all`` depend on them.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from kubesvc.api.resources import RESOURCES, Resource, group_versions

AGGREGATED_CT = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"
AGGREGATED_CT_V2BETA1 = "application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList"

# subresource -> (group, version, kind-or-None for the parent's kind, verbs)
_SUBRESOURCES: dict[str, tuple[str | None, str | None, str | None, tuple[str, ...]]] = {
    "status": (None, None, None, ("get", "patch", "update")),
    "scale": ("autoscaling", "v1", "Scale", ("get", "patch", "update")),
    "log": ("", "v1", "Pod", ("get",)),
    "exec": ("", "v1", "PodExecOptions", ("create", "get")),
    "portforward": ("", "v1", "PodPortForwardOptions", ("create", "get")),
    "attach": ("", "v1", "PodAttachOptions", ("create", "get")),
    "binding": ("", "v1", "Binding", ("create",)),
    "eviction": ("policy", "v1", "Eviction", ("create",)),
    "finalize": (None, None, None, ("update",)),
}


def wants_aggregated(accept: str | None) -> str | None:
    """The aggregated Content-Type to answer with, if the client asked for it."""
    a = accept or ""
    if "as=APIGroupDiscoveryList" not in a:
        return None
    if "v=v2;" in a.replace(" ", "") or a.replace(" ", "").endswith("v=v2"):
        return AGGREGATED_CT
    return AGGREGATED_CT_V2BETA1 if "v2beta1" in a else AGGREGATED_CT


def _sub_kind(res: Resource, sub: str) -> tuple[str, str, str, tuple[str, ...]]:
    g, v, k, verbs = _SUBRESOURCES[sub]
    return (res.group if g is None else g, res.version if v is None else v, k or res.kind, verbs)


def _agg_resource(res: Resource) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "resource": res.plural,
        "responseKind": {"group": res.group, "version": res.version, "kind": res.kind},
        "scope": "Namespaced" if res.namespaced else "Cluster",
        "singularResource": res.singular,
        "verbs": list(res.verbs),
    }
    if res.short_names:
        entry["shortNames"] = list(res.short_names)
    if res.categories:
        entry["categories"] = list(res.categories)
    subs = []
    for sub in res.subresources:
        g, v, k, verbs = _sub_kind(res, sub)
        subs.append({"subresource": sub, "responseKind": {"group": g, "version": v, "kind": k}, "verbs": list(verbs)})
    if subs:
        entry["subresources"] = subs
    return entry


@cache
def aggregated(core: bool) -> dict[str, Any]:
    """APIGroupDiscoveryList for ``/api`` (core=True) or ``/apis``."""
    items = []
    for group, version in group_versions():
        if (group == "") != core:
            continue
        resources = [_agg_resource(r) for r in RESOURCES if r.group == group and r.version == version]
        items.append({
            "metadata": {"name": group, "creationTimestamp": None},
            "versions": [{"version": version, "resources": resources, "freshness": "Current"}],
        })
    return {"kind": "APIGroupDiscoveryList", "apiVersion": "apidiscovery.k8s.io/v2", "metadata": {}, "items": items}


def api_versions(server_address: str) -> dict[str, Any]:
    return {
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": server_address}],
    }


def _group(group: str) -> dict[str, Any]:
    versions = [{"groupVersion": f"{g}/{v}", "version": v} for g, v in group_versions() if g == group]
    return {"name": group, "versions": versions, "preferredVersion": versions[0]}


@cache
def api_group_list() -> dict[str, Any]:
    groups = []
    for g, _ in group_versions():
        if g and all(x["name"] != g for x in groups):
            groups.append(_group(g))
    return {"kind": "APIGroupList", "apiVersion": "v1", "groups": groups}


def api_group(group: str) -> dict[str, Any] | None:
    if not any(g == group for g, _ in group_versions()) or not group:
        return None
    return {"kind": "APIGroup", "apiVersion": "v1", **_group(group)}


@cache
def _resource_list(group: str, version: str) -> dict[str, Any] | None:
    if (group, version) not in group_versions():
        return None
    out: list[dict[str, Any]] = []
    for r in RESOURCES:
        if r.group != group or r.version != version:
            continue
        entry: dict[str, Any] = {
            "name": r.plural, "singularName": r.singular, "namespaced": r.namespaced,
            "kind": r.kind, "verbs": list(r.verbs),
        }
        if r.short_names:
            entry["shortNames"] = list(r.short_names)
        if r.categories:
            entry["categories"] = list(r.categories)
        out.append(entry)
        for sub in r.subresources:
            g, v, k, verbs = _sub_kind(r, sub)
            s: dict[str, Any] = {"name": f"{r.plural}/{sub}", "singularName": "", "namespaced": r.namespaced,
                                 "kind": k, "verbs": list(verbs)}
            if (g, v) != (r.group, r.version):
                s["group"], s["version"] = g, v
            out.append(s)
    gv = f"{group}/{version}" if group else version
    return {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv, "resources": out}


def api_resource_list(group: str, version: str) -> dict[str, Any] | None:
    return _resource_list(group, version)
