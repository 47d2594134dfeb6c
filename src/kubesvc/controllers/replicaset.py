"""The ReplicaSet controller: keep ``spec.replicas`` pods from the template.

Level-triggered, as upstream's ``pkg/controller/replicaset``: a sync reads
the ReplicaSet and the pods in its namespace from the caches, claims pods
(adopting matching orphans, releasing pods that stopped matching), and
creates or deletes the difference -- but only when the cache has caught up
with its own previous writes (:mod:`.expectations`), so a lagging cache
never makes it create twice.  Creations go in slow-start batches and stop
at the first failure, which then shows as a ``ReplicaFailure`` condition.
Pods being deleted or finished don't count.  Status is written only when it
changed; a ReplicaSet with ``minReadySeconds`` is looked at again when its
pods should have become available.
"""

from __future__ import annotations

import asyncio
import copy
import logging
import time
from collections.abc import Callable, Hashable, Iterable
from typing import Any

from kubesvc.api.meta import controller_of, key_of
from kubesvc.api.resources import by_kind
from kubesvc.api.selectors import LabelSelector, from_label_selector_dict
from kubesvc.client.controller import Controller
from kubesvc.client.events import NORMAL, WARNING, EventRecorder
from kubesvc.client.rest import ApiClient, ApiError
from kubesvc.client.sharedinformers import SharedInformerFactory

from . import replicasetplan as plan
from .expectations import Expectations
from .podutil import is_active, is_deleting, is_ready
from .refmanager import apply_claim, plan_claim, recheck_owner

log = logging.getLogger(__name__)
Obj = dict[str, Any]
PODS = by_kind("v1", "Pod")
REPLICASETS = by_kind("apps/v1", "ReplicaSet")
UID_INDEX = "uid"
CONTROLLER_INDEX = "controller-uid"
ORPHAN_INDEX = "orphan-namespace"  # pods with no controller, by namespace: the candidates for adoption


def index_uid(obj: Obj) -> list[str]:
    uid = (obj.get("metadata") or {}).get("uid")
    return [uid] if uid else []


def index_controller_uid(obj: Obj) -> list[str]:
    ref = controller_of(obj)
    return [ref["uid"]] if ref and ref.get("uid") else []


def index_orphan_namespace(obj: Obj) -> list[str]:
    if controller_of(obj) is not None:
        return []
    return [(obj.get("metadata") or {}).get("namespace") or ""]


def selector_of(obj: Obj) -> LabelSelector:
    """The object's ``spec.selector``; an invalid or missing one selects nothing."""
    try:
        sel = (obj.get("spec") or {}).get("selector")
        return from_label_selector_dict(sel) if sel else LabelSelector.nothing()
    except Exception:
        return LabelSelector.nothing()


