"""Streaming pod subresources: ``exec`` (relayed to the node agent) and ``portforward``.

``exec``: kubectl 1.32 asks for a websocket upgrade offering
``v5.channel.k8s.io`` (then v4 and older).  The apiserver checks the pod and
container, opens a websocket to the pod's node agent (``/exec/...`` on the
kubelet port, with the agent token; see :mod:`kubesvc.agent.streams`), waits
for the agent's go-ahead, and only then accepts kubectl's upgrade with the
same subprotocol and relays the channel frames both ways unchanged.  Any
refusal before that is a plain Status answer, which kubectl prints (after
trying its SPDY fallback, which this server refuses the same way).

``portforward``: a websocket with subprotocol ``SPDY/3.1+portforward.k8s.io``
carrying a SPDY session (:mod:`kubesvc.apiserver.streaming_spdy`); each
forwarded connection is a TCP connection from the apiserver to the pod's IP,
which the host reaches through the node routes.

``attach`` is refused: containers' output goes to log files and they have no
stdin to attach to.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from typing import TYPE_CHECKING, Any

import aiohttp
from aiohttp import WSMsgType, web

from kubesvc.api import errors
from kubesvc.api.meta import meta
from kubesvc.api.resources import Resource, by_plural
from kubesvc.apiserver.streaming_spdy import PortForwardSession

if TYPE_CHECKING:
    from kubesvc.apiserver.handlers import ResourceHandlers

Obj = dict[str, Any]
EXEC_PROTOCOLS = ("v5.channel.k8s.io", "v4.channel.k8s.io")
PORTFORWARD_PROTOCOL = "SPDY/3.1+portforward.k8s.io"


def _is_websocket(request: web.Request) -> bool:
    return (request.headers.get("Upgrade", "").lower() == "websocket"
            and "upgrade" in request.headers.get("Connection", "").lower())


def _offered(request: web.Request) -> list[str]:
    return [p.strip() for p in request.headers.get("Sec-WebSocket-Protocol", "").split(",") if p.strip()]


async def dispatch(h: ResourceHandlers, request: web.Request, res: Resource, ns: str | None, name: str,
                   sub: str) -> web.StreamResponse:
    if request.method not in ("GET", "POST"):
        raise errors.method_not_allowed("the server does not allow this method on the requested resource")
    pod = (await h.registry.get(res, ns, name)).value
    if sub == "exec":
        return await _exec(h, request, pod)
    if sub == "portforward":
        return await _portforward(request, pod)
    raise errors.bad_request("attach is not supported by kubesvc: containers have no attachable stdin and their "
                             "output is in the container log (use kubectl logs -f)")


def _container(request: web.Request, pod: Obj) -> str:
    name = meta(pod)["name"]
    spec = pod.get("spec") or {}
    names = [c.get("name") for c in spec.get("containers") or []]
    container = request.query.get("container") or (names[0] if len(names) == 1 else None)
    if not container:
        raise errors.bad_request(f"a container name must be specified for pod {name}, choose one of: [{' '.join(names)}]")
    if container not in names + [c.get("name") for c in spec.get("initContainers") or []]:
        raise errors.bad_request(f"container {container} is not valid for pod {name}")
    return container


async def agent_base(h: ResourceHandlers, node: str) -> str:
    """The node agent's URL, from the Node's InternalIP and kubelet endpoint port (logs, exec)."""
    node_res = by_plural("", "v1", "nodes")
    assert node_res is not None
    node_obj = (await h.registry.get(node_res, None, node)).value
    addrs = {a.get("type"): a.get("address") for a in (node_obj.get("status") or {}).get("addresses") or []}
    port = (((node_obj.get("status") or {}).get("daemonEndpoints") or {}).get("kubeletEndpoint") or {}).get("Port")
    if not addrs.get("InternalIP") or not port:
        raise errors.bad_request(f'node "{node}" has no agent address to connect to')
    return f"http://{addrs['InternalIP']}:{port}"


async def _exec(h: ResourceHandlers, request: web.Request, pod: Obj) -> web.StreamResponse:
    from kubesvc.apiserver.subresources import AGENT_TOKEN

    name, ns = meta(pod)["name"], meta(pod).get("namespace")
    phase = (pod.get("status") or {}).get("phase")
    if phase in ("Succeeded", "Failed"):
        raise errors.bad_request(f"cannot exec into a container in a completed pod; current phase is {phase}")
    node = (pod.get("spec") or {}).get("nodeName")
    if not node:
        raise errors.bad_request(f"pod {name} does not have a host assigned")
    container = _container(request, pod)
    if not request.query.getall("command", []):
        raise errors.bad_request("you must specify at least 1 command")
    statuses = (pod.get("status") or {}).get("containerStatuses") or []
    state = next((s.get("state") or {} for s in statuses if s.get("name") == container), {})
    if "running" not in state and container in [c.get("name") for c in (pod.get("spec") or {}).get("containers") or []]:
        raise errors.bad_request(f'unable to upgrade connection: container not found ("{container}")')
    if not _is_websocket(request):
        raise errors.bad_request("kubesvc serves exec over WebSocket only (v5.channel.k8s.io, v4.channel.k8s.io); "
                                 "the SPDY upgrade is not supported")
    proto = next((p for p in _offered(request) if p in EXEC_PROTOCOLS), None)
    if proto is None:
        raise errors.bad_request(f"none of the offered exec protocols is supported; use one of {list(EXEC_PROTOCOLS)}")
    url = f"{await agent_base(h, node)}/exec/{ns}/{name}/{container}"
    params = [("command", c) for c in request.query.getall("command")]
    params += [(k, request.query[k]) for k in ("stdin", "stdout", "stderr", "tty") if k in request.query]
    session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=None, connect=5))
    try:
        try:
            agent = await session.ws_connect(url, params=params, protocols=(proto,), max_msg_size=0,
                                             headers={"Authorization": f"Bearer {request.app.get(AGENT_TOKEN, '')}"})
        except (aiohttp.ClientError, OSError) as e:
            raise errors.bad_request(f"error dialing the node agent of {node}: {e}") from None
        first = await agent.receive(timeout=15)
        answer = json.loads(first.data) if first.type == WSMsgType.TEXT else {"message": "the node agent hung up"}
        if not answer.get("ok"):
            await agent.close()
            raise errors.bad_request(str(answer.get("message") or "the node agent refused the exec"))
        ws = web.WebSocketResponse(protocols=(proto,), max_msg_size=0)
        await ws.prepare(request)
        await _relay(ws, agent)
        return ws
    finally:
        await session.close()


async def _relay(client: web.WebSocketResponse, agent: aiohttp.ClientWebSocketResponse) -> None:
    async def pump(src: Any, dst: Any) -> None:
        async for msg in src:
            if msg.type == WSMsgType.BINARY:
                await dst.send_bytes(msg.data)
            elif msg.type == WSMsgType.TEXT:
                await dst.send_str(msg.data)

    tasks = [asyncio.create_task(pump(client, agent)), asyncio.create_task(pump(agent, client))]
    with contextlib.suppress(ConnectionError, RuntimeError):
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    for t in tasks:
        t.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    await agent.close()
    await client.close()


async def _portforward(request: web.Request, pod: Obj) -> web.StreamResponse:
    name, uid = meta(pod)["name"], meta(pod).get("uid", "")
    status = pod.get("status") or {}
    if status.get("phase") != "Running":
        raise errors.bad_request(f"unable to forward port because pod is not running. Current status={status.get('phase')}")
    pod_ip = status.get("podIP")
    if not pod_ip:
        raise errors.bad_request(f"pod {name} has no IP address yet")
    if not _is_websocket(request) or PORTFORWARD_PROTOCOL not in _offered(request):
        raise errors.bad_request(f"kubesvc serves portforward over WebSocket only ({PORTFORWARD_PROTOCOL}); "
                                 "the plain SPDY upgrade is not supported")
    ws = web.WebSocketResponse(protocols=(PORTFORWARD_PROTOCOL,), max_msg_size=0)
    await ws.prepare(request)

    async def connect(port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        return await asyncio.open_connection(pod_ip, port)

    def describe(port: int, e: BaseException) -> str:
        reason = e.strerror if isinstance(e, OSError) and e.strerror else (str(e) or type(e).__name__)
        return (f"error forwarding port {port} to pod {name}, uid {uid}: failed to connect to "
                f"{pod_ip}:{port}: {reason}")

    session = PortForwardSession(ws.send_bytes, connect, describe)
    try:
        async for msg in ws:
            if msg.type == WSMsgType.BINARY:
                await session.feed(msg.data)
            if session.closed:
                break
    finally:
        await session.close()
        await ws.close()
    return ws
