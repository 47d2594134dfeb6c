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


POD = by_kind("v1", "Pod")


async def test_pods_verified_watches_pods_slim() -> None:
    """With pods watched: an address counts once the pod has it; status heartbeats change nothing; deletes go."""
    async with FakeApiServer(bookmark_interval=0.2) as fake:
        async with ApiClient(ClientConfig(server=fake.url), timeout=5) as api:
            await api.create(NS, {"metadata": {"name": "default"}})
            pod = await api.create(POD, {"metadata": {"name": "p"}, "spec": {"containers": [
                {"name": "c", "image": "busybox"}]}}, "default")
            index = MemoryIndex(synced=False)
            changes: list[int] = []
            index.on_change(lambda: changes.append(index.serial))
            cache = WatchCache(api, index, pods=True)
            cache.start()
            try:
                await cache.wait_synced(5)
                assert not index.has_pod("default", "10.244.1.5")
                pod["status"] = {"phase": "Running", "podIP": "10.244.1.5", "podIPs": [{"ip": "10.244.1.5"}]}
                pod = await api.update_status(POD, pod, "default")
                await until(lambda: index.has_pod("default", "10.244.1.5"))
                before = len(changes)
                pod["status"]["conditions"] = [{"type": "Ready", "status": "True"}]
                pod = await api.update_status(POD, pod, "default")
                await api.create(SVC, service("after", ip="10.0.0.9"), "default")  # a marker: events come in order
                await until(lambda: index.service("default", "after") is not None)
                assert len(changes) == before + 1  # the Service only, not the heartbeat
                stored = cache.pods.store.list()
                assert [sorted(o) for o in stored] == [["metadata", "record"]]  # the informer keeps slim objects
                await api.delete(POD, "p", "default")
                await until(lambda: not index.has_pod("default", "10.244.1.5"))
            finally:
                await cache.stop()


async def test_without_verified_pods_are_not_watched() -> None:
    """The default (insecure) needs no Pod watch: memory and events saved."""
    async with FakeApiServer() as fake:
        async with ApiClient(ClientConfig(server=fake.url), timeout=5) as api:
            cache = WatchCache(api, MemoryIndex(synced=False))
            assert len(cache.informers) == 2 and not hasattr(cache, "pods")
