"""ClusterIP allocation over the service CIDR, as upstream's bitmap ``ipallocator``.

The usable range leaves out the network address, and for IPv4 the broadcast
address ("for CIDR 10.0.0.0/24, 254 addresses usable out of 256"); IPv6
ranges are capped at 65536 slots.  The lowest ``min(max(16, size/16), 256)``
addresses form the static band (KEP-3070): automatic picks come from above
it and fall back into it only when the upper band is full, so addresses
users choose by hand (the seed's ``10.0.10.10``, DNS's ``10.0.0.10``) rarely
collide with automatic ones.  Error texts are upstream's.
"""

from __future__ import annotations

import ipaddress
import random
from collections.abc import Iterator

from kubesvc.api.validation.names import parse_cidr, parse_ip
from kubesvc.registry.service.bitmap import (
    AllocatorError,
    OffsetBitmap,
    RangeFullError,
    RestoreResult,
    band_offset,
)

IPV6_MAX_SLOTS = 65536


class IPAlreadyAllocatedError(AllocatorError):
    def __init__(self) -> None:
        super().__init__("provided IP is already allocated")


class IPNotInRangeError(AllocatorError):
    def __init__(self, ip: str, valid_range: str) -> None:
        self.ip, self.valid_range = ip, valid_range
        # 1.22-1.32 wording (bitmap allocator); newer releases say "provided IP <ip> is not in the valid range"
        super().__init__(
            f"the provided IP ({ip}) is not in the valid range. The range of valid IPs is {valid_range}"
        )


class IPAllocator:
    """Bookkeeping for one service CIDR (one IP family)."""

    def __init__(self, cidr: str, rng: random.Random | None = None) -> None:
        net = parse_cidr(cidr)
        if net is None:
            raise ValueError(f"invalid CIDR {cidr!r}")
        self.network = net
        self.cidr = str(net)
        self.family = "IPv4" if net.version == 4 else "IPv6"
        self._base = int(net.network_address) + 1
        total = net.num_addresses
        if net.version == 4:
            slots = total - 2
        else:
            slots = min(total, IPV6_MAX_SLOTS) - 1
        self._bitmap = OffsetBitmap(max(0, slots), band_offset(total, 16, 256, 16), rng)

    # ---- introspection ------------------------------------------------
    @property
    def size(self) -> int:
        return self._bitmap.size

    @property
    def static_band(self) -> int:
        """How many of the lowest usable addresses are kept for explicit requests."""
        return self._bitmap.static_band

    @property
    def used(self) -> int:
        return self._bitmap.used

    @property
    def free(self) -> int:
        return self._bitmap.free

    def _offset(self, ip: str) -> int | None:
        addr = parse_ip(ip)
        if addr is None or addr.version != self.network.version or addr not in self.network:
            return None
        offset = int(addr) - self._base
        return offset if 0 <= offset < self._bitmap.size else None

    def _ip(self, offset: int) -> str:
        return str(ipaddress.ip_address(self._base + offset))

    def contains(self, ip: str) -> bool:
        """Whether ``ip`` is an allocatable address of this range."""
        return self._offset(ip) is not None

    def has(self, ip: str) -> bool:
        offset = self._offset(ip)
        return offset is not None and self._bitmap.has(offset)

    def allocated(self) -> Iterator[str]:
        for offset in self._bitmap.offsets():
            yield self._ip(offset)

    # ---- operations ---------------------------------------------------
    def allocate(self, ip: str) -> None:
        """Reserve a specific address (any band)."""
        offset = self._offset(ip)
        if offset is None:
            addr = parse_ip(ip)
            raise IPNotInRangeError(str(addr) if addr is not None else ip, self.cidr)
        if not self._bitmap.take(offset):
            raise IPAlreadyAllocatedError()

    def allocate_next(self) -> str:
        """Reserve a free address, upper band first."""
        offset = self._bitmap.take_next()
        if offset < 0:
            raise RangeFullError()
        return self._ip(offset)

    def release(self, ip: str) -> None:
        """Free an address; unallocated or out-of-range addresses are a no-op."""
        offset = self._offset(ip)
        if offset is not None:
            self._bitmap.clear(offset)

    def restore(self, ip: str) -> str:
        """Mark an address a stored Service already holds (start-up rebuild); see RestoreResult."""
        offset = self._offset(ip)
        if offset is None:
            return RestoreResult.OUT_OF_RANGE
        return RestoreResult.RESTORED if self._bitmap.take(offset) else RestoreResult.DUPLICATE
