"""An async client for the Kubernetes REST API, on one keep-alive aiohttp session.

Every component except the apiserver reaches the cluster only through this
class, so it speaks the real API exactly (paths, query parameters, patch
content types, ``DeleteOptions`` bodies, watch streams) and works unchanged
against a real cluster.  Objects stay plain dicts: the client neither types
nor validates them.  Failures become :class:`ApiError` carrying the server's
``metav1.Status``, so callers branch on ``reason``/``code`` as client-go's
``apierrors.IsNotFound`` and friends do.
"""

from __future__ import annotations

import asyncio
import builtins
import os
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import orjson

from kubesvc.api.resources import Resource

from .config import ClientConfig, load_kubeconfig

Obj = dict[str, Any]

PATCH_TYPES = {
    "json": "application/json-patch+json",
    "merge": "application/merge-patch+json",
    "strategic": "application/strategic-merge-patch+json",
    "apply": "application/apply-patch+yaml",
}

# What client-go reports when the body is not a Status (newUnstructuredResponseError).
_REASONS = {
    400: ("BadRequest", "the server rejected our request for an unknown reason"),
    401: ("Unauthorized", "the server has asked for the client to provide credentials"),
    403: ("Forbidden", "the server does not allow access to the requested resource"),
    404: ("NotFound", "the server could not find the requested resource"),
    405: ("MethodNotAllowed", "the server does not allow this method on the requested resource"),
    409: ("Conflict", "the server reported a conflict"),
    410: ("Expired", "the server reported the requested resource version is too old"),
    415: ("UnsupportedMediaType", "the server responded with the status code 415 but did not return more information"),
    422: ("Invalid", "the server rejected our request due to an error in our request"),
    429: ("TooManyRequests", "the server has received too many requests and has asked us to try again later"),
    500: ("InternalError", "an error on the server has prevented the request from succeeding"),
    503: ("ServiceUnavailable", "the server is currently unable to handle the request"),
    504: ("Timeout", "the server was unable to return a response in the time allotted, but may still be processing the request"),
}


class ApiError(Exception):
    """A failed API call, as the ``metav1.Status`` the server sent (or one built like client-go)."""

    def __init__(self, status: Obj) -> None:
        self.status = status
        super().__init__(self.message)

    @property
    def code(self) -> int:
        return int(self.status.get("code") or 0)

    @property
    def reason(self) -> str:
        return str(self.status.get("reason") or "")

    @property
    def message(self) -> str:
        return str(self.status.get("message") or "")

    @property
    def details(self) -> Obj:
        return self.status.get("details") or {}

    def __repr__(self) -> str:
        return f"ApiError({self.code}, {self.reason!r}, {self.message!r})"

    @classmethod
    def from_response(cls, code: int, body: bytes) -> ApiError:
        try:
            obj = orjson.loads(body) if body else None
        except orjson.JSONDecodeError:
            obj = None
        if isinstance(obj, dict) and obj.get("kind") == "Status":
            obj.setdefault("code", code)
            return cls(obj)
        reason, message = _REASONS.get(code, ("", f"an error on the server ({code}) has prevented the request from succeeding"))
        if body and code not in (404, 401, 403):
            message = f"{message} ({body[:200].decode(errors='replace')})"
        return cls({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                    "message": message, "reason": reason, "code": code})


def is_not_found(e: BaseException) -> bool:
    return isinstance(e, ApiError) and e.code == 404


def is_conflict(e: BaseException) -> bool:
    return isinstance(e, ApiError) and e.code == 409


def is_gone(e: BaseException) -> bool:
    return isinstance(e, ApiError) and e.code == 410


def resource_path(
    resource: Resource, namespace: str | None = None, name: str | None = None, subresource: str | None = None
) -> str:
    """``/api/v1/namespaces/ns/services/x/status`` or ``/apis/apps/v1/deployments``."""
    parts = ["/api/v1" if not resource.group else f"/apis/{resource.group}/{resource.version}"]
    if resource.namespaced and namespace:
        parts.append(f"namespaces/{namespace}")
    parts.append(resource.plural)
    if name:
        parts.append(name)
        if subresource:
            parts.append(subresource)
    return "/".join(parts)


def _query(**kw: Any) -> dict[str, str]:
    """Drop unset parameters; booleans as the API spells them."""
    out: dict[str, str] = {}
    for k, v in kw.items():
        if v is None or v == "":
            continue
        out[k] = ("true" if v else "false") if isinstance(v, bool) else str(v)
    return out


def _ns(resource: Resource, namespace: str | None, body: Obj | None = None) -> str | None:
    if not resource.namespaced:
        return None
    return namespace or ((body or {}).get("metadata") or {}).get("namespace") or None


