"""OpenAPI v2: the Swagger document, its gnostic protobuf encoding, and the HTTP endpoint.

The protobuf is read back with a small decoder written here from gnostic's
OpenAPIv2.proto field numbers (google.protobuf is not a dependency), and the
decoded document must equal the JSON one.
"""

from __future__ import annotations

import struct
from typing import Any

import orjson
import pytest
from aiohttp.test_utils import TestClient, TestServer

from kubesvc.api.resources import RESOURCES
from kubesvc.apiserver.app import create_app
from kubesvc.apiserver.openapi import ALL_SCHEMAS
from kubesvc.apiserver.openapi.paths import schema_name
from kubesvc.apiserver.openapi.v2 import (
    PB_CT,
    PB_CT_DEPRECATED,
    negotiate,
    openapi_v2_document,
    openapi_v2_etag,
    openapi_v2_json,
    openapi_v2_protobuf,
)
from kubesvc.apiserver.openapi.v2proto import encode_document, schema
from kubesvc.registry.generic import Registry

# --- a test-side protobuf reader -------------------------------------------------


def _varint(buf: bytes, i: int) -> tuple[int, int]:
    shift = n = 0
    while True:
        b = buf[i]
        i += 1
        n |= (b & 0x7F) << shift
        shift += 7
        if not b & 0x80:
            return n, i


def fields(buf: bytes) -> list[tuple[int, Any]]:
    """(field number, value) pairs in wire order: int for varints, float for I64, bytes for LEN."""
    out: list[tuple[int, Any]] = []
    i = 0
    while i < len(buf):
        key, i = _varint(buf, i)
        num, wire = key >> 3, key & 7
        if wire == 0:
            v, i = _varint(buf, i)
        elif wire == 1:
            v, i = struct.unpack("<d", buf[i:i + 8])[0], i + 8
        elif wire == 2:
            n, i = _varint(buf, i)
            v, i = buf[i:i + n], i + n
        else:
            raise AssertionError(f"unexpected wire type {wire}")
        out.append((num, v))
    assert i == len(buf), "message overruns its buffer"
    return out


def _text(b: bytes) -> str:
    return b.decode()


def _any(b: bytes) -> Any:
    (num, yaml), = fields(b)
    assert num == 2
    return orjson.loads(yaml)  # we write JSON, which is YAML


def _named(b: bytes, value: Any) -> tuple[str, Any]:
    f = dict(fields(b))
    return _text(f[1]), value(f.get(2, b""))


def _ext(out: dict[str, Any], b: bytes) -> None:
    name, val = _named(b, _any)
    assert name.startswith("x-")
    out[name] = val


# Schema: JSON key by field number, with a reader for scalars.
_SCHEMA = {1: ("$ref", _text), 2: ("format", _text), 3: ("title", _text), 4: ("description", _text),
           5: ("default", _any), 13: ("pattern", _text), 16: ("uniqueItems", bool), 26: ("discriminator", _text),
           27: ("readOnly", bool), 11: ("maxLength", int), 12: ("minLength", int), 14: ("maxItems", int),
           15: ("minItems", int), 7: ("maximum", float), 9: ("minimum", float)}


def dec_schema(b: bytes) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for num, v in fields(b):
        if num in _SCHEMA:
            key, read = _SCHEMA[num]
            out[key] = read(v)
        elif num == 19:
            out.setdefault("required", []).append(_text(v))
        elif num == 20:
            out.setdefault("enum", []).append(_any(v))
        elif num == 21:
            (which, inner), = fields(v)
            out["additionalProperties"] = dec_schema(inner) if which == 1 else bool(inner)
        elif num == 22:
            types = [_text(t) for n, t in fields(v) if n == 1]
            out["type"] = types[0] if len(types) == 1 else types
        elif num == 23:
            items = [dec_schema(s) for n, s in fields(v) if n == 1]
            out["items"] = items[0] if len(items) == 1 else items
        elif num == 24:
            out.setdefault("allOf", []).append(dec_schema(v))
        elif num == 25:
            out["properties"] = dict(_named(p, dec_schema) for n, p in fields(v) if n == 1)
        elif num == 31:
            _ext(out, v)
        else:
            raise AssertionError(f"Schema field {num} not expected")
    return out


