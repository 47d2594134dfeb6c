"""REST verbs on resources: the HTTP face of the generic registry.

One dispatcher maps (method, RequestInfo) to a verb; each verb reads its query
parameters, calls the registry, and renders the answer (the object, a list, a
Table, or a Status).  Nothing here knows a kind's rules: those live in the
registry's strategies.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import orjson
from aiohttp import web

from kubesvc.api import errors
from kubesvc.api.meta import meta, now_rfc3339
from kubesvc.api.resources import Resource
from kubesvc.api.selectors import (
    check_field_selector,
    object_fields,
    parse_field_selector,
    parse_label_selector,
)
from kubesvc.apiserver import codec, fieldvalidation, subresources
from kubesvc.apiserver.codec import MAX_BODY, dumps
from kubesvc.apiserver.requestinfo import RequestInfo
from kubesvc.apiserver.watch import WatchRequest, serve_watch
from kubesvc.registry.generic import DeleteOptions, Registry, WriteOptions
from kubesvc.storage.contract import InvalidContinue, Predicate, Stored, TooOldRevision

JSON_CT = "application/json"
TABLE_CT = "application/json;as=Table;v=v1;g=meta.k8s.io"
NOT_FOUND_MSG = "the server could not find the requested resource"


def not_found() -> errors.StatusError:
    return errors.StatusError(404, "NotFound", NOT_FOUND_MSG, {})


def json_response(body: bytes | dict[str, Any], status: int = 200, content_type: str = JSON_CT) -> web.Response:
    data = body if isinstance(body, bytes) else dumps(body)
    return web.Response(body=data, status=status, headers={"Content-Type": content_type})


async def read_body(request: web.Request) -> bytes:
    if request.content_length is not None and request.content_length > MAX_BODY:
        raise errors.too_large()
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.content.iter_any():  # read(n) may return early: read to the end
        size += len(chunk)
        if size > MAX_BODY:
            raise errors.too_large()
        chunks.append(chunk)
    return b"".join(chunks)


def _bool(q: Any, name: str) -> bool:
    return str(q.get(name, "")).lower() in ("true", "1")


def _int(q: Any, name: str) -> int | None:
    v = q.get(name)
    if v in (None, ""):
        return None
    try:
        return int(v)
    except ValueError:
        raise errors.bad_request(f'invalid value for {name}: "{v}"') from None


def field_manager(request: web.Request) -> str:
    fm = request.query.get("fieldManager")
    if fm:
        if len(fm) > 128:
            raise errors.bad_request("fieldManager: Too long: may not be more than 128 bytes")
        return fm
    ua = request.headers.get("User-Agent", "unknown")
    return ua.split("/")[0][:128] or "unknown"


def write_options(request: web.Request) -> WriteOptions:
    dry = request.query.getall("dryRun", [])
    for d in dry:
        if d != "All":
            raise errors.bad_request(f'unsupported dryRun value "{d}": supported values: "All"')
    return WriteOptions(dry_run=bool(dry), field_manager=field_manager(request))


def build_predicate(res: Resource, request: web.Request) -> Predicate | None:
    ls = request.query.get("labelSelector") or ""
    fs = request.query.get("fieldSelector") or ""
    label_sel = parse_label_selector(ls) if ls.strip() else None
    field_sel = parse_field_selector(fs) if fs.strip() else None
    supported = ("metadata.name", "metadata.namespace", *res.field_selectors)
    if field_sel is not None:
        check_field_selector(field_sel, supported, res.plural)
    if label_sel is None and field_sel is None:
        return None

    def pred(obj: dict[str, Any]) -> bool:
        if label_sel is not None and not label_sel.matches((obj.get("metadata") or {}).get("labels") or {}):
            return False
        if field_sel is not None and not field_sel.matches(object_fields(obj, supported)):
            return False
        return True

    return pred


class ResourceHandlers:
    """The verbs, bound to one registry."""

    def __init__(self, registry: Registry) -> None:
        self.registry = registry

    async def dispatch(self, request: web.Request, info: RequestInfo) -> web.StreamResponse:
        res = info.resource
        if res is None:
            raise not_found()
        m = request.method
        if info.subresource:
            return await subresources.dispatch(self, request, info, res)
        if info.name is None:
            if m == "GET":
                if info.watch_path or _bool(request.query, "watch"):
                    return await self.watch(request, res, info.namespace)
                return await self.list(request, res, info.namespace)
            if m == "POST":
                if res.namespaced and info.namespace is None:
                    raise errors.method_not_allowed("the server does not allow this method on the requested resource")
                return await self.create(request, res, info.namespace)
            if m == "DELETE":
                return await self.delete_collection(request, res, info.namespace)
        else:
            if m == "GET":
                if info.watch_path or _bool(request.query, "watch"):
                    return await self.watch(request, res, info.namespace, name=info.name)
                return await self.get(request, res, info.namespace, info.name)
            if m == "PUT":
                return await self.update(request, res, info.namespace, info.name)
            if m == "PATCH":
                return await self.patch(request, res, info.namespace, info.name)
            if m == "DELETE":
                return await self.delete(request, res, info.namespace, info.name)
        raise errors.method_not_allowed("the server does not allow this method on the requested resource")

    # --- rendering --------------------------------------------------------
    def render_one(
        self, request: web.Request, res: Resource, stored: Stored, status: int = 200, warnings: list[str] | None = None
    ) -> web.Response:
        wanted = codec.negotiate(request.headers.get("Accept"))
        if wanted.as_table:
            table = self.table(request, res, [stored.value], str(stored.revision), None)
            resp = json_response(table, status, TABLE_CT)
        elif wanted.partial_metadata:
            resp = json_response(_partial(stored.value), status)
        else:
            resp = json_response(stored.data, status)
        if warnings:
            resp.headers["Warning"] = fieldvalidation.warning_header(warnings)
        return resp

    def table(
        self, request: web.Request, res: Resource, objs: list[dict[str, Any]], rv: str, cont: str | None
    ) -> dict[str, Any]:
        from kubesvc.apiserver.printers import to_table

        include = request.query.get("includeObject", "Metadata")
        return to_table(
            res, objs, now=datetime.now(UTC), include_object=include, resource_version=rv, continue_token=cont
        )

    # --- verbs ------------------------------------------------------------
    async def get(self, request: web.Request, res: Resource, ns: str | None, name: str) -> web.Response:
        stored = await self.registry.get(res, ns, name)
        return self.render_one(request, res, stored)

    async def list(self, request: web.Request, res: Resource, ns: str | None) -> web.Response:
        pred = build_predicate(res, request)
        limit = _int(request.query, "limit")
        cont = request.query.get("continue") or None
        try:
            result = await self.registry.list(
                res, ns, predicate=pred, limit=limit if limit and limit > 0 else None, continue_token=cont
            )
        except TooOldRevision as e:
            raise errors.gone(
                f"The provided continue parameter is too old to display a consistent list result. "
                f"You can start a new list without the continue parameter, or use the continue token "
                f"in this response to retrieve the remainder of the results. ({e})"
            ) from None
        except InvalidContinue:
            raise errors.bad_request("continue key is not valid: incorrect encoded start resourceVersion") from None
        wanted = codec.negotiate(request.headers.get("Accept"))
        rv = str(result.revision)
        if wanted.as_table:
            table = self.table(request, res, [s.value for s in result.items], rv, result.continue_token)
            return json_response(table, content_type=TABLE_CT)
        list_meta: dict[str, Any] = {"resourceVersion": rv}
        if result.continue_token:
            list_meta["continue"] = result.continue_token
            if result.remaining is not None:
                list_meta["remainingItemCount"] = result.remaining
        if wanted.partial_metadata:
            return json_response({
                "kind": "PartialObjectMetadataList", "apiVersion": "meta.k8s.io/v1", "metadata": list_meta,
                "items": [_partial(s.value) for s in result.items],
            })
        head = dumps({"kind": res.list_kind, "apiVersion": res.api_version, "metadata": list_meta})
        body = head[:-1] + b',"items":[' + b",".join(s.data for s in result.items) + b"]}"
        return json_response(body)

    async def watch(
        self, request: web.Request, res: Resource, ns: str | None, name: str | None = None
    ) -> web.StreamResponse:
        pred = build_predicate(res, request)
        if name is not None:
            inner = pred

            def by_name(o: dict[str, Any]) -> bool:
                return (o.get("metadata") or {}).get("name") == name and (inner is None or inner(o))

            pred = by_name
        rv = request.query.get("resourceVersion") or None
        timeout = _int(request.query, "timeoutSeconds")
        wanted = codec.negotiate(request.headers.get("Accept"))
        wr = WatchRequest(
            resource=res, prefix=res.prefix(ns), resource_version=rv, predicate=pred,
            timeout=float(timeout) if timeout and timeout > 0 else 1800.0,
            bookmarks=_bool(request.query, "allowWatchBookmarks"),
            send_initial=rv in (None, "0") or _bool(request.query, "sendInitialEvents"),
        )

        async def initial() -> tuple[list[Stored], int]:
            result = await self.registry.list(res, ns, predicate=pred)
            return result.items, result.revision

        render = None
        if wanted.as_table:
            def render(r: Resource, st: Stored) -> dict[str, Any]:
                t = self.table(request, r, [st.value], str(st.revision), None)
                t["columnDefinitions"] = None
                return t
        ct = TABLE_CT if wanted.as_table else JSON_CT
        return await serve_watch(request, self.registry.store, wr, initial, render, ct)

    async def create(self, request: web.Request, res: Resource, ns: str | None) -> web.Response:
        body = await read_body(request)
        obj = codec.decode_object(request.headers.get("Content-Type"), body)
        check_type_meta(res, obj)
        warnings = fieldvalidation.check(res, obj, request.query.get("fieldValidation"))
        stored = await self.registry.create(res, ns, obj, write_options(request))
        return self.render_one(request, res, stored, 201, warnings)

    async def update(self, request: web.Request, res: Resource, ns: str | None, name: str) -> web.Response:
        body = await read_body(request)
        obj = codec.decode_object(request.headers.get("Content-Type"), body)
        check_type_meta(res, obj)
        warnings = fieldvalidation.check(res, obj, request.query.get("fieldValidation"))
        stored, created = await self.registry.update(res, ns, name, obj, write_options(request))
        return self.render_one(request, res, stored, 201 if created else 200, warnings)

    async def patch(
        self, request: web.Request, res: Resource, ns: str | None, name: str, subresource: str | None = None
    ) -> web.Response:
        warnings: list[str] = []
        stored, created = await patch_object(self.registry, request, res, ns, name, subresource, warnings)
        return self.render_one(request, res, stored, 201 if created else 200, warnings)

    async def delete(self, request: web.Request, res: Resource, ns: str | None, name: str) -> web.Response:
        opts = await delete_options(request)
        stored, now = await self.registry.delete(res, ns, name, opts)
        return self.render_one(request, res, stored, 200 if now else 202)

    async def delete_collection(self, request: web.Request, res: Resource, ns: str | None) -> web.Response:
        opts = await delete_options(request)
        pred = build_predicate(res, request)
        result = await self.registry.list(res, ns, predicate=pred)
        deleted: list[bytes] = []
        for st in result.items:
            m = st.value.get("metadata") or {}
            try:
                out, _ = await self.registry.delete(res, m.get("namespace"), m.get("name", ""), opts)
            except errors.StatusError as e:
                if e.code == 404:
                    continue
                raise
            deleted.append(out.data)
        head = dumps({"kind": res.list_kind, "apiVersion": res.api_version,
                      "metadata": {"resourceVersion": str(self.registry.store.revision)}})
        return json_response(head[:-1] + b',"items":[' + b",".join(deleted) + b"]}")


def check_type_meta(res: Resource, obj: dict[str, Any]) -> None:
    """A body's apiVersion/kind, when present, must name this resource."""
    av, kind = obj.get("apiVersion"), obj.get("kind")
    if av and av != res.api_version:
        raise errors.bad_request(
            f"the API version in the data ({av}) does not match the expected API version ({res.api_version})"
        )
    if kind and kind != res.kind:
        raise errors.bad_request(f"the kind in the data ({kind}) does not match the expected kind ({res.kind})")


