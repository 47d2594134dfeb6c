"""Streaming pod subresources: ``exec``, ``attach`` and ``portforward``, relayed to the pod's node agent.

kubectl asks for one of two upgrades.  A websocket: ``v5.channel.k8s.io``
(then v4) for exec and attach, ``SPDY/3.1+portforward.k8s.io`` for
port-forward (kubectl 1.30/1.31 on).  Or, as its fallback and before those
versions, a plain ``Upgrade: SPDY/3.1`` (:mod:`kubesvc.apiserver.streaming_spdy`).

Either way the apiserver checks the pod and container, opens a websocket to
the node agent (``/exec``, ``/attach`` or ``/portForward`` on the kubelet
port, with the agent token; see :mod:`kubesvc.agent.streams`,
:mod:`kubesvc.agent.attach`, :mod:`kubesvc.agent.portforward`), waits for the
agent's go-ahead, and only then accepts kubectl's upgrade, so every refusal
before that is a plain Status that kubectl prints.  Then it relays:
websocket frames unchanged; SPDY exec and attach streams translated to the
agent's v5 channel frames; port-forward's SPDY bytes as they are (the agent
ends that session, and connects inside the pod's network namespace).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Awaitable
from typing import TYPE_CHECKING, Any

import aiohttp
from aiohttp import WSMsgType, web

from kubesvc.api import errors
from kubesvc.api.meta import meta
from kubesvc.api.resources import Resource, by_plural
from kubesvc.apiserver import streaming_spdy

if TYPE_CHECKING:
    from kubesvc.apiserver.handlers import ResourceHandlers

Obj = dict[str, Any]
EXEC_PROTOCOLS = ("v5.channel.k8s.io", "v4.channel.k8s.io")
PORTFORWARD_PROTOCOL = "SPDY/3.1+portforward.k8s.io"
STREAM_CREATION_TIMEOUT = 30.0  # upstream's wait for kubectl's SPDY streams


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
    if sub == "portforward":
        return await _portforward(h, request, pod)
    return await _remote_command(h, request, pod, sub)


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


def _flag(request: web.Request, key: str) -> bool:
    return request.query.get(key) in ("true", "1")


@contextlib.asynccontextmanager
async def _agent_ws(h: ResourceHandlers, request: web.Request, node: str, path: str, params: list[tuple[str, str]],
                    proto: str) -> AsyncIterator[aiohttp.ClientWebSocketResponse]:
    """A websocket to the node agent's ``path``, once the agent said go (its refusal is a 400 Status)."""
    from kubesvc.apiserver.subresources import AGENT_TOKEN

    url = f"{await agent_base(h, node)}{path}"
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=None, connect=5)) as session:
        try:
            agent = await session.ws_connect(url, params=params, protocols=(proto,), max_msg_size=0,
                                             headers={"Authorization": f"Bearer {request.app.get(AGENT_TOKEN, '')}"})
        except (aiohttp.ClientError, OSError) as e:
            raise errors.bad_request(f"error dialing the node agent of {node}: {e}") from None
        try:
            first = await agent.receive(timeout=15)
            answer = json.loads(first.data) if first.type == WSMsgType.TEXT else {"message": "the node agent hung up"}
            if not answer.get("ok"):
                raise errors.bad_request(str(answer.get("message") or "the node agent refused the request"))
            yield agent
        finally:
            await agent.close()


async def _remote_command(h: ResourceHandlers, request: web.Request, pod: Obj, sub: str) -> web.StreamResponse:
    """``exec`` and ``attach``: checks, then the agent, then kubectl's upgrade (websocket or SPDY)."""
    name, ns = meta(pod)["name"], meta(pod).get("namespace")
    phase = (pod.get("status") or {}).get("phase")
    if phase in ("Succeeded", "Failed"):
        what = "exec into" if sub == "exec" else "attach to"
        raise errors.bad_request(f"cannot {what} a container in a completed pod; current phase is {phase}")
    node = (pod.get("spec") or {}).get("nodeName")
    if not node:
        raise errors.bad_request(f"pod {name} does not have a host assigned")
    container = _container(request, pod)
    if sub == "exec" and not request.query.getall("command", []):
        raise errors.bad_request("you must specify at least 1 command")
    if not any(_flag(request, k) for k in ("stdin", "stdout", "stderr")):
        raise errors.bad_request("you must specify at least 1 of stdin, stdout, stderr")
    statuses = (pod.get("status") or {}).get("containerStatuses") or []
    state = next((s.get("state") or {} for s in statuses if s.get("name") == container), {})
    if "running" not in state and container in [c.get("name") for c in (pod.get("spec") or {}).get("containers") or []]:
        raise errors.bad_request(f'unable to upgrade connection: container not found ("{container}")')
    websocket = _is_websocket(request)
    if websocket:
        proto = next((p for p in _offered(request) if p in EXEC_PROTOCOLS), None)
        if proto is None:
            raise errors.bad_request(f"none of the offered {sub} protocols is supported; use one of "
                                     f"{list(EXEC_PROTOCOLS)}")
    elif streaming_spdy.is_upgrade(request):
        proto = streaming_spdy.negotiate(streaming_spdy.offered(request), streaming_spdy.EXEC_PROTOCOLS)
    else:
        raise errors.bad_request("Upgrade request required")
    params = [("command", c) for c in request.query.getall("command", [])] if sub == "exec" else []
    params += [(k, request.query[k]) for k in ("stdin", "stdout", "stderr", "tty") if k in request.query]
    agent_proto = proto if websocket else EXEC_PROTOCOLS[0]  # v5 to the agent: it can carry stdin's close
    async with _agent_ws(h, request, node, f"/{sub}/{ns}/{name}/{container}", params, agent_proto) as agent:
        if websocket:
            return await _relay_websocket(request, proto, agent)
        conn = await streaming_spdy.upgrade(request, proto)
        await _bridge_spdy(conn, agent, streaming_spdy.expected_streams(request.query))
        return conn.response