class ReplicaSetController(Controller):
    """``ReplicaSetController(client).run()``: one key per ReplicaSet (``ns/name``)."""

    name = "replicaset"

    def __init__(self, client: ApiClient, *, workers: int = 5, resync_period: float | None = 300.0,
                 burst_replicas: int = plan.BURST_REPLICAS, clock: Callable[[], float] = time.time,
                 recorder: EventRecorder | None = None,
                 factory: SharedInformerFactory | None = None) -> None:
        super().__init__(workers=workers, resync_period=resync_period)
        self.factory = self.informer_factory(client, factory)
        assert PODS and REPLICASETS
        self.client = client
        self.burst = burst_replicas
        self.clock = clock
        self.recorder = recorder or EventRecorder(client, "replicaset-controller")
        self.expectations = Expectations()
        self.rsets = self.factory.informer(REPLICASETS, indexers={UID_INDEX: index_uid})
        self.pods = self.factory.informer(PODS, indexers={CONTROLLER_INDEX: index_controller_uid,
                                                           ORPHAN_INDEX: index_orphan_namespace})
        self.informers += [self.rsets, self.pods]
        self.rsets.add_handler(self._rs_changed, lambda old, new: self._rs_changed(new), self._rs_deleted)
        self.pods.add_handler(self._pod_added, self._pod_updated, self._pod_deleted)

    async def stop(self) -> None:
        await super().stop()
        await self.recorder.close()

    # ---------------------------------------------------------------- events -> keys

    def _rs_changed(self, rs: Obj) -> None:
        self.enqueue(key_of(rs))

    def _rs_deleted(self, rs: Obj) -> None:
        self.expectations.forget(key_of(rs))
        self.enqueue(key_of(rs))

    def _owner_key(self, pod: Obj) -> str | None:
        ref = controller_of(pod)
        if not ref or ref.get("kind") != "ReplicaSet":
            return None
        owners = self.rsets.store.by_index(UID_INDEX, ref.get("uid", ""))
        return key_of(owners[0]) if owners else None

    def _matching_keys(self, pod: Obj) -> list[str]:
        """ReplicaSets whose selector matches an orphan pod (candidates to adopt it)."""
        ns = (pod.get("metadata") or {}).get("namespace") or ""
        labels = (pod.get("metadata") or {}).get("labels") or {}
        return [key_of(rs) for rs in self.rsets.store.by_index("namespace", ns) if selector_of(rs).matches(labels)]

    def _pod_added(self, pod: Obj) -> None:
        if is_deleting(pod):
            self._pod_deleted(pod)
            return
        owner = self._owner_key(pod)
        if owner is not None:
            self.expectations.creation_observed(owner)
            self.enqueue(owner)
        elif controller_of(pod) is None:
            for k in self._matching_keys(pod):
                self.enqueue(k)

    def _pod_updated(self, old: Obj, new: Obj) -> None:
        if is_deleting(new) and not is_deleting(old):
            owner = self._owner_key(new)
            if owner is not None:
                self.expectations.deletion_observed(owner, key_of(new))
        old_owner, new_owner = self._owner_key(old), self._owner_key(new)
        if old_owner and old_owner != new_owner:
            self.enqueue(old_owner)
        if new_owner:
            self.enqueue(new_owner)
            rs = self.rsets.store.get(new_owner)
            mrs = int(((rs or {}).get("spec") or {}).get("minReadySeconds") or 0)
            if mrs > 0 and is_ready(new) and not is_ready(old):
                self.queue.add_after(new_owner, mrs + 1)
        elif controller_of(new) is None:
            old_labels = (old.get("metadata") or {}).get("labels")
            if old_labels != (new.get("metadata") or {}).get("labels") or controller_of(old) is not None:
                for k in self._matching_keys(new):
                    self.enqueue(k)

    def _pod_deleted(self, pod: Obj) -> None:
        owner = self._owner_key(pod)
        if owner is not None:
            self.expectations.deletion_observed(owner, key_of(pod))
            self.enqueue(owner)

    def resync_keys(self) -> Iterable[Hashable]:
        return self.rsets.store.keys()

    # ---------------------------------------------------------------- sync

    async def reconcile(self, key: Hashable) -> None:
        rs_key = str(key)
        cached = self.rsets.store.get(rs_key)
        if cached is None:
            self.expectations.forget(rs_key)
            return
        rs = copy.deepcopy(cached)
        needs_sync = self.expectations.satisfied(rs_key)
        pods = await self._claim_pods(rs)
        failure: tuple[str, str] | None = None
        if needs_sync and not is_deleting(rs):
            failure = await self._manage_replicas(rs_key, rs, pods)
        now = self.clock()
        status = plan.calculate_status(rs, pods, failure, now)
        rs = await self._update_status(rs, status)
        spec = rs.get("spec") or {}
        mrs = int(spec.get("minReadySeconds") or 0)
        if (failure is None and mrs > 0 and status["readyReplicas"] == spec.get("replicas", 1)
                and status["availableReplicas"] != spec.get("replicas", 1)):
            self.queue.add_after(rs_key, mrs)

    async def _claim_pods(self, rs: Obj) -> list[Obj]:
        ns = rs["metadata"].get("namespace") or ""
        uid = rs["metadata"].get("uid", "")
        candidates = {key_of(p): p for p in self.pods.store.by_index(CONTROLLER_INDEX, uid) if is_active(p)}
        sel = selector_of(rs)
        for p in self.pods.store.by_index(ORPHAN_INDEX, ns):
            if is_active(p) and sel.matches((p.get("metadata") or {}).get("labels")):
                candidates[key_of(p)] = p
        claim = plan_claim(rs, sel, candidates.values())
        assert REPLICASETS and PODS
        return await apply_claim(self.client, PODS, rs, claim, lambda: recheck_owner(self.client, REPLICASETS, rs))

    async def _manage_replicas(self, rs_key: str, rs: Obj, pods: list[Obj]) -> tuple[str, str] | None:
        """Create or delete the difference; return (reason, message) if that failed."""
        want = int((rs.get("spec") or {}).get("replicas", 1))
        diff = len(pods) - want
        if diff < 0:
            return await self._create_pods(rs_key, rs, min(-diff, self.burst))
        if diff > 0:
            return await self._delete_pods(rs_key, rs, pods, min(diff, self.burst))
        return None

    async def _create_pods(self, rs_key: str, rs: Obj, n: int) -> tuple[str, str] | None:
        assert PODS
        self.expectations.expect_creations(rs_key, n)
        ns = rs["metadata"]["namespace"]
        done = 0
        for size in plan.slow_start_batches(n):
            results = await asyncio.gather(*(self.client.create(PODS, plan.pod_from_template(rs), ns)
                                             for _ in range(size)), return_exceptions=True)
            errs = [r for r in results if isinstance(r, BaseException)]
            for r in results:
                if isinstance(r, dict):
                    self.recorder.record(rs, NORMAL, "SuccessfulCreate", f"Created pod: {r['metadata']['name']}")
            done += size
            if errs:
                # the failed creates and the skipped batches will never be observed
                self.expectations.creation_observed(rs_key, len(errs) + (n - done))
                msg = errs[0].message if isinstance(errs[0], ApiError) else str(errs[0])
                self.recorder.record(rs, WARNING, "FailedCreate", f"Error creating: {msg}")
                if isinstance(errs[0], ApiError) and errs[0].code == 403 and "being terminated" in msg:
                    return None  # upstream ignores creates refused by a terminating namespace
                return ("FailedCreate", msg)
        return None

    async def _delete_pods(self, rs_key: str, rs: Obj, pods: list[Obj], n: int) -> tuple[str, str] | None:
        assert PODS
        related = self._related_pods(rs)
        victims = plan.pods_to_delete(pods, related, n, self.clock())
        self.expectations.expect_deletions(rs_key, [key_of(p) for p in victims])
        ns = rs["metadata"]["namespace"]
        results = await asyncio.gather(*(self.client.delete(PODS, p["metadata"]["name"], ns,
                                                            preconditions={"uid": p["metadata"]["uid"]})
                                         for p in victims), return_exceptions=True)
        failure: tuple[str, str] | None = None
        for p, r in zip(victims, results, strict=True):
            if isinstance(r, BaseException):
                self.expectations.deletion_observed(rs_key, key_of(p))
                if isinstance(r, ApiError) and r.code in (404, 409):
                    continue
                msg = r.message if isinstance(r, ApiError) else str(r)
                self.recorder.record(rs, WARNING, "FailedDelete", f"Error deleting: {msg}")
                failure = failure or ("FailedDelete", msg)
            else:
                self.recorder.record(rs, NORMAL, "SuccessfulDelete", f"Deleted pod: {p['metadata']['name']}")
        return failure

    def _related_pods(self, rs: Obj) -> list[Obj]:
        """Active pods of every ReplicaSet with the same controller as ``rs`` (or just its own)."""
        owner = controller_of(rs)
        ns = rs["metadata"].get("namespace") or ""
        sets = [rs]
        if owner is not None:
            sets = [r for r in self.rsets.store.by_index("namespace", ns)
                    if (controller_of(r) or {}).get("uid") == owner.get("uid")] or [rs]
        out: list[Obj] = []
        for r in sets:
            out += [p for p in self.pods.store.by_index(CONTROLLER_INDEX, r["metadata"].get("uid", ""))
                    if is_active(p)]
        return out

    async def _update_status(self, rs: Obj, status: Obj) -> Obj:
        """Write status if it changed; one retry from a fresh read on conflict, as upstream."""
        assert REPLICASETS
        if not plan.status_changed(rs, status):
            return rs
        for attempt in range(2):
            rs["status"] = status
            try:
                return await self.client.update_status(REPLICASETS, rs)
            except ApiError as e:
                if e.code == 404:
                    return rs
                if e.code != 409 or attempt:
                    raise
                m = rs["metadata"]
                rs = await self.client.get(REPLICASETS, m["name"], m["namespace"])
                status["observedGeneration"] = (rs.get("metadata") or {}).get("generation") or 0
        return rs
