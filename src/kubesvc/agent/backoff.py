"""Restart and image-pull back-off, as the kubelet's: 10 s doubling to 5 min.

The first restart of a container is immediate; each later one waits twice as
long as the one before, and a container that ran for 10 minutes starts over.
Pure (a clock is passed in), so the rules are unit-tested.
"""

from __future__ import annotations

INITIAL = 10.0
MAX = 300.0
RESET_AFTER = 600.0


class Backoff:
    def __init__(self, initial: float = INITIAL, cap: float = MAX, reset_after: float = RESET_AFTER) -> None:
        self.initial, self.cap, self.reset_after = initial, cap, reset_after
        self.current = 0.0

    def next(self, ran_for: float) -> float:
        """The delay before the next restart, given how long the last run lasted."""
        if ran_for >= self.reset_after:
            self.current = 0.0
        delay = self.current
        self.current = self.initial if self.current == 0 else min(self.cap, self.current * 2)
        return delay

    def pull(self) -> float:
        """Image pull back-off: the first retry already waits."""
        self.current = self.initial if self.current == 0 else min(self.cap, self.current * 2)
        return self.current
