"""The garbage collector against the fake API server: dangling owners, cascades, foreground, orphan."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

import pytest

from kubesvc.api.resources import by_kind
from kubesvc.client.rest import ApiClient
from kubesvc.controllers.garbagecollector import GarbageCollector
from kubesvc.testing.fakeapi import FakeApiServer

CM = by_kind("v1", "ConfigMap")
POD = by_kind("v1", "Pod")
NODE = by_kind("v1", "Node")
LEASE = by_kind("coordination.k8s.io/v1", "Lease")
DEPLOY = by_kind("apps/v1", "Deployment")
RS = by_kind("apps/v1", "ReplicaSet")


def ref(owner: dict, block: bool | None = None) -> dict:
    r = {"apiVersion": owner["apiVersion"], "kind": owner["kind"], "name": owner["metadata"]["name"],
         "uid": owner["metadata"]["uid"], "controller": True}
    if block is not None:
        r["blockOwnerDeletion"] = block
    return r


def obj(name: str, *refs: dict, ns: str | None = "default", finalizers: list[str] | None = None) -> dict:
    meta: dict = {"name": name}
    if ns:
        meta["namespace"] = ns
    if refs:
        meta["ownerReferences"] = list(refs)
    if finalizers:
        meta["finalizers"] = finalizers
    return {"metadata": meta}


async def until(cond: Callable[[], bool], timeout: float = 5.0) -> None:
    async with asyncio.timeout(timeout):
        while not cond():
            await asyncio.sleep(0.01)


async def settle(gc: GarbageCollector) -> None:
    """Wait until the GC's queue is idle for a moment."""
    quiet = 0
    async with asyncio.timeout(5):
        while quiet < 10:
            await asyncio.sleep(0.01)
            quiet = quiet + 1 if len(gc.queue) == 0 and not gc.queue._processing else 0


@pytest.fixture
async def gc(api: ApiClient) -> AsyncIterator[GarbageCollector]:
    collector = GarbageCollector(api, workers=3)
    await collector.start()
    yield collector
    await collector.stop()


async def test_dangling_and_replaced_owners_delete_the_dependent(gc, api: ApiClient, fake: FakeApiServer) -> None:
    """An owner that is absent, or present under the same name with another UID, does not count."""
    ghost = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "ghost", "uid": "no-such-uid"}}
    await api.create(CM, obj("orphaned", ref(ghost)))
    owner = await api.create(CM, obj("owner"))
    stale = {**owner, "metadata": {**owner["metadata"], "uid": "old-uid"}}
    await api.create(CM, obj("stale", ref(stale)))
    await api.create(CM, obj("kept", ref(owner)))
    await until(lambda: fake.get_object(CM, "default", "orphaned") is None
                and fake.get_object(CM, "default", "stale") is None)
    await settle(gc)
    assert fake.get_object(CM, "default", "kept") is not None


async def test_one_dangling_ref_of_several_is_removed(gc, api: ApiClient, fake: FakeApiServer) -> None:
    """With a live owner left, the GC only strips references to the missing ones."""
    owner = await api.create(CM, obj("owner"))
    ghost = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "ghost", "uid": "gone"}}
    await api.create(CM, obj("dep", ref(owner), ref(ghost)))
    await until(lambda: len(fake.get_object(CM, "default", "dep")["metadata"]["ownerReferences"]) == 1)
    assert fake.get_object(CM, "default", "dep")["metadata"]["ownerReferences"][0]["uid"] == owner["metadata"]["uid"]


async def test_unknown_owner_kinds_are_never_guessed_absent(gc, api: ApiClient, fake: FakeApiServer) -> None:
    """A reference to a kind the GC cannot look up keeps the object."""
    alien = {"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w", "uid": "w-uid"}}
    await api.create(CM, obj("dep", ref(alien)))
    await settle(gc)
    assert fake.get_object(CM, "default", "dep") is not None


