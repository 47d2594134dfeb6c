"""The LoadBalancer address allocator: pure bookkeeping, no API and no I/O.

Who holds which address, checked against the pools and the sharing rules.
The controller asks three things of it, each safe to repeat:

* :meth:`Allocator.assign` -- give a Service one particular address (what it
  asked for, or what its status already says after a restart); validated
  first, and nothing changes when it is refused;
* :meth:`Allocator.allocate` -- give a Service *some* address: the one it
  holds when that is still valid, else an address it may share (same sharing
  key), else the first free address of the first auto-assign pool by name.
  Deterministic, so the same cluster state always gets the same answers;
* :meth:`Allocator.unassign` -- forget a Service (a no-op when it held nothing).

Refusals raise :class:`AllocationError` with a message for the Service's
Warning Event.  Bookkeeping that contradicts itself is a bug, not bad input:
:meth:`Allocator.check` raises :class:`InvariantError` rather than patching it.

Sharing: two Services share an address only when both carry the same sharing
key, neither uses a port (number and protocol) the other uses, and both route
to the same backends (equal ``backend_key``: empty for externalTrafficPolicy
Cluster, the selector for Local -- with Local the announcing node must hold
endpoints of every Service on the address).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from kubesvc.lb.pools import IPAddress, Pool

Port = tuple[str, int]  # (protocol, port)


@dataclass(frozen=True)
class Request:
    """What one Service needs from the allocator."""

    key: str  # namespace/name
    ports: frozenset[Port] = field(default_factory=frozenset)
    sharing_key: str = ""
    backend_key: str = ""
    pool: str = ""  # only from this pool (annotation kubesvc.io/address-pool)
    family: int = 4


class AllocationError(Exception):
    """The request cannot be met; ``str(e)`` says why, for a user."""


class InvariantError(AssertionError):
    """The allocator's own bookkeeping is inconsistent (a bug)."""


def sharing_problem(ip: IPAddress, req: Request, others: Mapping[str, Request]) -> str:
    """Why ``req`` may not use ``ip`` alongside ``others`` (the Services already on it), or ``""``."""
    if not others:
        return ""
    if not req.sharing_key:
        return f"{ip} is already in use by {', '.join(sorted(others))}"
    for key, other in sorted(others.items()):
        if other.sharing_key != req.sharing_key:
            theirs = f"sharing key {other.sharing_key!r}" if other.sharing_key else "no sharing key"
            return f"{ip} is in use by {key} with {theirs}, not {req.sharing_key!r}"
        if other.backend_key != req.backend_key:
            return (f"{ip} is shared by {key}, which has a different externalTrafficPolicy "
                    f"or (with Local) a different selector")
        clash = sorted(req.ports & other.ports)
        if clash:
            proto, port = clash[0]
            return f"port {port}/{proto} on {ip} is already used by {key}"
    return ""


