"""SharedInformerFactory: one informer per selection, late indexers, handler order, stop; frozen objects."""

from __future__ import annotations

import asyncio
import copy
from collections.abc import Callable

import orjson
import pytest

from kubesvc.api.resources import by_kind
from kubesvc.client.controller import Controller
from kubesvc.client.informer import Informer, index_by_label, index_by_owner_uid
from kubesvc.client.rest import ApiClient
from kubesvc.client.sharedinformers import FrozenObjectError, SharedInformerFactory, freeze, thaw

CM = by_kind("v1", "ConfigMap")
NS = by_kind("v1", "Namespace")


def cm(name: str, ns: str = "default", **labels: str) -> dict:
    return {"metadata": {"name": name, "namespace": ns, "labels": labels}, "data": {"k": "v"}}


async def until(cond: Callable[[], bool], timeout: float = 5.0) -> None:
    async with asyncio.timeout(timeout):
        while not cond():
            await asyncio.sleep(0.01)


@pytest.fixture
async def seeded(api: ApiClient) -> None:
    await api.create(NS, {"metadata": {"name": "default"}})
    for i in range(3):
        await api.create(CM, cm(f"c{i}", app="a" if i < 2 else "b"))


async def test_one_informer_and_one_watch_per_selection(api: ApiClient, fake, seeded: None) -> None:
    f = SharedInformerFactory(api)
    a = f.informer(CM)
    b = f.informer(CM, indexers={"app": index_by_label("app")})
    other_ns = f.informer(CM, namespace="default")
    labelled = f.informer(CM, label_selector="app=a")
    assert a is b
    assert len({id(a), id(other_ns), id(labelled)}) == 3
    assert f.informers == [a, other_ns, labelled]
    f.start()
    f.start()  # idempotent
    await f.wait_synced(5)
    assert f.has_synced
    assert len(a.store) == 3 and len(labelled.store) == 2
    assert [o["metadata"]["name"] for o in a.store.by_index("app", "a")] == ["c0", "c1"]
    await until(lambda: fake.watch_count == 3)
    await f.stop()


async def test_late_indexer_indexes_existing_items_and_conflicts_are_refused(api: ApiClient, seeded: None) -> None:
    f = SharedInformerFactory(api)
    inf = f.informer(CM)
    f.start()
    await f.wait_synced(5)
    by_app = index_by_label("app")
    same = f.informer(CM, indexers={"app": by_app})
    assert same is inf
    assert inf.store.index_keys("app", "a") == ["default/c0", "default/c1"]
    assert inf.store.index_keys("app", "b") == ["default/c2"]
    f.informer(CM, indexers={"app": by_app})  # the same function again: fine
    with pytest.raises(ValueError, match="indexer conflict"):
        f.informer(CM, indexers={"app": index_by_owner_uid})
    await api.create(CM, cm("c3", app="b"))
    await until(lambda: inf.store.index_keys("app", "b") == ["default/c2", "default/c3"])
    await f.stop()


async def test_handlers_of_several_users_run_in_order_and_late_ones_replay(api: ApiClient, seeded: None) -> None:
    f = SharedInformerFactory(api)
    events: list[tuple[str, str, str]] = []
    inf = f.informer(CM)

    def handlers(who: str) -> dict:
        def add(o: dict) -> None:
            events.append((who, "add", o["metadata"]["name"]))

        async def update(old: dict, new: dict) -> None:
            events.append((who, "update", new["metadata"]["name"]))

        def delete(o: dict) -> None:
            events.append((who, "delete", o["metadata"]["name"]))
        return {"on_add": add, "on_update": update, "on_delete": delete}

    def boom(o: dict) -> None:
        raise RuntimeError("a broken handler must not starve the others")

    inf.add_handler(**handlers("one"))
    inf.add_handler(on_add=boom)
    f.informer(CM).add_handler(**handlers("two"))
    f.start()
    await f.wait_synced(5)
    assert [e for e in events if e[1] == "add"] == [
        ("one", "add", "c0"), ("two", "add", "c0"), ("one", "add", "c1"), ("two", "add", "c1"),
        ("one", "add", "c2"), ("two", "add", "c2")]
    events.clear()
    f.informer(CM).add_handler(**handlers("late"))  # after sync: an add per cached object first
    assert sorted(events) == [("late", "add", "c0"), ("late", "add", "c1"), ("late", "add", "c2")]
    events.clear()
    await api.patch(CM, "c0", {"data": {"k": "w"}}, "default")
    await api.delete(CM, "c1", "default")
    await until(lambda: len(events) == 6)
    assert events == [("one", "update", "c0"), ("two", "update", "c0"), ("late", "update", "c0"),
                      ("one", "delete", "c1"), ("two", "delete", "c1"), ("late", "delete", "c1")]
    await f.stop()


class _User(Controller):
    name = "user"

    def __init__(self, api: ApiClient, factory: SharedInformerFactory | None = None) -> None:
        super().__init__(workers=1, resync_period=None)
        self.factory = self.informer_factory(api, factory)
        self.cms = self.factory.informer(CM)
        self.informers.append(self.cms)

    async def reconcile(self, key: object) -> None:
        pass


async def test_stop_leaves_shared_informers_to_their_owner(api: ApiClient, fake, seeded: None) -> None:
    f = SharedInformerFactory(api)
    a, b = _User(api, f), _User(api, f)
    assert a.cms is b.cms and not a.owns_informers
    f.start()
    await asyncio.gather(a.start(), b.start())
    await a.stop()
    await api.create(CM, cm("after"))
    await until(lambda: "default/after" in b.cms.store)  # still watching for b
    await b.stop()
    assert b.cms._tasks  # the factory's owner stops it
    await f.stop()
    assert not b.cms._tasks

    own = _User(api)  # no factory given: a private one, stopped with the controller
    assert own.owns_informers
    await own.start()
    await own.stop()
    assert not own.cms._tasks


async def test_frozen_cache_refuses_changes_but_copies_are_plain(api: ApiClient, seeded: None) -> None:
    f = SharedInformerFactory(api, freeze=True)
    inf: Informer = f.informer(CM)
    seen: list[dict] = []
    inf.add_handler(on_add=seen.append)
    f.start()
    await f.wait_synced(5)
    obj = inf.store.get("default/c0")
    assert obj is not None and seen[0] is obj
    for change in (lambda: obj.__setitem__("x", 1), lambda: obj["metadata"].update(name="y"),
                   lambda: obj["metadata"]["labels"].pop("app"), lambda: obj.setdefault("spec", {}),
                   lambda: obj["metadata"].__delitem__("name")):
        with pytest.raises(FrozenObjectError):
            change()
    assert obj.setdefault("data", {}) == {"k": "v"}  # reading through setdefault/pop is no change
    assert obj.pop("nope", None) is None
    deep = copy.deepcopy(obj)
    deep["metadata"]["labels"]["app"] = "z"
    shallow = copy.copy(obj)
    shallow["x"] = 1
    assert type(deep) is dict and type(dict(obj)) is dict and type(obj.copy()) is dict
    assert obj["metadata"]["labels"]["app"] == "a"
    assert orjson.loads(orjson.dumps(obj)) == thaw(obj)
    await f.stop()


def test_freeze_lists() -> None:
    o = freeze({"a": [{"b": 1}, 2]})
    with pytest.raises(FrozenObjectError):
        o["a"].append(3)
    with pytest.raises(FrozenObjectError):
        o["a"][0]["b"] = 2
    t = thaw(o)
    t["a"].append(3)
    assert t == {"a": [{"b": 1}, 2, 3]} and o == {"a": [{"b": 1}, 2]}
