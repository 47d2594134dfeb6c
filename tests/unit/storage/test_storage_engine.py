"""Engine details that the contract suite does not pin down."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest

from kubesvc.storage import InvalidContinue, MemoryStore, StorageError
from kubesvc.storage.engine import Write
from kubesvc.storage.watch import dir_prefix


def test_dir_prefix() -> None:
    assert dir_prefix("") == ""
    assert dir_prefix("/a/b") == "/a/b/"
    assert dir_prefix("/a/b/") == "/a/b/"


async def test_cancelled_caller_does_not_undo_an_accepted_write() -> None:
    store = MemoryStore()
    task = asyncio.create_task(store.create("/s/a", {"metadata": {}}))
    await asyncio.sleep(0)  # accepted
    task.cancel()
    await asyncio.sleep(0.01)
    assert (await store.get("/s/a")).revision == 1
    await store.close()


async def test_memory_store_with_failing_persistence() -> None:
    class Failing:
        blocking = False

        def write_batch(self, writes: Sequence[Write], revision: int) -> None:
            raise OSError("no")

        def close(self) -> None:
            pass

    store = MemoryStore(persistence=Failing())
    with pytest.raises(StorageError, match="no"):
        await store.create("/s/a", {})
    assert store.revision == 0
    assert (await store.list("/s")).items == []
    await store.close()


async def test_continue_token_of_another_prefix_is_invalid() -> None:
    store = MemoryStore()
    for i in range(3):
        await store.create(f"/a/{i}", {})
    page = await store.list("/a", limit=1)
    assert page.continue_token
    with pytest.raises(InvalidContinue):
        await store.list("/b", continue_token=page.continue_token)
    await store.close()


async def test_unencodable_object_is_a_storage_error() -> None:
    store = MemoryStore()
    with pytest.raises(StorageError):
        await store.create("/s/a", {"x": object()})
    await store.close()


async def test_compact_never_passes_current_revision() -> None:
    store = MemoryStore()
    await store.create("/s/a", {})
    store.compact(100)
    assert store.oldest_revision == store.revision == 1
    w = store.watch("/s", after_revision=1)
    await store.create("/s/b", {})
    assert (await w.__anext__()).key == "/s/b"
    w.close()
    await store.close()
