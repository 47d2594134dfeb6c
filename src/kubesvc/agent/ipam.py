"""Pod IPs from the node's pod CIDR, remembered in a file.

Pure bookkeeping in the MetalLB manner: ``assign`` is idempotent, ``allocate``
deterministic, ``release`` idempotent.  Like the host-local CNI plugin,
allocation goes round-robin from the last address handed out rather than
reusing the lowest free one, so a replaced pod gets a new address (the seed's
point: pods move and their IPs change) and a stale connection to an old
address does not land on a new pod.  The file is
rewritten atomically after each change, so an agent restarted over running
pods hands each the address it already has and never hands it to another.
With ``deferred`` it is written only by :meth:`IpAllocator.flush`, which the
agent calls from a worker thread about once a second: each pod's address is
on disk before its namespace exists in the pod's own state file, and a
restarted agent reserves those first, so the file need not be rewritten per pod.
The network address, the gateway (``.1``, the node's bridge) and the
broadcast address are never given out.
"""

from __future__ import annotations

import ipaddress
import json
from pathlib import Path

from kubesvc.agent.statefile import StateFile


class PoolExhausted(Exception):
    """Every address of the node's pod CIDR is taken."""


class IpAllocator:
    def __init__(self, cidr: str, path: Path | None = None, *, deferred: bool = False) -> None:
        self.net = ipaddress.ip_network(cidr)
        self.path = path
        self.deferred = deferred
        self._file = StateFile(path) if path is not None else None
        self.gateway = self.net[1]
        self._hosts: list[ipaddress.IPv4Address | ipaddress.IPv6Address] | None = None
        self._index: dict[ipaddress.IPv4Address | ipaddress.IPv6Address, int] = {}
        self.by_owner: dict[str, str] = {}
        self.last: str | None = None
        if path is not None and path.exists():
            data = json.loads(path.read_text() or "{}")
            owners = data.get("owners", {}) if "owners" in data else data
            self.by_owner = {str(k): str(v) for k, v in owners.items()}
            self.last = data.get("last") if "owners" in data else None
        self._taken = {ipaddress.ip_address(v) for v in self.by_owner.values()}

    def get(self, owner: str) -> str | None:
        return self.by_owner.get(owner)

    def assign(self, owner: str, ip: str) -> None:
        """Record an address an owner already holds (adoption); refuse one held by another."""
        addr = ipaddress.ip_address(ip)
        if addr not in self.net or addr in (self.net.network_address, self.gateway, self.net.broadcast_address):
            raise ValueError(f"{ip} is not assignable in {self.net}")
        for o, held in self.by_owner.items():
            if held == ip and o != owner:
                raise ValueError(f"{ip} is already held by {o}")
        if self.by_owner.get(owner) == ip:
            return
        self.release(owner, save=False)
        self.by_owner[owner] = ip
        self._taken.add(addr)
        self._save()

    def allocate(self, owner: str) -> str:
        """The owner's address, or the next free one after the last handed out."""
        held = self.by_owner.get(owner)
        if held:
            return held
        if self._hosts is None:  # computed once: a /24 is 253 address objects
            self._hosts = [a for a in self.net.hosts() if a != self.gateway]
            self._index = {a: i for i, a in enumerate(self._hosts)}
        hosts = self._hosts
        start = 0
        if self.last is not None and ipaddress.ip_address(self.last) in self._index:
            start = self._index[ipaddress.ip_address(self.last)] + 1
        for i in range(len(hosts)):
            addr = hosts[(start + i) % len(hosts)]
            if addr not in self._taken:
                self.by_owner[owner] = str(addr)
                self._taken.add(addr)
                self.last = str(addr)
                self._save()
                return str(addr)
        raise PoolExhausted(f"no free address in {self.net}")

    def release(self, owner: str, *, save: bool = True) -> None:
        ip = self.by_owner.pop(owner, None)
        if ip is not None:
            self._taken.discard(ipaddress.ip_address(ip))
            if save:
                self._save()

    def owners(self) -> list[str]:
        return list(self.by_owner)

    @property
    def unsaved(self) -> bool:
        """Changes not yet written (``deferred``)."""
        return self._file is not None and self._file.pending

    def flush(self) -> None:
        """Write the allocations made so far to the file (any thread; with ``deferred``, the caller's job)."""
        if self._file is not None:
            self._file.flush()

    def _save(self) -> None:
        if self._file is None:
            return
        self._file.set(json.dumps({"owners": self.by_owner, "last": self.last}, sort_keys=True).encode())
        if not self.deferred:
            self._file.flush()
