"""The ``paths`` of an OpenAPI v3 group-version document, derived from resources.py.

kubectl reads these for two things: whether the resource's item PATCH takes
``fieldValidation`` (if so it leaves validation to the server instead of
downloading OpenAPI v2 in protobuf), and whether that PATCH accepts strategic
merge patch for the kind (found by ``x-kubernetes-group-version-kind``).
"""

from __future__ import annotations

from typing import Any

from kubesvc.api.resources import Resource
from kubesvc.apiserver.openapi.dsl import AUTOSCALING, META, REF_PREFIX, Schema

Op = dict[str, Any]
PATCH_TYPES = ("application/apply-patch+yaml", "application/json-patch+json",
               "application/merge-patch+json", "application/strategic-merge-patch+json")
_CONTENT = ("application/json", "application/yaml", "application/vnd.kubernetes.protobuf")


def schema_name(group: str, version: str, kind: str) -> str:
    """``io.k8s.api.<package>.<version>.<Kind>``: core for the legacy group, else the group's first label."""
    package = group.split(".", 1)[0] if group else "core"
    return f"io.k8s.api.{package}.{version}.{kind}"


def _camel_gv(group: str, version: str) -> str:
    package = group.split(".", 1)[0] if group else "core"
    return package[:1].upper() + package[1:] + version[:1].upper() + version[1:]


def _tag(group: str, version: str) -> str:
    return f"{group.split('.', 1)[0] if group else 'core'}_{version}"


def _param(name: str, where: str, desc: str, schema: Schema | None = None, required: bool = False) -> Schema:
    p: Schema = {"name": name, "in": where, "description": desc,
                 "schema": schema or {"type": "string", "uniqueItems": True}}
    if required:
        p["required"] = True
    return p


_BOOL = {"type": "boolean", "uniqueItems": True}
_INT = {"type": "integer", "uniqueItems": True}

P_DRY_RUN = _param("dryRun", "query", "When All, validate and default the request but persist nothing.")
P_FIELD_MANAGER = _param("fieldManager", "query", "Name of the actor making the change, for field ownership.")
P_FIELD_VALIDATION = _param("fieldValidation", "query",
                            "How to treat unknown or duplicate fields: Ignore, Warn or Strict.")
P_FORCE = _param("force", "query", "For apply patches: take ownership of conflicting fields.", _BOOL)
P_PRETTY = _param("pretty", "query", "Indent the output.")
P_NAME = _param("name", "path", "Name of the object.", required=True)
P_NAMESPACE = _param("namespace", "path", "Namespace of the object.", required=True)
LIST_PARAMS = [
    _param("allowWatchBookmarks", "query", "Ask for BOOKMARK events on watches.", _BOOL),
    _param("continue", "query", "Token from a previous page to continue listing."),
    _param("fieldSelector", "query", "Only objects whose fields match, such as metadata.name=x."),
    _param("labelSelector", "query", "Only objects whose labels match."),
    _param("limit", "query", "Most items to return; a continue token gives the rest.", _INT),
    _param("resourceVersion", "query", "Version to list or watch from."),
    _param("resourceVersionMatch", "query", "How resourceVersion applies to a list: Exact or NotOlderThan."),
    _param("sendInitialEvents", "query", "Start a watch with the current objects as ADDED events.", _BOOL),
    _param("timeoutSeconds", "query", "End the list or watch after this many seconds.", _INT),
    _param("watch", "query", "Stream changes instead of listing.", _BOOL),
]
DELETE_PARAMS = [
    P_DRY_RUN,
    _param("gracePeriodSeconds", "query", "Seconds before the object is deleted; zero means now.", _INT),
    _param("ignoreStoreReadErrorWithClusterBreakingPotential", "query",
           "Delete even when the stored object cannot be read. Dangerous.", _BOOL),
    _param("orphanDependents", "query", "Deprecated: use propagationPolicy.", _BOOL),
    _param("propagationPolicy", "query", "Orphan, Background or Foreground."),
]


def _ref(name: str) -> Schema:
    return {"$ref": REF_PREFIX + name}


def _body(name: str, types: tuple[str, ...] = ("*/*",)) -> Schema:
    return {"content": {t: {"schema": _ref(name)} for t in types}, "required": True}