def dec_param(b: bytes) -> dict[str, Any]:
    (kind, v), = fields(b)
    if kind == 2:  # JsonReference
        return {"$ref": _text(dict(fields(v))[1])}
    (which, p), = fields(v)
    out: dict[str, Any] = {}
    if which == 1:  # BodyParameter
        for num, x in fields(p):
            key = {1: "description", 2: "name", 3: "in", 4: "required", 5: "schema"}[num] if num != 6 else None
            if key is None:
                _ext(out, x)
            else:
                out[key] = {"required": bool, "schema": dec_schema}.get(key, _text)(x)
        return out
    (sub, s), = fields(p)  # NonBodyParameter: header 1, formData 2, query 3, path 4
    base = 6 if sub in (2, 3) else 5
    names = {1: "required", 2: "in", 3: "description", 4: "name", 5: "allowEmptyValue",
             base: "type", base + 1: "format", base + 14: "uniqueItems"}
    for num, x in fields(s):
        key = names[num]
        out[key] = bool(x) if key in ("required", "uniqueItems", "allowEmptyValue") else _text(x)
    assert out["in"] == {1: "header", 2: "formData", 3: "query", 4: "path"}[sub]
    return out


def dec_operation(b: bytes) -> dict[str, Any]:
    out: dict[str, Any] = {}
    lists = {1: "tags", 6: "produces", 7: "consumes", 10: "schemes"}
    for num, v in fields(b):
        if num in lists:
            out.setdefault(lists[num], []).append(_text(v))
        elif num in (2, 3, 5):
            out[{2: "summary", 3: "description", 5: "operationId"}[num]] = _text(v)
        elif num == 8:
            out.setdefault("parameters", []).append(dec_param(v))
        elif num == 9:
            out["responses"] = {}
            for n, rv in fields(v):
                assert n == 1
                code, resp = _named(rv, lambda x: x)
                (which, r), = fields(resp)
                assert which == 1
                d: dict[str, Any] = {}
                for rn, rx in fields(r):
                    if rn == 1:
                        d["description"] = _text(rx)
                    elif rn == 2:
                        (si, sch), = fields(rx)
                        assert si == 1
                        d["schema"] = dec_schema(sch)
                out["responses"][code] = d
        elif num == 13:
            _ext(out, v)
        else:
            raise AssertionError(f"Operation field {num} not expected")
    return out


def dec_path_item(b: bytes) -> dict[str, Any]:
    out: dict[str, Any] = {}
    methods = {2: "get", 3: "put", 4: "post", 5: "delete", 6: "options", 7: "head", 8: "patch"}
    for num, v in fields(b):
        if num in methods:
            out[methods[num]] = dec_operation(v)
        elif num == 9:
            out.setdefault("parameters", []).append(dec_param(v))
        elif num == 10:
            _ext(out, v)
        else:
            raise AssertionError(f"PathItem field {num} not expected")
    return out


def dec_document(b: bytes) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for num, v in fields(b):
        if num == 1:
            out["swagger"] = _text(v)
        elif num == 2:
            f = dict(fields(v))
            out["info"] = {"title": _text(f[1]), "version": _text(f[2])}
        elif num == 8:
            out["paths"] = dict(_named(p, dec_path_item) for n, p in fields(v) if n == 2)
        elif num == 9:
            out["definitions"] = dict(_named(d, dec_schema) for n, d in fields(v) if n == 1)
        else:
            raise AssertionError(f"Document field {num} not expected")
    return out


# --- the JSON document ---------------------------------------------------------------

DOC = openapi_v2_document()


def _refs(node: Any, out: set[str]) -> set[str]:
    if isinstance(node, dict):
        if "$ref" in node:
            out.add(node["$ref"])
        for v in node.values():
            _refs(v, out)
    elif isinstance(node, list):
        for v in node:
            _refs(v, out)
    return out


def _item_path(res) -> str:  # type: ignore[no-untyped-def]
    p = f"/apis/{res.group}/{res.version}" if res.group else f"/api/{res.version}"
    ns = "/namespaces/{namespace}" if res.namespaced else ""
    return f"{p}{ns}/{res.plural}/{{name}}"


