"""Server-side field validation (``?fieldValidation=Strict|Warn|Ignore``) and JSON types.

kubectl sends ``Strict`` with every create, apply and edit: a typo such as
``spec.prots`` must fail with upstream's message instead of being dropped
silently.  And whatever the mode, a value of the wrong JSON type is a 400, as
upstream's decoder says (``json: cannot unmarshal string into Go struct field
ServiceSpec.spec.publishNotReadyAddresses of type bool``).

Both checks walk the object once against the same OpenAPI schemas ``kubectl
explain`` reads, so there is one description of the types.  The schemas are
compiled once into small :class:`Node` trees, and field paths are only spelled
out for the fields that are wrong: validating a 1,000-address Endpoints costs
one pass over its values, not a string per field.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cache
from typing import Any

from kubesvc.api import errors
from kubesvc.api.resources import Resource
from kubesvc.apiserver.openapi import ALL_SCHEMAS

_REF = "#/components/schemas/"
MAX_REPORTED = 100
_JSON_KIND = {bool: "bool", str: "string", int: "number", float: "number", list: "array", dict: "object"}


@dataclass(eq=False)
class Node:
    """A compiled schema: what a value at this place may be."""

    type: str | None = None  # the OpenAPI type, or None for anything
    name: str = ""  # the schema name this came from (Go's struct name in errors)
    loose: bool = False  # IntOrString and Quantity: numbers or strings
    go_type: str = "interface {}"
    props: dict[str, Node] | None = None  # None: not a struct
    extra: Node | None = None  # map values
    items: Node | None = None  # array elements
    fields: dict[str, Any] = field(default_factory=dict)


def _ref_name(schema: dict[str, Any]) -> str | None:
    ref = schema.get("$ref")
    if ref is None and len(schema.get("allOf") or []) == 1:
        ref = schema["allOf"][0].get("$ref")
    return ref[len(_REF):] if ref and ref.startswith(_REF) else None


_COMPILED: dict[str, Node] = {}


def _compile_named(name: str) -> Node:
    node = _COMPILED.get(name)
    if node is None:
        node = _COMPILED[name] = Node()  # cached before its children: schemas may refer to themselves
        _fill(node, ALL_SCHEMAS.get(name, {}), name)
    return node


def _compile(schema: dict[str, Any]) -> Node:
    name = _ref_name(schema)
    if name is not None:
        return _compile_named(name)
    node = Node()
    _fill(node, schema, "")
    return node


def _fill(node: Node, schema: dict[str, Any], name: str) -> None:
    """Fill ``node`` in place (named nodes are cached before their children: types recurse)."""
    node.type = schema.get("type")
    node.name = name
    node.loose = name.endswith("resource.Quantity") or schema.get("format") == "int-or-string"
    props = schema.get("properties")
    if props is not None:
        node.props = {k: _compile(v) for k, v in props.items()}
    extra = schema.get("additionalProperties")
    if isinstance(extra, dict):
        node.extra = _compile(extra)
    if isinstance(schema.get("items"), dict):
        node.items = _compile(schema["items"])
    node.go_type = _go_type(node, schema)


def _go_type(node: Node, schema: dict[str, Any]) -> str:
    t = node.type
    if t == "boolean":
        return "bool"
    if t == "integer":
        return schema.get("format") or "int"
    if t == "number":
        return "float64"
    if t == "array":
        inner = _ref_name(schema.get("items") or {})
        return "[]" + (_short(inner) if inner else _go_type(Node(type=(schema.get("items") or {}).get("type")),
                                                             schema.get("items") or {}))
    if t == "object" and node.props is None:
        return "map[string]string" if node.extra is not None and node.extra.type == "string" else "map[string]interface {}"
    if node.name:
        return _short(node.name)
    return t or "interface {}"


def _short(name: str) -> str:
    """``io.k8s.api.core.v1.ServicePort`` → ``v1.ServicePort`` (how Go prints the type)."""
    parts = name.rsplit(".", 2)
    return ".".join(parts[-2:]) if len(parts) >= 2 else name


def _accepts(value: Any, node: Node) -> bool:
    t = node.type
    if value is None or t is None:
        return True
    if node.loose:
        return isinstance(value, str | int | float) and not isinstance(value, bool)
    if t == "string":
        return isinstance(value, str)
    if t == "object":
        return isinstance(value, dict)
    if t == "array":
        return isinstance(value, list)
    if t == "boolean":
        return isinstance(value, bool)
    if t == "integer":
        return (isinstance(value, int) and not isinstance(value, bool)) or (
            isinstance(value, float) and value.is_integer())
    if t == "number":
        return isinstance(value, int | float) and not isinstance(value, bool)
    return True


# --------------------------------------------------------------------------
# the walk

Part = str | int  # a key, or a list index


def _path(parts: list[Part], *, indices: bool = True) -> str:
    out = ""
    for p in parts:
        if isinstance(p, int):
            if indices:
                out += f"[{p}]"
        else:
            out = f"{out}.{p}" if out else p
    return out


@dataclass
class _Findings:
    unknown: list[str] = field(default_factory=list)
    type_error: str | None = None


def _walk(value: Any, node: Node, parts: list[Part], struct: str, found: _Findings) -> None:
    if found.type_error is not None or value is None:
        return
    if not _accepts(value, node):
        where = f" into Go struct field {struct}.{_path(parts, indices=False)}" if struct else " into Go value"
        found.type_error = (
            f"json: cannot unmarshal {_JSON_KIND.get(type(value), 'value')}{where} of type {node.go_type}"
        )
        return
    if isinstance(value, dict):
        props, extra = node.props, node.extra
        if props is None and extra is None:
            return  # a free-form object: anything goes
        here = node.name.rsplit(".", 1)[-1] if node.name else struct
        for k, v in value.items():
            sub = props.get(k) if props is not None else None
            if sub is None:
                sub = extra
            if sub is None:
                if len(found.unknown) < MAX_REPORTED:
                    found.unknown.append(_path([*parts, k]))
                continue
            if v is None or (sub.type is None and sub.props is None and sub.extra is None and sub.items is None):
                continue
            # leaves of the right type need no walk (most of a 1,000-address Endpoints): the call
            # per leaf cost a third of such a write; a wrong one is walked to word the error
            st = sub.type
            if (st == "string" and not sub.loose and isinstance(v, str)) or (st == "boolean" and v is True) \
                    or (st == "boolean" and v is False) or (st == "integer" and type(v) is int):
                continue
            parts.append(k)
            _walk(v, sub, parts, here, found)
            parts.pop()
    elif isinstance(value, list) and node.items is not None:
        sub = node.items
        if sub.type == "string" and not sub.loose:  # the common case: a list of strings
            for i, v in enumerate(value):
                if not isinstance(v, str) and v is not None:
                    parts.append(i)
                    _walk(v, sub, parts, struct, found)
                    parts.pop()
                    return
            return
        for i, v in enumerate(value):
            parts.append(i)
            _walk(v, sub, parts, struct, found)
            parts.pop()
            if found.type_error is not None:
                return


@cache
def _schema_for(group: str, version: str, kind: str) -> str | None:
    for name, schema in ALL_SCHEMAS.items():
        for gvk in schema.get("x-kubernetes-group-version-kind") or []:
            if (gvk.get("group", ""), gvk.get("version"), gvk.get("kind")) == (group, version, kind):
                return name
    return None


def _inspect(obj: Any, schema: dict[str, Any] | str, struct: str = "") -> _Findings:
    """Walk ``obj`` against a schema (a name: compiled once and cached; a dict: compiled now)."""
    found = _Findings()
    _walk(obj, _compile_named(schema) if isinstance(schema, str) else _compile(schema), [], struct, found)
    return found


def unknown_fields(obj: Any, schema: dict[str, Any]) -> list[str]:
    """Paths of fields the schema does not know, as upstream prints them (``spec.ports[0].x``)."""
    return _inspect(obj, schema).unknown


def type_error(value: Any, schema: dict[str, Any], struct: str = "") -> str | None:
    """The first value of the wrong JSON type, in Go's encoding/json words, or None."""
    return _inspect(value, schema, struct).type_error


