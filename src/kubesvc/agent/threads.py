"""Worker threads started before a burst needs them, not in the middle of it.

A ``ThreadPoolExecutor`` starts a thread only when a task finds none idle,
and ``Thread.start`` blocks its caller until the new thread runs.  The
agent's pools were growing during the first burst of pods, from the event
loop: measured ~6 ms per thread start (the new thread competes for the GIL
and the CPU with everything else the burst does), ~46 ms of a 1 s burst on
one agent.  Started once at agent start, they cost nothing later.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor


def prestart(pool: ThreadPoolExecutor, workers: int, timeout: float = 10.0) -> None:
    """Make ``pool`` start ``workers`` threads now (at most its ``max_workers``).

    Each of ``workers`` tasks waits for all the others, so none finds an idle
    thread to reuse and the pool starts one per task.
    """
    barrier = threading.Barrier(workers)
    futures = [pool.submit(barrier.wait, timeout) for _ in range(workers)]
    for f in futures:
        f.result()
