"""The Store contract, one suite run against every backend.

Every behaviour the apiserver relies on is asserted here once, so a backend
either honours all of it or fails here, not in an API test far away.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from kubesvc.storage import (
    ADDED,
    DELETED,
    MODIFIED,
    Event,
    InvalidContinue,
    KeyExists,
    KeyNotFound,
    MemoryStore,
    RevisionConflict,
    SqliteStore,
    StorageError,
    Store,
    StoreClosed,
    TooOldRevision,
    Watch,
    open_store,
)

MakeStore = Callable[..., Store]


def svc(name: str, uid: str | None = None, **spec: Any) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "namespace": "default"}
    if uid:
        meta["uid"] = uid
    return {"apiVersion": "v1", "kind": "Service", "metadata": meta, "spec": spec}


@pytest.fixture(params=["memory", "sqlite"])
async def make_store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[MakeStore]:
    """A factory, so tests can pick history and queue sizes; all closed at the end."""
    made: list[Store] = []

    def make(**opts: int) -> Store:
        if request.param == "memory":
            store: Store = MemoryStore(**opts)
        else:
            store = SqliteStore(tmp_path / "state.db", **opts)
        made.append(store)
        return store

    yield make
    for store in made:
        await store.close()


@pytest.fixture
def store(make_store: MakeStore) -> Store:
    return make_store()


async def take(watch: Watch, n: int, timeout: float = 5.0) -> list[Event]:
    out: list[Event] = []

    async def run() -> None:
        async for ev in watch:
            out.append(ev)
            if len(out) == n:
                return

    await asyncio.wait_for(run(), timeout)
    return out


async def nothing_more(watch: Watch) -> None:
    with pytest.raises(asyncio.TimeoutError):
        await asyncio.wait_for(watch.__anext__(), 0.1)


# ----- CRUD -----


async def test_create_get_sets_resource_version(store: Store) -> None:
    obj = svc("web", port=80)
    created = await store.create("/s/default/web", obj)
    assert created.key == "/s/default/web"
    assert created.revision == store.revision
    assert created.value["metadata"]["resourceVersion"] == str(created.revision)
    assert "resourceVersion" not in obj["metadata"], "the caller's dict is not modified"
    got = await store.get("/s/default/web")
    assert got.data == created.data
    assert got.obj() == created.value and got.obj() is not got.value


async def test_create_existing_raises(store: Store) -> None:
    await store.create("/s/a", svc("a"))
    with pytest.raises(KeyExists):
        await store.create("/s/a", svc("a"))


async def test_get_missing_raises(store: Store) -> None:
    with pytest.raises(KeyNotFound):
        await store.get("/s/nope")


async def test_update(store: Store) -> None:
    c = await store.create("/s/a", svc("a", port=1))
    u = await store.update("/s/a", svc("a", port=2), expected_revision=c.revision)
    assert u.revision > c.revision
    assert (await store.get("/s/a")).value["spec"]["port"] == 2
    u2 = await store.update("/s/a", svc("a", port=3))  # unconditional
    assert u2.revision > u.revision


async def test_update_missing_raises(store: Store) -> None:
    with pytest.raises(KeyNotFound):
        await store.update("/s/nope", svc("nope"))


async def test_update_cas_conflict(store: Store) -> None:
    c = await store.create("/s/a", svc("a", port=1))
    await store.update("/s/a", svc("a", port=2), expected_revision=c.revision)
    with pytest.raises(RevisionConflict) as err:
        await store.update("/s/a", svc("a", port=3), expected_revision=c.revision)
    assert err.value.expected == c.revision
    assert (await store.get("/s/a")).value["spec"]["port"] == 2


async def test_concurrent_cas_exactly_one_wins(store: Store) -> None:
    c = await store.create("/s/a", svc("a"))
    results = await asyncio.gather(
        *(store.update("/s/a", svc("a", port=i), expected_revision=c.revision) for i in range(10)),
        return_exceptions=True,
    )
    assert sum(not isinstance(r, Exception) for r in results) == 1
    assert sum(isinstance(r, RevisionConflict) for r in results) == 9


async def test_delete(store: Store) -> None:
    c = await store.create("/s/a", svc("a", port=1))
    d = await store.delete("/s/a")
    assert d.revision > c.revision
    assert d.value["metadata"]["resourceVersion"] == str(d.revision)
    assert d.value["spec"] == {"port": 1}
    with pytest.raises(KeyNotFound):
        await store.get("/s/a")
    with pytest.raises(KeyNotFound):
        await store.delete("/s/a")
    await store.create("/s/a", svc("a"))  # the key can be reused


async def test_delete_preconditions(store: Store) -> None:
    c = await store.create("/s/a", svc("a", uid="u1"))
    with pytest.raises(RevisionConflict):
        await store.delete("/s/a", expected_revision=c.revision + 100)
    with pytest.raises(RevisionConflict):
        await store.delete("/s/a", expected_uid="u2")
    await store.get("/s/a")
    await store.delete("/s/a", expected_revision=c.revision, expected_uid="u1")


async def test_revision_strictly_increasing_across_keys(store: Store) -> None:
    revs = []
    for i in range(5):
        revs.append((await store.create(f"/s/k{i}", svc(f"k{i}"))).revision)
        revs.append((await store.update(f"/s/k{i}", svc(f"k{i}", port=i))).revision)
    revs.append((await store.delete("/s/k0")).revision)
    assert revs == sorted(set(revs))
    assert store.revision == revs[-1]


async def test_concurrent_writers_all_acknowledged_and_visible(store: Store) -> None:
    async def writer(w: int) -> list[int]:
        return [(await store.create(f"/s/w{w}/o{i}", svc(f"o{i}"))).revision for i in range(20)]

    revs = [r for rs in await asyncio.gather(*(writer(w) for w in range(50))) for r in rs]
    assert len(set(revs)) == 1000
    listed = await store.list("/s/")
    assert len(listed.items) == 1000
    assert listed.revision == max(revs)


async def test_closed_store_refuses(make_store: MakeStore) -> None:
    store = make_store()
    await store.create("/s/a", svc("a"))
    await store.close()
    with pytest.raises(StoreClosed):
        await store.create("/s/b", svc("b"))
    with pytest.raises(StoreClosed):
        await store.get("/s/a")


async def test_close_flushes_pending_writes(make_store: MakeStore) -> None:
    store = make_store()
    tasks = [asyncio.create_task(store.create(f"/s/{i}", svc(str(i)))) for i in range(20)]
    await asyncio.sleep(0)  # all accepted, none durable yet
    await store.close()
    assert all(not isinstance(r, Exception) for r in await asyncio.gather(*tasks, return_exceptions=True))


# ----- list -----


async def test_list_prefix_isolation(store: Store) -> None:
    await store.create("/a/b/1", svc("1"))
    await store.create("/a/b/2", svc("2"))
    await store.create("/a/bc/1", svc("x"))
    await store.create("/a/a", svc("y"))
    for prefix in ("/a/b", "/a/b/"):
        assert [s.key for s in (await store.list(prefix)).items] == ["/a/b/1", "/a/b/2"]
    assert [s.key for s in (await store.list("/a/bc")).items] == ["/a/bc/1"]
    assert len((await store.list("/")).items) == 4
    assert (await store.list("/zzz")).items == []


async def test_list_predicate_and_revision(store: Store) -> None:
    for i in range(10):
        await store.create(f"/s/{i:02}", svc(str(i), port=i))
    res = await store.list("/s", predicate=lambda o: o["spec"]["port"] % 2 == 0)
    assert [s.value["spec"]["port"] for s in res.items] == [0, 2, 4, 6, 8]
    assert res.revision == store.revision
    assert res.continue_token is None


@pytest.mark.parametrize("with_predicate", [False, True])
async def test_list_pages_return_every_item_once(store: Store, with_predicate: bool) -> None:
    for i in range(103):
        await store.create(f"/s/{i:03}", svc(str(i), port=i))
    await store.create("/t/other", svc("other", port=0))
    predicate = (lambda o: o["spec"]["port"] % 3 != 0) if with_predicate else None
    expected = [f"/s/{i:03}" for i in range(103) if predicate is None or i % 3 != 0]
    seen: list[str] = []
    token = None
    pages = 0
    revisions = set()
    while True:
        res = await store.list("/s", predicate=predicate, limit=10, continue_token=token)
        pages += 1
        revisions.add(res.revision)
        assert len(res.items) <= 10
        seen += [s.key for s in res.items]
        if not with_predicate:
            assert res.remaining == len(expected) - len(seen)
        token = res.continue_token
        if token is None:
            break
    assert seen == expected
    assert pages == -(-len(expected) // 10)
    assert revisions == {store.revision}


async def test_list_continue_sees_later_writes_ahead_of_cursor(store: Store) -> None:
    for i in range(4):
        await store.create(f"/s/{i}", svc(str(i)))
    first = await store.list("/s", limit=2)
    await store.create("/s/9", svc("9"))
    rest = await store.list("/s", limit=10, continue_token=first.continue_token)
    assert [s.key for s in rest.items] == ["/s/2", "/s/3", "/s/9"]


async def test_paged_list_then_watch_misses_nothing(store: Store) -> None:
    for i in range(4):
        await store.create(f"/s/{i}", svc(str(i)))
    first = await store.list("/s", limit=2)
    await store.update("/s/0", svc("0", port=9))  # behind the cursor: not in any page
    await store.create("/s/00", svc("00"))  # behind the cursor too
    rest = await store.list("/s", limit=10, continue_token=first.continue_token)
    assert rest.revision == first.revision  # the first page's revision, on every page
    w = store.watch("/s", after_revision=rest.revision)
    assert [(e.type, e.key) for e in await take(w, 2)] == [(MODIFIED, "/s/0"), (ADDED, "/s/00")]
    w.close()


async def test_list_garbage_continue(store: Store) -> None:
    await store.create("/s/a", svc("a"))
    for bad in ("!!!", "bm90IGpzb24=", "eyJydiI6ICJ4In0="):
        with pytest.raises(InvalidContinue):
            await store.list("/s", continue_token=bad)


async def test_list_continue_too_old_after_compact(store: Store) -> None:
    for i in range(5):
        await store.create(f"/s/{i}", svc(str(i)))
    first = await store.list("/s", limit=2)
    await store.update("/s/0", svc("0", port=1))
    store.compact(store.revision)
    with pytest.raises(TooOldRevision):
        await store.list("/s", limit=2, continue_token=first.continue_token)


# ----- watch -----


async def test_watch_replays_from_past_revision_then_live(store: Store) -> None:
    start = store.revision
    a = await store.create("/s/a", svc("a"))
    await store.update("/s/a", svc("a", port=2))
    await store.delete("/s/a")
    w = store.watch("/s", after_revision=a.revision)
    got = await take(w, 2)
    assert [e.type for e in got] == [MODIFIED, DELETED]
    assert got[0].previous is not None and got[0].previous.revision == a.revision
    assert got[1].current.value["metadata"]["resourceVersion"] == str(got[1].revision)
    assert got[1].previous is not None and got[1].previous.value["spec"] == {"port": 2}
    await store.create("/s/b", svc("b"))
    (live,) = await take(w, 1)
    assert live.type == ADDED and live.key == "/s/b" and live.previous is None
    w.close()
    full = store.watch("/s", after_revision=start)
    assert [e.type for e in await take(full, 4)] == [ADDED, MODIFIED, DELETED, ADDED]
    full.close()


async def test_watch_order_no_gaps_no_duplicates_under_load(store: Store) -> None:
    start = store.revision
    await asyncio.gather(*(store.create(f"/s/{i}", svc(str(i))) for i in range(30)))
    w = store.watch("/s", after_revision=start)  # half replay, half live
    await asyncio.gather(*(store.update(f"/s/{i}", svc(str(i), port=1)) for i in range(30)))
    got = await take(w, 60)
    revs = [e.revision for e in got]
    assert revs == sorted(set(revs)) and revs[-1] == store.revision
    await nothing_more(w)
    w.close()


async def test_watch_drain_and_wait_serve_batches(store: Store) -> None:
    """drain() hands over what is queued at once; wait() times out idle, wakes on an event or the end."""
    w = store.watch("/s", after_revision=store.revision)
    assert w.drain() == [] and not w.closed
    assert await w.wait(0.01) is False
    waiter = asyncio.create_task(w.wait(5))
    await asyncio.sleep(0)
    await store.create("/s/a", svc("a"))
    assert await asyncio.wait_for(waiter, 2) is True
    await store.create("/s/b", svc("b"))
    await asyncio.sleep(0.05)
    assert [e.key for e in w.drain()] == ["/s/a", "/s/b"] and w.drain() == []
    w.close()
    assert w.closed and await w.wait(5) is True and w.drain() == []


async def test_watch_prefix_filtering(store: Store) -> None:
    w = store.watch("/a/b", after_revision=store.revision)
    await store.create("/a/bc/1", svc("x"))
    await store.create("/a/b/1", svc("1"))
    await store.create("/z/1", svc("z"))
    (ev,) = await take(w, 1)
    assert ev.key == "/a/b/1"
    await nothing_more(w)
    w.close()


async def test_watch_future_revision_skips_until_then(store: Store) -> None:
    w = store.watch("/s", after_revision=store.revision + 1)
    await store.create("/s/a", svc("a"))
    await store.create("/s/b", svc("b"))
    (ev,) = await take(w, 1)
    assert ev.key == "/s/b"
    w.close()


async def test_watch_too_old_after_compact(store: Store) -> None:
    start = store.revision
    await store.create("/s/a", svc("a"))
    b = await store.create("/s/b", svc("b"))
    store.compact(b.revision - 1)
    assert store.oldest_revision == b.revision - 1
    with pytest.raises(TooOldRevision) as err:
        store.watch("/s", after_revision=start)
    assert err.value.oldest == store.oldest_revision
    w = store.watch("/s", after_revision=b.revision - 1)
    assert (await take(w, 1))[0].key == "/s/b"
    w.close()


async def test_history_ring_is_bounded(make_store: MakeStore) -> None:
    store = make_store(history_size=5)
    start = store.revision
    revs = [(await store.create(f"/s/{i}", svc(str(i)))).revision for i in range(8)]
    assert store.oldest_revision == revs[2]
    with pytest.raises(TooOldRevision):
        store.watch("/s", after_revision=start)
    w = store.watch("/s", after_revision=store.oldest_revision)
    assert [e.revision for e in await take(w, 5)] == revs[3:]
    w.close()


async def test_slow_watcher_is_closed_with_error(make_store: MakeStore) -> None:
    store = make_store(watch_queue_size=5)
    slow = store.watch("/s", after_revision=store.revision)
    fast = store.watch("/s", after_revision=store.revision)
    fast_got: list[Event] = []

    async def drain() -> None:
        async for ev in fast:
            fast_got.append(ev)

    task = asyncio.create_task(drain())
    for i in range(20):
        await store.create(f"/s/{i}", svc(str(i)))  # writers are never blocked by `slow`
    assert [e async for e in slow] == []  # closed: iteration ends promptly
    assert isinstance(slow.error, StorageError) and "behind" in str(slow.error)
    for _ in range(100):
        if len(fast_got) == 20:
            break
        await asyncio.sleep(0.01)
    assert len(fast_got) == 20 and fast.error is None
    fast.close()
    await asyncio.wait_for(task, 1)


async def test_close_ends_iteration(store: Store) -> None:
    w = store.watch("/s", after_revision=store.revision)
    task = asyncio.create_task(take(w, 1))
    await asyncio.sleep(0.01)
    w.close()
    assert await asyncio.wait_for(task, 1) == []
    assert w.error is None


async def test_store_close_ends_watches(make_store: MakeStore) -> None:
    store = make_store()
    w = store.watch("/s", after_revision=store.revision)
    events = asyncio.create_task(take(w, 100))
    await store.create("/s/a", svc("a"))
    await store.close()
    got = await asyncio.wait_for(events, 1)
    assert [e.key for e in got] == ["/s/a"]


# ----- open_store -----


async def test_open_store_urls(tmp_path: Path) -> None:
    mem = open_store("memory://")
    assert isinstance(mem, MemoryStore)
    db = open_store(f"sqlite://{tmp_path}/sub/state.db")
    assert isinstance(db, SqliteStore) and (tmp_path / "sub" / "state.db").exists()
    for store in (mem, db):
        await store.close()
    for bad in ("sqlite://relative.db", "etcd://x:2379", "nonsense"):
        with pytest.raises(ValueError):
            open_store(bad)