def _responses(name: str, codes: tuple[str, ...] = ("200",)) -> Schema:
    out: Schema = {code: {"description": {"200": "OK", "201": "Created", "202": "Accepted"}[code],
                          "content": {t: {"schema": _ref(name)} for t in _CONTENT}} for code in codes}
    out["401"] = {"description": "Unauthorized"}
    return out


def _op(action: str, op_id: str, desc: str, tag: str, gvk: dict[str, str], **rest: Any) -> Op:
    return {"description": desc, "operationId": op_id, "tags": [tag], "x-kubernetes-action": action,
            "x-kubernetes-group-version-kind": gvk, **rest}


def resource_paths(res: Resource, prefix: str) -> dict[str, dict[str, Any]]:
    """Every path of one resource: collection and item (namespaced and across namespaces),
    the status, scale, finalize and log subresources, and the legacy watch paths."""
    g, v, k = res.group, res.version, res.kind
    gv, tag = _camel_gv(g, v), _tag(g, v)
    gvk = {"group": g, "version": v, "kind": k}
    kname, lname = schema_name(g, v, k), schema_name(g, v, k + "List")
    scope = "Namespaced" if res.namespaced else ""
    verbs = set(res.verbs)
    ns_params = [P_NAMESPACE] if res.namespaced else []
    base = f"{prefix}/namespaces/{{namespace}}/{res.plural}" if res.namespaced else f"{prefix}/{res.plural}"
    write = [P_DRY_RUN, P_FIELD_MANAGER, P_FIELD_VALIDATION]
    out: dict[str, dict[str, Any]] = {}

    coll: dict[str, Any] = {"parameters": [*ns_params, P_PRETTY]}
    if "list" in verbs:
        coll["get"] = _op("list", f"list{gv}{scope}{k}", f"List or watch {k} objects.", tag, gvk,
                          parameters=LIST_PARAMS, responses=_responses(lname))
    if "create" in verbs:
        coll["post"] = _op("post", f"create{gv}{scope}{k}", f"Create a {k}.", tag, gvk, parameters=write,
                           requestBody=_body(kname), responses=_responses(kname, ("200", "201", "202")))
    if "deletecollection" in verbs:
        coll["delete"] = _op("deletecollection", f"delete{gv}Collection{scope}{k}", f"Delete a set of {k} "
                             "objects.", tag, gvk, parameters=DELETE_PARAMS + LIST_PARAMS,
                             requestBody=_body(META + "DeleteOptions"), responses=_responses(META + "Status"))
    out[base] = coll

    item_params = [P_NAME, *ns_params, P_PRETTY]
    item: dict[str, Any] = {"parameters": item_params}
    if "get" in verbs:
        item["get"] = _op("get", f"read{gv}{scope}{k}", f"Read one {k}.", tag, gvk, responses=_responses(kname))
    if "update" in verbs:
        item["put"] = _op("put", f"replace{gv}{scope}{k}", f"Replace one {k}.", tag, gvk, parameters=write,
                          requestBody=_body(kname), responses=_responses(kname, ("200", "201")))
    if "patch" in verbs:
        item["patch"] = _patch(f"patch{gv}{scope}{k}", f"Partially update one {k}.", tag, gvk, kname)
    if "delete" in verbs:
        item["delete"] = _op("delete", f"delete{gv}{scope}{k}", f"Delete one {k}.", tag, gvk,
                             parameters=DELETE_PARAMS, requestBody=_body(META + "DeleteOptions"),
                             responses=_responses(META + "Status", ("200", "202")))
    out[f"{base}/{{name}}"] = item

    for sub in res.subresources:
        out.update(_subresource(res, sub, base, item_params, gv, scope, tag, gvk, kname))

    if res.namespaced and "list" in verbs:
        out[f"{prefix}/{res.plural}"] = {
            "parameters": [P_PRETTY],
            "get": _op("list", f"list{gv}{k}ForAllNamespaces", f"List or watch {k} objects in every namespace.",
                       tag, gvk, parameters=LIST_PARAMS, responses=_responses(lname)),
        }
    if "watch" in verbs:
        out.update(_watch_paths(res, prefix, gv, scope, tag, gvk, ns_params))
    return out


