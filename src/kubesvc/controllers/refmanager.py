"""Claiming dependents by selector: adopt matching orphans, release non-matching children.

Upstream's ``ControllerRefManager``: a controller owns what carries its
controller ownerReference; an object with no controller that matches its
selector is adopted; an owned object that stopped matching is released.
The decision (:func:`plan_claim`) is pure; :func:`apply_claim` makes the
patches, as upstream does, with strategic merge patches keyed by the
object's UID so a recreated object of the same name is never touched.
Nothing is adopted or released while the owner is being deleted.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from kubesvc.api.meta import controller_of
from kubesvc.api.resources import Resource
from kubesvc.api.selectors import LabelSelector
from kubesvc.client.rest import ApiClient, ApiError

from .podutil import is_deleting

log = logging.getLogger(__name__)
Obj = dict[str, Any]


def controller_ref(owner: Obj) -> Obj:
    """The ownerReference a controller puts on what it creates or adopts."""
    m = owner.get("metadata") or {}
    return {"apiVersion": owner.get("apiVersion"), "kind": owner.get("kind"), "name": m.get("name"),
            "uid": m.get("uid"), "controller": True, "blockOwnerDeletion": True}


@dataclass
class ClaimPlan:
    owned: list[Obj] = field(default_factory=list)  # ours and matching: keep
    adopt: list[Obj] = field(default_factory=list)  # orphans matching: claim
    release: list[Obj] = field(default_factory=list)  # ours, no longer matching


def plan_claim(owner: Obj, selector: LabelSelector, candidates: Iterable[Obj]) -> ClaimPlan:
    """Sort ``candidates`` (same namespace) into owned, to adopt and to release."""
    uid = (owner.get("metadata") or {}).get("uid")
    owner_deleting = is_deleting(owner)
    plan = ClaimPlan()
    for obj in candidates:
        ref = controller_of(obj)
        labels = (obj.get("metadata") or {}).get("labels") or {}
        matches = selector.matches(labels)
        if ref is not None:
            if ref.get("uid") != uid:
                continue
            if matches or owner_deleting:
                plan.owned.append(obj)  # a deleting owner keeps what it has
            else:
                plan.release.append(obj)
        elif matches and not owner_deleting and not is_deleting(obj):
            plan.adopt.append(obj)
    return plan


def adopt_patch(owner: Obj, obj: Obj) -> Obj:
    return {"metadata": {"ownerReferences": [controller_ref(owner)], "uid": obj["metadata"]["uid"]}}


def release_patch(owner: Obj, obj: Obj) -> Obj:
    return {"metadata": {"ownerReferences": [{"$patch": "delete", "uid": owner["metadata"]["uid"]}],
                         "uid": obj["metadata"]["uid"]}}


async def apply_claim(client: ApiClient, resource: Resource, owner: Obj, plan: ClaimPlan,
                      can_adopt: Callable[[], Awaitable[bool]]) -> list[Obj]:
    """Make the adoptions and releases; return what the owner now controls.

    ``can_adopt`` re-reads the owner from the API (once, only if something is
    to be adopted) so a stale cache never adopts for an owner already gone.
    Objects that vanished meanwhile are skipped; other failures raise after
    the rest were tried, so the key is retried.
    """
    ns = (owner.get("metadata") or {}).get("namespace")
    owned = list(plan.owned)
    errors: list[BaseException] = []
    if plan.adopt and await can_adopt():
        results = await asyncio.gather(*(
            client.patch(resource, o["metadata"]["name"], adopt_patch(owner, o), ns, patch_type="strategic")
            for o in plan.adopt), return_exceptions=True)
        for r in results:
            if isinstance(r, dict):
                owned.append(r)
            elif not _gone(r):
                errors.append(r)
    if plan.release:
        results = await asyncio.gather(*(
            client.patch(resource, o["metadata"]["name"], release_patch(owner, o), ns, patch_type="strategic")
            for o in plan.release), return_exceptions=True)
        errors.extend(r for r in results if isinstance(r, BaseException) and not _gone(r))
    if errors:
        raise errors[0]
    return owned


def _gone(e: object) -> bool:
    """NotFound, or a UID mismatch (422/409): the object we planned for no longer exists."""
    return isinstance(e, ApiError) and e.code in (404, 409, 422)


async def recheck_owner(client: ApiClient, resource: Resource, owner: Obj) -> bool:
    """Upstream's RecheckDeletionTimestamp: the live owner is the same one and not being deleted."""
    m = owner.get("metadata") or {}
    try:
        fresh = await client.get(resource, m.get("name"), m.get("namespace"))
    except ApiError as e:
        if e.code == 404:
            return False
        raise
    fm = fresh.get("metadata") or {}
    return fm.get("uid") == m.get("uid") and not fm.get("deletionTimestamp")
