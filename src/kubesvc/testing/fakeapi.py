"""A faithful fake Kubernetes API server for client and controller tests.

An aiohttp app over a dict, serving the real REST API shape for every kind in
:data:`kubesvc.api.resources.RESOURCES`: discovery; paged LIST with label and
field selectors; GET, POST, PUT, PATCH (merge, strategic-as-merge, JSON patch),
DELETE and deletecollection with ``DeleteOptions`` (propagation policy ->
``orphan``/``foregroundDeletion`` finalizers, UID/resourceVersion
preconditions); watch streams that replay history from a resourceVersion,
send bookmarks, and answer a compacted resourceVersion with an ``ERROR``
event carrying ``410 Expired``; the status and namespace ``finalize``
subresources; ``deletionTimestamp`` plus finalizers (an object goes when its
last finalizer does; a Namespace also waits for ``spec.finalizers``); and no
content in a missing or terminating namespace.  It deliberately does *not*
garbage-collect: that is the controllers' job, so tests can watch them do it.

Tests drive it from outside too: :meth:`FakeApiServer.compact` forgets watch
history, :meth:`close_watches` ends every stream, :meth:`fail` injects errors,
and ``requests`` records what was called.
"""

from __future__ import annotations

import asyncio
import base64
import copy
import re
import ssl
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import jsonpatch
import orjson
import yaml
from aiohttp import web

from kubesvc.api import errors
from kubesvc.api.resources import RESOURCES, Resource
from kubesvc.api.selectors import object_fields, parse_field_selector, parse_label_selector

Obj = dict[str, Any]
_GC_FINALIZERS = ("orphan", "foregroundDeletion")
_RETURN_OBJECT_ON_DELETE = {"pods", "services", "namespaces"}


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _json(obj: Any, status: int = 200) -> web.Response:
    return web.Response(body=orjson.dumps(obj), status=status, content_type="application/json")


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    out = dict(target) if isinstance(target, dict) else {}
    for k, v in patch.items():
        if v is None:
            out.pop(k, None)
        else:
            out[k] = merge_patch(out.get(k), v)
    return out


@dataclass
class _Event:
    rv: int
    resource: str
    type: str
    obj: Obj
    old: Obj | None = None


@dataclass(eq=False)
class _Watcher:
    resource: Resource
    namespace: str | None
    matches: Callable[[Obj], bool]
    queue: asyncio.Queue[_Event | None] = field(default_factory=asyncio.Queue)


@dataclass
class _Fault:
    method: str
    path: re.Pattern[str]
    error: errors.StatusError
    times: int


