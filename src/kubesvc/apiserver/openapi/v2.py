"""OpenAPI v2 (Swagger 2.0): one document for every served group-version.

kubectl 1.27 and 1.28 download ``/openapi/v2`` in protobuf before every
``create -f``/``apply``/``explain``: they validate manifests against it, take
the strategic-merge-patch markers (``x-kubernetes-patch-merge-key`` and
``-strategy``) for client-side apply from it and print ``explain`` from it.
Newer kubectls use v3 and fall back to v2 only when v3 is missing.

The document is derived from the v3 material (one source of truth): the
component schemas become ``definitions`` with ``#/definitions/`` references,
and each v3 operation becomes a v2 one.  Shape differences that matter to
kubectl's parser (kube-openapi ``pkg/util/proto``):

* v3 typed fields ``{"allOf": [{"$ref": X}], "description": ...}`` become
  ``{"$ref": X, "description": ...}``: the v2 parser ignores ``allOf`` and
  would see an untyped field;
* non-body parameters carry ``type`` themselves (no ``schema``), the request
  body is a ``body`` parameter, and the content types become
  ``consumes``/``produces``.

The HTTP handler is at the bottom: JSON or gnostic protobuf (v2proto.py) by
``Accept``, with an ETag over the JSON bytes as kube-openapi does.
"""

from __future__ import annotations

import hashlib
import time
from email.utils import formatdate
from functools import cache
from typing import Any

import orjson
from aiohttp import web

from kubesvc.api.resources import group_versions
from kubesvc.apiserver.openapi import SERVER_VERSION, openapi_v3_document
from kubesvc.apiserver.openapi.dsl import REF_PREFIX

DEF_PREFIX = "#/definitions/"
PB_CT = "application/com.github.proto-openapi.spec.v2.v1.0+protobuf"
PB_CT_DEPRECATED = "application/com.github.proto-openapi.spec.v2@v1.0+protobuf"
JSON_CT = "application/json"
_METHODS = ("get", "put", "post", "delete", "options", "head", "patch")
# v3 keys with no v2 counterpart (dropped); everything else is carried over.
_V3_ONLY = {"nullable", "oneOf", "anyOf", "not", "writeOnly", "deprecated"}
_STARTED = time.time()


def _schema(node: Any) -> Any:
    """A v3 schema as a v2 schema: ``#/definitions/`` refs, ``allOf: [one $ref]`` folded in."""
    if isinstance(node, list):
        return [_schema(x) for x in node]
    if not isinstance(node, dict):
        return node
    out: dict[str, Any] = {}
    all_of = node.get("allOf")
    if isinstance(all_of, list) and len(all_of) == 1 and set(all_of[0]) == {"$ref"}:
        out["$ref"] = _ref(all_of[0]["$ref"])
    elif all_of is not None:
        out["allOf"] = _schema(all_of)
    for k, v in node.items():
        if k == "allOf" or k in _V3_ONLY:
            continue
        if k == "$ref":
            out[k] = _ref(v)
        elif k == "properties":
            out[k] = {name: _schema(p) for name, p in v.items()}
        elif k in ("items", "additionalProperties"):
            out[k] = _schema(v)
        else:
            out[k] = v  # scalars, enum, required, default, x-* extensions
    return out


def _ref(v3ref: str) -> str:
    return DEF_PREFIX + v3ref.removeprefix(REF_PREFIX)