async def delete_options(request: web.Request) -> DeleteOptions:
    body = await read_body(request) if request.can_read_body else b""
    opts: dict[str, Any] = {}
    if body.strip():
        opts = codec.decode_object(request.headers.get("Content-Type") or "application/json", body)
    q = request.query
    policy = q.get("propagationPolicy") or opts.get("propagationPolicy")
    orphan = q.get("orphanDependents", opts.get("orphanDependents"))
    if policy is None and orphan is not None:
        policy = "Orphan" if str(orphan).lower() == "true" else "Background"
    if policy not in (None, "Orphan", "Background", "Foreground"):
        raise errors.invalid_error(
            "DeleteOptions", "", [errors.not_supported("propagationPolicy", policy, ["Foreground", "Background", "Orphan", "nil"])]
        )
    grace = _int(q, "gracePeriodSeconds")
    if grace is None and opts.get("gracePeriodSeconds") is not None:
        grace = int(opts["gracePeriodSeconds"])
    pre = opts.get("preconditions") or {}
    dry = q.getall("dryRun", []) or opts.get("dryRun") or []
    return DeleteOptions(
        propagation_policy=policy, grace_period_seconds=grace, precondition_uid=pre.get("uid"),
        precondition_rv=pre.get("resourceVersion"), dry_run=bool(dry),
    )


