"""The watch cache against the fake API server: synced only after both lists, then kept current."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from dnsfixtures import endpoint_slice, service

from kubesvc.api.resources import by_kind
from kubesvc.client.config import ClientConfig
from kubesvc.client.rest import ApiClient
from kubesvc.dns.index import MemoryIndex
from kubesvc.dns.watch import WatchCache
from kubesvc.testing.fakeapi import FakeApiServer

NS = by_kind("v1", "Namespace")
SVC = by_kind("v1", "Service")
SLICE = by_kind("discovery.k8s.io/v1", "EndpointSlice")


async def until(cond: Callable[[], bool], timeout: float = 5.0) -> None:
    async with asyncio.timeout(timeout):
        while not cond():
            await asyncio.sleep(0.01)


async def test_watch_cache_lists_then_follows_changes() -> None:
    """Existing objects are in the index at sync; creates, updates and deletes follow."""
    async with FakeApiServer(bookmark_interval=0.2) as fake:
        async with ApiClient(ClientConfig(server=fake.url), timeout=5) as api:
            await api.create(NS, {"metadata": {"name": "default"}})
            await api.create(SVC, service("a", ip="10.0.0.5"), "default")
            index = MemoryIndex(synced=False)
            cache = WatchCache(api, index)
            cache.start()
            try:
                await cache.wait_synced(5)
                assert index.synced and index.service("default", "a").cluster_ips == ("10.0.0.5",)
                await api.create(SVC, service("h"), "default")
                await api.create(SLICE, endpoint_slice("h-1", "h", [("10.244.1.1", "", True)]), "default")
                await until(lambda: len(index.endpoints("default", "h")) == 1)
                await api.delete(SVC, "a", "default")
                await until(lambda: index.service("default", "a") is None)
                assert index.reverse("10.0.0.5") == []
                await api.delete(SLICE, "h-1", "default")
                await until(lambda: index.endpoints("default", "h") == [])
            finally:
                await cache.stop()
