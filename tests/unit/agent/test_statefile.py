"""State files written off the event loop: newest content wins, removal is final, deferred IPAM saves."""

from __future__ import annotations

import json
import threading
from pathlib import Path

from kubesvc.agent.ipam import IpAllocator
from kubesvc.agent.statefile import StateFile


def test_set_writes_nothing_until_flush_and_sets_coalesce(tmp_path: Path) -> None:
    f = StateFile(tmp_path / "sub" / "x.json")
    f.set(b"1")
    f.set(b"2")
    assert not f.path.exists()
    f.flush()
    assert f.path.read_bytes() == b"2"
    mtime = f.path.stat().st_mtime_ns
    f.flush()  # nothing newer: no write
    assert f.path.stat().st_mtime_ns == mtime
    assert [p.name for p in f.path.parent.iterdir()] == ["x.json"]  # no temporary left behind


def test_concurrent_flushes_never_leave_older_content(tmp_path: Path) -> None:
    f = StateFile(tmp_path / "x.json")
    errors: list[BaseException] = []

    def worker(i: int) -> None:
        try:
            for j in range(50):
                f.set(f"{i}-{j}".encode())
                f.flush()
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    f.set(b"last")
    f.flush()
    assert f.path.read_bytes() == b"last"


def test_remove_is_final_for_earlier_content(tmp_path: Path) -> None:
    f = StateFile(tmp_path / "x.json")
    f.save(b"a")
    f.set(b"b")  # pending when the pod goes
    f.remove()
    f.flush()  # a late flush (a worker thread) must not bring the file back
    assert not f.path.exists()
    f.save(b"c")  # a new content after removal is written again
    assert f.path.read_bytes() == b"c"


def test_deferred_ipam_writes_on_flush(tmp_path: Path) -> None:
    path = tmp_path / "ipam.json"
    a = IpAllocator("10.244.1.0/24", path, deferred=True)
    ip = a.allocate("u1")
    assert not path.exists()
    a.flush()
    assert json.loads(path.read_text())["owners"] == {"u1": ip}
    a.release("u1")
    assert json.loads(path.read_text())["owners"] == {"u1": ip}  # still on disk until flushed
    a.flush()
    assert IpAllocator("10.244.1.0/24", path).owners() == []
    eager = IpAllocator("10.244.1.0/24", tmp_path / "eager.json")
    eager.allocate("u2")
    assert json.loads((tmp_path / "eager.json").read_text())["owners"] == {"u2": eager.get("u2")}