class ApiClient:
    """The REST client.  Use as ``async with ApiClient(cfg) as api: ...`` or call ``close()``."""

    def __init__(self, config: ClientConfig, *, timeout: float = 30.0, user_agent: str = "kubesvc") -> None:
        self.config = config
        self.timeout = timeout
        self._headers = {"Accept": "application/json", "User-Agent": user_agent, **config.auth_headers}
        self._session: aiohttp.ClientSession | None = None

    @classmethod
    def from_kubeconfig(cls, path: str | os.PathLike[str] | None = None, context: str | None = None,
                        **kw: Any) -> ApiClient:
        return cls(load_kubeconfig(path, context), **kw)

    @property
    def session(self) -> aiohttp.ClientSession:
        """Created lazily so the client can be built outside a running loop."""
        if self._session is None or self._session.closed:
            ssl_ctx = self.config.ssl_context if self.config.ssl_context is not None else True
            connector = aiohttp.TCPConnector(ssl=ssl_ctx, limit=100)
            self._session = aiohttp.ClientSession(
                connector=connector, headers=self._headers,
                json_serialize=lambda o: orjson.dumps(o).decode())
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def __aenter__(self) -> ApiClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # ---------------------------------------------------------------- transport

    async def request(self, method: str, path: str, *, params: dict[str, str] | None = None,
                      body: Any = None, content_type: str = "application/json") -> Obj:
        """One call; the decoded JSON response, or :class:`ApiError`."""
        data = None
        headers = {}
        if body is not None:
            data = body if isinstance(body, bytes) else orjson.dumps(body)
            headers["Content-Type"] = content_type
        async with self.session.request(
            method, self.config.server + path, params=params, data=data, headers=headers,
            server_hostname=self.config.tls_server_name,
            timeout=aiohttp.ClientTimeout(total=self.timeout),
        ) as resp:
            raw = await resp.read()
            if resp.status >= 300:
                raise ApiError.from_response(resp.status, raw)
            return orjson.loads(raw) if raw else {}

    # ---------------------------------------------------------------- verbs

    async def get(self, target: Resource | str, name: str | None = None, namespace: str | None = None,
                  subresource: str | None = None) -> Obj:
        """GET a raw path (``get("/version")``) or one object of a resource."""
        if isinstance(target, str):
            return await self.request("GET", target)
        if not name:
            raise ValueError("get() of a resource needs a name")
        return await self.request("GET", resource_path(target, namespace, name, subresource))

    async def list(self, resource: Resource, namespace: str | None = None, *, label_selector: str | None = None,
                   field_selector: str | None = None, limit: int | None = None, continue_: str | None = None,
                   resource_version: str | None = None, resource_version_match: str | None = None) -> Obj:
        """One page of a LIST; follow ``metadata.continue`` for more (or use :meth:`list_all`)."""
        params = _query(labelSelector=label_selector, fieldSelector=field_selector, limit=limit,
                        resourceVersion=resource_version, resourceVersionMatch=resource_version_match,
                        **{"continue": continue_})
        return await self.request("GET", resource_path(resource, namespace), params=params)

    async def list_all(self, resource: Resource, namespace: str | None = None, *, page_size: int = 500,
                       **kw: Any) -> Obj:
        """Every page joined into one list; a 410 mid-way restarts the list unpaged, as client-go's pager does."""
        items: builtins.list[Obj] = []
        token: str | None = None
        while True:
            try:
                page = await self.list(resource, namespace, limit=page_size, continue_=token, **kw)
            except ApiError as e:
                if token and e.code == 410:
                    return await self.list(resource, namespace, **kw)
                raise
            items.extend(page.get("items") or [])
            token = (page.get("metadata") or {}).get("continue")
            if not token:
                page["items"] = items
                return page

    async def create(self, resource: Resource, body: Obj, namespace: str | None = None,
                     subresource: str | None = None, name: str | None = None) -> Obj:
        path = resource_path(resource, _ns(resource, namespace, body), name, subresource)
        return await self.request("POST", path, body=body)

    async def replace(self, resource: Resource, body: Obj, namespace: str | None = None,
                      subresource: str | None = None) -> Obj:
        """PUT the whole object (``resourceVersion`` in it makes it a compare-and-swap)."""
        name = (body.get("metadata") or {}).get("name")
        if not name:
            raise ValueError("replace() needs metadata.name")
        path = resource_path(resource, _ns(resource, namespace, body), name, subresource)
        return await self.request("PUT", path, body=body)

    async def update_status(self, resource: Resource, body: Obj, namespace: str | None = None) -> Obj:
        return await self.replace(resource, body, namespace, subresource="status")

    async def patch(self, resource: Resource, name: str, patch: Any, namespace: str | None = None, *,
                    patch_type: str = "merge", subresource: str | None = None,
                    field_manager: str | None = None, force: bool | None = None) -> Obj:
        """PATCH with ``patch_type`` one of json, merge, strategic, apply."""
        content_type = PATCH_TYPES[patch_type]
        if patch_type == "apply" and not field_manager:
            raise ValueError("server-side apply needs a field_manager")
        params = _query(fieldManager=field_manager, force=force)
        path = resource_path(resource, _ns(resource, namespace), name, subresource)
        return await self.request("PATCH", path, params=params, body=patch, content_type=content_type)

    async def delete(self, resource: Resource, name: str, namespace: str | None = None, *,
                     propagation_policy: str | None = None, preconditions: Obj | None = None,
                     grace_period_seconds: int | None = None) -> Obj:
        """DELETE with a ``DeleteOptions`` body; returns the object or a Success Status."""
        body = _delete_options(propagation_policy, preconditions, grace_period_seconds)
        return await self.request("DELETE", resource_path(resource, _ns(resource, namespace), name), body=body)

    async def delete_collection(self, resource: Resource, namespace: str | None = None, *,
                                label_selector: str | None = None, field_selector: str | None = None,
                                propagation_policy: str | None = None) -> Obj:
        params = _query(labelSelector=label_selector, fieldSelector=field_selector)
        body = _delete_options(propagation_policy, None, None)
        return await self.request("DELETE", resource_path(resource, namespace), params=params, body=body)

    # ---------------------------------------------------------------- watch

    async def watch(self, resource: Resource, namespace: str | None = None, *, resource_version: str | None = None,
                    label_selector: str | None = None, field_selector: str | None = None,
                    timeout_seconds: int | None = None, allow_bookmarks: bool = True,
                    ) -> AsyncIterator[tuple[str, Obj]]:
        """Yield ``(type, object)`` from a watch stream until the server ends it.

        ``ERROR`` events are yielded as they come (the object is a Status);
        the caller decides, as client-go's reflector does, whether a 410 means relist.
        """
        params = _query(watch=True, resourceVersion=resource_version, labelSelector=label_selector,
                        fieldSelector=field_selector, timeoutSeconds=timeout_seconds,
                        allowWatchBookmarks=allow_bookmarks or None)
        read_timeout = (timeout_seconds + 30) if timeout_seconds else None
        async with self.session.get(
            self.config.server + resource_path(resource, namespace), params=params,
            server_hostname=self.config.tls_server_name,
            timeout=aiohttp.ClientTimeout(total=None, connect=self.timeout, sock_read=read_timeout),
        ) as resp:
            if resp.status >= 300:
                raise ApiError.from_response(resp.status, await resp.read())
            async for event in iter_watch_events(resp.content):
                yield event

    # ---------------------------------------------------------------- discovery

    async def server_resources(self) -> builtins.list[Resource]:
        """Every top-level resource the server serves, from discovery (preferred versions)."""
        out: builtins.list[Resource] = []
        core = await self.get("/api/v1")
        out.extend(_discovered("", "v1", core))
        groups = await self.get("/apis")
        for g in groups.get("groups") or []:
            gv = (g.get("preferredVersion") or {}).get("groupVersion") or ""
            if "/" not in gv:
                continue
            group, version = gv.split("/", 1)
            out.extend(_discovered(group, version, await self.get(f"/apis/{gv}")))
        return out


