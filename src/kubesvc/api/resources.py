"""The table of API resources kubesvc serves.

One row per resource: its group/version/kind, plural and singular names, scope,
short names and categories (kubectl needs both: ``svc`` and ``get all`` come
from here), subresources and the extra field selectors it supports.  Discovery,
routing, OpenAPI, printing and storage keys are all derived from this table, so
adding a kind is one entry here plus its registry strategy.
"""

from __future__ import annotations

from dataclasses import dataclass, field

ALL_VERBS = ("create", "delete", "deletecollection", "get", "list", "patch", "update", "watch")


@dataclass(frozen=True)
class Resource:
    group: str
    version: str
    kind: str
    plural: str
    singular: str
    namespaced: bool = True
    short_names: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    subresources: tuple[str, ...] = ()  # "status", "scale", "log"
    verbs: tuple[str, ...] = ALL_VERBS
    field_selectors: tuple[str, ...] = ()  # beyond metadata.name / metadata.namespace
    extra: dict[str, str] = field(default_factory=dict, hash=False, compare=False)

    @property
    def group_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def api_version(self) -> str:
        return self.group_version

    @property
    def list_kind(self) -> str:
        return self.kind + "List"

    @property
    def qualified(self) -> str:
        """``services`` or ``deployments.apps``, as upstream names it in errors."""
        return f"{self.plural}.{self.group}" if self.group else self.plural

    @property
    def storage_prefix(self) -> str:
        """Key prefix in storage: ``/registry/<group>/<plural>/``."""
        return f"/registry/{self.group or 'core'}/{self.plural}/"

    def key(self, namespace: str | None, name: str) -> str:
        if self.namespaced:
            return f"{self.storage_prefix}{namespace}/{name}"
        return f"{self.storage_prefix}{name}"

    def prefix(self, namespace: str | None) -> str:
        """Storage prefix for a list: everything, or one namespace."""
        if self.namespaced and namespace:
            return f"{self.storage_prefix}{namespace}/"
        return self.storage_prefix


RESOURCES: tuple[Resource, ...] = (
    Resource("", "v1", "Namespace", "namespaces", "namespace", namespaced=False, short_names=("ns",),
             subresources=("status", "finalize"), field_selectors=("status.phase",)),
    Resource("", "v1", "Pod", "pods", "pod", short_names=("po",), categories=("all",),
             subresources=("status", "log", "binding", "eviction", "exec", "portforward", "attach"),
             field_selectors=("spec.nodeName", "spec.restartPolicy", "spec.schedulerName",
                              "spec.serviceAccountName", "spec.hostNetwork", "status.phase",
                              "status.podIP", "status.nominatedNodeName")),
    Resource("", "v1", "Service", "services", "service", short_names=("svc",), categories=("all",),
             subresources=("status",), field_selectors=("spec.clusterIP", "spec.type")),
    Resource("", "v1", "Endpoints", "endpoints", "endpoints", short_names=("ep",)),
    Resource("", "v1", "Node", "nodes", "node", namespaced=False, short_names=("no",),
             subresources=("status",), field_selectors=("spec.unschedulable",)),
    Resource("", "v1", "Event", "events", "event", short_names=("ev",),
             field_selectors=("involvedObject.kind", "involvedObject.namespace", "involvedObject.name",
                              "involvedObject.uid", "involvedObject.apiVersion",
                              "involvedObject.resourceVersion", "involvedObject.fieldPath",
                              "reason", "reportingComponent", "source", "type")),
    Resource("", "v1", "ConfigMap", "configmaps", "configmap", short_names=("cm",)),
    Resource("", "v1", "ServiceAccount", "serviceaccounts", "serviceaccount", short_names=("sa",)),
    Resource("discovery.k8s.io", "v1", "EndpointSlice", "endpointslices", "endpointslice",
             field_selectors=("addressType",)),
    Resource("apps", "v1", "Deployment", "deployments", "deployment", short_names=("deploy",),
             categories=("all",), subresources=("status", "scale")),
    Resource("apps", "v1", "ReplicaSet", "replicasets", "replicaset", short_names=("rs",),
             categories=("all",), subresources=("status", "scale"),
             field_selectors=("status.replicas",)),
    Resource("coordination.k8s.io", "v1", "Lease", "leases", "lease"),
    # kubesvc's own: LoadBalancer address pools (kubesvc.lb), cluster-scoped as MetalLB's are not
    Resource("kubesvc.io", "v1", "IPAddressPool", "ipaddresspools", "ipaddresspool", namespaced=False,
             short_names=("ippool",), subresources=("status",)),
)


def by_plural(group: str, version: str, plural: str) -> Resource | None:
    for r in RESOURCES:
        if r.group == group and r.version == version and r.plural == plural:
            return r
    return None


def by_kind(api_version: str, kind: str) -> Resource | None:
    for r in RESOURCES:
        if r.api_version == api_version and r.kind == kind:
            return r
    return None


def group_versions() -> list[tuple[str, str]]:
    """Every (group, version) served, core first, in a stable order."""
    seen: list[tuple[str, str]] = []
    for r in RESOURCES:
        gv = (r.group, r.version)
        if gv not in seen:
            seen.append(gv)
    return seen
