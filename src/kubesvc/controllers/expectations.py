"""Controller expectations: don't act again until the cache has seen what we did.

A ReplicaSet that just created three pods will, a moment later, be synced
again from a cache that does not show them yet; counting from that cache it
would create three more.  Upstream's answer (``ControllerExpectations`` and
its UID-tracking variant for deletions) is kept here: before writing, the
controller records how many creations and which deletions it expects; the
pod informer's handlers lower the counts as the events arrive; a sync only
changes the replica count once everything expected was observed or the
record is older than ``ttl`` (a lost event must not wedge the controller).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

EXPECTATIONS_TTL = 300.0  # upstream's ExpectationsTimeout: 5 minutes


@dataclass
class _Record:
    adds: int = 0
    deletes: set[str] = field(default_factory=set)
    stamp: float = 0.0


class Expectations:
    """Per-controller-key pending creations (a count) and deletions (pod keys)."""

    def __init__(self, ttl: float = EXPECTATIONS_TTL, clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl = ttl
        self.clock = clock
        self._records: dict[str, _Record] = {}

    def satisfied(self, key: str) -> bool:
        """True when the controller may trust its cache for ``key`` again."""
        r = self._records.get(key)
        if r is None:
            return True
        if r.adds <= 0 and not r.deletes:
            return True
        return self.clock() - r.stamp > self.ttl

    def expect_creations(self, key: str, n: int) -> None:
        self._records[key] = _Record(adds=n, stamp=self.clock())

    def expect_deletions(self, key: str, pod_keys: Iterable[str]) -> None:
        self._records[key] = _Record(deletes=set(pod_keys), stamp=self.clock())

    def creation_observed(self, key: str, n: int = 1) -> None:
        r = self._records.get(key)
        if r is not None:
            r.adds -= n

    def deletion_observed(self, key: str, pod_key: str) -> None:
        r = self._records.get(key)
        if r is not None:
            r.deletes.discard(pod_key)

    def forget(self, key: str) -> None:
        self._records.pop(key, None)

    def pending(self, key: str) -> tuple[int, int]:
        """(creations, deletions) still expected: for tests and logs."""
        r = self._records.get(key)
        return (max(r.adds, 0), len(r.deletes)) if r else (0, 0)
