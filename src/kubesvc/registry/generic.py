"""The generic registry: upstream's object semantics over the storage contract.

Every kind goes through the same steps, and this module is the only place they
are written: uid, creationTimestamp, generateName, generation (bumped only when
something outside metadata and status changes), the status subresource split,
resourceVersion preconditions (409 Conflict), namespace existence and
termination, deletionTimestamp with finalizers, propagation-policy finalizers
(``orphan``, ``foregroundDeletion``) for the garbage collector, and graceful
deletion of pods bound to a node.  Per-kind rules come from the kind's
:class:`~kubesvc.registry.strategy.Strategy`.

Storage errors are mapped to upstream's Status errors here, so the HTTP layer
above only serialises them.
"""

from __future__ import annotations

import asyncio
import copy
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from kubesvc.api import errors
from kubesvc.api.meta import generate_name, meta, new_uid, now_rfc3339
from kubesvc.api.resources import RESOURCES, Resource, by_plural
from kubesvc.registry.metadata import validate_meta_create, validate_meta_update
from kubesvc.registry.strategy import NO_ALLOCATION, Strategy
from kubesvc.storage.contract import (
    KeyExists,
    KeyNotFound,
    ListResult,
    Predicate,
    RevisionConflict,
    Store,
    Stored,
)

Obj = dict[str, Any]
NAMESPACES = by_plural("", "v1", "namespaces")
FINALIZER_ORPHAN = "orphan"
FINALIZER_FOREGROUND = "foregroundDeletion"
_CAS_RETRIES = 8


@dataclass(frozen=True)
class WriteOptions:
    dry_run: bool = False
    field_manager: str = ""


@dataclass(frozen=True)
class DeleteOptions:
    propagation_policy: str | None = None
    grace_period_seconds: int | None = None
    precondition_uid: str | None = None
    precondition_rv: str | None = None
    dry_run: bool = False


ManagedFieldsHook = Callable[[Obj | None, Obj, str, str], None]


def _spec_part(obj: Obj) -> Obj:
    return {k: v for k, v in obj.items() if k not in ("metadata", "status", "apiVersion", "kind")}


def _parse_rv(value: Any) -> int | None:
    if value in (None, ""):
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        raise errors.bad_request(f'invalid resourceVersion: "{value}"') from None


