"""Topology-aware hints on a reconcile's slices, and the zone picture they are computed from.

Upstream's TopologyCache (staging/src/k8s.io/endpointslice/topologycache),
used by the reconciler for Services annotated
``service.kubernetes.io/topology-mode: Auto`` (or the older
``service.kubernetes.io/topology-aware-hints: auto``).  The numbers come from
:mod:`.zoneallocation`; this module applies them to slices:

1. every ready endpoint in a slice being written first gets a hint for its
   own zone; hints already in unchanged slices count as they are, unless they
   are no longer valid (then that slice is rewritten too);
2. zones over their budget give endpoints to zones under it, by re-hinting
   endpoints of slices already being written (so no extra writes);
3. when hints cannot be given safely, they are taken off every slice that
   has them, and the reason is returned as a Warning event.

No I/O: the cache keeps, per Service, how many endpoints each zone was given,
so a node change can tell which Services it overloads
(:meth:`TopologyCache.overloaded_services`).  Slices handed in are the plan's
own copies; endpoint dicts may be shared with informer caches, so they are
replaced, never edited.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from .zoneallocation import (
    NO_ALLOCATED_HINTS_FOR_ZONES,
    NO_ZONE_SPECIFIED,
    TOPOLOGY_AWARE_HINTS_DISABLED,
    TOPOLOGY_AWARE_HINTS_ENABLED,
    Allocation,
    allocate,
    giving_and_receiving,
    service_overloaded,
    with_address_type,
    zone_cpu_ratios,
)

Obj = dict[str, Any]
NORMAL = "Normal"
WARNING = "Warning"
REASON_ENABLED = "TopologyAwareHintsEnabled"
REASON_DISABLED = "TopologyAwareHintsDisabled"


@dataclass(frozen=True)
class HintEvent:
    """An Event to record on the Service (type, reason, message), as upstream's EventBuilder."""

    type: str
    reason: str
    message: str


@dataclass
class SliceInfo:
    """One Service's slices of one address type, as a reconcile is about to leave them."""

    service_key: str
    address_type: str
    to_create: list[Obj] = field(default_factory=list)
    to_update: list[Obj] = field(default_factory=list)
    unchanged: list[Obj] = field(default_factory=list)

    def ready_endpoints(self) -> int:
        return sum(1 for s in (*self.to_create, *self.to_update, *self.unchanged)
                   for ep in s.get("endpoints") or () if endpoint_ready(ep))


def endpoint_ready(ep: Obj) -> bool:
    return bool((ep.get("conditions") or {}).get("ready"))


class TopologyCache:
    """Zone CPU ratios of the cluster and the hints given per Service (upstream's TopologyCache)."""

    def __init__(self) -> None:
        self.ratios: dict[str, float] | None = None
        self._allocated: dict[str, dict[str, dict[str, int]]] = {}  # service -> address type -> zone -> count
        self._populated: set[str] = set()
        self._refused: dict[tuple[str, str], str] = {}  # (service, address type) -> the reason last given

    # ---------------------------------------------------------------- nodes

    def set_nodes(self, nodes: Iterable[Obj]) -> bool:
        """Recompute the zone ratios; True when they changed."""
        ratios = zone_cpu_ratios(nodes)
        changed = ratios != self.ratios
        self.ratios = ratios
        return changed

    def overloaded_services(self) -> list[str]:
        """Services with hints whose zones would now be overloaded (or that lost a zone): sync them again."""
        return sorted(key for key, by_type in self._allocated.items()
                      if any(service_overloaded(zones, self.ratios) for zones in by_type.values()))

    # ---------------------------------------------------------------- per Service

    def has_populated_hints(self, service_key: str) -> bool:
        return service_key in self._populated

    def remove_hints(self, service_key: str, address_type: str) -> None:
        by_type = self._allocated.get(service_key)
        if by_type is not None:
            by_type.pop(address_type, None)
            if not by_type:
                del self._allocated[service_key]
        self._populated.discard(service_key)

    def not_asked(self, service_key: str, address_type: str) -> list[HintEvent]:
        """The Service no longer asks for hints: forget its allocation, and say so if it had hints."""
        had = self.has_populated_hints(service_key)
        self.remove_hints(service_key, address_type)
        self._refused.pop((service_key, address_type), None)
        if not had:
            return []
        return [HintEvent(WARNING, REASON_DISABLED, with_address_type(TOPOLOGY_AWARE_HINTS_DISABLED, address_type))]

    def forget(self, service_key: str) -> None:
        self._allocated.pop(service_key, None)
        self._populated.discard(service_key)
        for family in ("IPv4", "IPv6"):
            self._refused.pop((service_key, family), None)

    def add_hints(self, si: SliceInfo) -> list[HintEvent]:
        """Put zone hints on ``si``'s slices (moving unchanged ones to ``to_update`` when they must change)."""
        allocations = allocate(self.ratios, si.ready_endpoints())
        if isinstance(allocations, str):
            return self._give_up(si, allocations)
        allocated = _keep_valid_unchanged(si, allocations)
        writable = [*si.to_create, *si.to_update]
        for s in writable:  # step 1: every ready endpoint serves its own zone
            eps = s["endpoints"] = list(s.get("endpoints") or ())
            for i, ep in enumerate(eps):
                if not endpoint_ready(ep):
                    eps[i] = _hinted(ep, None)
                    continue
                zone = ep.get("zone") or ""
                if not zone:
                    return self._give_up(si, NO_ZONE_SPECIFIED)
                allocated[zone] = allocated.get(zone, 0) + 1
                eps[i] = _hinted(ep, zone)
        giving, receiving = giving_and_receiving(allocations, allocated)  # step 2
        for zone, diff in _redistribute(writable, giving, receiving).items():  # step 3
            allocated[zone] = allocated.get(zone, 0) + diff
        if not allocated:
            return self._give_up(si, NO_ALLOCATED_HINTS_FOR_ZONES)
        self._refused.pop((si.service_key, si.address_type), None)
        was_enabled = self.has_populated_hints(si.service_key)
        self._allocated.setdefault(si.service_key, {})[si.address_type] = allocated
        self._populated.add(si.service_key)
        if was_enabled:
            return []
        return [HintEvent(NORMAL, REASON_ENABLED, with_address_type(TOPOLOGY_AWARE_HINTS_ENABLED, si.address_type))]

    def _give_up(self, si: SliceInfo, reason: str) -> list[HintEvent]:
        """No hints for this Service and address type; the Warning once per reason.

        Upstream repeats it on every sync (its recorder folds repeats into a
        count); saying it again only when the reason changes spares an Event
        write per sync of a Service that cannot have hints.
        """
        self.remove_hints(si.service_key, si.address_type)
        remove_hints_from_slices(si)
        if self._refused.get((si.service_key, si.address_type)) == reason:
            return []
        self._refused[(si.service_key, si.address_type)] = reason
        return [HintEvent(WARNING, REASON_DISABLED, with_address_type(reason, si.address_type))]