def _delete_options(policy: str | None, preconditions: Obj | None, grace: int | None) -> Obj:
    body: Obj = {"kind": "DeleteOptions", "apiVersion": "v1"}
    if policy:
        body["propagationPolicy"] = policy
    if preconditions:
        body["preconditions"] = preconditions
    if grace is not None:
        body["gracePeriodSeconds"] = grace
    return body


def _discovered(group: str, version: str, resource_list: Obj) -> builtins.list[Resource]:
    out = []
    for r in resource_list.get("resources") or []:
        if "/" in r.get("name", ""):
            continue
        out.append(Resource(group, version, r.get("kind", ""), r["name"], r.get("singularName") or "",
                            namespaced=bool(r.get("namespaced")), verbs=tuple(r.get("verbs") or ())))
    return out


async def iter_watch_events(stream: aiohttp.StreamReader) -> AsyncIterator[tuple[str, Obj]]:
    """Split a chunked watch body into JSON lines without aiohttp's 128 KiB line cap."""
    buf = b""
    async for chunk in stream.iter_any():
        buf += chunk
        while True:
            nl = buf.find(b"\n")
            if nl < 0:
                break
            line, buf = buf[:nl], buf[nl + 1:]
            event = parse_watch_line(line)
            if event is not None:
                yield event
        await asyncio.sleep(0)
    event = parse_watch_line(buf)
    if event is not None:
        yield event


def parse_watch_line(line: bytes) -> tuple[str, Obj] | None:
    """``{"type": ..., "object": ...}`` → ``(type, object)``; blank lines are ignored."""
    line = line.strip()
    if not line:
        return None
    try:
        ev = orjson.loads(line)
    except orjson.JSONDecodeError as e:
        raise ApiError({"kind": "Status", "status": "Failure", "code": 500, "reason": "InternalError",
                        "message": f"unable to decode watch event: {e}"}) from e
    return str(ev.get("type") or ""), ev.get("object") or {}
