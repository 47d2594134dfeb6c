"""A compact way to write OpenAPI v3 component schemas in Python.

The type modules (types_meta, types_core, ...) describe each Kubernetes type
once with these helpers; the document builder then picks the schemas reachable
from a group-version's operations.  Shapes follow upstream's published v3
documents where tools depend on them: ``allOf: [$ref]`` for typed fields (so
``kubectl explain`` prints ``<ServiceSpec>``), ``x-kubernetes-*`` list and
patch markers (client-side apply builds strategic merge patches from them), and
``x-kubernetes-group-version-kind`` on top-level kinds (explain finds kinds by it).
"""

from __future__ import annotations

from typing import Any

Schema = dict[str, Any]
REF_PREFIX = "#/components/schemas/"

META = "io.k8s.apimachinery.pkg.apis.meta.v1."
CORE = "io.k8s.api.core.v1."
APPS = "io.k8s.api.apps.v1."
AUTOSCALING = "io.k8s.api.autoscaling.v1."
DISCOVERY = "io.k8s.api.discovery.v1."
COORDINATION = "io.k8s.api.coordination.v1."
INTSTR = "io.k8s.apimachinery.pkg.util.intstr.IntOrString"
QUANTITY = "io.k8s.apimachinery.pkg.api.resource.Quantity"


def _d(schema: Schema, desc: str) -> Schema:
    if desc:
        schema["description"] = desc
    return schema


def s(desc: str = "", *, enum: list[str] | None = None, fmt: str | None = None) -> Schema:
    """A string field; ``enum`` lists the allowed values."""
    out: Schema = {"type": "string"}
    if fmt:
        out["format"] = fmt
    if enum:
        out["enum"] = list(enum)
    return _d(out, desc)


def i32(desc: str = "") -> Schema:
    return _d({"type": "integer", "format": "int32"}, desc)


def i64(desc: str = "") -> Schema:
    return _d({"type": "integer", "format": "int64"}, desc)


def boolean(desc: str = "") -> Schema:
    return _d({"type": "boolean"}, desc)


def anyobj(desc: str = "") -> Schema:
    """An untyped object (kept for sources we do not describe field by field)."""
    return _d({"type": "object", "x-kubernetes-preserve-unknown-fields": True}, desc)


def ref(name: str, desc: str = "") -> Schema:
    """A field of a named type; ``allOf`` lets the description sit beside the ``$ref``."""
    return _d({"allOf": [{"$ref": REF_PREFIX + name}], "default": {}}, desc)


def _item(item: Schema | str) -> Schema:
    if isinstance(item, str):
        return {"allOf": [{"$ref": REF_PREFIX + item}], "default": {}}
    return item


def arr(item: Schema | str, desc: str = "", *, list_type: str | None = None,
        map_keys: list[str] | None = None, merge_key: str | None = None,
        strategy: str | None = None) -> Schema:
    """A list; ``item`` is a schema or a type name.  ``list_type``/``map_keys`` are
    the server-side-apply markers, ``merge_key``/``strategy`` the strategic-merge ones."""
    out: Schema = {"type": "array", "items": _item(item)}
    if list_type:
        out["x-kubernetes-list-type"] = list_type
    if map_keys:
        out["x-kubernetes-list-map-keys"] = list(map_keys)
    if merge_key:
        out["x-kubernetes-patch-merge-key"] = merge_key
    if strategy:
        out["x-kubernetes-patch-strategy"] = strategy
    return _d(out, desc)


def keyed(item: str, key: str | list[str], desc: str = "", *, strategy: str = "merge") -> Schema:
    """The common case: a list merged by key both for apply and for strategic merge."""
    keys = [key] if isinstance(key, str) else key
    return arr(item, desc, list_type="map", map_keys=keys, merge_key=keys[0], strategy=strategy)


def atomic(item: Schema | str, desc: str = "") -> Schema:
    return arr(item, desc, list_type="atomic")


def strings(desc: str = "") -> Schema:
    """An atomic list of strings, the usual shape of command, args, externalIPs..."""
    return arr(s(), desc, list_type="atomic")


def smap(desc: str = "", value: Schema | str | None = None, *, atomic_map: bool = False) -> Schema:
    """A map with string keys; values are strings unless ``value`` says otherwise."""
    out: Schema = {"type": "object", "additionalProperties": _item(value) if value is not None else s()}
    if atomic_map:
        out["x-kubernetes-map-type"] = "atomic"
    return _d(out, desc)


def obj(desc: str, props: dict[str, Schema], *, required: list[str] | None = None,
        map_type: str | None = None) -> Schema:
    """A struct type."""
    out: Schema = {"description": desc, "type": "object", "properties": props}
    if required:
        out["required"] = list(required)
    if map_type:
        out["x-kubernetes-map-type"] = map_type
    return out


def gvk(group: str, version: str, kind: str) -> dict[str, str]:
    return {"group": group, "version": version, "kind": kind}


def kind(desc: str, group: str, version: str, kind_name: str, props: dict[str, Schema], *,
         meta_desc: str = "Standard object metadata.", required: list[str] | None = None) -> Schema:
    """A top-level kind: apiVersion, kind and metadata, then its own fields."""
    all_props = {
        "apiVersion": s("The versioned schema of this object; servers convert to their internal form."),
        "kind": s("The REST resource type this object represents, in CamelCase."),
        "metadata": ref(META + "ObjectMeta", meta_desc),
        **props,
    }
    out = obj(desc, all_props, required=required)
    out["x-kubernetes-group-version-kind"] = [gvk(group, version, kind_name)]
    return out


def list_of(item: str, group: str, version: str, kind_name: str, what: str) -> Schema:
    """The ``<Kind>List`` wrapper returned by collection reads."""
    out = obj(f"A list of {what}.", {
        "apiVersion": s("The versioned schema of this object."),
        "items": arr(item, f"The {what}."),
        "kind": s("The REST resource type this object represents, in CamelCase."),
        "metadata": ref(META + "ListMeta", "Standard list metadata."),
    }, required=["items"])
    out["x-kubernetes-group-version-kind"] = [gvk(group, version, kind_name + "List")]
    return out


def refs_in(schema: Any) -> set[str]:
    """Every schema name a schema refers to, directly."""
    found: set[str] = set()
    stack = [schema]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            r = node.get("$ref")
            if isinstance(r, str) and r.startswith(REF_PREFIX):
                found.add(r[len(REF_PREFIX):])
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    return found