async def patch_object(
    registry: Registry, request: web.Request, res: Resource, ns: str | None, name: str, subresource: str | None,
    warnings: list[str] | None = None,
) -> tuple[Stored, bool]:
    from kubesvc.apiserver.patch import apply_patch, server_side_apply

    ct = codec.media_type(request.headers.get("Content-Type"))
    if ct not in codec.PATCH_TYPES:
        raise errors.unsupported_media_type(ct)
    body = await read_body(request)
    opts = write_options(request)
    if ct == "application/apply-patch+yaml":
        if not request.query.get("fieldManager"):
            raise errors.bad_request("PATCH, application/apply-patch+yaml requests require fieldManager")
        applied = codec.decode_apply(body)
        check_type_meta(res, applied)
        found = fieldvalidation.check(res, applied, request.query.get("fieldValidation"))
        if warnings is not None:
            warnings.extend(found)
        force = _bool(request.query, "force")
        now = now_rfc3339()

        def ssa(live: dict[str, Any] | None) -> dict[str, Any]:
            return server_side_apply(live, applied, manager=opts.field_manager, force=force,
                                     kind=res.kind, api_version=res.api_version, now=now)

        no_mf = WriteOptions(dry_run=opts.dry_run, field_manager="")
        return await registry.guaranteed_update(res, ns, name, ssa, no_mf, subresource=subresource,
                                                create_if_missing=subresource is None)

    def mutate(live: dict[str, Any] | None) -> dict[str, Any]:
        assert live is not None
        rv = (live.get("metadata") or {}).get("resourceVersion")
        out = apply_patch(ct, live, body, kind=res.kind, api_version=res.api_version)
        if not isinstance(out, dict):
            raise errors.bad_request("the patch produced something that is not an object")
        found = fieldvalidation.check(res, out, request.query.get("fieldValidation"), old=live)
        if warnings is not None and found:
            warnings[:] = found
        m = meta(out)
        if m.get("resourceVersion") == rv:
            m.pop("resourceVersion", None)  # not a precondition: the patch did not set it
        return out

    return await registry.guaranteed_update(res, ns, name, mutate, opts, subresource=subresource)


def _partial(obj: dict[str, Any]) -> dict[str, Any]:
    return {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": obj.get("metadata") or {}}


def loads(body: bytes) -> Any:
    return orjson.loads(body)