async def _relay_websocket(request: web.Request, proto: str,
                           agent: aiohttp.ClientWebSocketResponse) -> web.WebSocketResponse:
    """Answer the client's websocket upgrade with ``proto`` and relay frames both ways with the agent's."""
    ws = web.WebSocketResponse(protocols=(proto,), max_msg_size=0)
    await ws.prepare(request)
    await _relay(ws, agent)
    return ws


async def _both(a: Awaitable[None], b: Awaitable[None]) -> None:
    """Run two pumps until the first one ends; then the other is cancelled."""
    tasks = [asyncio.ensure_future(a), asyncio.ensure_future(b)]
    with contextlib.suppress(ConnectionError, RuntimeError):
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    for t in tasks:
        t.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


async def _bridge_spdy(conn: streaming_spdy.Upgraded, agent: aiohttp.ClientWebSocketResponse,
                       expected: set[str]) -> None:
    """kubectl's SPDY exec/attach session <-> the agent's channel frames, until either side ends."""
    to_agent: asyncio.Queue[bytes] = asyncio.Queue()
    bridge = streaming_spdy.ChannelBridge(conn.write, expected, to_agent.put_nowait)

    async def from_kubectl() -> None:
        while (data := await conn.read()) is not None:
            await bridge.feed(data)
            if bridge.closed:
                return

    async def to_agent_pump() -> None:
        while True:
            await agent.send_bytes(await to_agent.get())

    async def from_agent() -> None:
        try:
            await asyncio.wait_for(bridge.ready.wait(), STREAM_CREATION_TIMEOUT)
        except TimeoutError:
            return
        async for msg in agent:
            if msg.type == WSMsgType.BINARY:
                bridge.from_agent(msg.data)

    async def kubectl_side() -> None:
        await _both(from_kubectl(), to_agent_pump())

    await _both(kubectl_side(), from_agent())
    bridge.finish()  # then the connection closes, as the kubelet's does: kubectl reads the ends of its streams
    await bridge.drain()


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


async def _portforward(h: ResourceHandlers, request: web.Request, pod: Obj) -> web.StreamResponse:
    name, ns = meta(pod)["name"], meta(pod).get("namespace")
    status = pod.get("status") or {}
    if status.get("phase") != "Running":
        raise errors.bad_request(f"unable to forward port because pod is not running. Current status={status.get('phase')}")
    node = (pod.get("spec") or {}).get("nodeName")
    if not node:
        raise errors.bad_request(f"pod {name} does not have a host assigned")
    websocket = _is_websocket(request)
    if websocket:
        if PORTFORWARD_PROTOCOL not in _offered(request):
            raise errors.bad_request(f"port-forward over websocket needs the subprotocol {PORTFORWARD_PROTOCOL}")
        proto = PORTFORWARD_PROTOCOL
    elif streaming_spdy.is_upgrade(request):
        proto = streaming_spdy.negotiate(streaming_spdy.offered(request), streaming_spdy.PORTFORWARD_PROTOCOLS)
    else:
        raise errors.bad_request("Upgrade request required")
    async with _agent_ws(h, request, node, f"/portForward/{ns}/{name}", [], PORTFORWARD_PROTOCOL) as agent:
        if websocket:
            return await _relay_websocket(request, proto, agent)
        conn = await streaming_spdy.upgrade(request, proto)

        async def up() -> None:
            while (data := await conn.read()) is not None:
                await agent.send_bytes(data)

        async def down() -> None:
            async for msg in agent:
                if msg.type == WSMsgType.BINARY:
                    await conn.write(msg.data)

        await _both(up(), down())
        return conn.response
