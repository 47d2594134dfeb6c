"""The Service strategy: upstream's defaults, validation and IP/port allocation.

The allocators live in the apiserver process (one apiserver owns them, as
upstream's in-memory bitmaps are owned by its elected repair loop) and are
rebuilt from the stored Services at start-up.  Order of a write follows
upstream: defaults, then allocation (``BeginCreate``/``BeginUpdate``), then
validation, then the write; a failed validation or write rolls the allocation
back, a successful one commits it (releasing what the old object held).
"""

from __future__ import annotations

import logging
import secrets
from typing import Any

from kubesvc.api.errors import FieldError
from kubesvc.api.meta import new_uid, now_rfc3339
from kubesvc.api.resources import Resource, by_plural
from kubesvc.registry.service.allocation import (
    AllocationError,
    RepairProblem,
    Transaction,
    plan_allocations,
    rebuild,
)
from kubesvc.registry.service.config import ServiceConfig
from kubesvc.registry.service.defaults import default_service, default_service_update
from kubesvc.registry.service.ipallocator import IPAllocator
from kubesvc.registry.service.portallocator import PortAllocator
from kubesvc.registry.service.repair import RepairNote, repair_service
from kubesvc.registry.service.validation import (
    validate_service,
    validate_service_status_update,
    validate_service_update,
)
from kubesvc.registry.strategy import Allocation, Strategy
from kubesvc.storage.contract import StorageError, Store

log = logging.getLogger(__name__)
Obj = dict[str, Any]
SERVICES = by_plural("", "v1", "services")
EVENTS = by_plural("", "v1", "events")
REPAIR_COMPONENT = "ipallocator-repair-controller"


class _DryRun:
    """A dry run takes nothing: whatever the plan took is given back at commit too."""

    def __init__(self, txn: Transaction) -> None:
        self.txn = txn

    def commit(self) -> None:
        self.txn.rollback()

    def rollback(self) -> None:
        self.txn.rollback()


class ServiceStrategy(Strategy):
    has_status = True

    def __init__(self, resource: Resource, store: Store, cfg: ServiceConfig) -> None:
        super().__init__(resource)
        self.store = store
        self.cfg = cfg
        self.ips = {a.family: a for a in (IPAllocator(c) for c in cfg.service_cidrs)}
        self.ports = PortAllocator(cfg.node_port_range)

    async def restore(self) -> None:
        """Rebuild allocator state from every stored Service (call once before serving).

        A Service that lost a clash for an address or port (the newer one)
        gets a fresh one, written back through storage; every problem is
        logged and recorded as a Warning Event on its Service (repair.py).
        """
        result = await self.store.list(self.resource.storage_prefix)
        by_key = {f"{s.value['metadata'].get('namespace') or ''}/{s.value['metadata']['name']}": s for s in result.items}
        found: dict[str, list[RepairProblem]] = {}
        for problem in rebuild((s.value for s in result.items), self.ips, self.ports):
            log.warning("service allocation repair: %s", problem)
            found.setdefault(problem.service, []).append(problem)
        for key, problems in found.items():
            stored = by_key[key]
            txn = Transaction(self.ips, self.ports)
            fixed, notes = repair_service(stored.obj(), problems, txn)
            if fixed is not None:
                try:
                    stored = await self.store.update(stored.key, fixed, expected_revision=stored.revision)
                except StorageError as e:
                    txn.rollback()
                    log.error("service allocation repair: could not update %s: %s", key, e)
                else:
                    txn.commit()
                    log.warning("service allocation repair: %s reassigned: %s", key, "; ".join(n.message for n in notes))
            for note in notes:
                await self._record_event(stored.value, note)

    async def _record_event(self, svc: Obj, note: RepairNote) -> None:
        """A core/v1 Warning Event on the Service, as upstream's repair controllers emit."""
        m = svc["metadata"]
        now = now_rfc3339()
        name = f"{m['name']}.{secrets.token_hex(8)}"
        event = {
            "apiVersion": "v1", "kind": "Event",
            "metadata": {"name": name, "namespace": m.get("namespace"), "uid": new_uid(), "creationTimestamp": now},
            "involvedObject": {"apiVersion": "v1", "kind": "Service", "namespace": m.get("namespace"),
                               "name": m["name"], "uid": m.get("uid"), "resourceVersion": m.get("resourceVersion")},
            "reason": note.reason, "message": note.message, "type": "Warning", "count": 1,
            "firstTimestamp": now, "lastTimestamp": now,
            "source": {"component": REPAIR_COMPONENT}, "reportingComponent": REPAIR_COMPONENT, "reportingInstance": "",
        }
        assert EVENTS is not None
        try:
            await self.store.create(EVENTS.key(m.get("namespace"), name), event)
        except StorageError as e:
            log.error("service allocation repair: could not record an event for %s: %s", m["name"], e)

    def initial_status(self, obj: Obj) -> Any:
        return {"loadBalancer": {}}

    def default(self, obj: Obj) -> None:
        default_service(obj, self.cfg)

    def default_update(self, obj: Obj, old: Obj) -> None:
        default_service_update(obj, old, self.cfg)

    def _plan(self, new: Obj | None, old: Obj | None, dry_run: bool) -> Allocation:
        try:
            txn = plan_allocations(new, old, self.ips, self.ports)
        except AllocationError as e:
            name = ((new or old or {}).get("metadata") or {}).get("name", "")
            raise e.status(str(name)) from None
        return _DryRun(txn) if dry_run else txn

    def begin_create(self, obj: Obj, dry_run: bool) -> Allocation:
        return self._plan(obj, None, dry_run)

    def begin_update(self, obj: Obj, old: Obj, dry_run: bool) -> Allocation:
        return self._plan(obj, old, dry_run)

    def after_delete(self, obj: Obj) -> None:
        self._plan(None, obj, False).commit()

    def validate(self, obj: Obj) -> list[FieldError]:
        return validate_service(obj)

    def validate_update(self, obj: Obj, old: Obj) -> list[FieldError]:
        return validate_service_update(obj, old)

    def validate_status_update(self, obj: Obj, old: Obj) -> list[FieldError]:
        return validate_service_status_update(obj, old)


def service_strategy(store: Store, service_cidr: str, node_port_range: tuple[int, int]) -> ServiceStrategy:
    assert SERVICES is not None
    return ServiceStrategy(SERVICES, store, ServiceConfig(service_cidr=service_cidr, node_port_range=node_port_range))