def _patch(op_id: str, desc: str, tag: str, gvk: dict[str, str], kname: str) -> Op:
    return _op("patch", op_id, desc, tag, gvk,
               parameters=[P_DRY_RUN, P_FIELD_MANAGER, P_FIELD_VALIDATION, P_FORCE],
               requestBody=_body(META + "Patch", PATCH_TYPES), responses=_responses(kname, ("200", "201")))


def _subresource(res: Resource, sub: str, base: str, item_params: list[Schema], gv: str, scope: str,
                 tag: str, gvk: dict[str, str], kname: str) -> dict[str, dict[str, Any]]:
    k, path = res.kind, f"{base}/{{name}}/{sub}"
    write = [P_DRY_RUN, P_FIELD_MANAGER, P_FIELD_VALIDATION]
    if sub in ("status", "scale"):
        suffix = sub.capitalize()
        if sub == "scale":
            kname = AUTOSCALING + "Scale"
            gvk = {"group": "autoscaling", "version": "v1", "kind": "Scale"}
        return {path: {
            "parameters": item_params,
            "get": _op("get", f"read{gv}{scope}{k}{suffix}", f"Read the {sub} of one {k}.", tag, gvk,
                       responses=_responses(kname)),
            "put": _op("put", f"replace{gv}{scope}{k}{suffix}", f"Replace the {sub} of one {k}.", tag, gvk,
                       parameters=write, requestBody=_body(kname), responses=_responses(kname, ("200", "201"))),
            "patch": _patch(f"patch{gv}{scope}{k}{suffix}", f"Partially update the {sub} of one {k}.", tag, gvk,
                            kname),
        }}
    if sub == "finalize":
        return {path: {"parameters": item_params,
                       "put": _op("put", f"replace{gv}{scope}{k}Finalize", f"Replace the finalizers of one {k}.",
                                  tag, gvk, parameters=write, requestBody=_body(kname),
                                  responses=_responses(kname, ("200", "201")))}}
    if sub == "log":
        text = {"description": "OK", "content": {t: {"schema": {"type": "string"}} for t in (
            "text/plain", "application/json", "application/yaml", "application/vnd.kubernetes.protobuf")}}
        params = [_param("container", "query", "Container to read; needed when the pod has several."),
                  _param("follow", "query", "Stream the log as it grows.", _BOOL),
                  _param("previous", "query", "Read the previous, terminated container's log.", _BOOL),
                  _param("sinceSeconds", "query", "Only lines newer than this many seconds.", _INT),
                  _param("tailLines", "query", "Only this many lines from the end.", _INT),
                  _param("timestamps", "query", "Prefix each line with its timestamp.", _BOOL)]
        return {path: {"parameters": item_params,
                       "get": _op("get", f"read{gv}{scope}{k}Log", f"Read the log of one {k}.", tag, gvk,
                                  parameters=params, responses={"200": text, "401": {"description": "Unauthorized"}})}}
    return {}  # binding, eviction: not described yet


def _watch_paths(res: Resource, prefix: str, gv: str, scope: str, tag: str, gvk: dict[str, str],
                 ns_params: list[Schema]) -> dict[str, dict[str, Any]]:
    k = res.kind
    ev = _responses(META + "WatchEvent")
    ns = "namespaces/{namespace}/" if res.namespaced else ""
    out = {
        f"{prefix}/watch/{ns}{res.plural}": {
            "parameters": [*ns_params, P_PRETTY, *LIST_PARAMS],
            "get": _op("watchlist", f"watch{gv}{scope}{k}List", f"Deprecated: watch {k} objects; use list "
                       "with watch=true.", tag, gvk, responses=ev)},
        f"{prefix}/watch/{ns}{res.plural}/{{name}}": {
            "parameters": [P_NAME, *ns_params, P_PRETTY, *LIST_PARAMS],
            "get": _op("watch", f"watch{gv}{scope}{k}", f"Deprecated: watch one {k}; use list with watch=true "
                       "and a name field selector.", tag, gvk, responses=ev)},
    }
    if res.namespaced:
        out[f"{prefix}/watch/{res.plural}"] = {
            "parameters": [P_PRETTY, *LIST_PARAMS],
            "get": _op("watchlist", f"watch{gv}{k}ListForAllNamespaces", f"Deprecated: watch {k} objects in "
                       "every namespace.", tag, gvk, responses=ev)}
    return out
