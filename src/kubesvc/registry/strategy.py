"""Per-kind rules the generic registry applies around every write.

Upstream splits a resource's behaviour into a "strategy" (defaulting, what a
create or update may change, validation) and the generic store that handles
metadata, preconditions and storage.  We keep that split: the generic registry
(:mod:`kubesvc.registry.generic`) is the same for every kind, and each kind
supplies a :class:`Strategy`.  Pure hooks return field errors; hooks with side
effects (IP and port allocation) are the ``begin_*`` methods, which return an
:class:`Allocation` to commit after the write or roll back if it fails.
"""

from __future__ import annotations

from typing import Any, Protocol

from kubesvc.api.errors import FieldError
from kubesvc.api.resources import Resource

Obj = dict[str, Any]

class Strategy:
    """Default behaviour: a kind with no spec/status split and no special rules."""

    #: whether ``status`` is only writable through the /status subresource
    has_status: bool = False
    #: whether metadata.generation is kept (bumped when anything but metadata/status changes)
    has_generation: bool = False
    #: whether PUT on a missing object creates it (upstream: Endpoints, Events, Leases)
    allow_create_on_update: bool = False
    #: whether PUT without metadata.resourceVersion is accepted
    allow_unconditional_update: bool = True

    def __init__(self, resource: Resource) -> None:
        self.resource = resource

    # --- pure hooks -------------------------------------------------------
    def default(self, obj: Obj) -> None:
        """Fill upstream's defaults in place (called for create and update)."""

    def prepare_for_create(self, obj: Obj) -> None:
        """Drop what a create may not set (status for kinds with a status subresource)."""
        if self.has_status:
            obj["status"] = self.initial_status(obj)

    def initial_status(self, obj: Obj) -> Any:
        return {}

    def prepare_for_update(self, obj: Obj, old: Obj) -> None:
        """A spec update keeps the stored status."""
        if self.has_status:
            if "status" in old:
                obj["status"] = old["status"]
            else:
                obj.pop("status", None)

    def prepare_for_status_update(self, obj: Obj, old: Obj) -> None:
        """A status update keeps everything but status (and labels/annotations stay as stored)."""
        for k in list(obj):
            if k not in ("status", "metadata", "apiVersion", "kind"):
                del obj[k]
        for k, v in old.items():
            if k not in ("status", "metadata", "apiVersion", "kind"):
                obj[k] = v

    def validate(self, obj: Obj) -> list[FieldError]:
        return []

    def validate_update(self, obj: Obj, old: Obj) -> list[FieldError]:
        return self.validate(obj)

    def validate_status_update(self, obj: Obj, old: Obj) -> list[FieldError]:
        return []

    # --- hooks with side effects -----------------------------------------
    def default_update(self, obj: Obj, old: Obj) -> None:
        """Defaults on update; kinds that carry values over from the stored object override it."""
        self.default(obj)

    def begin_create(self, obj: Obj, dry_run: bool) -> Allocation:
        """Allocate what the object needs (before validation, as upstream's BeginCreate)."""
        return NO_ALLOCATION

    def begin_update(self, obj: Obj, old: Obj, dry_run: bool) -> Allocation:
        return NO_ALLOCATION

    def after_delete(self, obj: Obj) -> None:
        """Release what the deleted object held."""


class Allocation(Protocol):
    """What a begin_* hook took: ``commit()`` after a successful write, ``rollback()`` otherwise."""

    def commit(self) -> None: ...

    def rollback(self) -> None: ...


class _NoAllocation:
    def commit(self) -> None:
        return None

    def rollback(self) -> None:
        return None


NO_ALLOCATION: Allocation = _NoAllocation()
