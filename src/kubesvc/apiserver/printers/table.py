"""Building meta.k8s.io/v1 Tables, as sent for ``Accept: ...;as=Table``.

Without a Table kubectl prints only NAME and AGE, so every column the user sees
comes from here.  Each row carries the object too (PartialObjectMetadata by
default) because ``-A``, ``--show-labels``, ``-L`` and ``--sort-by`` read it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any

from kubesvc.api.resources import Resource
from kubesvc.apiserver.printers import rows
from kubesvc.apiserver.printers.columns import columns
from kubesvc.apiserver.printers.pod import pod_conditions, pod_row

RowFn = Callable[[dict[str, Any], datetime], list[Any]]

ROWS: dict[tuple[str, str], RowFn] = {
    ("", "services"): rows.service_row,
    ("", "pods"): pod_row,
    ("apps", "deployments"): rows.deployment_row,
    ("apps", "replicasets"): rows.replicaset_row,
    ("", "endpoints"): rows.endpoints_row,
    ("discovery.k8s.io", "endpointslices"): rows.endpointslice_row,
    ("", "nodes"): rows.node_row,
    ("", "namespaces"): rows.namespace_row,
    ("", "events"): rows.event_row,
    ("", "configmaps"): rows.configmap_row,
    ("", "serviceaccounts"): rows.serviceaccount_row,
    ("coordination.k8s.io", "leases"): rows.lease_row,
    ("kubesvc.io", "ipaddresspools"): rows.ipaddresspool_row,
}

# kind -> (group, plural), for callers that hand us a bare object
_BY_KIND: dict[tuple[str, str], tuple[str, str]] = {
    ("", "Service"): ("", "services"),
    ("", "Pod"): ("", "pods"),
    ("apps", "Deployment"): ("apps", "deployments"),
    ("apps", "ReplicaSet"): ("apps", "replicasets"),
    ("", "Endpoints"): ("", "endpoints"),
    ("discovery.k8s.io", "EndpointSlice"): ("discovery.k8s.io", "endpointslices"),
    ("", "Node"): ("", "nodes"),
    ("", "Namespace"): ("", "namespaces"),
    ("", "Event"): ("", "events"),
    ("", "ConfigMap"): ("", "configmaps"),
    ("", "ServiceAccount"): ("", "serviceaccounts"),
    ("coordination.k8s.io", "Lease"): ("coordination.k8s.io", "leases"),
    ("kubesvc.io", "IPAddressPool"): ("kubesvc.io", "ipaddresspools"),
}


def _key_for(obj: dict[str, Any]) -> tuple[str, str] | None:
    api_version = obj.get("apiVersion") or ""
    group = api_version.rsplit("/", 1)[0] if "/" in api_version else ""
    return _BY_KIND.get((group, obj.get("kind") or ""))


def row(obj: dict[str, Any], now: datetime, *, plural: str | None = None, group: str = "") -> list[Any]:
    """The cells for one object.  The resource comes from ``plural``/``group`` when
    given, else from the object's apiVersion and kind; unknown kinds get Name, Age."""
    key = (group, plural) if plural is not None else _key_for(obj)
    fn = ROWS.get(key) if key else None
    return (fn or rows.generic_row)(obj, now)


def partial_metadata(obj: dict[str, Any]) -> dict[str, Any]:
    return {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1",
            "metadata": obj.get("metadata") or {}}


def _resource_key(resource: Resource | str | tuple[str, str]) -> tuple[str, str]:
    if isinstance(resource, Resource):
        return resource.group, resource.plural
    if isinstance(resource, tuple):
        return resource
    if "." in resource:  # "deployments.apps"
        plural, group = resource.split(".", 1)
        return group, plural
    return "", resource


def to_table(
    resource: Resource | str | tuple[str, str],
    objects: Iterable[dict[str, Any]],
    *,
    now: datetime,
    include_object: str = "Metadata",
    resource_version: str = "",
    continue_token: str | None = None,
    remaining_item_count: int | None = None,
    with_columns: bool = True,
) -> dict[str, Any]:
    """A meta.k8s.io/v1 Table for ``objects`` of one resource.

    ``resource`` is a :class:`Resource`, a ``(group, plural)`` pair, or a
    qualified name (``services``, ``deployments.apps``).  ``include_object`` is
    the request's includeObject: ``Metadata`` (default), ``Object`` (what
    ``--sort-by`` asks for) or ``None``.  ``with_columns=False`` sends null
    columnDefinitions, which watch events after the first may do.
    """
    group, plural = _resource_key(resource)
    fn = ROWS.get((group, plural), rows.generic_row)
    out_rows = []
    for obj in objects:
        r: dict[str, Any] = {"cells": fn(obj, now)}
        if include_object == "Object":
            r["object"] = obj
        elif include_object == "None":
            r["object"] = None
        else:
            r["object"] = partial_metadata(obj)
        if plural == "pods" and group == "":
            conds = pod_conditions(obj)
            if conds:
                r["conditions"] = conds
        out_rows.append(r)
    meta: dict[str, Any] = {"resourceVersion": resource_version}
    if continue_token:
        meta["continue"] = continue_token
    if remaining_item_count is not None:
        meta["remainingItemCount"] = remaining_item_count
    return {
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": meta,
        "columnDefinitions": columns(plural, group) if with_columns else None,
        "rows": out_rows,
    }
