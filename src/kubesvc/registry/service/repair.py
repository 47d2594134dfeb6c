"""Start-up repair: act on what :func:`allocation.rebuild` could not restore.

``rebuild`` lets the older Service keep a contested address and reports the
newer one.  Upstream's repair controllers (ipallocator and portallocator
``repair.go``) only report such a clash with a Warning Event ("please
recreate service"); issue 3 asks us to also fix it, so the newer Service gets
a fresh address or port here.  Values outside the configured ranges are only
reported, as upstream does.  This module is pure bookkeeping: the caller
(strategy.py) writes the fixed Service back and records the Events.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from kubesvc.api.validation.names import ip_family
from kubesvc.registry.service.allocation import RepairProblem, Transaction
from kubesvc.registry.service.bitmap import AllocatorError, RestoreResult

Obj = dict[str, Any]


@dataclass(frozen=True)
class RepairNote:
    """One thing to tell the user about a Service (a Warning Event's reason and message)."""

    reason: str
    message: str


def repair_service(svc: Obj, problems: Iterable[RepairProblem], txn: Transaction) -> tuple[Obj | None, list[RepairNote]]:
    """Fresh values for every duplicate ``problems`` lists for ``svc``.

    Returns a fixed copy of ``svc`` (None when nothing could be changed) and
    the notes to record.  New values are taken through ``txn``: commit it once
    the copy is stored, roll it back if the write fails.
    """
    fixed = copy.deepcopy(svc)
    spec = fixed.setdefault("spec", {})
    notes: list[RepairNote] = []
    changed = False
    for p in problems:
        if p.field.startswith("spec.clusterIPs["):
            note, did = _repair_ip(spec, p, txn)
        else:
            note, did = _repair_port(spec, p, txn)
        notes.append(note)
        changed = changed or did
    return (fixed if changed else None), notes


def _repair_ip(spec: Obj, p: RepairProblem, txn: Transaction) -> tuple[RepairNote, bool]:
    ip = str(p.value)
    family = ip_family(ip) or "unknown"
    if p.problem != RestoreResult.DUPLICATE or family not in txn.ips:
        where = txn.ips[family].cidr if family in txn.ips else "(no range of this family is configured)"
        return RepairNote("ClusterIPOutOfRange",
                          f"Cluster IP [{family}]:{ip} is not within the configured Service CIDR {where}; "
                          "please recreate service"), False
    try:
        fresh = txn.alloc_ip(family, "")
    except AllocatorError as e:
        return RepairNote("ClusterIPAlreadyAllocated",
                          f"Cluster IP [{family}]:{ip} was assigned to multiple services and no other address "
                          f"is free ({e}); please recreate service"), False
    index = int(p.field[len("spec.clusterIPs["):-1])
    ips = list(spec.get("clusterIPs") or [])
    if index < len(ips):
        ips[index] = fresh
        spec["clusterIPs"] = ips
    if index == 0:
        spec["clusterIP"] = fresh
    return RepairNote("ClusterIPAlreadyAllocated",
                      f"Cluster IP [{family}]:{ip} was assigned to multiple services; this service now has {fresh}"), True


def _repair_port(spec: Obj, p: RepairProblem, txn: Transaction) -> tuple[RepairNote, bool]:
    port = int(p.value)
    if p.problem != RestoreResult.DUPLICATE:
        return RepairNote("PortOutOfRange",
                          f"Port {port} is not within the port range {txn.ports.range_text}; please recreate service"), False
    try:
        fresh = txn.alloc_port(0)
    except AllocatorError as e:
        return RepairNote("PortAlreadyAllocated",
                          f"Port {port} was assigned to multiple services and no other port is free ({e}); "
                          "please recreate service"), False
    if p.field == "spec.healthCheckNodePort":
        spec["healthCheckNodePort"] = fresh
    else:
        for sp in spec.get("ports") or []:  # ports sharing the number (80/TCP, 80/UDP) move together
            if sp.get("nodePort") == port:
                sp["nodePort"] = fresh
    return RepairNote("PortAlreadyAllocated",
                      f"Port {port} was assigned to multiple services; this service now has {fresh}"), True
