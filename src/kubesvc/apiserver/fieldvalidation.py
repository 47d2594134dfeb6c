"""Server-side field validation (``?fieldValidation=Strict|Warn|Ignore``).

kubectl sends ``Strict`` with every create, apply and edit: a typo such as
``spec.prots`` must fail with upstream's message instead of being dropped
silently.  Unknown fields are found by walking the object against the same
OpenAPI schemas ``kubectl explain`` reads, so there is one description of the
types.  Untyped parts of a schema (free-form objects) accept anything.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from kubesvc.api import errors
from kubesvc.api.resources import Resource
from kubesvc.apiserver.openapi import ALL_SCHEMAS

_REF = "#/components/schemas/"
MAX_REPORTED = 100


@cache
def _schema_for(group: str, version: str, kind: str) -> str | None:
    for name, schema in ALL_SCHEMAS.items():
        for gvk in schema.get("x-kubernetes-group-version-kind") or []:
            if (gvk.get("group", ""), gvk.get("version"), gvk.get("kind")) == (group, version, kind):
                return name
    return None


def _resolve(schema: dict[str, Any]) -> dict[str, Any]:
    while True:
        ref = schema.get("$ref")
        if ref is None and len(schema.get("allOf") or []) == 1:
            ref = schema["allOf"][0].get("$ref")
        if not ref or not ref.startswith(_REF):
            return schema
        schema = ALL_SCHEMAS.get(ref[len(_REF):], {})


def unknown_fields(obj: Any, schema: dict[str, Any], path: str = "") -> list[str]:
    """Paths of fields the schema does not know, as upstream prints them (``spec.ports[0].x``)."""
    out: list[str] = []
    _walk(obj, _resolve(schema), path, out)
    return out


def _walk(value: Any, schema: dict[str, Any], path: str, out: list[str]) -> None:
    if len(out) >= MAX_REPORTED or value is None:
        return
    if isinstance(value, dict):
        props = schema.get("properties")
        extra = schema.get("additionalProperties")
        if props is None:
            if isinstance(extra, dict):
                sub = _resolve(extra)
                for k, v in value.items():
                    _walk(v, sub, f"{path}.{k}" if path else k, out)
            return  # a free-form object: anything goes
        for k, v in value.items():
            p = f"{path}.{k}" if path else k
            if k in props:
                _walk(v, _resolve(props[k]), p, out)
            elif isinstance(extra, dict):
                _walk(v, _resolve(extra), p, out)
            else:
                out.append(p)
    elif isinstance(value, list) and isinstance(schema.get("items"), dict):
        sub = _resolve(schema["items"])
        for i, v in enumerate(value):
            _walk(v, sub, f"{path}[{i}]", out)


_JSON_KIND = {bool: "bool", str: "string", int: "number", float: "number", list: "array", dict: "object"}
_LOOSE_STRINGS = ("int-or-string",)  # IntOrString accepts numbers and strings


def _named(schema: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """Resolve references, keeping the last schema name (Go's struct name in errors)."""
    name = ""
    while True:
        ref = schema.get("$ref")
        if ref is None and len(schema.get("allOf") or []) == 1:
            ref = schema["allOf"][0].get("$ref")
        if not ref or not ref.startswith(_REF):
            return name, schema
        name = ref[len(_REF):]
        schema = ALL_SCHEMAS.get(name, {})


def _go_type(schema: dict[str, Any], name: str) -> str:
    t = schema.get("type")
    if t == "boolean":
        return "bool"
    if t == "integer":
        return schema.get("format") or "int"
    if t == "number":
        return "float64"
    if t == "array":
        return "[]" + _go_type(*reversed(_named(schema.get("items") or {})))
    if t == "object" and "properties" not in schema:
        return "map[string]" + _go_type(*reversed(_named(schema.get("additionalProperties") or {})))
    if name:
        return name.rsplit(".", 2)[-2] + "." + name.rsplit(".", 1)[-1] if "." in name else name
    return t or "interface {}"


def _accepts(value: Any, schema: dict[str, Any], name: str) -> bool:
    t = schema.get("type")
    if value is None or t is None:
        return True
    if name.endswith("resource.Quantity") or schema.get("format") in _LOOSE_STRINGS:
        return isinstance(value, str | int | float) and not isinstance(value, bool)
    if t == "boolean":
        return isinstance(value, bool)
    if t == "integer":
        return isinstance(value, int) and not isinstance(value, bool) or (
            isinstance(value, float) and value.is_integer())
    if t == "number":
        return isinstance(value, int | float) and not isinstance(value, bool)
    if t == "string":
        return isinstance(value, str)
    if t == "array":
        return isinstance(value, list)
    if t == "object":
        return isinstance(value, dict)
    return True


def type_error(value: Any, schema: dict[str, Any], struct: str = "", path: str = "") -> str | None:
    """The first value of the wrong JSON type, in Go's encoding/json words, or None."""
    name, schema = _named(schema)
    if not _accepts(value, schema, name):
        field = f" into Go struct field {struct}.{path}" if struct else " into Go value"
        return f"json: cannot unmarshal {_JSON_KIND.get(type(value), 'value')}{field} of type {_go_type(schema, name)}"
    if isinstance(value, dict):
        props = schema.get("properties")
        here = name.rsplit(".", 1)[-1] if name else struct
        for k, v in value.items():
            sub = (props or {}).get(k) if props is not None else schema.get("additionalProperties")
            if isinstance(sub, dict):
                err = type_error(v, sub, here, f"{path}.{k}" if path else k)
                if err:
                    return err
    elif isinstance(value, list) and isinstance(schema.get("items"), dict):
        for v in value:
            err = type_error(v, schema["items"], struct, path)
            if err:
                return err
    return None


def check_types(res: Resource, obj: dict[str, Any]) -> None:
    """Wrong JSON types are a 400 whatever fieldValidation says, as upstream's decoder."""
    name = _schema_for(res.group, res.version, res.kind)
    if name is None:
        return
    err = type_error(obj, ALL_SCHEMAS[name], res.kind)
    if err:
        raise errors.bad_request(f'{res.kind} in version "{res.version}" cannot be handled as a {res.kind}: {err}')


def check(res: Resource, obj: dict[str, Any], mode: str | None, old: dict[str, Any] | None = None) -> list[str]:
    """Apply the requested mode: raise 400 (Strict), return warnings (Warn), or nothing (Ignore).

    With ``old`` (a patch's live object), only fields the request added count:
    a field already stored is not the client's typo.
    """
    check_types(res, obj)
    mode = mode or "Warn"
    if mode not in ("Strict", "Warn", "Ignore"):
        raise errors.bad_request(f"fieldValidation must be one of Ignore, Warn or Strict, got {mode!r}")
    if mode == "Ignore":
        return []
    name = _schema_for(res.group, res.version, res.kind)
    if name is None:
        return []
    unknown = unknown_fields(obj, ALL_SCHEMAS[name])
    if unknown and old is not None:
        known_before = set(unknown_fields(old, ALL_SCHEMAS[name]))
        unknown = [u for u in unknown if u not in known_before]
    if not unknown:
        return []
    texts = [f'unknown field "{p}"' for p in unknown]
    if mode == "Strict":
        raise errors.bad_request(
            f'{res.kind} in version "{res.version}" cannot be handled as a {res.kind}: '
            f"strict decoding error: {', '.join(texts)}"
        )
    return texts


def warning_header(warnings: list[str]) -> str:
    """RFC 7234 warning values as kube-apiserver sends them (kubectl prints ``Warning: ...``)."""
    return ", ".join('299 - "' + w.replace("\\", "\\\\").replace('"', '\\"') + '"' for w in warnings)