def test_document_is_swagger_2_with_upstream_definition_names() -> None:
    assert DOC["swagger"] == "2.0"
    assert "io.k8s.api.core.v1.Service" in DOC["definitions"]
    assert "io.k8s.api.apps.v1.Deployment" in DOC["definitions"]
    assert "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta" in DOC["definitions"]
    assert set(DOC["definitions"]) <= set(ALL_SCHEMAS)


def test_every_ref_is_a_definition_and_no_v3_leftovers() -> None:
    refs = _refs(DOC, set())
    assert refs and all(r.startswith("#/definitions/") for r in refs)
    assert {r.removeprefix("#/definitions/") for r in refs} <= set(DOC["definitions"])
    text = openapi_v2_json().decode()
    for v3 in ("#/components/", '"allOf"', '"requestBody"', '"content"', '"nullable"'):
        assert v3 not in text


def test_typed_fields_are_refs_with_description_as_upstream_v2() -> None:
    spec = DOC["definitions"]["io.k8s.api.core.v1.Service"]["properties"]["spec"]
    assert spec["$ref"] == "#/definitions/io.k8s.api.core.v1.ServiceSpec"
    assert spec["description"]
    ports = DOC["definitions"]["io.k8s.api.core.v1.ServiceSpec"]["properties"]["ports"]
    assert ports["type"] == "array"
    assert ports["items"]["$ref"] == "#/definitions/io.k8s.api.core.v1.ServicePort"
    assert ports["x-kubernetes-patch-merge-key"] == "port"
    assert ports["x-kubernetes-patch-strategy"] == "merge"
    assert ports["x-kubernetes-list-type"] == "map"
    assert ports["x-kubernetes-list-map-keys"] == ["port", "protocol"]


def test_kinds_keep_group_version_kind() -> None:
    for res in RESOURCES:
        d = DOC["definitions"][schema_name(res.group, res.version, res.kind)]
        assert d["x-kubernetes-group-version-kind"] == [
            {"group": res.group, "version": res.version, "kind": res.kind}]


def test_kubectl_parser_constraints_hold_for_every_schema() -> None:
    """kube-openapi's pkg/util/proto rejects the whole document on the first of these."""
    def check(s: dict[str, Any], where: str) -> None:
        if "$ref" in s:
            assert "type" not in s and "properties" not in s, where
            return
        t = s.get("type")
        assert t in (None, "object", "array", "string", "integer", "number", "boolean"), where
        if t == "array":
            assert isinstance(s.get("items"), dict), where
            check(s["items"], where + "[]")
        for name, p in (s.get("properties") or {}).items():
            check(p, f"{where}.{name}")
        if isinstance(s.get("additionalProperties"), dict):
            check(s["additionalProperties"], where + "{}")
    for name, s in DOC["definitions"].items():
        check(s, name)


def test_patch_operations_keep_gvk_action_and_field_validation() -> None:
    for res in RESOURCES:
        if "patch" not in res.verbs:
            continue
        op = DOC["paths"][_item_path(res)]["patch"]
        assert op["x-kubernetes-action"] == "patch"
        assert op["x-kubernetes-group-version-kind"] == {"group": res.group, "version": res.version,
                                                        "kind": res.kind}
        names = [p["name"] for p in op["parameters"]]
        assert "fieldValidation" in names
        body = next(p for p in op["parameters"] if p["in"] == "body")
        assert body["required"] is True and body["schema"]["$ref"].endswith("meta.v1.Patch")
        assert "application/strategic-merge-patch+json" in op["consumes"]
        assert all("schema" not in p for p in op["parameters"] if p["in"] != "body")


def test_create_operation_has_body_and_responses() -> None:
    op = DOC["paths"]["/api/v1/namespaces/{namespace}/services"]["post"]
    body = op["parameters"][0]
    assert body == {"in": "body", "name": "body", "required": True,
                    "schema": {"$ref": "#/definitions/io.k8s.api.core.v1.Service"}}
    assert op["responses"]["201"]["schema"]["$ref"] == "#/definitions/io.k8s.api.core.v1.Service"
    assert op["responses"]["401"] == {"description": "Unauthorized"}
    assert "application/json" in op["produces"]
    params = DOC["paths"]["/api/v1/namespaces/{namespace}/services/{name}"]["parameters"]
    assert params[0]["in"] == "path" and params[0]["type"] == "string" and params[0]["required"] is True


# --- the protobuf ----------------------------------------------------------------------


