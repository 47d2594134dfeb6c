"""A protobuf encoder for gnostic's OpenAPI v2 ``Document`` (package ``openapi.v2``).

This is the wire form kubectl 1.27/1.28 download from ``/openapi/v2``
(``Accept: application/com.github.proto-openapi.spec.v2@v1.0+protobuf``).  It
encodes the JSON-shaped Swagger 2.0 dict that v2.py builds; field numbers are
those of gnostic's ``openapiv2/OpenAPIv2.proto`` (proto3).

Encoded: Document (swagger, info, host, basePath, schemes, consumes, produces,
paths, definitions, vendor extensions), Info, Paths/NamedPathItem, PathItem,
Operation, ParametersItem -> Parameter -> BodyParameter or NonBodyParameter
(query, path and header sub-schemas; ``$ref`` parameters as JsonReference),
Responses/ResponseValue/Response/SchemaItem, Definitions/NamedSchema, Schema
(with Properties, ItemsItem, AdditionalPropertiesItem, TypeItem, allOf, enum,
default, example), and every ``x-*`` key as ``NamedAny{name, Any{yaml}}``.

Simplifications (nothing kubectl reads):

* ``Any`` carries only ``yaml``; the text is JSON, which is valid YAML and is
  what kube-openapi's ``yaml.Unmarshal`` of the extension reads back;
* not encoded: security, securityDefinitions, tags, externalDocs, top-level
  parameters/responses, response headers/examples, ``xml``, form-data
  parameters, and parameter ``items`` (PrimitivesItems);
* as in proto3, zero scalars (false, 0, "") are left out.  Message fields are
  always written when the key is present, even if empty, so that e.g. an empty
  ``properties`` still reads back as present (kube-openapi tells objects from
  maps by it).
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from typing import Any

import orjson

Node = dict[str, Any]

# wire types
_VARINT, _I64, _LEN = 0, 1, 2


def _varint(n: int) -> bytes:
    if n < 0:
        n += 1 << 64  # int64 negatives are ten-byte two's complement
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def _key(field: int, wire: int) -> bytes:
    return _varint(field << 3 | wire)


def _len(field: int, data: bytes) -> bytes:
    return _key(field, _LEN) + _varint(len(data)) + data


def _string(field: int, v: Any) -> bytes:
    return _len(field, str(v).encode()) if v not in (None, "") else b""


def _strings(field: int, vs: Any) -> bytes:
    if isinstance(vs, str):
        vs = [vs]
    return b"".join(_len(field, str(v).encode()) for v in vs or ())


def _bool(field: int, v: Any) -> bytes:
    return _key(field, _VARINT) + b"\x01" if v is True else b""


def _int64(field: int, v: Any) -> bytes:
    return _key(field, _VARINT) + _varint(int(v)) if v else b""


def _double(field: int, v: Any) -> bytes:
    return _key(field, _I64) + struct.pack("<d", float(v)) if v else b""


def _yaml(v: Any) -> str:
    """The YAML text of a JSON value: its JSON form (YAML is a superset)."""
    return orjson.dumps(v, option=orjson.OPT_SORT_KEYS).decode()


def _any(field: int, v: Any) -> bytes:
    """``Any{yaml = 2}``."""
    return _len(field, _string(2, _yaml(v)))


def _named(field: int, name: str, value: bytes) -> bytes:
    """Any ``Named*`` pair message: ``name = 1``, ``value = 2``."""
    return _len(field, _string(1, name) + _len(2, value))


def _extensions(field: int, node: Node) -> bytes:
    """Every ``x-*`` key as ``repeated NamedAny`` (``Any`` with ``yaml = 2``)."""
    return b"".join(_named(field, k, _string(2, _yaml(v))) for k, v in node.items() if k.startswith("x-"))


# --- Schema -------------------------------------------------------------------

_SCHEMA_FIELDS: dict[str, tuple[int, Callable[[int, Any], bytes]]] = {
    "$ref": (1, _string), "format": (2, _string), "title": (3, _string), "description": (4, _string),
    "default": (5, _any), "multipleOf": (6, _double), "maximum": (7, _double), "exclusiveMaximum": (8, _bool),
    "minimum": (9, _double), "exclusiveMinimum": (10, _bool), "maxLength": (11, _int64),
    "minLength": (12, _int64), "pattern": (13, _string), "maxItems": (14, _int64), "minItems": (15, _int64),
    "uniqueItems": (16, _bool), "maxProperties": (17, _int64), "minProperties": (18, _int64),
    "required": (19, _strings), "discriminator": (26, _string), "readOnly": (27, _bool), "example": (30, _any),
}


def schema(s: Node) -> bytes:
    """``Schema``; the body of one message (without its tag)."""
    parts: list[tuple[int, bytes]] = []
    for k, v in s.items():
        if k in _SCHEMA_FIELDS:
            num, enc = _SCHEMA_FIELDS[k]
            parts.append((num, enc(num, v)))
        elif k == "enum":
            parts.append((20, b"".join(_any(20, e) for e in v)))
        elif k == "additionalProperties":  # AdditionalPropertiesItem: oneof schema = 1 | boolean = 2
            inner = _len(1, schema(v)) if isinstance(v, dict) else _key(2, _VARINT) + (b"\x01" if v else b"\x00")
            parts.append((21, _len(21, inner)))
        elif k == "type":  # TypeItem{repeated string value = 1}
            parts.append((22, _len(22, _strings(1, v))))
        elif k == "items":  # ItemsItem{repeated Schema schema = 1}
            items = v if isinstance(v, list) else [v]
            parts.append((23, _len(23, b"".join(_len(1, schema(i)) for i in items))))
        elif k == "allOf":
            parts.append((24, b"".join(_len(24, schema(i)) for i in v)))
        elif k == "properties":  # Properties{repeated NamedSchema additional_properties = 1}
            parts.append((25, _len(25, b"".join(_named(1, n, schema(p)) for n, p in v.items()))))
    parts.append((31, _extensions(31, s)))
    parts.sort(key=lambda p: p[0])  # field order, as Go's marshaller writes
    return b"".join(p for _, p in parts)


# --- Parameters ---------------------------------------------------------------

# QueryParameterSubSchema / FormData: required 1, in 2, description 3, name 4, allowEmptyValue 5, type 6...
# PathParameterSubSchema / Header: the same without allowEmptyValue, so from type on one lower.
_NONBODY_TAIL = ("type", "format", "items", "collectionFormat", "default", "maximum", "exclusiveMaximum",
                 "minimum", "exclusiveMinimum", "maxLength", "minLength", "pattern", "maxItems", "minItems",
                 "uniqueItems", "enum", "multipleOf")
_TAIL_ENC: dict[str, Callable[[int, Any], bytes]] = {
    "type": _string, "format": _string, "collectionFormat": _string, "default": _any,
    "maximum": _double, "exclusiveMaximum": _bool, "minimum": _double, "exclusiveMinimum": _bool,
    "maxLength": _int64, "minLength": _int64, "pattern": _string, "maxItems": _int64, "minItems": _int64,
    "uniqueItems": _bool, "multipleOf": _double,
}
_NONBODY_ONEOF = {"header": 1, "formData": 2, "query": 3, "path": 4}


def _non_body(p: Node) -> bytes:
    with_empty = p["in"] in ("query", "formData")
    out = _bool(1, p.get("required")) + _string(2, p["in"]) + _string(3, p.get("description")) + \
        _string(4, p.get("name"))
    if with_empty:
        out += _bool(5, p.get("allowEmptyValue"))
    first = 6 if with_empty else 5
    for i, k in enumerate(_NONBODY_TAIL):
        if k not in p or k == "items":  # items (PrimitivesItems) not encoded: no array parameters here
            continue
        num = first + i
        out += b"".join(_any(num, e) for e in p[k]) if k == "enum" else _TAIL_ENC[k](num, p[k])
    out += _extensions(first + len(_NONBODY_TAIL), p)
    return _len(_NONBODY_ONEOF[p["in"]], out)


def parameters_item(p: Node) -> bytes:
    """``ParametersItem``: oneof Parameter = 1 (body = 1 | non-body = 2) or JsonReference = 2."""
    if "$ref" in p:
        return _len(2, _string(1, p["$ref"]) + _string(2, p.get("description")))
    if p.get("in") == "body":
        body = _string(1, p.get("description")) + _string(2, p.get("name")) + _string(3, "body") + \
            _bool(4, p.get("required")) + (_len(5, schema(p["schema"])) if "schema" in p else b"") + \
            _extensions(6, p)
        return _len(1, _len(1, body))
    if p.get("in") not in _NONBODY_ONEOF:
        raise ValueError(f"parameter {p.get('name')!r}: unknown location {p.get('in')!r}")
    return _len(1, _len(2, _non_body(p)))


# --- Operations and paths -----------------------------------------------------

def _responses(rs: Node) -> bytes:
    out = b""
    for code, r in rs.items():
        if code.startswith("x-"):
            continue
        if "$ref" in r:
            value = _len(2, _string(1, r["$ref"]))
        else:
            resp = _string(1, r.get("description")) + \
                (_len(2, _len(1, schema(r["schema"]))) if "schema" in r else b"") + _extensions(5, r)
            value = _len(1, resp)
        out += _named(1, code, value)
    return out + _extensions(2, rs)


def operation(op: Node) -> bytes:
    return b"".join((
        _strings(1, op.get("tags")), _string(2, op.get("summary")), _string(3, op.get("description")),
        _string(5, op.get("operationId")), _strings(6, op.get("produces")), _strings(7, op.get("consumes")),
        b"".join(_len(8, parameters_item(p)) for p in op.get("parameters", ())),
        _len(9, _responses(op["responses"])) if "responses" in op else b"",
        _strings(10, op.get("schemes")), _bool(11, op.get("deprecated")), _extensions(13, op),
    ))


_METHOD_FIELDS = (("get", 2), ("put", 3), ("post", 4), ("delete", 5), ("options", 6), ("head", 7), ("patch", 8))


def path_item(item: Node) -> bytes:
    out = _string(1, item.get("$ref"))
    for method, num in _METHOD_FIELDS:
        if method in item:
            out += _len(num, operation(item[method]))
    out += b"".join(_len(9, parameters_item(p)) for p in item.get("parameters", ()))
    return out + _extensions(10, item)


# --- Document -----------------------------------------------------------------

def encode_document(doc: Node) -> bytes:
    """The wire bytes of ``openapi.v2.Document`` for a Swagger 2.0 dict."""
    info = doc.get("info", {})
    info_b = _string(1, info.get("title")) + _string(2, info.get("version")) + \
        _string(3, info.get("description")) + _string(4, info.get("termsOfService")) + _extensions(7, info)
    paths = doc.get("paths", {})
    paths_b = _extensions(1, paths) + b"".join(
        _named(2, p, path_item(item)) for p, item in paths.items() if not p.startswith("x-"))
    defs_b = b"".join(_named(1, n, schema(s)) for n, s in doc.get("definitions", {}).items())
    return b"".join((
        _string(1, doc.get("swagger", "2.0")), _len(2, info_b), _string(3, doc.get("host")),
        _string(4, doc.get("basePath")), _strings(5, doc.get("schemes")), _strings(6, doc.get("consumes")),
        _strings(7, doc.get("produces")), _len(8, paths_b), _len(9, defs_b), _extensions(16, doc),
    ))


__all__ = ["encode_document", "operation", "parameters_item", "path_item", "schema"]
