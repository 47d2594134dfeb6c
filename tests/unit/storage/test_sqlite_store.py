"""SqliteStore specifics: restart, the revision counter, failed batches, crashes, fencing."""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path

import pytest

from kubesvc.storage import KeyNotFound, SqliteStore, StorageError, TooOldRevision
from kubesvc.storage.engine import Write


def svc(name: str, **spec: object) -> dict[str, object]:
    return {"kind": "Service", "metadata": {"name": name, "namespace": "default"}, "spec": spec}


async def test_restart_keeps_data_and_revision_counter(tmp_path: Path) -> None:
    db = tmp_path / "state.db"
    store = SqliteStore(db)
    for i in range(20):
        await store.create(f"/s/{i:02}", svc(str(i), port=i))
    await store.update("/s/03", svc("3", port=33))
    last = await store.delete("/s/19")  # the newest write is a delete: the counter must survive it
    before = {s.key: s.data for s in (await store.list("/")).items}
    revision = store.revision
    assert revision == last.revision
    await store.close()

    store = SqliteStore(db)
    try:
        assert store.revision == revision
        assert store.oldest_revision == revision  # history is not persisted
        assert {s.key: s.data for s in (await store.list("/")).items} == before
        assert (await store.get("/s/03")).value["spec"] == {"port": 33}
        with pytest.raises(KeyNotFound):
            await store.get("/s/19")
        with pytest.raises(TooOldRevision):
            store.watch("/s", after_revision=revision - 1)
        new = await store.create("/s/19", svc("19"))
        assert new.revision > revision
    finally:
        await store.close()


async def test_group_commit_batches_concurrent_writers(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "state.db")
    persistence = store._persistence
    sizes: list[int] = []
    original = persistence.write_batch

    def counting(writes: Sequence[Write], revision: int) -> None:
        sizes.append(len(writes))
        original(writes, revision)

    persistence.write_batch = counting  # type: ignore[method-assign]
    try:
        await asyncio.gather(*(store.create(f"/s/{i}", svc(str(i))) for i in range(200)))
        assert sum(sizes) == 200
        assert len(sizes) <= 10, sizes
    finally:
        await store.close()


async def test_failed_batch_makes_nothing_visible(tmp_path: Path) -> None:
    db = tmp_path / "state.db"
    store = SqliteStore(db)
    ok = await store.create("/s/ok", svc("ok", port=1))
    persistence = store._persistence
    original = persistence.write_batch
    failing = True

    def flaky(writes: Sequence[Write], revision: int) -> None:
        if failing:
            raise sqlite3.OperationalError("disk I/O error (injected)")
        original(writes, revision)

    persistence.write_batch = flaky  # type: ignore[method-assign]
    watch = store.watch("/s", after_revision=store.revision)
    results = await asyncio.gather(
        *(store.create(f"/s/f{i}", svc(f"f{i}")) for i in range(10)),
        store.update("/s/ok", svc("ok", port=2)),
        store.delete("/s/ok"),
        return_exceptions=True,
    )
    assert all(isinstance(r, StorageError) for r in results), results
    assert store.revision == ok.revision
    assert [s.key for s in (await store.list("/s")).items] == ["/s/ok"]
    assert (await store.get("/s/ok")).data == ok.data
    with pytest.raises(KeyNotFound):
        await store.get("/s/f0")

    failing = False
    again = await store.create("/s/f0", svc("f0"))  # the overlay was rolled back
    assert again.revision > ok.revision + 12  # skipped revisions are gaps, never reused
    events = [await watch.__anext__()]
    assert [e.key for e in events] == ["/s/f0"]
    watch.close()
    await store.close()

    store = SqliteStore(db)
    assert sorted(s.key for s in (await store.list("/s")).items) == ["/s/f0", "/s/ok"]
    assert store.revision == again.revision
    await store.close()


async def test_failure_also_fails_queued_writes_to_the_same_keys(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "state.db")
    persistence = store._persistence
    original = persistence.write_batch
    release = threading.Event()
    calls = 0

    def first_fails(writes: Sequence[Write], revision: int) -> None:
        nonlocal calls
        calls += 1
        if calls == 1:
            release.wait(5)
            raise sqlite3.OperationalError("injected")
        original(writes, revision)

    persistence.write_batch = first_fails  # type: ignore[method-assign]
    first = asyncio.create_task(store.create("/s/a", svc("a")))
    while calls == 0:  # wait until batch 1 is in the worker thread
        await asyncio.sleep(0.005)
    dependent = asyncio.create_task(store.update("/s/a", svc("a", port=2)))
    independent = asyncio.create_task(store.create("/s/b", svc("b")))
    await asyncio.sleep(0.01)
    release.set()
    with pytest.raises(StorageError):
        await first
    with pytest.raises(StorageError):
        await dependent
    b = await independent
    assert [s.key for s in (await store.list("/s")).items] == ["/s/b"]
    assert (await store.get("/s/b")).data == b.data
    await store.close()


async def test_second_writer_on_same_file_is_refused(tmp_path: Path) -> None:
    db = tmp_path / "state.db"
    first = SqliteStore(db)
    second = SqliteStore(db)
    await first.create("/s/a", svc("a"))
    with pytest.raises(StorageError, match="another process"):
        await second.create("/s/b", svc("b"))
    await first.create("/s/c", svc("c"))
    await second.close()
    await first.close()
    check = SqliteStore(db)
    assert [s.key for s in (await check.list("/s")).items] == ["/s/a", "/s/c"]
    await check.close()


CRASH_WRITER = """
import asyncio, sys
from kubesvc.storage import SqliteStore

async def main(path):
    store = SqliteStore(path)
    async def writer(w):
        i = 0
        while True:
            key = f"/crash/w{w}/{i:06}"
            await store.create(key, {"metadata": {"name": key}, "payload": key * 20})
            sys.stdout.write(key + "\\n")
            sys.stdout.flush()
            i += 1
    await asyncio.gather(*(writer(w) for w in range(16)))

asyncio.run(main(sys.argv[1]))
"""


@pytest.mark.slow
async def test_sigkill_loses_no_acknowledged_write(tmp_path: Path) -> None:
    db = tmp_path / "state.db"
    proc = subprocess.Popen(
        [sys.executable, "-c", CRASH_WRITER, str(db)], stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    assert proc.stdout is not None
    acked: list[str] = []
    deadline = time.monotonic() + 30
    try:
        while len(acked) < 2000 and time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            acked.append(line.decode())
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        rest, err = proc.communicate()
    assert len(acked) >= 2000, err.decode()[-2000:]
    assert proc.returncode == -signal.SIGKILL  # killed mid-way, not finished
    # Lines written before the kill were acknowledged too; a cut-off last line was not.
    acked += rest.decode().splitlines(keepends=True)
    keys = [line.rstrip("\n") for line in acked if line.endswith("\n")]

    conn = sqlite3.connect(db)
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    conn.close()
    store = SqliteStore(db)
    try:
        revisions = set()
        for key in keys:
            obj = (await store.get(key)).value  # present
            assert obj["payload"] == key * 20  # and intact
            revisions.add(int(obj["metadata"]["resourceVersion"]))
        assert len(revisions) == len(keys)
        assert store.revision >= max(revisions)
        assert (await store.create("/after", {})).revision > max(revisions)
    finally:
        await store.close()
