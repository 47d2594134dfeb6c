"""The controller against the fake API server: status, events, release, restore, pools, routes."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from kubesvc.api.resources import by_kind
from kubesvc.client.config import ClientConfig
from kubesvc.client.rest import ApiClient
from kubesvc.lb.announce import RouteAnnouncer
from kubesvc.lb.controller import LoadBalancerController
from kubesvc.lb.pools import pool_object
from kubesvc.testing.fakeapi import FakeApiServer

SVC = by_kind("v1", "Service")
NODE = by_kind("v1", "Node")
SLICE = by_kind("discovery.k8s.io/v1", "EndpointSlice")
POOL = by_kind("kubesvc.io/v1", "IPAddressPool")
EVENT = by_kind("v1", "Event")


@pytest.fixture
async def api() -> AsyncIterator[ApiClient]:
    async with FakeApiServer(bookmark_interval=0.5) as fake, ApiClient(ClientConfig(server=fake.url), timeout=5) as c:
        await c.create(by_kind("v1", "Namespace"), {"metadata": {"name": "default"}})
        await c.create(POOL, pool_object("default", ["172.18.255.200-172.18.255.201"]))
        yield c


class FakeIp:
    def __init__(self) -> None:
        self.calls: list[list[str]] = []

    async def __call__(self, argv: list[str]) -> tuple[int, str]:
        self.calls.append(argv)
        return 0, ""


def lb_svc(name: str, **spec: Any) -> dict[str, Any]:
    ann = spec.pop("annotations", {})
    return {"metadata": {"name": name, "namespace": "default", "annotations": ann},
            "spec": {"type": "LoadBalancer", "selector": {"app": name},
                     "ports": [{"port": 80, "protocol": "TCP"}], **spec}}


async def eventually(check: Callable[[], Any], timeout: float = 5.0) -> Any:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        try:
            result = check()
            if asyncio.iscoroutine(result):
                result = await result
            return result
        except AssertionError:
            if asyncio.get_running_loop().time() > deadline:
                raise
            await asyncio.sleep(0.05)


async def ingress_of(api: ApiClient, name: str) -> list[str]:
    s = await api.get(SVC, name, "default")
    return [i["ip"] for i in ((s.get("status") or {}).get("loadBalancer") or {}).get("ingress") or []]


async def reasons(api: ApiClient, name: str) -> list[str]:
    evs = (await api.list(EVENT, "default"))["items"]
    return [e["reason"] for e in evs if e["involvedObject"]["name"] == name]


async def test_allocate_exhaust_release_and_events(api: ApiClient) -> None:
    """Addresses in order, a Warning when exhausted, release on delete and on type change."""
    c = LoadBalancerController(api)
    await c.start()
    try:
        for n in ("a", "b", "c"):
            await api.create(SVC, lb_svc(n))

        async def settled() -> None:
            assert await ingress_of(api, "a") == ["172.18.255.200"]
            assert await ingress_of(api, "b") == ["172.18.255.201"]
            assert "AllocationFailed" in await reasons(api, "c")
        await eventually(settled)
        await c.recorder.flush()
        assert "IPAllocated" in await reasons(api, "a")
        await api.delete(SVC, "a", "default")
        await eventually(lambda: _assert_eq(ingress_of(api, "c"), ["172.18.255.200"]))
        await api.patch(SVC, "b", {"spec": {"type": "ClusterIP"}}, "default")
        await eventually(lambda: assert_true(c.alloc.ip_of("default/b") is None))
        pool = await eventually(lambda: _pool_assigned(api, 1))
        assert pool["status"]["availableIPv4"] == 1
    finally:
        await c.stop()


async def _assert_eq(coro: Any, want: Any) -> None:
    assert await coro == want


def assert_true(v: bool) -> None:
    assert v


async def _pool_assigned(api: ApiClient, n: int) -> dict[str, Any]:
    pool = await api.get(POOL, "default")
    assert (pool.get("status") or {}).get("assignedIPv4") == n
    return pool


async def test_requested_ip_other_class_and_restart_restore(api: ApiClient) -> None:
    """A requested address is honoured; another class is ignored; a restart keeps every address."""
    await api.create(SVC, lb_svc("late"))
    await api.create(SVC, lb_svc("wants", loadBalancerIP="172.18.255.201"))
    await api.create(SVC, lb_svc("foreign", loadBalancerClass="example.com/lb"))
    c = LoadBalancerController(api)
    await c.start()
    try:
        await eventually(lambda: _assert_eq(ingress_of(api, "wants"), ["172.18.255.201"]))
        await eventually(lambda: _assert_eq(ingress_of(api, "late"), ["172.18.255.200"]))
        assert await ingress_of(api, "foreign") == []
    finally:
        await c.stop()
    # a Service created while the controller was down must not take an address someone holds
    await api.create(SVC, lb_svc("newcomer"))
    c2 = LoadBalancerController(api)
    await c2.start()
    try:
        assert c2.alloc.holders() == {"default/late": c.alloc.ip_of("default/late"),
                                      "default/wants": c.alloc.ip_of("default/wants")}
        await asyncio.sleep(0.3)
        assert await ingress_of(api, "late") == ["172.18.255.200"]
        assert await ingress_of(api, "newcomer") == []
    finally:
        await c2.stop()


async def test_new_pool_object_serves_pending_services(api: ApiClient) -> None:
    """A pool added through the API is used at once for Services that were pending."""
    c = LoadBalancerController(api)
    await c.start()
    try:
        for n in ("a", "b", "c"):
            await api.create(SVC, lb_svc(n))
        await eventually(lambda: _assert_eq(ingress_of(api, "b"), ["172.18.255.201"]))
        await api.create(POOL, pool_object("more", ["192.168.90.0/31"]))
        await eventually(lambda: _assert_eq(ingress_of(api, "c"), ["192.168.90.0"]))
    finally:
        await c.stop()


def node(name: str, ip: str, ready: bool = True) -> dict[str, Any]:
    return {"metadata": {"name": name},
            "status": {"conditions": [{"type": "Ready", "status": "True" if ready else "False"}],
                       "addresses": [{"type": "InternalIP", "address": ip}]}}


async def test_routes_follow_ready_nodes_and_local_endpoints(api: ApiClient) -> None:
    """One route per address to an eligible node; NotReady moves it; Local follows endpoints; stop removes all."""
    ip = FakeIp()
    c = LoadBalancerController(api, announcer=RouteAnnouncer("kubesvc0", runner=ip))
    await api.create(NODE, node("node-1", "172.18.0.2"))
    await api.create(NODE, node("node-2", "172.18.0.3"))
    await c.start()
    try:
        await api.create(SVC, lb_svc("web"))
        await eventually(lambda: assert_true("172.18.255.200" in c.announcer.installed))  # type: ignore[union-attr]
        first = c.announced["172.18.255.200"]
        other = "node-2" if first == "node-1" else "node-1"
        n = await api.get(NODE, first)
        n["status"]["conditions"][0]["status"] = "False"
        await api.update_status(NODE, n)
        await eventually(lambda: assert_true(c.announced.get("172.18.255.200") == other))
        assert c.announcer.installed["172.18.255.200"] == {"node-1": "172.18.0.2",  # type: ignore[union-attr]
                                                           "node-2": "172.18.0.3"}[other]
        await c.recorder.flush()
        assert "nodeAssigned" in await reasons(api, "web")
        # Local: only a node with a ready endpoint may announce; with none, the route goes
        await api.create(SVC, lb_svc("local", externalTrafficPolicy="Local"))
        await eventually(lambda: assert_true(c.alloc.ip_of("default/local") is not None))
        await asyncio.sleep(0.2)
        assert "172.18.255.201" not in c.announced
        await api.create(SLICE, {"metadata": {"name": "local-1", "namespace": "default",
                                              "labels": {"kubernetes.io/service-name": "local"}},
                                 "addressType": "IPv4",
                                 "endpoints": [{"addresses": ["10.244.2.5"], "nodeName": other,
                                                "conditions": {"ready": True}}]})
        await eventually(lambda: assert_true(c.announced.get("172.18.255.201") == other))
    finally:
        await c.stop()
    assert ip.calls[-1][:3] == ["ip", "route", "del"] and c.announcer.installed == {}  # type: ignore[union-attr]