class FakeApiServer:
    """``async with FakeApiServer() as api: ApiClient(api.client_config())``."""

    def __init__(self, *, history: int = 10_000, bookmark_interval: float = 1.0,
                 ssl_context: ssl.SSLContext | None = None,
                 resources: tuple[Resource, ...] = RESOURCES) -> None:
        self.resources = resources
        self.bookmark_interval = bookmark_interval
        self.ssl_context = ssl_context
        self.objects: dict[tuple[str, str, str], Obj] = {}  # (resource.qualified, ns, name)
        self.rv = 1
        self.history: deque[_Event] = deque(maxlen=history)
        self.compacted_rv = 1  # watches from below this get 410
        self.requests: list[tuple[str, str]] = []
        self._watchers: set[_Watcher] = set()
        self._faults: list[_Fault] = []
        self._runner: web.AppRunner | None = None
        self.url = ""

    # ---------------------------------------------------------------- lifecycle

    async def start(self) -> None:
        app = web.Application(middlewares=[self._middleware], client_max_size=3 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self._route)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0, ssl_context=self.ssl_context)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.url = f"{'https' if self.ssl_context else 'http'}://127.0.0.1:{port}"

    async def stop(self) -> None:
        await self.close_watches()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> FakeApiServer:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    def kubeconfig(self, path: str | Path, *, ca_pem: bytes | None = None, cert_pem: bytes | None = None,
                   key_pem: bytes | None = None, token: str | None = None) -> Path:
        """Write a kubeconfig (cluster/user/context ``kubesvc``) pointing here."""
        b64 = lambda b: base64.b64encode(b).decode()  # noqa: E731
        cluster: Obj = {"server": self.url}
        if ca_pem:
            cluster["certificate-authority-data"] = b64(ca_pem)
        user: Obj = {}
        if cert_pem and key_pem:
            user = {"client-certificate-data": b64(cert_pem), "client-key-data": b64(key_pem)}
        if token:
            user["token"] = token
        doc = {"apiVersion": "v1", "kind": "Config", "current-context": "kubesvc",
               "clusters": [{"name": "kubesvc", "cluster": cluster}],
               "users": [{"name": "kubesvc", "user": user}],
               "contexts": [{"name": "kubesvc", "context": {"cluster": "kubesvc", "user": "kubesvc"}}]}
        p = Path(path)
        p.write_text(yaml.safe_dump(doc))
        return p

    # ---------------------------------------------------------------- test controls

    def get_object(self, resource: Resource, namespace: str | None, name: str) -> Obj | None:
        obj = self.objects.get((resource.qualified, namespace or "", name))
        return copy.deepcopy(obj) if obj else None

    def list_objects(self, resource: Resource, namespace: str | None = None) -> list[Obj]:
        return [copy.deepcopy(o) for (r, ns, _), o in sorted(self.objects.items())
                if r == resource.qualified and (namespace is None or ns == namespace)]

    def compact(self) -> None:
        """Forget all watch history: watching from any older resourceVersion now gets 410."""
        self.history.clear()
        self.compacted_rv = self.rv

    @property
    def watch_count(self) -> int:
        """Open watch streams (tests wait for an informer's watch before disturbing it)."""
        return len(self._watchers)

    async def close_watches(self) -> None:
        for w in list(self._watchers):
            w.queue.put_nowait(None)
        for _ in range(50):
            if not self._watchers:
                break
            await asyncio.sleep(0.01)

    def clear_faults(self) -> None:
        self._faults.clear()

    def fail(self, method: str, path_regex: str, error: errors.StatusError, times: int = 1) -> None:
        """The next ``times`` matching requests answer ``error`` instead."""
        self._faults.append(_Fault(method.upper(), re.compile(path_regex), error, times))

    # ---------------------------------------------------------------- http plumbing

    @web.middleware
    async def _middleware(self, request: web.Request, handler: Any) -> web.StreamResponse:
        self.requests.append((request.method, request.path_qs))
        try:
            for f in self._faults:
                if f.times > 0 and f.method in (request.method, "*") and f.path.search(request.path_qs):
                    f.times -= 1
                    raise f.error
            return await handler(request)
        except errors.StatusError as e:
            return _json(e.status(), e.code)

    async def _route(self, request: web.Request) -> web.StreamResponse:
        parts = [p for p in request.path.split("/") if p]
        if parts[:1] == ["api"]:
            group, version, rest = "", (parts[1] if len(parts) > 1 else ""), parts[2:]
            if len(parts) == 1:
                return _json({"kind": "APIVersions", "versions": ["v1"], "serverAddressByClientCIDRs": []})
        elif parts[:1] == ["apis"]:
            if len(parts) == 1:
                return _json(self._group_list())
            group, version, rest = parts[1], (parts[2] if len(parts) > 2 else ""), parts[3:]
        else:
            raise errors.StatusError(404, "NotFound", "the server could not find the requested resource")
        if not rest:
            return _json(self._resource_list(group, version))
        namespace = None
        if rest[0] == "namespaces" and len(rest) > 2 and rest[2] not in ("status", "finalize"):
            namespace, rest = rest[1], rest[2:]
        res = next((r for r in self.resources if (r.group, r.version, r.plural) == (group, version, rest[0])), None)
        if res is None or len(rest) > 3:
            raise errors.StatusError(404, "NotFound", "the server could not find the requested resource")
        name = rest[1] if len(rest) > 1 else None
        sub = rest[2] if len(rest) > 2 else None
        if sub is not None and sub not in res.subresources:
            raise errors.StatusError(404, "NotFound", "the server could not find the requested resource")
        return await self._dispatch(request, res, namespace if res.namespaced else None, name, sub)

    async def _dispatch(self, request: web.Request, res: Resource, ns: str | None, name: str | None,
                        sub: str | None) -> web.StreamResponse:
        m, q = request.method, request.query
        if name is None:
            if m == "GET" and q.get("watch") in ("true", "1"):
                return await self._watch(request, res, ns)
            if m == "GET":
                return _json(self._list(res, ns, q))
            if m == "POST":
                return _json(self._create(res, ns, await self._body(request)), 201)
            if m == "DELETE":
                return _json(self._delete_collection(res, ns, q, await self._body(request, optional=True)))
        else:
            if m == "GET":
                return _json(self._get(res, ns, name))
            if m == "PUT":
                return _json(self._update(res, ns, name, await self._body(request), sub))
            if m == "PATCH":
                return _json(self._patch(res, ns, name, await request.read(), request.content_type, sub))
            if m == "DELETE" and sub is None:
                return _json(self._delete(res, ns, name, await self._body(request, optional=True)))
        raise errors.method_not_allowed("the server does not allow this method on the requested resource")

    async def _body(self, request: web.Request, optional: bool = False) -> Obj:
        raw = await request.read()
        if not raw and optional:
            return {}
        try:
            body = orjson.loads(raw)
        except orjson.JSONDecodeError as e:
            raise errors.bad_request(f"the object provided is unrecognized: {e}") from None
        if not isinstance(body, dict):
            raise errors.bad_request("the object provided is unrecognized")
        return body

    def _resource_list(self, group: str, version: str) -> Obj:
        gv = f"{group}/{version}" if group else version
        entries = []
        for r in self.resources:
            if (r.group, r.version) != (group, version):
                continue
            entries.append({"name": r.plural, "singularName": r.singular, "namespaced": r.namespaced,
                            "kind": r.kind, "verbs": list(r.verbs), "shortNames": list(r.short_names)})
            entries += [{"name": f"{r.plural}/{s}", "singularName": "", "namespaced": r.namespaced,
                         "kind": r.kind, "verbs": ["get", "update", "patch"]} for s in r.subresources]
        if not entries:
            raise errors.StatusError(404, "NotFound", "the server could not find the requested resource")
        return {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv, "resources": entries}

    def _group_list(self) -> Obj:
        groups: dict[str, Obj] = {}
        for r in self.resources:
            if r.group and r.group not in groups:
                gv = {"groupVersion": r.group_version, "version": r.version}
                groups[r.group] = {"name": r.group, "versions": [gv], "preferredVersion": gv}
        return {"kind": "APIGroupList", "apiVersion": "v1", "groups": list(groups.values())}

    # ---------------------------------------------------------------- reads

    def _key(self, res: Resource, ns: str | None, name: str) -> tuple[str, str, str]:
        return (res.qualified, ns or "", name)

    def _current(self, res: Resource, ns: str | None, name: str) -> Obj:
        obj = self.objects.get(self._key(res, ns, name))
        if obj is None:
            raise errors.not_found_error(res.plural, name, res.group)
        return obj

    def _get(self, res: Resource, ns: str | None, name: str) -> Obj:
        return self._current(res, ns, name)

    def _matcher(self, res: Resource, ns: str | None, q: Any) -> Callable[[Obj], bool]:
        labels = parse_label_selector(q.get("labelSelector", ""))
        fields = parse_field_selector(q.get("fieldSelector", ""))

        def matches(obj: Obj) -> bool:
            m = obj.get("metadata") or {}
            if ns and m.get("namespace") != ns:
                return False
            return labels.matches(m.get("labels") or {}) and fields.matches(object_fields(obj, res.field_selectors))
        return matches

    def _list(self, res: Resource, ns: str | None, q: Any) -> Obj:
        matches = self._matcher(res, ns, q)
        keys = sorted(k for k, o in self.objects.items() if k[0] == res.qualified and matches(o))
        list_rv = self.rv
        token = q.get("continue")
        if token:
            try:
                state = orjson.loads(base64.urlsafe_b64decode(token))
                list_rv, start = int(state["rv"]), tuple(state["start"])
            except (ValueError, KeyError, TypeError):
                raise errors.bad_request("continue key is not valid: illegal base64 data") from None
            if list_rv < self.compacted_rv:
                raise errors.gone("The provided continue parameter is too old to display a consistent list "
                                  "result. You can start a new list without the continue parameter.")
            keys = [k for k in keys if k > start]
        meta: Obj = {"resourceVersion": str(list_rv)}
        limit = int(q.get("limit") or 0)
        if limit and len(keys) > limit:
            meta["remainingItemCount"] = len(keys) - limit
            keys = keys[:limit]
            state = {"rv": list_rv, "start": list(keys[-1])}
            meta["continue"] = base64.urlsafe_b64encode(orjson.dumps(state)).decode()
        items = [{k: v for k, v in self.objects[key].items() if k not in ("kind", "apiVersion")} for key in keys]
        return {"kind": res.list_kind, "apiVersion": res.api_version, "metadata": meta, "items": items}

    # ---------------------------------------------------------------- writes

    def _commit(self, res: Resource, etype: str, obj: Obj, old: Obj | None = None) -> Obj:
        """Store (or drop, for DELETED) ``obj`` at a new resourceVersion and tell the watchers."""
        self.rv += 1
        obj = copy.deepcopy(obj)
        obj["metadata"]["resourceVersion"] = str(self.rv)
        m = obj["metadata"]
        key = self._key(res, m.get("namespace"), m["name"])
        if etype == "DELETED":
            self.objects.pop(key, None)
        else:
            self.objects[key] = obj
        ev = _Event(self.rv, res.qualified, etype, obj, old)
        self.history.append(ev)
        for w in list(self._watchers):
            if w.resource.qualified == res.qualified:
                w.queue.put_nowait(ev)
        return obj

    def _create(self, res: Resource, ns: str | None, body: Obj) -> Obj:
        obj = copy.deepcopy(body)
        obj["kind"], obj["apiVersion"] = res.kind, res.api_version
        m = obj.setdefault("metadata", {})
        if res.namespaced:
            if m.get("namespace") and ns and m["namespace"] != ns:
                raise errors.bad_request("the namespace of the provided object does not match the namespace "
                                         "sent on the request")
            ns = ns or m.get("namespace")
            self._check_namespace_open(ns or "")
            m["namespace"] = ns
        else:
            m.pop("namespace", None)
        if not m.get("name"):
            if not m.get("generateName"):
                raise errors.invalid_error(res.kind, "", [errors.required(
                    "metadata.name", "name or generateName is required")], res.group)
            m["name"] = m["generateName"] + uuid.uuid4().hex[:5]
        if self._key(res, ns, m["name"]) in self.objects:
            raise errors.already_exists(res.plural, m["name"], res.group)
        for k in ("deletionTimestamp", "deletionGracePeriodSeconds", "resourceVersion"):
            m.pop(k, None)
        m["uid"], m["creationTimestamp"], m["generation"] = str(uuid.uuid4()), _now(), 1
        if res.kind == "Namespace":
            obj.setdefault("spec", {}).setdefault("finalizers", ["kubernetes"])
            obj["status"] = {"phase": "Active"}
        return self._commit(res, "ADDED", obj)

    def _check_namespace_open(self, ns: str) -> None:
        nso = self.objects.get(("namespaces", "", ns))
        if nso is None:
            raise errors.not_found_error("namespaces", ns)
        if nso["metadata"].get("deletionTimestamp"):
            raise errors.StatusError(403, "Forbidden", f"unable to create new content in namespace {ns} because "
                                     "it is being terminated", {"name": ns, "kind": "namespaces"})

    def _update(self, res: Resource, ns: str | None, name: str, body: Obj, sub: str | None) -> Obj:
        cur = self._current(res, ns, name)
        bm = body.get("metadata") or {}
        if bm.get("name") and bm["name"] != name:
            raise errors.bad_request(f"the name of the object ({bm['name']}) does not match the name on "
                                     f"the URL ({name})")
        if bm.get("uid") and bm["uid"] != cur["metadata"]["uid"]:
            raise errors.conflict(res.plural, name, f"Precondition failed: UID in precondition: {bm['uid']}, "
                                  f"UID in object meta: {cur['metadata']['uid']}", res.group)
        if bm.get("resourceVersion") and bm["resourceVersion"] != cur["metadata"]["resourceVersion"]:
            raise errors.conflict(res.plural, name, errors.OPTIMISTIC_LOCK_MSG, res.group)
        new = self._merge_update(res, cur, body, sub)
        nm, cm = new["metadata"], cur["metadata"]
        if cm.get("deletionTimestamp") and set(nm.get("finalizers") or []) - set(cm.get("finalizers") or []):
            raise errors.invalid_error(res.kind, name, [errors.forbidden(
                "metadata.finalizers", "no new finalizers can be added if the object is being deleted")],
                res.group)
        if _same(new, cur):
            return cur
        if cm.get("deletionTimestamp") and not nm.get("finalizers") and not (
                res.kind == "Namespace" and (new.get("spec") or {}).get("finalizers")):
            return self._commit(res, "DELETED", new, cur)
        return self._commit(res, "MODIFIED", new, cur)

    def _merge_update(self, res: Resource, cur: Obj, body: Obj, sub: str | None) -> Obj:
        """What a PUT may change: the main resource keeps status; subresources change only their part."""
        if sub == "status":
            new = copy.deepcopy(cur)
            new["status"] = copy.deepcopy(body.get("status"))
        elif sub == "finalize":
            new = copy.deepcopy(cur)
            new.setdefault("spec", {})["finalizers"] = list((body.get("spec") or {}).get("finalizers") or [])
        else:
            new = copy.deepcopy(body)
            new["kind"], new["apiVersion"] = res.kind, res.api_version
            m = new.setdefault("metadata", {})
            for k in ("name", "namespace", "uid", "creationTimestamp", "deletionTimestamp",
                      "deletionGracePeriodSeconds", "generation", "resourceVersion"):
                if k in cur["metadata"]:
                    m[k] = cur["metadata"][k]
                else:
                    m.pop(k, None)
            if "status" in res.subresources:
                new["status"] = copy.deepcopy(cur.get("status"))
                if new["status"] is None:
                    new.pop("status")
            if res.kind == "Namespace":
                new.setdefault("spec", {})["finalizers"] = (cur.get("spec") or {}).get("finalizers", [])
            if new.get("spec") != cur.get("spec"):
                m["generation"] = int(cur["metadata"].get("generation") or 1) + 1
        return new

    def _patch(self, res: Resource, ns: str | None, name: str, raw: bytes, ctype: str, sub: str | None) -> Obj:
        cur = self._current(res, ns, name)
        try:
            patch = orjson.loads(raw)
            if ctype == "application/json-patch+json":
                patched = jsonpatch.JsonPatch(patch).apply(copy.deepcopy(cur))
            elif ctype in ("application/merge-patch+json", "application/strategic-merge-patch+json"):
                patched = merge_patch(cur, patch)
            else:
                raise errors.unsupported_media_type(ctype)
        except (orjson.JSONDecodeError, jsonpatch.JsonPatchException, jsonpatch.JsonPointerException) as e:
            raise errors.bad_request(f"the server rejected our request due to an error in our request: {e}") \
                from None
        return self._update(res, ns, name, patched, sub)

    def _delete(self, res: Resource, ns: str | None, name: str, opts: Obj) -> Obj:
        cur = self._current(res, ns, name)
        cm = cur["metadata"]
        pre = opts.get("preconditions") or {}
        for field_, label in (("uid", "UID"), ("resourceVersion", "ResourceVersion")):
            if pre.get(field_) and pre[field_] != cm.get(field_):
                raise errors.conflict(res.plural, name, f"Precondition failed: {label} in precondition: "
                                      f"{pre[field_]}, {label} in object meta: {cm.get(field_)}", res.group)
        new = copy.deepcopy(cur)
        nm = new["metadata"]
        finalizers = [f for f in nm.get("finalizers") or []]
        policy = opts.get("propagationPolicy")
        if policy is None and opts.get("orphanDependents") is not None:
            policy = "Orphan" if opts["orphanDependents"] else "Background"
        if policy:
            finalizers = [f for f in finalizers if f not in _GC_FINALIZERS]
            if policy in ("Orphan", "Foreground"):
                finalizers.append("orphan" if policy == "Orphan" else "foregroundDeletion")
        if finalizers:
            nm["finalizers"] = finalizers
        else:
            nm.pop("finalizers", None)
        pending = bool(finalizers) or (res.kind == "Namespace" and (new.get("spec") or {}).get("finalizers"))
        if pending:
            nm.setdefault("deletionTimestamp", _now())
            nm.setdefault("deletionGracePeriodSeconds", 0)
            if res.kind == "Namespace":
                new.setdefault("status", {})["phase"] = "Terminating"
            return cur if _same(new, cur) else self._commit(res, "MODIFIED", new, cur)
        gone = self._commit(res, "DELETED", new, cur)
        if res.plural in _RETURN_OBJECT_ON_DELETE:
            return gone
        details = {"name": name, "kind": res.plural, "uid": cm["uid"]}
        if res.group:
            details["group"] = res.group
        return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "details": details}

    def _delete_collection(self, res: Resource, ns: str | None, q: Any, opts: Obj) -> Obj:
        listed = self._list(res, ns, {"labelSelector": q.get("labelSelector", ""),
                                      "fieldSelector": q.get("fieldSelector", "")})
        items = []
        for obj in listed["items"]:
            m = obj["metadata"]
            with_pre = {k: v for k, v in opts.items() if k != "preconditions"}
            try:
                items.append(self._delete(res, m.get("namespace"), m["name"], with_pre))
            except errors.StatusError as e:
                if e.code != 404:
                    raise
        return {"kind": res.list_kind, "apiVersion": res.api_version,
                "metadata": {"resourceVersion": str(self.rv)}, "items": items}

    # ---------------------------------------------------------------- watch

    async def _watch(self, request: web.Request, res: Resource, ns: str | None) -> web.StreamResponse:
        q = request.query
        w = _Watcher(res, ns, self._matcher(res, ns, q))
        rv_param = q.get("resourceVersion", "")
        backlog: list[tuple[str, Obj]] = []
        if rv_param in ("", "0"):
            backlog = [("ADDED", o) for k, o in sorted(self.objects.items()) if k[0] == res.qualified
                       and w.matches(o)]
        elif int(rv_param) < self.compacted_rv:
            status = errors.gone(f"too old resource version: {rv_param} ({self.compacted_rv})").status()
            backlog = [("ERROR", status)]
        else:
            for ev in self.history:
                if ev.rv > int(rv_param) and ev.resource == res.qualified:
                    backlog += self._filter(w, ev)
        if not backlog or backlog[-1][0] != "ERROR":
            self._watchers.add(w)
        resp = web.StreamResponse(headers={"Content-Type": "application/json"})
        resp.enable_chunked_encoding()
        await resp.prepare(request)
        try:
            await self._stream(resp, w, backlog, q)
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            self._watchers.discard(w)
        return resp

    async def _stream(self, resp: web.StreamResponse, w: _Watcher, backlog: list[tuple[str, Obj]], q: Any) -> None:
        for etype, obj in backlog:
            await resp.write(orjson.dumps({"type": etype, "object": obj}) + b"\n")
        if backlog and backlog[-1][0] == "ERROR":
            return
        loop = asyncio.get_running_loop()
        deadline = loop.time() + float(q.get("timeoutSeconds") or 1800)
        bookmarks = q.get("allowWatchBookmarks") == "true"
        while (left := deadline - loop.time()) > 0:
            wait = min(left, self.bookmark_interval) if bookmarks else left
            try:
                ev = await asyncio.wait_for(w.queue.get(), wait)
            except TimeoutError:
                if bookmarks and deadline - loop.time() > 0:
                    mark = {"kind": w.resource.kind, "apiVersion": w.resource.api_version,
                            "metadata": {"resourceVersion": str(self.rv)}}
                    await resp.write(orjson.dumps({"type": "BOOKMARK", "object": mark}) + b"\n")
                continue
            if ev is None:
                return
            for etype, obj in self._filter(w, ev):
                await resp.write(orjson.dumps({"type": etype, "object": obj}) + b"\n")

    def _filter(self, w: _Watcher, ev: _Event) -> list[tuple[str, Obj]]:
        """An event as this watcher sees it: objects entering or leaving its selector become ADDED/DELETED."""
        now = w.matches(ev.obj)
        before = ev.old is not None and w.matches(ev.old)
        if ev.type == "DELETED":
            return [("DELETED", ev.obj)] if before or now else []
        if ev.type == "ADDED":
            return [("ADDED", ev.obj)] if now else []
        if now and before:
            return [("MODIFIED", ev.obj)]
        if now:
            return [("ADDED", ev.obj)]
        return [("DELETED", ev.obj)] if before else []


def _same(a: Obj, b: Obj) -> bool:
    """Equal but for resourceVersion: a no-op write, which the apiserver does not persist."""
    strip = lambda o: {**o, "metadata": {k: v for k, v in o["metadata"].items() if k != "resourceVersion"}}  # noqa: E731
    return strip(a) == strip(b)
