"""A record of what each applied transaction put in the kernel, for measuring end to end.

kube-proxy's network programming latency starts at the slice's
last-change-trigger-time annotation, which the EndpointSlice controller
stamps with a clock and a granularity of its own.  To measure a change from
the moment a client's write is acknowledged to the moment every node has it,
a benchmark needs to know, per node, *when* the rules carrying a given slice
version were in the kernel.  The proxier records, for every successful sync,
the wall-clock time its ``nft -f`` returned and the resourceVersion of every
EndpointSlice whose change it programmed; ``/debug/programmed`` on the
metrics server streams these records (see :mod:`.server`).  Nothing here
affects what is programmed.
"""

from __future__ import annotations

import asyncio
import collections
from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True)
class Programmed:
    seq: int
    at: float  # wall clock (time.time()) when nft returned: the rules were in the kernel
    full: bool
    services: int  # Services programmed after this sync
    slices: dict[str, str] = field(default_factory=dict)  # "ns/slice-name" → resourceVersion carried

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


class ProgrammedLog:
    """The last ``keep`` records, and a queue per live subscriber (a stream that falls behind
    by more than ``keep`` records is cut off rather than let grow)."""

    def __init__(self, keep: int = 1000) -> None:
        self.keep = keep
        self.records: collections.deque[Programmed] = collections.deque(maxlen=keep)
        self._seq = 0
        self._subscribers: set[asyncio.Queue[Programmed | None]] = set()

    def record(self, at: float, full: bool, services: int, slices: dict[str, str]) -> Programmed:
        self._seq += 1
        rec = Programmed(self._seq, at, full, services, dict(slices))
        self.records.append(rec)
        for q in list(self._subscribers):
            if q.qsize() >= self.keep:
                self._subscribers.discard(q)
                q.put_nowait(None)  # the reader sees the end of its stream
            else:
                q.put_nowait(rec)
        return rec

    def since(self, seq: int) -> list[Programmed]:
        return [r for r in self.records if r.seq > seq]

    def subscribe(self) -> asyncio.Queue[Programmed | None]:
        q: asyncio.Queue[Programmed | None] = asyncio.Queue()
        self._subscribers.add(q)
        return q

    def unsubscribe(self, q: asyncio.Queue[Programmed | None]) -> None:
        self._subscribers.discard(q)

    def close(self) -> None:
        """End every stream (a server shutting down waits for its open requests)."""
        for q in self._subscribers:
            q.put_nowait(None)
        self._subscribers.clear()
