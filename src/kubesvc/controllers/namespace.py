"""The namespace controller: empty a terminating namespace, then finalize it.

Deleting a Namespace only marks it: the apiserver sets ``deletionTimestamp``
and phase ``Terminating`` and keeps it while ``spec.finalizers`` holds
``kubernetes``.  This controller (upstream's pkg/controller/namespace) owns
that finalizer.  For a terminating namespace it

1. finds every namespaced resource that can be listed and deleted (API
   discovery, falling back to the built-in table);
2. deletes their content -- deletecollection where served, else one by one --
   with background propagation, so the GC cleans up behind;
3. lists again and, while anything remains, records why in the namespace's
   status conditions (upstream's five condition types and wording) and looks
   again later;
4. when nothing remains, removes ``kubernetes`` from ``spec.finalizers``
   through ``PUT /api/v1/namespaces/{name}/finalize``; the apiserver then
   deletes the namespace.
"""

from __future__ import annotations

import logging
from collections.abc import Hashable, Iterable, Iterator
from datetime import UTC, datetime
from typing import Any

from kubesvc.api.resources import RESOURCES, Resource
from kubesvc.client.controller import Controller, Requeue
from kubesvc.client.rest import ApiClient, ApiError
from kubesvc.client.sharedinformers import SharedInformerFactory

log = logging.getLogger(__name__)

Obj = dict[str, Any]
NAMESPACES = next(r for r in RESOURCES if r.plural == "namespaces" and not r.group)
FINALIZER = "kubernetes"

CONDITION_TYPES = ("NamespaceDeletionDiscoveryFailure", "NamespaceDeletionGroupVersionParsingFailure",
                   "NamespaceDeletionContentFailure", "NamespaceContentRemaining",
                   "NamespaceFinalizersRemaining")
# Upstream's reason and message for each condition type when all is well.
OK_CONDITIONS = {
    "NamespaceDeletionDiscoveryFailure": ("ResourcesDiscovered", "All resources successfully discovered"),
    "NamespaceDeletionGroupVersionParsingFailure": ("ParsedGroupVersions", "All legacy kube types successfully parsed"),
    "NamespaceDeletionContentFailure": ("ContentDeleted", "All content successfully deleted, may be waiting on finalization"),
    "NamespaceContentRemaining": ("ContentRemoved", "All content successfully removed"),
    "NamespaceFinalizersRemaining": ("ContentRemoved", "All content successfully removed"),
}


def _deleting(ns: Obj) -> bool:
    return bool((ns.get("metadata") or {}).get("deletionTimestamp"))


class ContentReport:
    """What one pass over a namespace found: failures (-> True conditions) and leftovers."""

    def __init__(self) -> None:
        self.discovery_error = ""
        self.delete_errors: list[str] = []
        self.remaining: dict[str, int] = {}  # "pods." -> count, as upstream's resource.group
        self.finalizers: dict[str, int] = {}

    def conditions(self) -> dict[str, tuple[str, str, str]]:
        """type -> (status, reason, message) for the failing types only."""
        out: dict[str, tuple[str, str, str]] = {}
        if self.discovery_error:
            out["NamespaceDeletionDiscoveryFailure"] = ("True", "DiscoveryFailed", self.discovery_error)
        if self.delete_errors:
            msgs = sorted(self.delete_errors)
            out["NamespaceDeletionContentFailure"] = (
                "True", "ContentDeletionFailed",
                f"Failed to delete all resource types, {len(msgs)} remaining: {', '.join(msgs)}")
        if self.remaining:
            what = sorted(f"{r} has {n} resource instances" for r, n in self.remaining.items() if n)
            out["NamespaceContentRemaining"] = ("True", "SomeResourcesRemain",
                                                f"Some resources are remaining: {', '.join(what)}")
        if self.finalizers:
            what = sorted(f"{f} in {n} resource instances" for f, n in self.finalizers.items() if n)
            out["NamespaceFinalizersRemaining"] = ("True", "SomeFinalizerRemain",
                                                   f"Some finalizers are remaining: {', '.join(what)}")
        return out


def updated_conditions(current: list[Obj], report: ContentReport, now: str) -> list[Obj] | None:
    """The namespace's conditions after ``report``, or None if nothing changed (upstream's rules)."""
    failing = report.conditions()
    out = [dict(c) for c in current]
    changed = False
    for ctype in CONDITION_TYPES:
        status, reason, message = failing.get(ctype) or ("False", *OK_CONDITIONS[ctype])
        old = next((c for c in out if c.get("type") == ctype), None)
        if old is None:
            out.append({"type": ctype, "status": status, "lastTransitionTime": now,
                        "reason": reason, "message": message})
            changed = True
        elif (old.get("status"), old.get("reason"), old.get("message")) != (status, reason, message):
            if old.get("status") != status:
                old["lastTransitionTime"] = now
            old.update(status=status, reason=reason, message=message)
            changed = True
    return out if changed else None


