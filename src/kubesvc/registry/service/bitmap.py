"""The allocation bitmap shared by the ClusterIP and NodePort allocators.

Upstream keeps one bit per offset and picks free offsets with a random scan
that prefers the upper (dynamic) band and leaves the lower (static) band for
users who ask for a specific value (KEP-3070 for IPs, KEP-3668 for ports).
We keep one byte per offset in a ``bytearray`` so a scan for the next free
slot is a C-level ``find``: allocation cost does not grow with the number of
Services.  Pure bookkeeping; no I/O, not thread-safe (one event loop).
"""

from __future__ import annotations

import random
from collections.abc import Iterator

_FREE = b"\x00"


class OffsetBitmap:
    """``size`` slots; the lowest ``static_band`` slots go to dynamic picks only as a last resort."""

    def __init__(self, size: int, static_band: int, rng: random.Random | None = None) -> None:
        self.size = max(0, size)
        self.static_band = static_band if 0 < static_band < self.size else 0
        self._rng = rng if rng is not None else random.Random()
        self._bits = bytearray(self.size)
        self._count = 0

    @property
    def used(self) -> int:
        return self._count

    @property
    def free(self) -> int:
        return self.size - self._count

    def has(self, offset: int) -> bool:
        return 0 <= offset < self.size and self._bits[offset] == 1

    def take(self, offset: int) -> bool:
        """Mark ``offset`` used; False if it already was."""
        if self._bits[offset]:
            return False
        self._bits[offset] = 1
        self._count += 1
        return True

    def clear(self, offset: int) -> None:
        """Mark ``offset`` free (a no-op when it already is)."""
        if 0 <= offset < self.size and self._bits[offset]:
            self._bits[offset] = 0
            self._count -= 1

    def _scan(self, lo: int, hi: int) -> int:
        """Random start in [lo, hi), scan forward with wrap-around; -1 when the band is full."""
        if hi <= lo:
            return -1
        start = lo + self._rng.randrange(hi - lo)
        at = self._bits.find(_FREE, start, hi)
        if at < 0:
            at = self._bits.find(_FREE, lo, start)
        return at

    def take_next(self) -> int:
        """Allocate a free offset (upper band first, then the static band); -1 when full."""
        if self._count >= self.size:
            return -1
        at = self._scan(self.static_band, self.size)
        if at < 0:
            at = self._scan(0, self.static_band)
        if at >= 0:
            self.take(at)
        return at

    def offsets(self) -> Iterator[int]:
        """Every used offset, ascending."""
        at = self._bits.find(1)
        while at >= 0:
            yield at
            at = self._bits.find(1, at + 1)


class AllocatorError(Exception):
    """An allocation failure; ``str()`` is upstream's error text."""


class RangeFullError(AllocatorError):
    def __init__(self) -> None:
        super().__init__("range is full")


class RestoreResult:
    """What :meth:`restore` found when rebuilding state from stored objects."""

    RESTORED = "restored"
    DUPLICATE = "duplicate"
    OUT_OF_RANGE = "out-of-range"


def band_offset(size: int, lo: int, hi: int, step: int) -> int:
    """``min(max(lo, size/step), hi)``; 0 (no static band) for ranges of ``lo`` or fewer."""
    if size <= lo:
        return 0
    return min(max(lo, size // step), hi)