def _parameter(p: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if p.get("description"):
        out["description"] = p["description"]
    out["in"] = p["in"]
    out["name"] = p["name"]
    if p.get("required"):
        out["required"] = True
    out.update(p.get("schema") or {"type": "string"})  # v2 non-body parameters carry type themselves
    return out


def _first_schema(content: dict[str, Any]) -> dict[str, Any] | None:
    for media in content.values():
        if "schema" in media:
            return _schema(media["schema"])
    return None


def _operation(op: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    consumes: list[str] = []
    produces: list[str] = []
    params = [_parameter(p) for p in op.get("parameters", [])]
    body = op.get("requestBody")
    if body is not None:
        content = body.get("content", {})
        consumes = list(content)
        schema = _first_schema(content)
        params.insert(0, {"in": "body", "name": "body", "required": bool(body.get("required")),
                          **({"schema": schema} if schema else {})})
    responses: dict[str, Any] = {}
    for code, r in op.get("responses", {}).items():
        resp: dict[str, Any] = {"description": r.get("description", "")}
        content = r.get("content") or {}
        for t in content:
            if t not in produces:
                produces.append(t)
        schema = _first_schema(content)
        if schema is not None:
            resp["schema"] = schema
        responses[code] = resp
    for k, v in op.items():
        if k in ("parameters", "requestBody", "responses"):
            continue
        out[k] = v  # description, operationId, tags, x-kubernetes-action, x-kubernetes-group-version-kind
    if consumes:
        out["consumes"] = consumes
    if params:
        out["parameters"] = params
    if produces:
        out["produces"] = produces
    out["responses"] = responses
    out["schemes"] = ["https"]
    return out


def _path_item(item: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in item.items():
        if k in _METHODS:
            out[k] = _operation(v)
        elif k == "parameters":
            out[k] = [_parameter(p) for p in v]
        elif k.startswith("x-"):
            out[k] = v
    return out


@cache
def openapi_v2_document() -> dict[str, Any]:
    """The Swagger 2.0 document of the whole server (treat as read-only: it is shared)."""
    paths: dict[str, Any] = {}
    schemas: dict[str, Any] = {}
    for g, v in group_versions():
        doc = openapi_v3_document(g, v)
        for p, item in doc["paths"].items():
            paths[p] = _path_item(item)
        schemas.update(doc["components"]["schemas"])
    return {
        "swagger": "2.0",
        "info": {"title": "Kubernetes", "version": SERVER_VERSION},
        "paths": dict(sorted(paths.items())),
        "definitions": {name: _schema(schemas[name]) for name in sorted(schemas)},
    }


@cache
def openapi_v2_json() -> bytes:
    return orjson.dumps(openapi_v2_document(), option=orjson.OPT_SORT_KEYS)


@cache
def openapi_v2_protobuf() -> bytes:
    from kubesvc.apiserver.openapi.v2proto import encode_document

    return encode_document(openapi_v2_document())


@cache
def openapi_v2_etag() -> str:
    """Quoted upper-case hex SHA-512 of the JSON form, the same for both encodings (as kube-openapi)."""
    return '"' + hashlib.sha512(openapi_v2_json()).hexdigest().upper() + '"'


def _media_ranges(accept: str) -> list[tuple[str, float]]:
    """``Accept`` clauses as (type/subtype, q), best first; ties keep their order."""
    out: list[tuple[str, float, int]] = []
    for i, clause in enumerate(accept.split(",")):
        parts = [x.strip() for x in clause.split(";")]
        if not parts[0]:
            continue
        q = 1.0
        for param in parts[1:]:
            k, _, val = param.partition("=")
            if k.strip() == "q":
                try:
                    q = float(val)
                except ValueError:
                    q = 0.0
        out.append((parts[0].lower(), q, i))
    out.sort(key=lambda x: (-x[1], x[2]))
    return [(t, q) for t, q, _ in out if q > 0]


def negotiate(accept: str | None) -> str:
    """The content type to answer with: protobuf when asked for first, JSON otherwise.

    kube-openapi answers a 406 to an Accept it cannot meet; we send JSON instead,
    which every caller that reaches this server understands."""
    for media, _ in _media_ranges(accept or "*/*"):
        if media in (JSON_CT, "application/*", "*/*", "*"):
            return JSON_CT
        if media in (PB_CT, PB_CT_DEPRECATED):
            return PB_CT
    return JSON_CT


def _respond(request: web.Request, content_type: str) -> web.Response:
    etag = openapi_v2_etag()
    headers = {"Content-Type": content_type, "ETag": etag, "Vary": "Accept",
               "Cache-Control": "no-cache, private", "Last-Modified": formatdate(_STARTED, usegmt=True)}
    inm = request.headers.get("If-None-Match")
    if inm and (inm.strip() == "*" or etag in [t.strip() for t in inm.split(",")]):
        return web.Response(status=304, headers=headers)
    body = openapi_v2_protobuf() if content_type == PB_CT else openapi_v2_json()
    return web.Response(body=body, headers=headers)


async def openapi_v2_handler(request: web.Request) -> web.Response:
    """``GET /openapi/v2``: gnostic protobuf or JSON by ``Accept``."""
    return _respond(request, negotiate(request.headers.get("Accept")))


async def swagger_pb_handler(request: web.Request) -> web.Response:
    """``GET /swagger-2.0.0.pb-v1``: the protobuf path of old clients."""
    return _respond(request, PB_CT)


__all__ = ["PB_CT", "PB_CT_DEPRECATED", "negotiate", "openapi_v2_document", "openapi_v2_etag",
           "openapi_v2_handler", "openapi_v2_json", "openapi_v2_protobuf", "swagger_pb_handler"]
