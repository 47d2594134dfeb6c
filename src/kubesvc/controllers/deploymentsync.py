"""One sync of one Deployment: the steps of upstream's rolling, recreate and scale paths.

:class:`DeploymentSync` holds the Deployment and its claimed ReplicaSets for
the length of one reconcile and turns the pure plans of
:mod:`.deploymentplan` into API writes, keeping its copies current after each
write so later steps of the same sync see what earlier ones did.  A failed
write raises: the controller retries the whole sync later from the caches
(every step is idempotent).
"""

from __future__ import annotations

import copy
import logging
from typing import Any

from kubesvc.api.meta import controller_of
from kubesvc.api.resources import by_kind
from kubesvc.client.events import NORMAL, WARNING, EventRecorder
from kubesvc.client.rest import ApiClient, ApiError

from . import deploymentplan as plan
from . import deploymentutil as du
from .refmanager import controller_ref

log = logging.getLogger(__name__)
Obj = dict[str, Any]
DEPLOYMENTS = by_kind("apps/v1", "Deployment")
REPLICASETS = by_kind("apps/v1", "ReplicaSet")


def _name(o: Obj | None) -> str:
    return str(((o or {}).get("metadata") or {}).get("name") or "")


class DeploymentSync:
    """Apply one reconcile's decisions for ``d`` (a private copy) and its ReplicaSets."""

    def __init__(self, client: ApiClient, recorder: EventRecorder, d: Obj, rss: list[Obj], now: float) -> None:
        assert DEPLOYMENTS and REPLICASETS
        self.client = client
        self.recorder = recorder
        self.d = d
        self.rss = {_name(r): r for r in rss}
        self.now = now
        self.ns = d["metadata"]["namespace"]
        self.requeue: float | None = None  # seconds until a stuck rollout should be timed out

    # ---------------------------------------------------------------- writes

    async def save_deployment(self, annotations: bool, status: bool) -> None:
        """Write the revision annotation (metadata) and/or the status, as upstream's one UpdateStatus."""
        assert DEPLOYMENTS
        m = self.d["metadata"]
        if annotations:
            patch = {"metadata": {"annotations": {du.REVISION: du.annotations(self.d).get(du.REVISION)}}}
            fresh = await self.client.patch(DEPLOYMENTS, m["name"], patch, self.ns)
            m["resourceVersion"] = fresh["metadata"]["resourceVersion"]
        if status:
            fresh = await self.client.update_status(DEPLOYMENTS, self.d)
            m["resourceVersion"] = fresh["metadata"]["resourceVersion"]

    async def scale_rs(self, rs: Obj, size: int) -> Obj:
        """Resize one ReplicaSet and keep its size annotations current (scaleReplicaSet)."""
        assert REPLICASETS
        d = self.d
        total = du.replicas(d) + du.max_surge(d)
        old = du.replicas(rs)
        if old == size and not du.replicas_annotations_need_update(rs, du.replicas(d), total):
            return rs
        c = copy.deepcopy(rs)
        c["spec"]["replicas"] = size
        du.set_replicas_annotations(c, du.replicas(d), total)
        updated = await self.client.replace(REPLICASETS, c, self.ns)
        self.rss[_name(updated)] = updated
        if old != size:
            op = "up" if old < size else "down"
            self.recorder.record(d, NORMAL, "ScalingReplicaSet",
                                 f"Scaled {op} replica set {_name(rs)} from {old} to {size}")
        return updated

    async def scale_many(self, sizes: dict[str, int]) -> bool:
        for name, size in sizes.items():
            await self.scale_rs(self.rss[name], size)
        return bool(sizes)

    # ---------------------------------------------------------------- new and old sets

    def split(self) -> tuple[Obj | None, list[Obj]]:
        new = du.find_new_rs(self.d, self.rss.values())
        return new, [r for r in self.rss.values() if r is not new]

    async def get_all(self, create: bool) -> tuple[Obj | None, list[Obj]]:
        """The new ReplicaSet (made if ``create``) and the old ones, with revisions synced."""
        new, olds = self.split()
        new_revision = du.max_revision(olds) + 1
        if new is not None:
            new = await self._sync_new_rs(new, new_revision)
        elif create:
            new = await self._create_new_rs(olds, new_revision)
        return new, olds

    def _set_revision(self, rev: str) -> bool:
        ann = self.d["metadata"].setdefault("annotations", {})
        if ann.get(du.REVISION) == rev:
            return False
        ann[du.REVISION] = rev
        return True

    async def _sync_new_rs(self, rs: Obj, new_revision: int) -> Obj:
        d = self.d
        c = copy.deepcopy(rs)
        changed = du.set_new_rs_annotations(d, c, new_revision, exists=True)
        mrs = (d.get("spec") or {}).get("minReadySeconds") or 0
        if changed or (c["spec"].get("minReadySeconds") or 0) != mrs:
            c["spec"]["minReadySeconds"] = mrs
            assert REPLICASETS
            rs = await self.client.replace(REPLICASETS, c, self.ns)
            self.rss[_name(rs)] = rs
        ann_changed = self._set_revision(du.annotations(rs).get(du.REVISION, ""))
        status_changed = False
        st = d.setdefault("status", {})
        if plan.has_deadline(d) and plan.get_condition(st, plan.PROGRESSING) is None:
            plan.set_condition(st, plan.new_condition(plan.PROGRESSING, "True", "FoundNewReplicaSet",
                                                      f'Found new replica set "{_name(rs)}"', self.now))
            status_changed = True
        if ann_changed or status_changed:
            await self.save_deployment(ann_changed, status_changed)
        return rs

    async def _create_new_rs(self, olds: list[Obj], new_revision: int) -> Obj:
        assert REPLICASETS
        d = self.d
        collisions = (d.get("status") or {}).get("collisionCount")
        h = du.compute_hash(d["spec"].get("template") or {}, collisions)
        tmpl, sel = du.new_rs_template(d, h)
        rs: Obj = {"apiVersion": "apps/v1", "kind": "ReplicaSet",
                   "metadata": {"name": f"{_name(d)}-{h}", "namespace": self.ns,
                                "ownerReferences": [controller_ref(d)], "labels": tmpl["metadata"]["labels"]},
                   "spec": {"replicas": 0, "minReadySeconds": d["spec"].get("minReadySeconds") or 0,
                            "selector": sel, "template": tmpl}}
        rs["spec"]["replicas"] = du.new_rs_new_replicas(d, [*olds, rs], rs)
        du.set_new_rs_annotations(d, rs, new_revision, exists=False)
        existed = False
        try:
            created = await self.client.create(REPLICASETS, rs, self.ns)
        except ApiError as e:
            if e.reason != "AlreadyExists":
                await self._creation_failed(_name(rs), e)
                raise
            created = await self._existing_or_collision(rs, e)
            existed = True
        self.rss[_name(created)] = created
        if not existed and du.replicas(created) > 0:
            self.recorder.record(d, NORMAL, "ScalingReplicaSet",
                                 f"Scaled up replica set {_name(created)} from 0 to {du.replicas(created)}")
        ann_changed = self._set_revision(str(new_revision))
        status_changed = False
        if not existed and plan.has_deadline(d):
            plan.set_condition(d.setdefault("status", {}), plan.new_condition(
                plan.PROGRESSING, "True", "NewReplicaSetCreated", f'Created new replica set "{_name(created)}"',
                self.now))
            status_changed = True
        if ann_changed or status_changed:
            await self.save_deployment(ann_changed, status_changed)
        return created

    async def _existing_or_collision(self, rs: Obj, err: ApiError) -> Obj:
        """Ours with the same template: use it.  Anyone else's: a hash collision, bump collisionCount."""
        assert REPLICASETS
        existing = await self.client.get(REPLICASETS, _name(rs), self.ns)
        ref = controller_of(existing) or {}
        if ref.get("uid") == self.d["metadata"].get("uid") and du.equal_ignore_hash(
                self.d["spec"].get("template") or {}, (existing.get("spec") or {}).get("template") or {}):
            return existing
        st = self.d.setdefault("status", {})
        st["collisionCount"] = int(st.get("collisionCount") or 0) + 1
        await self.save_deployment(False, True)
        raise err

    async def _creation_failed(self, name: str, e: ApiError) -> None:
        msg = f'Failed to create new replica set "{name}": {e.message}'
        self.recorder.record(self.d, WARNING, "FailedCreate", msg)
        if plan.has_deadline(self.d):
            plan.set_condition(self.d.setdefault("status", {}), plan.new_condition(
                plan.PROGRESSING, "False", "ReplicaSetCreateError", msg, self.now))
            await self.save_deployment(False, True)

    # ---------------------------------------------------------------- strategies

    async def sync(self) -> None:
        """Scaling (and paused Deployments): resize, never roll."""
        new, olds = await self.get_all(False)
        await self.scale_many(plan.plan_scale(self.d, new, olds))
        if (self.d.get("spec") or {}).get("paused"):
            await self.cleanup()
        await self.sync_status(rollout=False)

    async def is_scaling_event(self) -> bool:
        new, olds = await self.get_all(False)
        want = du.replicas(self.d)
        for rs in du.active([*olds, new]):
            desired = du.int_annotation(rs, du.DESIRED_REPLICAS)
            if desired is not None and desired != want:
                return True
        return False

    async def rolling(self) -> None:
        new, olds = await self.get_all(True)
        assert new is not None
        target = plan.new_rs_target(self.d, [*olds, new], new)
        if target is not None:
            await self.scale_rs(new, target)
            return await self.sync_status()
        new, olds = self.split()
        if await self.scale_many(plan.plan_old_scale_down(self.d, [*olds, *([new] if new else [])], olds, new)):
            return await self.sync_status()
        if plan.complete(self.d, self.d.get("status") or {}):
            await self.cleanup()
        await self.sync_status()

    async def recreate(self, pods_by_rs: dict[str, list[Obj]]) -> None:
        new, olds = await self.get_all(False)
        if await self.scale_many({_name(r): 0 for r in du.active(olds)}):
            return await self.sync_status()
        new, olds = self.split()
        if plan.old_pods_running(new, olds, pods_by_rs):
            return await self.sync_status()
        if new is None:
            new, olds = await self.get_all(True)
            assert new is not None
        if du.replicas(new) != du.replicas(self.d):
            await self.scale_rs(new, du.replicas(self.d))
        if plan.complete(self.d, self.d.get("status") or {}):
            await self.cleanup()
        await self.sync_status()

    async def cleanup(self) -> None:
        """Delete old, empty ReplicaSets beyond revisionHistoryLimit."""
        assert REPLICASETS
        _, olds = self.split()
        for rs in plan.rs_to_cleanup(self.d, olds):
            try:
                await self.client.delete(REPLICASETS, _name(rs), self.ns,
                                         preconditions={"uid": rs["metadata"]["uid"]})
            except ApiError as e:
                if e.code not in (404, 409):
                    raise
            self.rss.pop(_name(rs), None)

    async def sync_status(self, rollout: bool = True) -> None:
        """Write the status if it changed; else note when to look again at a stuck rollout."""
        new, olds = self.split()
        all_rss = [*olds, *([new] if new else [])]
        if rollout:
            st = plan.rollout_status(self.d, all_rss, new, self.now)
        else:
            st = plan.calculate_status(self.d, all_rss, new, self.now)
        if plan.normal_status(st) == plan.normal_status(self.d.get("status") or {}):
            self.requeue = plan.requeue_after(self.d, st, self.now) if rollout else None
            return
        self.d["status"] = st
        await self.save_deployment(False, True)
