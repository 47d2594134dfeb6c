"""Which Services a pod change concerns, and which pods a Service selects, by index.

Cost follows change: a pod event must wake only the Services whose selector
matches it, and a sync must read only the pods that might match -- never scan
the namespace.  Both sides are indexed by ``namespace/key=value`` label pairs:

* a pod under every one of its label pairs;
* a Service under one pair of its selector (the smallest key): a pod can only
  match if it carries that pair, so the pod's own pairs find every candidate.

Candidates are then checked against the full selector.  The relevance rules for
pod updates are upstream's (``podEndpointsChanged`` and
``determineNeededServiceUpdates``), plus phase and node, which also change
what a pod contributes.
"""

from __future__ import annotations

from typing import Any

from kubesvc.client.informer import IndexFunc, Store

from .model import is_pod_ready, is_terminating, pod_ips, service_selector

Obj = dict[str, Any]
POD_LABELS = "labels"
SERVICE_SELECTOR = "selector"
POD_NODE = "node"


def _ns(obj: Obj) -> str:
    return str((obj.get("metadata") or {}).get("namespace") or "")


def index_pod_labels(pod: Obj) -> list[str]:
    ns = _ns(pod)
    return [f"{ns}/{k}={v}" for k, v in ((pod.get("metadata") or {}).get("labels") or {}).items()]


def index_service_selector(svc: Obj) -> list[str]:
    sel = (svc.get("spec") or {}).get("selector") or {}
    if not sel or (svc.get("spec") or {}).get("type") == "ExternalName":
        return []
    k = min(sel)
    return [f"{_ns(svc)}/{k}={sel[k]}"]


def index_pod_node(pod: Obj) -> list[str]:
    node = (pod.get("spec") or {}).get("nodeName")
    return [node] if node else []


POD_INDEXERS: dict[str, IndexFunc] = {POD_LABELS: index_pod_labels, POD_NODE: index_pod_node}
SERVICE_INDEXERS: dict[str, IndexFunc] = {SERVICE_SELECTOR: index_service_selector}


def services_for_pod(services: Store, pod: Obj) -> set[str]:
    """Keys of the Services (with a selector) in the pod's namespace that select it."""
    labels = (pod.get("metadata") or {}).get("labels") or {}
    out: set[str] = set()
    for value in index_pod_labels(pod):
        for svc in services.by_index(SERVICE_SELECTOR, value):
            sel = service_selector(svc)
            if sel is not None and sel.matches(labels):
                m = svc["metadata"]
                out.add(f"{m.get('namespace', '')}/{m.get('name', '')}")
    return out


def pods_for_service(pods: Store, svc: Obj) -> list[Obj]:
    """The pods the Service selects, read through the narrowest of its selector's label pairs."""
    sel = (svc.get("spec") or {}).get("selector") or {}
    selector = service_selector(svc)
    if not sel or selector is None:
        return []
    ns = _ns(svc)
    if len(sel) == 1:  # the index lookup is the whole match
        ((k, v),) = sel.items()
        return pods.by_index(POD_LABELS, f"{ns}/{k}={v}")
    narrowest = min((f"{ns}/{k}={v}" for k, v in sel.items()),
                    key=lambda value: len(pods.index_keys(POD_LABELS, value)))
    return [p for p in pods.by_index(POD_LABELS, narrowest)
            if selector.matches((p.get("metadata") or {}).get("labels"))]


def pod_changed(old: Obj, new: Obj) -> tuple[bool, bool]:
    """(endpoint-relevant fields changed, membership-relevant fields changed)."""
    om, nm = old.get("metadata") or {}, new.get("metadata") or {}
    os_, ns_ = old.get("spec") or {}, new.get("spec") or {}
    labels_changed = (om.get("labels") or {}) != (nm.get("labels") or {})
    # a hostname change alters the endpoint itself (upstream counts it with labels, and so can miss it)
    changed = (os_.get("hostname") != ns_.get("hostname") or os_.get("subdomain") != ns_.get("subdomain")
               or is_terminating(old) != is_terminating(new) or is_pod_ready(old) != is_pod_ready(new)
               or pod_ips(old) != pod_ips(new) or os_.get("nodeName") != ns_.get("nodeName")
               or (old.get("status") or {}).get("phase") != (new.get("status") or {}).get("phase"))
    return changed, labels_changed


def services_to_sync(services: Store, old: Obj | None, new: Obj | None) -> set[str]:
    """The Services a pod add, update or delete concerns (an unchanged resync: none)."""
    if old is None or new is None:
        pod = new if new is not None else old
        return services_for_pod(services, pod) if pod is not None else set()
    if (old.get("metadata") or {}).get("resourceVersion") == (new.get("metadata") or {}).get("resourceVersion"):
        return set()
    changed, labels_changed = pod_changed(old, new)
    if not changed and not labels_changed:
        return set()
    now = services_for_pod(services, new)
    if not labels_changed:
        return now
    before = services_for_pod(services, old)
    return now | before if changed else now ^ before