class NamespaceController(Controller):
    """``NamespaceController(ApiClient.from_kubeconfig(path)).run()``.

    ``resources``: the kinds to empty; None discovers them from the server.
    ``content_poll``: seconds between looks while content remains.
    """

    name = "namespace"

    def __init__(self, client: ApiClient, *, resources: Iterable[Resource] | None = None, workers: int = 2,
                 resync_period: float | None = 300.0, content_poll: float = 1.0,
                 factory: SharedInformerFactory | None = None) -> None:
        super().__init__(workers=workers, resync_period=resync_period)
        self.factory = self.informer_factory(client, factory)
        self.client = client
        self.resources = list(resources) if resources is not None else None
        self.content_poll = content_poll
        self.namespaces = self.factory.informer(NAMESPACES)
        self.namespaces.add_handler(self._on_change, lambda _old, new: self._on_change(new))
        self.informers.append(self.namespaces)

    def _on_change(self, ns: Obj) -> None:
        if _deleting(ns):
            self.enqueue(ns["metadata"]["name"])

    def resync_keys(self) -> Iterator[Hashable]:
        return (o["metadata"]["name"] for o in self.namespaces.store.list() if _deleting(o))

    async def reconcile(self, key: Hashable) -> None:
        name = str(key)
        try:
            ns = await self.client.get(NAMESPACES, name)
        except ApiError as e:
            if e.code == 404:
                return
            raise
        if not _deleting(ns) or FINALIZER not in ((ns.get("spec") or {}).get("finalizers") or []):
            return
        report = ContentReport()
        resources = await self._namespaced_resources(report)
        await self._delete_content(name, resources, report)
        await self._update_status(ns, report)
        if report.delete_errors:
            raise RuntimeError(f"namespace {name}: {'; '.join(report.delete_errors)}")
        if report.remaining:
            raise Requeue(self.content_poll, f"namespace {name}: content remains")
        await self._finalize(name)

    async def _namespaced_resources(self, report: ContentReport) -> list[Resource]:
        if self.resources is not None:
            candidates = self.resources
        else:
            try:
                candidates = await self.client.server_resources()
            except (ApiError, OSError, TimeoutError) as e:
                report.discovery_error = f"Discovery failed for some groups: {e}"
                candidates = list(RESOURCES)
        return [r for r in candidates if r.namespaced and {"list", "delete"} <= set(r.verbs)]

    async def _delete_content(self, ns: str, resources: list[Resource], report: ContentReport) -> None:
        for res in resources:
            try:
                await self._delete_all(ns, res)
            except ApiError as e:
                report.delete_errors.append(f"failed to delete {res.qualified}: {e.message}")
                continue
            try:
                left = (await self.client.list_all(res, ns)).get("items") or []
            except ApiError as e:
                report.delete_errors.append(f"failed to list {res.qualified}: {e.message}")
                continue
            if left:
                report.remaining[f"{res.plural}.{res.group}"] = len(left)
            for obj in left:
                for f in (obj.get("metadata") or {}).get("finalizers") or []:
                    report.finalizers[f] = report.finalizers.get(f, 0) + 1

    async def _delete_all(self, ns: str, res: Resource) -> None:
        """deletecollection if served (one call), else list and delete each object."""
        if "deletecollection" in res.verbs:
            try:
                await self.client.delete_collection(res, ns, propagation_policy="Background")
                return
            except ApiError as e:
                if e.code not in (404, 405):
                    raise
        for obj in (await self.client.list_all(res, ns)).get("items") or []:
            if (obj.get("metadata") or {}).get("deletionTimestamp"):
                continue
            try:
                await self.client.delete(res, obj["metadata"]["name"], ns, propagation_policy="Background")
            except ApiError as e:
                if e.code not in (404, 409):
                    raise

    async def _update_status(self, ns: Obj, report: ContentReport) -> None:
        status = ns.get("status") or {}
        now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        conditions = updated_conditions(status.get("conditions") or [], report, now)
        if conditions is None and status.get("phase") == "Terminating":
            return
        body = {**ns, "status": {**status, "phase": "Terminating",
                                 "conditions": conditions or status.get("conditions") or []}}
        try:
            await self.client.update_status(NAMESPACES, body)
        except ApiError as e:
            if e.code not in (404, 409):  # a conflict is retried on the next pass
                raise

    async def _finalize(self, name: str) -> None:
        """Drop our finalizer via the finalize subresource, retrying on conflicts."""
        for _ in range(5):
            try:
                ns = await self.client.get(NAMESPACES, name)
                finalizers = (ns.get("spec") or {}).get("finalizers") or []
                if FINALIZER not in finalizers:
                    return
                ns.setdefault("spec", {})["finalizers"] = [f for f in finalizers if f != FINALIZER]
                await self.client.replace(NAMESPACES, ns, subresource="finalize")
                log.info("namespace %s: content gone, finalized", name)
                return
            except ApiError as e:
                if e.code == 404:
                    return
                if e.code != 409:
                    raise
        raise RuntimeError(f"namespace {name}: finalize kept conflicting")
