"""Worker threads started up front: the pool has them before the first task needs one."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from kubesvc.agent.threads import prestart


def test_prestart_starts_every_worker() -> None:
    pool = ThreadPoolExecutor(max_workers=5)
    try:
        assert len(pool._threads) == 0
        prestart(pool, 5)
        assert len(pool._threads) == 5
        assert pool.submit(lambda: 42).result() == 42
        assert len(pool._threads) == 5  # an idle one served it
    finally:
        pool.shutdown()
