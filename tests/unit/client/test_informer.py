"""Informer: paged initial list, ordered handlers, re-watch, relist on 410, backoff, indexes, resync."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest

from kubesvc.api import errors
from kubesvc.api.resources import by_kind
from kubesvc.client.informer import Informer, index_by_label, index_by_owner_uid
from kubesvc.client.rest import ApiClient

CM = by_kind("v1", "ConfigMap")
NS = by_kind("v1", "Namespace")


def cm(name: str, ns: str = "default", owner: str = "", **labels: str) -> dict:
    meta: dict = {"name": name, "namespace": ns, "labels": labels}
    if owner:
        meta["ownerReferences"] = [{"apiVersion": "v1", "kind": "ConfigMap", "name": "o", "uid": owner}]
    return {"metadata": meta}


async def until(cond: Callable[[], bool], timeout: float = 5.0) -> None:
    async with asyncio.timeout(timeout):
        while not cond():
            await asyncio.sleep(0.01)


class Recorder:
    def __init__(self, inf: Informer) -> None:
        self.events: list[tuple[str, str]] = []
        inf.add_handler(lambda o: self.events.append(("add", o["metadata"]["name"])),
                        self.update,
                        lambda o: self.events.append(("delete", o["metadata"]["name"])))

    async def update(self, old: dict, new: dict) -> None:  # async handlers are awaited in order
        self.events.append(("update", new["metadata"]["name"]))


@pytest.fixture
async def seeded(api: ApiClient) -> None:
    await api.create(NS, {"metadata": {"name": "default"}})
    for i in range(5):
        await api.create(CM, cm(f"c{i}"))


@pytest.fixture
async def informer(api: ApiClient, seeded: None):  # type: ignore[no-untyped-def]
    inf = Informer(api, CM, page_size=2, watch_timeout=(30, 30),
                   indexers={"owner": index_by_owner_uid, "app": index_by_label("app")})
    yield inf
    await inf.stop()


async def test_paged_initial_list_then_watch(informer: Informer, api: ApiClient, fake) -> None:
    """The first LIST is paged, the cache syncs, and later writes arrive in order through the watch."""
    rec = Recorder(informer)
    informer.start()
    await informer.wait_synced(5)
    assert sorted(informer.store.keys()) == [f"default/c{i}" for i in range(5)]
    assert rec.events == [("add", f"c{i}") for i in range(5)]
    assert any("continue=" in p for _, p in fake.requests)
    await api.create(CM, cm("n", app="web"))
    await api.patch(CM, "n", {"data": {"a": "b"}}, "default")
    await api.delete(CM, "n", "default")
    await until(lambda: len(rec.events) == 8)
    assert rec.events[5:] == [("add", "n"), ("update", "n"), ("delete", "n")]
    assert "default/n" not in informer.store


async def test_rewatch_from_last_rv_without_relisting(informer: Informer, api: ApiClient, fake) -> None:
    """A watch that ends is resumed from the last resourceVersion: no relist, nothing missed."""
    rec = Recorder(informer)
    informer.start()
    await informer.wait_synced(5)
    await until(lambda: fake.watch_count == 1)
    await fake.close_watches()
    await api.create(CM, cm("late"))
    await until(lambda: ("add", "late") in rec.events)
    assert informer.relists == 1
    watches = [p for _, p in fake.requests if "watch=true" in p]
    assert len(watches) >= 2 and "resourceVersion=" in watches[-1]


async def test_relist_on_410_delivers_the_difference(informer: Informer, api: ApiClient, fake) -> None:
    """After history is compacted the informer relists and reports what changed meanwhile."""
    rec = Recorder(informer)
    informer.start()
    await informer.wait_synced(5)
    await until(lambda: fake.watch_count == 1)
    # Keep the informer out while things change and the history is compacted behind it.
    fake.fail("GET", "watch=true", errors.internal_error("down"), times=1000)
    await fake.close_watches()
    await api.delete(CM, "c0", "default")
    await api.create(CM, cm("fresh"))
    fake.compact()
    fake.clear_faults()
    await until(lambda: informer.relists >= 2 and "default/fresh" in informer.store)
    assert "default/c0" not in informer.store
    assert ("delete", "c0") in rec.events and ("add", "fresh") in rec.events


async def test_backoff_on_errors_then_recover(api: ApiClient, fake, seeded: None) -> None:
    """Failed LISTs are retried with backoff until the server answers."""
    fake.fail("GET", "/configmaps", errors.internal_error("boom"), times=3)
    inf = Informer(api, CM, max_backoff=0.2)
    inf.start()
    try:
        await inf.wait_synced(5)
        assert len(inf.store) == 5
        assert sum(1 for _, p in fake.requests if p.startswith("/api/v1/configmaps")) >= 4
    finally:
        await inf.stop()


async def test_indexers_and_bookmarks(informer: Informer, api: ApiClient) -> None:
    """Owner-UID and label indexes follow updates; bookmarks advance the resourceVersion."""
    informer.start()
    await informer.wait_synced(5)
    await api.create(CM, cm("d1", owner="u1", app="web"))
    await api.create(CM, cm("d2", owner="u1"))
    await until(lambda: len(informer.store.by_index("owner", "u1")) == 2)
    assert [o["metadata"]["name"] for o in informer.store.by_index("app", "web")] == ["d1"]
    await api.patch(CM, "d1", {"metadata": {"ownerReferences": None, "labels": {"app": "db"}}}, "default")
    await until(lambda: informer.store.index_keys("owner", "u1") == ["default/d2"])
    assert informer.store.by_index("app", "web") == []
    assert len(informer.store.by_index("namespace", "default")) == 7
    await api.create(NS, {"metadata": {"name": "elsewhere"}})  # bumps the global resourceVersion
    rv = informer.last_resource_version
    await until(lambda: informer.last_resource_version != rv)


async def test_resync_redelivers_every_object(api: ApiClient, seeded: None) -> None:
    """With a resync period each cached object comes back as update(old is new)."""
    inf = Informer(api, CM, resync_period=0.1)
    seen: list[str] = []
    inf.add_handler(on_update=lambda old, new: seen.append(new["metadata"]["name"]) if old is new else None)
    inf.start()
    try:
        await until(lambda: len(seen) >= 10)
        assert set(seen) == {f"c{i}" for i in range(5)}
    finally:
        await inf.stop()
