"""A guard for async tests: nothing a test starts may outlive it (kopf's habit)."""

from __future__ import annotations

import asyncio


async def leftover_tasks() -> list[str]:
    """Cancel and return the names of tasks still running besides the caller."""
    for _ in range(3):
        await asyncio.sleep(0)
    me = asyncio.current_task()
    left = [t for t in asyncio.all_tasks() if t is not me and not t.done()]
    for t in left:
        t.cancel()
    await asyncio.gather(*left, return_exceptions=True)
    return [t.get_name() for t in left]