async def test_background_cascade_through_a_chain(gc, api: ApiClient, fake: FakeApiServer) -> None:
    """Deployment -> ReplicaSet -> Pods: deleting the top removes everything below."""
    d = await api.create(DEPLOY, obj("web"))
    rs = await api.create(RS, obj("web-1", ref(d, True)))
    for i in range(3):
        await api.create(POD, obj(f"web-1-{i}", ref(rs, True)))
    await settle(gc)
    assert len(fake.list_objects(POD)) == 3
    await api.delete(DEPLOY, "web", "default")
    await until(lambda: not fake.list_objects(RS) and not fake.list_objects(POD))


async def test_foreground_waits_for_blocking_dependents(gc, api: ApiClient, fake: FakeApiServer) -> None:
    """The owner stays (foregroundDeletion) until blocking dependents are gone, then goes."""
    rs = await api.create(RS, obj("web-1"))
    await api.create(POD, obj("held", ref(rs, True), finalizers=["example.com/hold"]))
    await api.create(POD, obj("free", ref(rs, True)))
    await api.delete(RS, "web-1", "default", propagation_policy="Foreground")
    await until(lambda: fake.get_object(POD, "default", "free") is None)
    held = fake.get_object(POD, "default", "held")
    assert held is not None and held["metadata"]["deletionTimestamp"]
    await settle(gc)
    owner = fake.get_object(RS, "default", "web-1")
    assert owner is not None and owner["metadata"]["finalizers"] == ["foregroundDeletion"]
    await api.patch(POD, "held", {"metadata": {"finalizers": None}}, "default")
    await until(lambda: fake.get_object(RS, "default", "web-1") is None)


async def test_foreground_does_not_wait_for_non_blocking(gc, api: ApiClient, fake: FakeApiServer) -> None:
    """Dependents without blockOwnerDeletion are deleted but do not hold the owner."""
    rs = await api.create(RS, obj("web-1"))
    await api.create(POD, obj("p", ref(rs, False), finalizers=["example.com/hold"]))
    await api.delete(RS, "web-1", "default", propagation_policy="Foreground")
    await until(lambda: fake.get_object(RS, "default", "web-1") is None)
    assert fake.get_object(POD, "default", "p")["metadata"]["deletionTimestamp"]


async def test_orphan_strips_references_then_finalizer(gc, api: ApiClient, fake: FakeApiServer) -> None:
    """Orphan propagation keeps dependents, minus their reference to the deleted owner."""
    rs = await api.create(RS, obj("web-1"))
    other = await api.create(CM, obj("other"))
    await api.create(POD, obj("a", ref(rs, True), ref(other)))
    await api.create(POD, obj("b", ref(rs, True)))
    await api.delete(RS, "web-1", "default", propagation_policy="Orphan")
    await until(lambda: fake.get_object(RS, "default", "web-1") is None)
    await settle(gc)
    a, b = fake.get_object(POD, "default", "a"), fake.get_object(POD, "default", "b")
    assert [r["uid"] for r in a["metadata"]["ownerReferences"]] == [other["metadata"]["uid"]]
    assert "ownerReferences" not in b["metadata"]


async def test_cluster_scoped_owner_of_namespaced_dependent(gc, api: ApiClient, fake: FakeApiServer) -> None:
    """A Lease owned by a Node goes with the Node."""
    node = await api.create(NODE, obj("n1", ns=None))
    await api.create(LEASE, obj("n1", ref(node)))
    await settle(gc)
    assert fake.get_object(LEASE, "default", "n1") is not None
    await api.delete(NODE, "n1")
    await until(lambda: fake.get_object(LEASE, "default", "n1") is None)


async def test_dangling_refs_found_at_startup(api: ApiClient, fake: FakeApiServer) -> None:
    """Objects orphaned while no GC ran are collected once it starts (from the initial list)."""
    owner = await api.create(CM, obj("owner"))
    await api.create(CM, obj("dep", ref(owner)))
    await api.delete(CM, "owner", "default")
    collector = GarbageCollector(api)
    await collector.start()
    try:
        await until(lambda: fake.get_object(CM, "default", "dep") is None)
    finally:
        await collector.stop()