class Allocator:
    """Addresses held by Services, over a set of pools.  See the module docstring."""

    def __init__(self, pools: Iterable[Pool] = ()) -> None:
        self._pools: dict[str, Pool] = {}
        self._held: dict[str, tuple[IPAddress, Request]] = {}
        self._users: dict[IPAddress, dict[str, Request]] = {}
        self.set_pools(pools)

    # ------------------------------------------------------------------ reads

    @property
    def pools(self) -> dict[str, Pool]:
        return dict(self._pools)

    def ip_of(self, key: str) -> IPAddress | None:
        held = self._held.get(key)
        return held[0] if held else None

    def users(self, ip: IPAddress) -> list[str]:
        """The Services on ``ip``, sorted (more than one only when shared)."""
        return sorted(self._users.get(ip, ()))

    def holders(self) -> dict[str, IPAddress]:
        return {k: ip for k, (ip, _) in self._held.items()}

    def pool_of(self, ip: IPAddress) -> Pool | None:
        """The first pool, by name, holding ``ip`` (pools may overlap; usage counts there)."""
        return next((p for p in self._pools.values() if ip in p), None)

    def counts(self) -> dict[str, dict[str, int]]:
        """Per pool, the status an IPAddressPool reports: assigned and available per family."""
        used: dict[str, dict[int, int]] = {name: {4: 0, 6: 0} for name in self._pools}
        for ip in self._users:
            pool = self.pool_of(ip)
            if pool is not None:
                used[pool.name][ip.version] += 1
        return {name: {"assignedIPv4": used[name][4], "availableIPv4": p.size(4) - used[name][4],
                       "assignedIPv6": used[name][6], "availableIPv6": p.size(6) - used[name][6]}
                for name, p in self._pools.items()}

    # ---------------------------------------------------------------- changes

    def set_pools(self, pools: Iterable[Pool]) -> list[str]:
        """Replace the pools; Services whose address left every pool lose it (their keys are returned)."""
        new: dict[str, Pool] = {}
        for p in pools:
            if p.name in new:
                raise ValueError(f"two pools are named {p.name!r}")
            new[p.name] = p
        self._pools = dict(sorted(new.items()))
        lost = sorted(k for k, (ip, req) in self._held.items() if self._pool_problem(ip, req))
        for k in lost:
            self.unassign(k)
        return lost

    def assign(self, req: Request, ip: IPAddress) -> None:
        """Give ``req.key`` exactly ``ip`` (releasing what it held before), or raise and change nothing."""
        why = self._problem(ip, req)
        if why:
            raise AllocationError(why)
        self._take(req, ip)

    def allocate(self, req: Request) -> IPAddress:
        """Give ``req.key`` an address: see the module docstring for the order of preference."""
        held = self._held.get(req.key)
        if held is not None and not self._problem(held[0], req):
            self._take(req, held[0])
            return held[0]
        pools = self._candidate_pools(req)
        if req.sharing_key:
            for ip in sorted((ip for ip, users in self._users.items()
                              if ip.version == req.family and any(u.sharing_key == req.sharing_key
                                                                  for u in users.values())), key=int):
                if any(ip in p for p in pools) and not self._problem(ip, req):
                    self._take(req, ip)
                    return ip
        for pool in pools:
            for ip in pool.addresses(req.family):
                if not self._users.get(ip):
                    self._take(req, ip)
                    return ip
        names = ", ".join(p.name for p in pools)
        raise AllocationError(f"no available IPv{req.family} address in pool{'s' if len(pools) > 1 else ''} {names}")

    def unassign(self, key: str) -> IPAddress | None:
        """Forget ``key``; returns the address it held (``None``: it held nothing, nothing changed)."""
        held = self._held.pop(key, None)
        if held is None:
            return None
        ip = held[0]
        users = self._users.get(ip)
        if users is None or key not in users:
            raise InvariantError(f"{key} held {ip} but is not among its users")
        del users[key]
        if not users:
            del self._users[ip]
        return ip

    def check(self) -> None:
        """Raise :class:`InvariantError` if the two indexes disagree or a shared address breaks the rules."""
        for key, (ip, req) in self._held.items():
            if self._users.get(ip, {}).get(key) is not req:
                raise InvariantError(f"{key} holds {ip} but the address does not list it")
        for ip, users in self._users.items():
            if not users:
                raise InvariantError(f"{ip} has an empty user list")
            for key, req in users.items():
                if self.ip_of(key) != ip:
                    raise InvariantError(f"{ip} lists {key}, which holds {self.ip_of(key)}")
                others = {k: r for k, r in users.items() if k != key}
                why = sharing_problem(ip, req, others)
                if why:
                    raise InvariantError(f"{ip} is shared against the rules: {why}")

    # --------------------------------------------------------------- helpers

    def _take(self, req: Request, ip: IPAddress) -> None:
        held = self._held.get(req.key)
        if held is not None and held[0] != ip:
            self.unassign(req.key)
        self._held[req.key] = (ip, req)
        self._users.setdefault(ip, {})[req.key] = req

    def _pool_problem(self, ip: IPAddress, req: Request) -> str:
        if req.pool:
            pool = self._pools.get(req.pool)
            if pool is None:
                return f"address pool {req.pool!r} does not exist"
            return "" if ip in pool else f"{ip} is not in address pool {req.pool!r}"
        return "" if self.pool_of(ip) is not None else f"{ip} is not in any address pool"

    def _problem(self, ip: IPAddress, req: Request) -> str:
        if ip.version != req.family:
            return f"{ip} is not an IPv{req.family} address"
        why = self._pool_problem(ip, req)
        if why:
            return why
        others = {k: r for k, r in self._users.get(ip, {}).items() if k != req.key}
        return sharing_problem(ip, req, others)

    def _candidate_pools(self, req: Request) -> list[Pool]:
        if req.pool:
            pool = self._pools.get(req.pool)
            if pool is None:
                raise AllocationError(f"address pool {req.pool!r} does not exist")
            return [pool]
        pools = [p for p in self._pools.values() if p.auto_assign]
        if not pools:
            raise AllocationError("no address pool allows automatic assignment" if self._pools
                                  else "there are no address pools")
        return pools
