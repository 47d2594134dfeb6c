"""How many endpoints each zone should get: the arithmetic of topology-aware hints.

Pure functions over plain data, after upstream's topologycache (KEP-2433).
A zone's share of a Service's ready endpoints follows its share of the
allocatable CPU of the cluster's Ready nodes.  Hints are only worth giving
when the result is safe, so every step can say *no* with the reason upstream
puts in its ``TopologyAwareHintsDisabled`` event:

* node facts must be complete: a Ready node (control-plane nodes aside)
  without a zone label or allocatable CPU makes the whole picture unusable;
* there must be at least two zones, and at least as many endpoints as zones;
* no zone may be left needing more endpoints than it could get without an
  endpoint carrying more than 20% over its fair share (the overload threshold).

Where upstream walks Go maps (random order), zones go here in name order, so
the same input always gives the same allocation.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from .model import LABEL_ZONE

Obj = dict[str, Any]
OVERLOAD_THRESHOLD = 0.2
EXCLUDED_NODE_LABELS = ("node-role.kubernetes.io/control-plane", "node-role.kubernetes.io/master")

# The reasons, as upstream's event messages say them.
NO_ZONE_SPECIFIED = "One or more endpoints do not have a zone specified"
NO_ALLOCATED_HINTS_FOR_ZONES = "No hints allocated for zones"
TOPOLOGY_AWARE_HINTS_ENABLED = "Topology Aware Hints has been enabled"
TOPOLOGY_AWARE_HINTS_DISABLED = "Topology Aware Hints has been disabled"
INSUFFICIENT_NODE_INFO = ("Insufficient Node information: allocatable CPU or zone not specified "
                          "on one or more nodes")
NODES_READY_IN_ONE_ZONE_ONLY = "Nodes only ready in one zone"
INSUFFICIENT_NUMBER_OF_ENDPOINTS = "Insufficient number of endpoints"
MIN_ALLOCATION_EXCEEDS_OVERLOAD_THRESHOLD = ("Unable to allocate minimum required endpoints to each zone "
                                             "without exceeding overload threshold")


@dataclass(frozen=True)
class Allocation:
    """A zone's endpoint budget: at least ``minimum`` (to stay under the overload threshold), at most ``maximum``."""

    minimum: int
    maximum: int
    desired: float


# --- node facts -------------------------------------------------------------------

_QUANTITY = re.compile(r"^([+-]?(?:\d+\.?\d*|\.\d+))(?:[eE]([+-]?\d+))?(n|u|m|k|M|G|T|P|E|Ki|Mi|Gi|Ti|Pi|Ei)?$")
_SUFFIX = {None: 1.0, "n": 1e-9, "u": 1e-6, "m": 1e-3, "k": 1e3, "M": 1e6, "G": 1e9, "T": 1e12, "P": 1e15,
           "E": 1e18, "Ki": 2.0**10, "Mi": 2.0**20, "Gi": 2.0**30, "Ti": 2.0**40, "Pi": 2.0**50, "Ei": 2.0**60}


def cpu_millis(quantity: Any) -> int:
    """A CPU quantity ("4", "3500m", "0.5", "2e3m") in millicores, rounded up as upstream's MilliValue; 0 if unusable."""
    m = _QUANTITY.match(str(quantity or "").strip())
    if not m:
        return 0
    value = float(m.group(1)) * 10.0 ** int(m.group(2) or 0) * _SUFFIX[m.group(3)]
    return max(0, math.ceil(value * 1000 - 1e-9))


def node_ready(node: Obj) -> bool:
    for c in (node.get("status") or {}).get("conditions") or []:
        if c.get("type") == "Ready":
            return c.get("status") == "True"
    return False