def test_protobuf_round_trips_to_the_json_document() -> None:
    decoded = dec_document(openapi_v2_protobuf())
    assert decoded == orjson.loads(openapi_v2_json())


def test_protobuf_vendor_extension_is_named_any_with_yaml() -> None:
    wire = schema({"type": "array", "items": {"type": "string"}, "x-kubernetes-patch-merge-key": "port"})
    nums = [n for n, _ in fields(wire)]
    assert nums == [22, 23, 31]  # type, items, vendor_extension: in field order
    named = dict(fields(dict(fields(wire))[31]))
    assert named[1] == b"x-kubernetes-patch-merge-key"
    assert dict(fields(named[2])) == {2: b'"port"'}


def test_protobuf_empty_properties_are_present() -> None:
    """kube-openapi tells an object (properties present) from a map (absent)."""
    wire = schema({"type": "object", "properties": {}})
    assert (25, b"") in fields(wire)
    assert dec_schema(schema({"type": "object", "additionalProperties": True})) == {
        "type": "object", "additionalProperties": True}


def test_protobuf_parameters() -> None:
    doc = {"swagger": "2.0", "info": {"title": "t", "version": "v"}, "paths": {"/x/{name}": {
        "parameters": [{"in": "path", "name": "name", "required": True, "type": "string"},
                       {"$ref": "#/parameters/pretty"}],
        "get": {"parameters": [{"in": "query", "name": "limit", "type": "integer", "uniqueItems": True},
                               {"in": "header", "name": "X-A", "type": "string"}],
                "responses": {"200": {"description": "OK"}}}}}, "definitions": {}}
    assert dec_document(encode_document(doc)) == doc


def test_protobuf_scalars_and_numbers() -> None:
    s = {"type": "integer", "format": "int32", "minimum": 1, "maximum": 65535.0, "maxLength": 5,
         "enum": ["a", 1], "default": 0, "required": ["a", "b"]}
    back = dec_schema(schema(s))
    assert back == {"type": "integer", "format": "int32", "minimum": 1.0, "maximum": 65535.0, "maxLength": 5,
                    "enum": ["a", 1], "default": 0, "required": ["a", "b"]}


# --- HTTP ------------------------------------------------------------------------------


@pytest.mark.parametrize(("accept", "want"), [
    (PB_CT_DEPRECATED, PB_CT),
    (PB_CT, PB_CT),
    (f"{PB_CT_DEPRECATED}, application/json;q=0.5", PB_CT),
    (f"application/json, {PB_CT}", "application/json"),
    (f"application/json;q=0.1, {PB_CT}", PB_CT),
    ("application/json, */*", "application/json"),
    ("", "application/json"),
    (None, "application/json"),
    ("text/html", "application/json"),
])
def test_negotiate(accept: str | None, want: str) -> None:
    assert negotiate(accept) == want


async def _client() -> TestClient:
    client = TestClient(TestServer(create_app(Registry(None))))  # type: ignore[arg-type]
    await client.start_server()
    return client


async def test_http_protobuf_json_etag_and_legacy_path() -> None:
    client = await _client()
    try:
        r = await client.get("/openapi/v2", headers={"Accept": PB_CT_DEPRECATED})
        assert r.status == 200
        # '@' is a MIME tspecial that client-go's mime.ParseMediaType rejects: answer the '.v1.0' spelling
        assert r.headers["Content-Type"] == PB_CT
        assert await r.read() == openapi_v2_protobuf()
        etag = r.headers["ETag"]
        assert etag == openapi_v2_etag() and etag.startswith('"') and len(etag) == 130
        assert r.headers["Vary"] == "Accept"

        r = await client.get("/openapi/v2", headers={"Accept": "application/json, */*"})
        assert r.status == 200 and r.headers["Content-Type"] == "application/json"
        assert orjson.loads(await r.read())["swagger"] == "2.0"
        assert r.headers["ETag"] == etag

        r = await client.get("/openapi/v2", headers={"Accept": PB_CT, "If-None-Match": etag})
        assert r.status == 304

        r = await client.get("/swagger-2.0.0.pb-v1")
        assert r.status == 200 and r.headers["Content-Type"] == PB_CT
        assert await r.read() == openapi_v2_protobuf()
    finally:
        await client.close()
