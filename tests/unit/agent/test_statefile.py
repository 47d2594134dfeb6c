"""State files written off the event loop: newest content wins, removal is final, journals, deferred IPAM saves."""

from __future__ import annotations

import asyncio
import json
import threading
from pathlib import Path

import pytest

from kubesvc.agent import statefile
from kubesvc.agent.ipam import IpAllocator
from kubesvc.agent.statefile import StateFile, read_last


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


def test_journal_appends_and_the_last_complete_line_wins(tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    f = StateFile(tmp_path / "pod.json", journal=True)
    f.save(b'{"v": 1}')
    f.save(b'{"v": 2}')
    assert f.path.read_bytes() == b'{"v": 1}\n{"v": 2}\n'  # appended, not replaced
    assert read_last(f.path) == {"v": 2}
    with open(f.path, "ab") as out:  # a crash in the middle of an append
        out.write(b'{"v": 3, "pi')
    assert read_last(f.path) == {"v": 2}
    with pytest.raises(ValueError):
        f.set(b"two\nlines")
    monkeypatch.setattr(statefile, "COMPACT_AFTER", 3)
    g = StateFile(tmp_path / "pod.json", journal=True)  # a new agent adopting the pod: starts over
    for v in range(4, 9):
        g.save(b'{"v": %d}' % v)
    assert read_last(g.path) == {"v": 8}
    assert len(g.path.read_bytes().splitlines()) <= 3  # compacted


def test_adoption_reserves_addresses_from_pod_state_not_a_stale_ipam_file(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The IPAM file lags (written about once a second): a kept pod's address comes from its own file."""
    from kubesvc.agent import agent as agentmod

    state = tmp_path / "state"
    (state / "pods").mkdir(parents=True)
    # On disk: ipam.json still says a deleted pod holds .7 and knows nothing of "keep"'s .9.
    (state / "ipam.json").write_text(json.dumps({"owners": {"gone": "10.244.1.7"}, "last": "10.244.1.7"}))
    StateFile(state / "pods" / "keep.json", journal=True).save(json.dumps(
        {"uid": "keep", "namespace": "default", "name": "k", "ip": "10.244.1.9", "containers": {}}).encode())
    cfg = agentmod.AgentConfig("node-1", "172.18.0.2", "10.244.1.0/24", state)
    a = agentmod.Agent(cfg, None, None)  # type: ignore[arg-type]  # adopt() talks to no API
    started: list[str] = []
    monkeypatch.setattr(agentmod.PodWorker, "start", lambda w: started.append(w.uid))
    a.pods.store.put({"metadata": {"uid": "keep", "name": "k", "namespace": "default"}, "spec": {}})
    asyncio.run(a.adopt())
    a.net.close()
    assert started == ["keep"]
    assert a.ipam.owners() == ["keep"] and a.ipam.get("keep") == "10.244.1.9"
    assert a.ipam.allocate("new") != "10.244.1.9"
    assert json.loads((state / "ipam.json").read_text())["owners"] == {"keep": "10.244.1.9"}