def zone_cpu_ratios(nodes: Iterable[Obj]) -> dict[str, float] | None:
    """Each zone's share of the Ready nodes' allocatable CPU; None when the node facts cannot be trusted.

    Nodes that are not Ready and control-plane nodes do not count.  One
    counted node without a zone or allocatable CPU spoils everything (as
    upstream: a partial picture would send traffic to the wrong places).  A
    single zone is returned as is, so :func:`allocate` can say so.
    """
    cpu_by_zone: dict[str, int] = {}
    for node in nodes:
        labels = (node.get("metadata") or {}).get("labels") or {}
        if any(k in labels for k in EXCLUDED_NODE_LABELS) or not node_ready(node):
            continue
        zone = labels.get(LABEL_ZONE) or ""
        cpu = cpu_millis(((node.get("status") or {}).get("allocatable") or {}).get("cpu"))
        if not zone or cpu <= 0:
            return None
        cpu_by_zone[zone] = cpu_by_zone.get(zone, 0) + cpu
    total = sum(cpu_by_zone.values())
    if total <= 0:
        return None
    return {zone: cpu / total for zone, cpu in sorted(cpu_by_zone.items())}


# --- allocation -------------------------------------------------------------------

def allocate(ratios: Mapping[str, float] | None, endpoints: int) -> dict[str, Allocation] | str:
    """Per-zone budgets for ``endpoints`` ready endpoints, or the reason none can be given."""
    if ratios is None:
        return INSUFFICIENT_NODE_INFO
    if len(ratios) < 2:
        return NODES_READY_IN_ONE_ZONE_ONLY
    if len(ratios) > endpoints:
        return f"{INSUFFICIENT_NUMBER_OF_ENDPOINTS} ({endpoints} endpoints, {len(ratios)} zones)"
    minimums: dict[str, tuple[int, float]] = {}
    for zone in sorted(ratios):
        desired = ratios[zone] * endpoints
        minimum = math.ceil(desired * (1 / (1 + OVERLOAD_THRESHOLD)))  # upstream's float steps, same rounding
        minimums[zone] = (minimum, max(desired, float(minimum)))
    spare = endpoints - sum(m for m, _ in minimums.values())
    if spare < 0:
        return f"{MIN_ALLOCATION_EXCEEDS_OVERLOAD_THRESHOLD} ({endpoints} endpoints, {len(ratios)} zones)"
    return {zone: Allocation(minimum, minimum + spare, desired) for zone, (minimum, desired) in minimums.items()}


def giving_and_receiving(allocations: Mapping[str, Allocation],
                         allocated: Mapping[str, int]) -> tuple[dict[str, int], dict[str, int]]:
    """How many whole endpoints each zone should give away and each should receive.

    The exact surplus or shortfall per zone is fractional; endpoints move one
    at a time from the zone with the most surplus to the one with the biggest
    shortfall, while moving one still brings both closer to their target.
    """
    give_want: dict[str, float] = {}
    receive_want: dict[str, float] = {}
    for zone in sorted(allocations):
        have, target = allocated.get(zone, 0), allocations[zone].desired
        if have > target:
            give_want[zone] = have - target
        elif have < target:
            receive_want[zone] = target - have
    giving: dict[str, int] = {}
    receiving: dict[str, int] = {}
    while True:
        gz, give = _most(give_want)
        rz, receive = _most(receive_want)
        if not gz or not rz or (give < 1.0 and receive < 1.0) or give < 0.5 or receive < 0.5:
            return giving, receiving
        giving[gz] = giving.get(gz, 0) + 1
        give_want[gz] -= 1
        receiving[rz] = receiving.get(rz, 0) + 1
        receive_want[rz] -= 1


def _most(wants: Mapping[str, float]) -> tuple[str, float]:
    """The zone wanting the most (the first by name on a tie), and how much; ("", 0) when none wants anything."""
    zone, most = "", 0.0
    for z in sorted(wants):
        if wants[z] > most:
            zone, most = z, wants[z]
    return zone, most


def service_overloaded(allocated: Mapping[str, int], ratios: Mapping[str, float] | None) -> bool:
    """Whether a Service's hinted endpoints no longer fit the zones (some zone now gets too few, or none)."""
    if not allocated:
        return False
    if not ratios:
        return True
    total = sum(allocated.values())
    for zone, ratio in ratios.items():
        have = allocated.get(zone)
        if have is None or have < math.ceil(total * ratio * (1 / (1 + OVERLOAD_THRESHOLD))):
            return True
    return False


def with_address_type(message: str, address_type: str) -> str:
    """Upstream's event messages end with the address type they concern."""
    return f"{message}, addressType: {address_type}"
