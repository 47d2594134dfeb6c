"""The patch strategy table: how each list (and a few maps) of the served kinds merge.

Upstream keeps this knowledge in Go struct tags (``patchStrategy``/``patchMergeKey``
for strategic merge patch, ``+listType``/``+listMapKey``/``+mapType``/``+structType``
for server-side apply).  kubesvc has no Go types, so the same facts live here as
data, keyed by ``(kind, path)`` where ``path`` names a field the way a reader would:
``spec.ports``, ``spec.template.spec.containers``, ``spec.template.spec.containers[].ports``
(``[]`` steps into the items of a list).

A list that is not in the table is *atomic*: strategic merge patch replaces it
wholesale and server-side apply owns it as one leaf.  That is upstream's default
for a list without tags, and it is what upstream declares for tolerations,
``externalIPs``, ``clusterIPs``, Endpoints ``subsets``, EndpointSlice ``endpoints``
and ``ports``, taints, readiness gates and the like.

The entries are shared the way the Go types are: PodSpec's lists appear under
``spec.`` for a Pod and under ``spec.template.spec.`` for a Deployment or
ReplicaSet, and ObjectMeta's lists under ``metadata.`` for every kind.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ListRule:
    """How one list merges.

    ``strategy``/``merge_key`` are the strategic-merge-patch tags (``merge_key`` is
    ``None`` for a set of scalars); ``list_type``/``map_keys`` are what
    server-side apply uses (``map`` keyed by ``map_keys``, or ``set``).
    ``key_defaults`` fills a missing key field the way the OpenAPI default does,
    so ``{"port": 80}`` is the item ``k:{"port":80,"protocol":"TCP"}``.
    """

    strategy: str
    merge_key: str | None
    list_type: str
    map_keys: tuple[str, ...] = ()
    key_defaults: tuple[tuple[str, object], ...] = ()

    @property
    def merges(self) -> bool:
        return self.strategy.startswith("merge")

    @property
    def retains_keys(self) -> bool:
        return "retainKeys" in self.strategy.split(",")


def _keyed(key: str, *keys: str, strategy: str = "merge", defaults: tuple = ()) -> ListRule:
    return ListRule(strategy, key, "map", keys or (key,), defaults)


_SET = ListRule("merge", None, "set")
_TCP = (("protocol", "TCP"),)
_BY_TYPE = _keyed("type")
_BY_NAME = _keyed("name")

# ObjectMeta, for every kind.
_OBJECT_META: dict[str, ListRule] = {
    "ownerReferences": _keyed("uid"),
    "finalizers": _SET,
}

# Container (and EphemeralContainer), relative to one container item.
_CONTAINER: dict[str, ListRule] = {
    "ports": _keyed("containerPort", "containerPort", "protocol", defaults=_TCP),
    "env": _BY_NAME,
    "volumeMounts": _keyed("mountPath"),
    "volumeDevices": _keyed("devicePath"),
}

# PodSpec, relative to the spec.
_POD_SPEC: dict[str, ListRule] = {
    "volumes": _keyed("name", strategy="merge,retainKeys"),
    "containers": _BY_NAME,
    "initContainers": _BY_NAME,
    "ephemeralContainers": _BY_NAME,
    "imagePullSecrets": _BY_NAME,
    "hostAliases": _keyed("ip"),
    "topologySpreadConstraints": _keyed("topologyKey", "topologyKey", "whenUnsatisfiable"),
    "resourceClaims": _keyed("name", strategy="merge,retainKeys"),
    "schedulingGates": _BY_NAME,
}
for _c in ("containers", "initContainers", "ephemeralContainers"):
    for _field, _rule in _CONTAINER.items():
        _POD_SPEC[f"{_c}[].{_field}"] = _rule

_POD_STATUS: dict[str, ListRule] = {
    "conditions": _BY_TYPE,
    "podIPs": _keyed("ip"),
    "hostIPs": _keyed("ip"),
    "resourceClaimStatuses": _keyed("name", strategy="merge,retainKeys"),
}


def _under(prefix: str, rules: dict[str, ListRule]) -> dict[str, ListRule]:
    return {f"{prefix}{path}": rule for path, rule in rules.items()}


_PER_KIND: dict[str, dict[str, ListRule]] = {
    "Namespace": {"status.conditions": _BY_TYPE},
    "Pod": {**_under("spec.", _POD_SPEC), **_under("status.", _POD_STATUS)},
    "Service": {
        "spec.ports": _keyed("port", "port", "protocol", defaults=_TCP),
        "status.conditions": _BY_TYPE,
    },
    "Endpoints": {},
    "Node": {
        "spec.podCIDRs": _SET,
        "status.conditions": _BY_TYPE,
        "status.addresses": _BY_TYPE,
    },
    "Event": {},
    "ConfigMap": {},
    "ServiceAccount": {"secrets": _BY_NAME},
    "Deployment": {**_under("spec.template.spec.", _POD_SPEC), "status.conditions": _BY_TYPE},
    "ReplicaSet": {**_under("spec.template.spec.", _POD_SPEC), "status.conditions": _BY_TYPE},
    "EndpointSlice": {},
    "Lease": {},
}

#: The table: (kind, path of the list) -> ListRule.  Kind "*" applies to every kind.
LIST_RULES: dict[tuple[str, str], ListRule] = {
    **{("*", f"metadata.{p}"): r for p, r in _OBJECT_META.items()},
    **{("*", f"spec.template.metadata.{p}"): r for p, r in _OBJECT_META.items()},
    **{(kind, path): rule for kind, rules in _PER_KIND.items() for path, rule in rules.items()},
}

#: Maps and structs that are owned and replaced as a whole (``+mapType=atomic``,
#: ``+structType=atomic``).  Strategic merge patch still merges them key by key,
#: as upstream does; only server-side apply treats them as one leaf.
ATOMIC_MAPS: dict[str, frozenset[str]] = {
    "Service": frozenset({"spec.selector"}),
    "Pod": frozenset({"spec.nodeSelector"}),
    "Deployment": frozenset({"spec.selector", "spec.template.spec.nodeSelector"}),
    "ReplicaSet": frozenset({"spec.selector", "spec.template.spec.nodeSelector"}),
    "Event": frozenset({"involvedObject", "related"}),
}

#: Maps whose strategic-merge-patch strategy is ``retainKeys`` (a union: the
#: patch's ``$retainKeys`` list says which keys survive).
RETAIN_KEYS_MAPS: dict[str, frozenset[str]] = {
    "Deployment": frozenset({"spec.strategy"}),
}

#: Struct fields that are values, not pointers, in the Go types: an object always
#: has them (``{}`` when empty), so managedFields never record them as added
#: (no ``".": {}`` entry).  Paths are relative to the object root.
VALUE_STRUCTS: dict[str, frozenset[str]] = {
    "*": frozenset({"metadata", "spec", "status"}),
    "Service": frozenset({"status.loadBalancer"}),
    "Node": frozenset({"status.daemonEndpoints", "status.daemonEndpoints.kubeletEndpoint",
                       "status.nodeInfo"}),
    "Deployment": frozenset({"spec.strategy", "spec.template", "spec.template.metadata",
                             "spec.template.spec"}),
    "ReplicaSet": frozenset({"spec.template", "spec.template.metadata", "spec.template.spec"}),
}


def list_rule(kind: str, path: str) -> ListRule | None:
    """The rule for the list at ``path`` of a ``kind`` object, or None (atomic)."""
    return LIST_RULES.get((kind, path)) or LIST_RULES.get(("*", path))


def is_atomic_map(kind: str, path: str) -> bool:
    return path in ATOMIC_MAPS.get(kind, ())


def retains_keys(kind: str, path: str) -> bool:
    return path in RETAIN_KEYS_MAPS.get(kind, ())


def is_value_struct(kind: str, path: str) -> bool:
    return path in VALUE_STRUCTS["*"] or path in VALUE_STRUCTS.get(kind, ())


def child_path(path: str, key: str) -> str:
    """``spec`` + ``ports`` -> ``spec.ports``."""
    return f"{path}.{key}" if path else key


def item_path(path: str) -> str:
    """The path of the items of the list at ``path``: ``spec.ports`` -> ``spec.ports[]``."""
    return path + "[]"