def check(res: Resource, obj: dict[str, Any], mode: str | None, old: dict[str, Any] | None = None) -> list[str]:
    """Raise 400 for wrong types; then per mode raise (Strict), warn (Warn) or ignore unknown fields.

    With ``old`` (a patch's live object), only fields the request added count:
    a field already stored is not the client's typo.
    """
    mode = mode or "Warn"
    if mode not in ("Strict", "Warn", "Ignore"):
        raise errors.bad_request(f"fieldValidation must be one of Ignore, Warn or Strict, got {mode!r}")
    name = _schema_for(res.group, res.version, res.kind)
    if name is None:
        return []
    found = _inspect(obj, name, res.kind)
    prefix = f'{res.kind} in version "{res.version}" cannot be handled as a {res.kind}: '
    if found.type_error:
        raise errors.bad_request(prefix + found.type_error)
    unknown = found.unknown
    if mode == "Ignore" or not unknown:
        return []
    if old is not None:
        before = set(_inspect(old, name, res.kind).unknown)
        unknown = [u for u in unknown if u not in before]
        if not unknown:
            return []
    texts = [f'unknown field "{p}"' for p in unknown]
    if mode == "Strict":
        raise errors.bad_request(prefix + f"strict decoding error: {', '.join(texts)}")
    return texts


def warning_header(warnings: list[str]) -> str:
    """RFC 7234 warning values as kube-apiserver sends them (kubectl prints ``Warning: ...``)."""
    return ", ".join('299 - "' + w.replace("\\", "\\\\").replace('"', '\\"') + '"' for w in warnings)
