"""Per-kind rules the generic registry applies around every write.

Upstream splits a resource's behaviour into a "strategy" (defaulting, what a
create or update may change, validation) and the generic store that handles
metadata, preconditions and storage.  We keep that split: the generic registry
(:mod:`kubesvc.registry.generic`) is the same for every kind, and each kind
supplies a :class:`Strategy`.  Pure hooks return field errors; hooks with side
effects (IP and port allocation) are the async ``admit_*`` methods, which
return an undo callback so a failed write releases what it took.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from kubesvc.api.errors import FieldError
from kubesvc.api.resources import Resource

Obj = dict[str, Any]
Undo = Callable[[], None]


def _noop() -> None:
    return None


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
    async def admit_create(self, obj: Obj, dry_run: bool) -> Undo:
        """Allocate what the object needs before it is stored."""
        return _noop

    async def admit_update(self, obj: Obj, old: Obj, dry_run: bool) -> Undo:
        return _noop

    def after_delete(self, obj: Obj) -> None:
        """Release what the deleted object held."""


AsyncHook = Callable[[Obj], Awaitable[None]]
