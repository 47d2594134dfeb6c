"""OpenAPI v3: the index at ``/openapi/v3`` and one document per group-version.

kubectl needs these for validation (it checks that PATCH takes
``fieldValidation``), for ``kubectl explain`` (component schemas found by
``x-kubernetes-group-version-kind``) and for client-side apply's strategic
merge patches (the ``x-kubernetes-patch-*`` markers).  Documents are built
once from resources.py and the type modules, and cached with a content hash
that the index advertises as ``?hash=``.
"""

from __future__ import annotations

import hashlib
from functools import cache
from typing import Any

import orjson

from kubesvc.api.resources import RESOURCES, group_versions
from kubesvc.apiserver.openapi import (
    types_apps,
    types_core,
    types_discovery,
    types_kubesvc,
    types_meta,
    types_pod,
)
from kubesvc.apiserver.openapi.dsl import META, refs_in
from kubesvc.apiserver.openapi.paths import resource_paths, schema_name

SERVER_VERSION = "v1.32.0"
ALL_SCHEMAS: dict[str, dict[str, Any]] = {
    **types_meta.SCHEMAS, **types_core.SCHEMAS, **types_pod.SCHEMAS, **types_apps.SCHEMAS,
    **types_discovery.SCHEMAS, **types_kubesvc.SCHEMAS,
}


def gv_path(group: str, version: str) -> str:
    """``api/v1`` or ``apis/<group>/<version>``: the key in the index and the URL suffix."""
    return f"apis/{group}/{version}" if group else f"api/{version}"


def _closure(roots: set[str]) -> dict[str, dict[str, Any]]:
    """The named schemas plus everything they refer to, sorted by name."""
    seen: set[str] = set()
    todo = sorted(roots)
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        if name not in ALL_SCHEMAS:
            raise KeyError(f"OpenAPI schema {name} is referenced but not described")
        seen.add(name)
        todo.extend(refs_in(ALL_SCHEMAS[name]) - seen)
    return {n: ALL_SCHEMAS[n] for n in sorted(seen)}


@cache
def openapi_v3_document(group: str, version: str) -> dict[str, Any]:
    """The OpenAPI 3.0 document of one group-version (treat as read-only: it is shared)."""
    prefix = "/" + gv_path(group, version)
    paths: dict[str, Any] = {}
    roots: set[str] = set()
    for res in RESOURCES:
        if (res.group, res.version) != (group, version):
            continue
        paths.update(resource_paths(res, prefix))
        roots |= {schema_name(res.group, res.version, res.kind), schema_name(res.group, res.version,
                                                                              res.kind + "List")}
    if not paths:
        raise KeyError(f"no resources in {group or 'core'}/{version}")
    roots |= refs_in(paths) | {META + "Status", META + "DeleteOptions", META + "WatchEvent"}
    return {
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes", "version": SERVER_VERSION},
        "paths": dict(sorted(paths.items())),
        "components": {"schemas": _closure(roots)},
    }


@cache
def openapi_v3_document_bytes(group: str, version: str) -> bytes:
    """The document serialised once, for the HTTP layer to send as is."""
    return orjson.dumps(openapi_v3_document(group, version), option=orjson.OPT_SORT_KEYS)


@cache
def document_hash(group: str, version: str) -> str:
    """Stable content hash of a document (upper-case hex SHA-512, as upstream's look)."""
    return hashlib.sha512(openapi_v3_document_bytes(group, version)).hexdigest().upper()


@cache
def openapi_v3_index() -> dict[str, Any]:
    """The ``/openapi/v3`` index: one entry per served group-version, with its hash."""
    return {"paths": {
        gv_path(g, v): {"serverRelativeURL": f"/openapi/v3/{gv_path(g, v)}?hash={document_hash(g, v)}"}
        for g, v in group_versions()
    }}


def lookup(path: str) -> tuple[str, str] | None:
    """``api/v1`` or ``apis/apps/v1`` (with or without the /openapi/v3/ prefix) -> (group, version)."""
    p = path.strip("/").removeprefix("openapi/v3/")
    for g, v in group_versions():
        if gv_path(g, v) == p:
            return g, v
    return None


__all__ = ["document_hash", "gv_path", "lookup", "openapi_v3_document", "openapi_v3_document_bytes",
           "openapi_v3_index"]