class Registry:
    """CRUD with Kubernetes object semantics for every served kind."""

    def __init__(
        self,
        store: Store,
        strategies: dict[Resource, Strategy] | None = None,
        *,
        managed_fields: ManagedFieldsHook | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.store = store
        self.strategies = {r: Strategy(r) for r in RESOURCES}
        self.strategies.update(strategies or {})
        self.managed_fields = managed_fields
        self.clock = clock

    def strategy(self, res: Resource) -> Strategy:
        return self.strategies[res]

    # --- reads --------------------------------------------------------------
    async def get(self, res: Resource, ns: str | None, name: str) -> Stored:
        try:
            return await self.store.get(res.key(ns, name))
        except KeyNotFound:
            raise errors.not_found_error(res.plural, name, res.group) from None

    async def list(
        self,
        res: Resource,
        ns: str | None,
        *,
        predicate: Predicate | None = None,
        limit: int | None = None,
        continue_token: str | None = None,
    ) -> ListResult:
        return await self.store.list(
            res.prefix(ns), predicate=predicate, limit=limit, continue_token=continue_token
        )

    # --- create -------------------------------------------------------------
    async def create(self, res: Resource, ns: str | None, obj: Obj, opts: WriteOptions) -> Stored:
        strat = self.strategy(res)
        self._set_type_meta(res, obj)
        m = meta(obj)
        if res.namespaced:
            body_ns = m.get("namespace")
            if body_ns and ns and body_ns != ns:
                raise errors.bad_request(
                    "the namespace of the provided object does not match the namespace sent on the request"
                )
            m["namespace"] = ns or body_ns or "default"
        else:
            m.pop("namespace", None)
        if not m.get("name") and m.get("generateName"):
            m["name"] = generate_name(str(m["generateName"]))
        for k in ("uid", "deletionTimestamp", "deletionGracePeriodSeconds", "selfLink"):
            m.pop(k, None)
        m.pop("resourceVersion", None)
        m["uid"] = new_uid()
        m["creationTimestamp"] = now_rfc3339(self.clock())
        if strat.has_generation:
            m["generation"] = 1
        else:
            m.pop("generation", None)
        strat.prepare_for_create(obj)
        strat.default(obj)
        name = str(m.get("name") or "")
        alloc = strat.begin_create(obj, opts.dry_run)
        try:
            errs = validate_meta_create(obj, res) + strat.validate(obj)
            if errs:
                raise errors.invalid_error(res.kind, name, errs, res.group)
            if res.namespaced:
                await self._check_namespace(res, m["namespace"], name)
            if self.managed_fields and opts.field_manager:
                self.managed_fields(None, obj, opts.field_manager, "Update")
            key = res.key(m.get("namespace"), name)
            if opts.dry_run:
                if await self._exists(key):
                    raise errors.already_exists(res.plural, name, res.group)
                alloc.rollback()
                return Stored(key, self.store.revision, _dumps(obj))
            stored = await self.store.create(key, obj)
        except KeyExists:
            alloc.rollback()
            raise errors.already_exists(res.plural, name, res.group) from None
        except BaseException:
            alloc.rollback()
            raise
        alloc.commit()
        return stored

    async def _exists(self, key: str) -> bool:
        try:
            await self.store.get(key)
            return True
        except KeyNotFound:
            return False

    async def _check_namespace(self, res: Resource, ns: str, name: str) -> None:
        assert NAMESPACES is not None
        try:
            stored = await self.store.get(NAMESPACES.key(None, ns))
        except KeyNotFound:
            raise errors.not_found_error("namespaces", ns) from None
        if (stored.value.get("metadata") or {}).get("deletionTimestamp"):
            raise errors.StatusError(
                403,
                "Forbidden",
                f'{res.qualified} "{name}" is forbidden: unable to create new content in namespace '
                f"{ns} because it is being terminated",
                {"name": name, "group": res.group, "kind": res.plural} if res.group else {"name": name, "kind": res.plural},
            )

    @staticmethod
    def _set_type_meta(res: Resource, obj: Obj) -> None:
        obj["apiVersion"] = res.api_version
        obj["kind"] = res.kind

    # --- update -------------------------------------------------------------
    async def update(
        self,
        res: Resource,
        ns: str | None,
        name: str,
        obj: Obj,
        opts: WriteOptions,
        *,
        subresource: str | None = None,
    ) -> tuple[Stored, bool]:
        """PUT semantics.  Returns (stored, created)."""
        strat = self.strategy(res)
        m = meta(obj)
        if m.get("name") and m["name"] != name:
            raise errors.bad_request(
                f"the name of the object ({m['name']}) does not match the name on the URL ({name})"
            )
        if res.namespaced and m.get("namespace") and ns and m["namespace"] != ns:
            raise errors.bad_request(
                "the namespace of the provided object does not match the namespace sent on the request"
            )
        m["name"] = name
        expected = _parse_rv(m.get("resourceVersion"))
        try:
            current = await self.store.get(res.key(ns, name))
        except KeyNotFound:
            if strat.allow_create_on_update and subresource is None:
                return await self.create(res, ns, obj, opts), True
            raise errors.not_found_error(res.plural, name, res.group) from None
        if expected is None and not strat.allow_unconditional_update:
            raise errors.invalid_error(
                res.kind, name, [errors.invalid("metadata.resourceVersion", "", "must be specified for an update")],
                res.group,
            )
        if expected is not None and expected != current.revision:
            raise errors.conflict(res.plural, name, errors.OPTIMISTIC_LOCK_MSG, res.group)
        return await self._write_update(res, current, obj, opts, subresource), False

    async def _write_update(
        self, res: Resource, current: Stored, obj: Obj, opts: WriteOptions, subresource: str | None
    ) -> Stored:
        strat = self.strategy(res)
        old = current.value
        old_m = old.get("metadata") or {}
        self._set_type_meta(res, obj)
        m = meta(obj)
        # immutable and server-owned metadata
        for k in ("uid", "creationTimestamp", "deletionTimestamp", "deletionGracePeriodSeconds", "generation"):
            if k in old_m:
                if k == "uid" and m.get(k) not in (None, "", old_m[k]):
                    continue  # a different uid: validate_meta_update reports it
                m[k] = old_m[k]
            else:
                m.pop(k, None)
        if res.namespaced:
            m["namespace"] = old_m.get("namespace")
        if subresource == "status":
            strat.prepare_for_status_update(obj, old)
            m["labels"] = copy.deepcopy(old_m.get("labels")) if "labels" in old_m else None
            if m["labels"] is None:
                m.pop("labels")
        elif subresource is None:
            strat.prepare_for_update(obj, old)
        strat.default_update(obj, old)
        name = str(m.get("name"))
        alloc = strat.begin_update(obj, old, opts.dry_run) if subresource is None else NO_ALLOCATION
        try:
            stored = await self._validate_and_write(res, current, obj, opts, subresource)
        except RevisionConflict:
            alloc.rollback()
            raise errors.conflict(res.plural, name, errors.OPTIMISTIC_LOCK_MSG, res.group) from None
        except KeyNotFound:
            alloc.rollback()
            raise errors.not_found_error(res.plural, name, res.group) from None
        except BaseException:
            alloc.rollback()
            raise
        if opts.dry_run:
            alloc.rollback()
        else:
            alloc.commit()
        return stored

    async def _validate_and_write(
        self, res: Resource, current: Stored, obj: Obj, opts: WriteOptions, subresource: str | None
    ) -> Stored:
        strat = self.strategy(res)
        old = current.value
        old_m = old.get("metadata") or {}
        m = meta(obj)
        errs = validate_meta_update(obj, old, res)
        if subresource == "status":
            errs += strat.validate_status_update(obj, old)
        else:
            errs += strat.validate_update(obj, old)
        if errs:
            raise errors.invalid_error(res.kind, str(m.get("name")), errs, res.group)
        if strat.has_generation and _spec_part(obj) != _spec_part(old):
            m["generation"] = int(old_m.get("generation") or 1) + 1
        if self.managed_fields and opts.field_manager:
            self.managed_fields(old, obj, opts.field_manager, "Update")
        if _same_content(obj, old):
            return current  # a no-op write does not bump resourceVersion, as upstream
        if opts.dry_run:
            return Stored(current.key, current.revision, _dumps(obj))
        if m.get("deletionTimestamp") and not m.get("finalizers") and self._finalizers_clear(res, obj):
            deleted = await self.store.delete(current.key, expected_revision=current.revision)
            strat.after_delete(deleted.value)
            return deleted
        return await self.store.update(current.key, obj, expected_revision=current.revision)

    @staticmethod
    def _finalizers_clear(res: Resource, obj: Obj) -> bool:
        if res.plural == "namespaces":
            return not (obj.get("spec") or {}).get("finalizers")
        if res.plural == "pods":
            return not (obj.get("metadata") or {}).get("deletionGracePeriodSeconds")
        return True

    async def guaranteed_update(
        self,
        res: Resource,
        ns: str | None,
        name: str,
        mutate: Callable[[Obj | None], Obj],
        opts: WriteOptions,
        *,
        subresource: str | None = None,
        create_if_missing: bool = False,
    ) -> tuple[Stored, bool]:
        """Read-modify-write with retries on conflict (used by PATCH).

        ``mutate`` gets a private copy of the current object (or None when
        absent and ``create_if_missing``) and returns the desired object; if the
        desired object carries a resourceVersion, it is a precondition.
        """
        for attempt in range(_CAS_RETRIES):
            await _backoff(attempt)
            try:
                current: Stored | None = await self.store.get(res.key(ns, name))
            except KeyNotFound:
                current = None
            if current is None:
                if not create_if_missing:
                    raise errors.not_found_error(res.plural, name, res.group)
                obj = mutate(None)
                meta(obj)["name"] = name
                try:
                    return await self.create(res, ns, obj, opts), True
                except errors.StatusError as e:
                    if e.reason == "AlreadyExists":
                        continue
                    raise
            obj = mutate(current.obj())
            want = _parse_rv(meta(obj).get("resourceVersion"))
            if want is not None and want != current.revision:
                raise errors.conflict(res.plural, name, errors.OPTIMISTIC_LOCK_MSG, res.group)
            if meta(obj).get("name", name) != name:
                raise errors.bad_request(
                    f"the name of the object ({meta(obj)['name']}) does not match the name on the URL ({name})"
                )
            meta(obj)["name"] = name
            try:
                return await self._write_update(res, current, obj, opts, subresource), False
            except errors.StatusError as e:
                if e.reason == "Conflict" and want is None:
                    continue
                raise
        raise errors.conflict(res.plural, name, errors.OPTIMISTIC_LOCK_MSG, res.group)

    # --- delete -------------------------------------------------------------
    async def delete(self, res: Resource, ns: str | None, name: str, opts: DeleteOptions) -> tuple[Stored, bool]:
        """Returns (object, deleted_now).  Not deleted now = finalizers or grace pending (202)."""
        for attempt in range(_CAS_RETRIES):
            await _backoff(attempt)
            current = await self.get(res, ns, name)
            obj = current.obj()
            m = meta(obj)
            if opts.precondition_uid and opts.precondition_uid != m.get("uid"):
                raise errors.conflict(
                    res.plural, name,
                    f"Precondition failed: UID in precondition: {opts.precondition_uid}, UID in object meta: {m.get('uid')}",
                    res.group,
                )
            if opts.precondition_rv and opts.precondition_rv != m.get("resourceVersion"):
                raise errors.conflict(
                    res.plural, name,
                    f"Precondition failed: ResourceVersion in precondition: {opts.precondition_rv}, "
                    f"ResourceVersion in object meta: {m.get('resourceVersion')}",
                    res.group,
                )
            changed = self._apply_delete_intent(res, obj, opts)
            if not changed and not m.get("finalizers") and not self._pending_grace(res, obj):
                if opts.dry_run:
                    return current, True
                try:
                    deleted = await self.store.delete(current.key, expected_revision=current.revision)
                except RevisionConflict:
                    continue
                except KeyNotFound:
                    raise errors.not_found_error(res.plural, name, res.group) from None
                self.strategy(res).after_delete(deleted.value)
                return deleted, True
            if not changed or opts.dry_run:
                return current, False
            try:
                stored = await self.store.update(current.key, obj, expected_revision=current.revision)
            except (RevisionConflict, KeyNotFound):
                continue
            return stored, False
        raise errors.conflict(res.plural, name, errors.OPTIMISTIC_LOCK_MSG, res.group)

    def _pending_grace(self, res: Resource, obj: Obj) -> bool:
        if res.plural == "namespaces":
            return bool((obj.get("spec") or {}).get("finalizers"))
        if res.plural == "pods":
            return bool((obj.get("metadata") or {}).get("deletionGracePeriodSeconds"))
        return False

    def _apply_delete_intent(self, res: Resource, obj: Obj, opts: DeleteOptions) -> bool:
        """Mark the object for deletion if something must happen first; True if it changed."""
        m = meta(obj)
        fins: list[str] = list(m.get("finalizers") or [])
        policy = opts.propagation_policy
        if policy == "Orphan" and FINALIZER_ORPHAN not in fins:
            fins.append(FINALIZER_ORPHAN)
        elif policy == "Foreground" and FINALIZER_FOREGROUND not in fins:
            fins.append(FINALIZER_FOREGROUND)
        if policy in ("Background", "Foreground") and FINALIZER_ORPHAN in fins and not m.get("deletionTimestamp"):
            fins.remove(FINALIZER_ORPHAN)
        grace = self._grace_seconds(res, obj, opts)
        spec_fins = (obj.get("spec") or {}).get("finalizers") if res.plural == "namespaces" else None
        if not fins and not grace and not spec_fins:
            if m.get("deletionTimestamp") and m.get("deletionGracePeriodSeconds"):
                m["deletionGracePeriodSeconds"] = 0
                return False
            return False
        changed = fins != list(m.get("finalizers") or [])
        if fins:
            m["finalizers"] = fins
        now = self.clock()
        if not m.get("deletionTimestamp"):
            m["deletionTimestamp"] = now_rfc3339(now + timedelta(seconds=grace))
            m["deletionGracePeriodSeconds"] = grace
            if self.strategy(res).has_generation:
                m["generation"] = int(m.get("generation") or 1) + 1
            changed = True
        elif grace < int(m.get("deletionGracePeriodSeconds") or 0):
            m["deletionTimestamp"] = now_rfc3339(now + timedelta(seconds=grace))
            m["deletionGracePeriodSeconds"] = grace
            changed = True
        if res.plural == "namespaces" and (obj.get("status") or {}).get("phase") != "Terminating":
            obj.setdefault("status", {})["phase"] = "Terminating"
            changed = True
        return changed

    @staticmethod
    def _grace_seconds(res: Resource, obj: Obj, opts: DeleteOptions) -> int:
        """Pods bound to a node get graceful deletion (the node agent finishes it)."""
        if res.plural != "pods" or not (obj.get("spec") or {}).get("nodeName"):
            return 0
        if (obj.get("status") or {}).get("phase") in ("Succeeded", "Failed"):
            return 0
        if opts.grace_period_seconds is not None:
            return max(0, opts.grace_period_seconds)
        return int((obj.get("spec") or {}).get("terminationGracePeriodSeconds", 30))


async def _backoff(attempt: int) -> None:
    """Wait before a compare-and-swap retry.

    A conflict usually means another write is accepted but not yet durable;
    reads only see durable state, so retrying at once would read the same old
    revision and conflict again.  A few milliseconds let the group commit land.
    """
    if attempt:
        await asyncio.sleep(min(0.002 * 2 ** (attempt - 1), 0.1))


def _same_content(a: Obj, b: Obj) -> bool:
    """Equal ignoring resourceVersion and managedFields timestamps (a no-op write)."""
    am = dict(a.get("metadata") or {})
    bm = dict(b.get("metadata") or {})
    for mm in (am, bm):
        mm.pop("resourceVersion", None)
        mm.pop("managedFields", None)
    return am == bm and {k: v for k, v in a.items() if k != "metadata"} == {
        k: v for k, v in b.items() if k != "metadata"
    }


def _dumps(obj: Obj) -> bytes:
    import orjson

    return orjson.dumps(obj)
