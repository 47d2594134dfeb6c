"""NodePort allocation over ``--service-node-port-range``, as upstream's ``portallocator``.

The range is inclusive (default 30000-32767).  The lowest
``min(max(16, size/32), 128)`` ports form the static band (KEP-3668; 86 ports
for the default range): automatic picks come from above it first.  Health
check node ports come from the same allocator.  Error texts are upstream's.
"""

from __future__ import annotations

import random
from collections.abc import Iterator

from kubesvc.registry.service.bitmap import (
    AllocatorError,
    OffsetBitmap,
    RangeFullError,
    RestoreResult,
    band_offset,
)


class PortAlreadyAllocatedError(AllocatorError):
    def __init__(self) -> None:
        super().__init__("provided port is already allocated")


class PortNotInRangeError(AllocatorError):
    def __init__(self, valid_ports: str) -> None:
        self.valid_ports = valid_ports
        super().__init__(f"provided port is not in the valid range. The range of valid ports is {valid_ports}")


def parse_port_range(value: str | tuple[int, int]) -> tuple[int, int]:
    """``"30000-32767"`` or ``(30000, 32767)`` (a single port ``"30000"`` means a range of one)."""
    if isinstance(value, tuple):
        lo, hi = value
    else:
        text = value.strip()
        lo_s, sep, hi_s = text.partition("-")
        lo = int(lo_s)
        hi = int(hi_s) if sep else lo
    if not (0 <= lo <= hi <= 65535):
        raise ValueError(f"invalid port range {value!r}")
    return lo, hi


class PortAllocator:
    """Bookkeeping for the node-port range."""

    def __init__(self, port_range: str | tuple[int, int] = (30000, 32767), rng: random.Random | None = None):
        self.base, self.last = parse_port_range(port_range)
        size = self.last - self.base + 1
        self.range_text = f"{self.base}-{self.last}"
        self._bitmap = OffsetBitmap(size, band_offset(size, 16, 128, 32), rng)

    @property
    def size(self) -> int:
        return self._bitmap.size

    @property
    def static_band(self) -> int:
        return self._bitmap.static_band

    @property
    def used(self) -> int:
        return self._bitmap.used

    @property
    def free(self) -> int:
        return self._bitmap.free

    def contains(self, port: int) -> bool:
        return self.base <= port <= self.last

    def has(self, port: int) -> bool:
        return self.contains(port) and self._bitmap.has(port - self.base)

    def allocated(self) -> Iterator[int]:
        for offset in self._bitmap.offsets():
            yield self.base + offset

    def allocate(self, port: int) -> None:
        if not self.contains(port):
            raise PortNotInRangeError(self.range_text)
        if not self._bitmap.take(port - self.base):
            raise PortAlreadyAllocatedError()

    def allocate_next(self) -> int:
        offset = self._bitmap.take_next()
        if offset < 0:
            raise RangeFullError()
        return self.base + offset

    def release(self, port: int) -> None:
        """Free a port; unallocated or out-of-range ports are a no-op."""
        if self.contains(port):
            self._bitmap.clear(port - self.base)

    def restore(self, port: int) -> str:
        if not self.contains(port):
            return RestoreResult.OUT_OF_RANGE
        return RestoreResult.RESTORED if self._bitmap.take(port - self.base) else RestoreResult.DUPLICATE