def remove_hints_from_slices(si: SliceInfo) -> None:
    """No hints anywhere: strip them from slices being written, and rewrite unchanged slices that carry any."""
    for s in (*si.to_create, *si.to_update):
        s["endpoints"] = [_hinted(ep, None) for ep in s.get("endpoints") or ()]
    still: list[Obj] = []
    for s in si.unchanged:
        if any("hints" in ep for ep in s.get("endpoints") or ()):
            si.to_update.append(_copy(s, [_hinted(ep, None) for ep in s.get("endpoints") or ()]))
        else:
            still.append(s)
    si.unchanged[:] = still


def _keep_valid_unchanged(si: SliceInfo, allocations: dict[str, Allocation]) -> dict[str, int]:
    """Count the hints of unchanged slices; a slice whose hints no longer fit goes to ``to_update``."""
    allocated: dict[str, int] = {}
    still: list[Obj] = []
    for s in si.unchanged:
        counts = _hints_by_zone(s, allocated, allocations)
        if counts is None:
            si.to_update.append(_copy(s, list(s.get("endpoints") or ())))
            continue
        still.append(s)
        for zone, n in counts.items():
            allocated[zone] = allocated.get(zone, 0) + n
    si.unchanged[:] = still
    return allocated


def _hints_by_zone(s: Obj, allocated: dict[str, int], allocations: dict[str, Allocation]) -> dict[str, int] | None:
    """Hints per zone in a slice, or None if they are invalid: missing, for an unknown zone, or over a maximum."""
    counts: dict[str, int] = {}
    for ep in s.get("endpoints") or ():
        if not endpoint_ready(ep):
            continue
        zones = ((ep.get("hints") or {}).get("forZones")) or []
        if not zones:
            return None
        for z in zones:
            name = z.get("name", "")
            if name not in allocations:
                return None
            counts[name] = counts.get(name, 0) + 1
    for zone, n in counts.items():
        if n + allocated.get(zone, 0) > allocations[zone].maximum:
            return None
    return counts


def _redistribute(slices: list[Obj], giving: dict[str, int], receiving: dict[str, int]) -> dict[str, int]:
    """Re-hint endpoints of giving zones for receiving zones; returns the change in hints per zone."""
    moved: dict[str, int] = {}
    for s in slices:
        eps = s["endpoints"]
        for i, ep in enumerate(eps):
            if not endpoint_ready(ep):
                continue
            if not giving or not receiving:
                return moved
            zone = ep.get("zone") or ""
            if giving.get(zone, 0) <= 0:
                continue
            to = next(z for z in sorted(receiving) if receiving[z] > 0)
            eps[i] = _hinted(ep, to)
            _take_one(giving, zone)
            _take_one(receiving, to)
            moved[to] = moved.get(to, 0) + 1
            moved[zone] = moved.get(zone, 0) - 1
    return moved


def _take_one(counts: dict[str, int], zone: str) -> None:
    if counts[zone] <= 1:
        del counts[zone]
    else:
        counts[zone] -= 1


def _hinted(ep: Obj, zone: str | None) -> Obj:
    """A copy of ``ep`` hinted for ``zone`` (no hints for None); ``ep`` itself when it already is."""
    want = {"forZones": [{"name": zone}]} if zone else None
    if ep.get("hints") == want or (want is None and "hints" not in ep):
        return ep
    out = {k: v for k, v in ep.items() if k != "hints"}
    if want is not None:
        out["hints"] = want
    return out


def _copy(s: Obj, endpoints: list[Obj]) -> Obj:
    """A cached slice, copied so the plan may change it (metadata and the endpoint list are its own)."""
    out = dict(s)
    out["metadata"] = dict(s.get("metadata") or {})
    out["endpoints"] = endpoints
    return out
