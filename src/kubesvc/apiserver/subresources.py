"""Subresources: status, scale, finalize (namespaces), binding and eviction (pods).

Each is a narrow door onto its parent object: ``/status`` writes only status,
``/scale`` reads and writes ``spec.replicas`` as an ``autoscaling/v1`` Scale,
``/finalize`` writes only a namespace's ``spec.finalizers``, ``/binding`` sets
a pod's node once.
"""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING, Any

from aiohttp import web

from kubesvc.api import errors
from kubesvc.api.meta import meta
from kubesvc.api.resources import Resource
from kubesvc.apiserver import codec
from kubesvc.apiserver.requestinfo import RequestInfo
from kubesvc.registry.generic import DeleteOptions, WriteOptions

if TYPE_CHECKING:
    from kubesvc.apiserver.handlers import ResourceHandlers

Obj = dict[str, Any]
# The secret the apiserver shows node agents when it proxies pods/log to them.
AGENT_TOKEN = web.AppKey("agent_token", str)


async def dispatch(h: ResourceHandlers, request: web.Request, info: RequestInfo, res: Resource) -> web.StreamResponse:
    from kubesvc.apiserver import handlers as hs

    sub, name, ns, m = info.subresource, info.name, info.namespace, request.method
    assert name is not None and sub is not None
    if sub == "status":
        if m == "GET":
            return await h.get(request, res, ns, name)
        if m == "PUT":
            body = await hs.read_body(request)
            obj = codec.decode_object(request.headers.get("Content-Type"), body)
            hs.check_type_meta(res, obj)
            stored, _ = await h.registry.update(res, ns, name, obj, hs.write_options(request), subresource="status")
            return h.render_one(request, res, stored)
        if m == "PATCH":
            return await h.patch(request, res, ns, name, subresource="status")
    elif sub == "scale":
        return await _scale(h, request, res, ns, name)
    elif sub == "finalize" and m == "PUT":
        return await _finalize(h, request, res, name)
    elif sub == "binding" and m == "POST":
        return await _binding(h, request, res, ns, name)
    elif sub == "eviction" and m == "POST":
        stored, _ = await h.registry.delete(res, ns, name, DeleteOptions())
        return hs.json_response({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": 201}, 201)
    elif sub == "log" and m == "GET":
        return await _log(h, request, res, ns, name)
    elif sub in ("exec", "portforward", "attach"):
        from kubesvc.apiserver import streaming

        return await streaming.dispatch(h, request, res, ns, name, sub)
    raise errors.method_not_allowed("the server does not allow this method on the requested resource")


def to_scale(obj: Obj) -> Obj:
    from kubesvc.api.selectors import from_label_selector_dict

    m = obj.get("metadata") or {}
    sel = (obj.get("spec") or {}).get("selector")
    return {
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": {k: m[k] for k in ("name", "namespace", "uid", "resourceVersion", "creationTimestamp") if k in m},
        "spec": {"replicas": int((obj.get("spec") or {}).get("replicas", 1))},
        "status": {
            "replicas": int((obj.get("status") or {}).get("replicas", 0)),
            "selector": str(from_label_selector_dict(sel)) if sel else "",
        },
    }


async def _scale(h: ResourceHandlers, request: web.Request, res: Resource, ns: str | None, name: str) -> web.Response:
    from kubesvc.apiserver import handlers as hs

    if request.method == "GET":
        stored = await h.registry.get(res, ns, name)
        return hs.json_response(to_scale(stored.value))
    if request.method not in ("PUT", "PATCH"):
        raise errors.method_not_allowed("the server does not allow this method on the requested resource")
    body = await hs.read_body(request)
    ct = request.headers.get("Content-Type")

    def mutate(live: Obj | None) -> Obj:
        assert live is not None
        scale = to_scale(live)
        if request.method == "PUT":
            new_scale = codec.decode_object(ct, body)
        else:
            from kubesvc.apiserver.patch import apply_patch

            new_scale = apply_patch(codec.media_type(ct), scale, body, kind="Scale", api_version="autoscaling/v1")
        replicas = (new_scale.get("spec") or {}).get("replicas")
        if not isinstance(replicas, int) or isinstance(replicas, bool) or replicas < 0:
            raise errors.invalid_error("Scale", name, [errors.invalid("spec.replicas", replicas, "must be greater than or equal to 0")], "autoscaling")
        out = copy.deepcopy(live)
        out.setdefault("spec", {})["replicas"] = replicas
        want_rv = (new_scale.get("metadata") or {}).get("resourceVersion")
        meta(out).pop("resourceVersion", None)
        if want_rv and request.method == "PUT":
            meta(out)["resourceVersion"] = want_rv
        return out

    stored, _ = await h.registry.guaranteed_update(res, ns, name, mutate, hs.write_options(request))
    return hs.json_response(to_scale(stored.value))


async def _finalize(h: ResourceHandlers, request: web.Request, res: Resource, name: str) -> web.Response:
    from kubesvc.apiserver import handlers as hs

    body = await hs.read_body(request)
    obj = codec.decode_object(request.headers.get("Content-Type"), body)
    fins = (obj.get("spec") or {}).get("finalizers") or []

    def mutate(live: Obj | None) -> Obj:
        assert live is not None
        live.setdefault("spec", {})["finalizers"] = fins
        if not fins:
            live["spec"].pop("finalizers")
        meta(live).pop("resourceVersion", None)
        return live

    stored, _ = await h.registry.guaranteed_update(res, None, name, mutate, hs.write_options(request),
                                                   subresource="finalize")
    return h.render_one(request, res, stored)


async def _binding(h: ResourceHandlers, request: web.Request, res: Resource, ns: str | None, name: str) -> web.Response:
    from kubesvc.apiserver import handlers as hs

    body = await hs.read_body(request)
    binding = codec.decode_object(request.headers.get("Content-Type"), body)
    target = (binding.get("target") or {}).get("name")
    if not target:
        raise errors.invalid_error("Binding", name, [errors.required("target.name")])

    def mutate(live: Obj | None) -> Obj:
        assert live is not None
        node = (live.get("spec") or {}).get("nodeName")
        if node:
            raise errors.conflict("pods", name, f'pod {name} is already assigned to node "{node}"')
        if (live.get("metadata") or {}).get("deletionTimestamp"):
            raise errors.conflict("pods", name, f"pod {name} is being deleted, cannot be assigned to a host")
        live.setdefault("spec", {})["nodeName"] = target
        conds = [c for c in (live.setdefault("status", {}).get("conditions") or []) if c.get("type") != "PodScheduled"]
        conds.append({"type": "PodScheduled", "status": "True", "lastProbeTime": None,
                      "lastTransitionTime": meta(live).get("creationTimestamp")})
        live["status"]["conditions"] = conds
        meta(live).pop("resourceVersion", None)
        return live

    await h.registry.guaranteed_update(res, ns, name, mutate, WriteOptions(field_manager=""),
                                       subresource="binding")
    return hs.json_response({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": 201}, 201)


async def _log(h: ResourceHandlers, request: web.Request, res: Resource, ns: str | None, name: str) -> web.Response:
    stored = await h.registry.get(res, ns, name)
    node = (stored.value.get("spec") or {}).get("nodeName")
    if not node:
        raise errors.bad_request(f"pod {name} does not have a host assigned")
    return await _proxy_log(h, request, stored.value, node)


async def _proxy_log(h: ResourceHandlers, request: web.Request, pod: Obj, node: str) -> web.StreamResponse:
    """Stream ``/containerLogs/...`` from the pod's node agent (kubelet's port, from the Node's status)."""
    import aiohttp


    name, ns = meta(pod)["name"], meta(pod).get("namespace")
    containers = [c.get("name") for c in (pod.get("spec") or {}).get("containers") or []]
    container = request.query.get("container") or (containers[0] if len(containers) == 1 else None)
    if not container:
        raise errors.bad_request(f"a container name must be specified for pod {name}, choose one of: [{' '.join(containers)}]")
    if container not in containers + [c.get("name") for c in (pod.get("spec") or {}).get("initContainers") or []]:
        raise errors.bad_request(f"container {container} is not valid for pod {name}")
    from kubesvc.apiserver.streaming import agent_base

    params = {k: v for k, v in request.query.items() if k in ("follow", "previous", "tailLines", "timestamps",
                                                              "sinceSeconds", "limitBytes")}
    url = f"{await agent_base(h, node)}/containerLogs/{ns}/{name}/{container}"
    headers = {"Authorization": f"Bearer {request.app.get(AGENT_TOKEN, '')}"}
    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=None, connect=5)) as session, \
                session.get(url, params=params, headers=headers) as resp:
            if resp.status != 200:
                raise errors.bad_request((await resp.text()).strip() or f"the node agent answered {resp.status}")
            out = web.StreamResponse(headers={"Content-Type": "text/plain"})
            await out.prepare(request)
            async for chunk in resp.content.iter_any():
                await out.write(chunk)
            await out.write_eof()
            return out
    except aiohttp.ClientError as e:
        raise errors.bad_request(f"Get \"{url}\": {e}") from None
