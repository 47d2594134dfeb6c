"""The Deployment controller: roll pod templates out through ReplicaSets.

As upstream's ``pkg/controller/deployment``: each sync claims the
Deployment's ReplicaSets (adopt/release by selector), then picks a path --
status only while the Deployment is being deleted; scaling only while it is
paused or when ``spec.replicas`` changed under a rollout; otherwise its
strategy, ``RollingUpdate`` or ``Recreate``.  The decisions are pure
(:mod:`.deploymentplan`, :mod:`.deploymentutil`); :mod:`.deploymentsync`
applies them.  Rollback is a client-side affair in kubectl 1.32 (it copies
an old ReplicaSet's template back into the Deployment), which then simply
finds that ReplicaSet as its new one and gives it the next revision.
"""

from __future__ import annotations

import copy
import logging
import time
from collections.abc import Callable, Hashable, Iterable
from typing import Any

from kubesvc.api.meta import controller_of, key_of
from kubesvc.api.resources import by_kind
from kubesvc.client.controller import Controller
from kubesvc.client.events import WARNING, EventRecorder
from kubesvc.client.rest import ApiClient
from kubesvc.client.sharedinformers import SharedInformerFactory

from . import deploymentutil as du
from .deploymentplan import paused_conditions
from .deploymentsync import DeploymentSync
from .podutil import is_deleting
from .refmanager import apply_claim, plan_claim, recheck_owner
from .replicaset import CONTROLLER_INDEX, UID_INDEX, index_controller_uid, index_uid, selector_of

log = logging.getLogger(__name__)
Obj = dict[str, Any]
PODS = by_kind("v1", "Pod")
DEPLOYMENTS = by_kind("apps/v1", "Deployment")
REPLICASETS = by_kind("apps/v1", "ReplicaSet")


class DeploymentController(Controller):
    """``DeploymentController(client).run()``: one key per Deployment (``ns/name``)."""

    name = "deployment"

    def __init__(self, client: ApiClient, *, workers: int = 5, resync_period: float | None = 300.0,
                 clock: Callable[[], float] = time.time, recorder: EventRecorder | None = None,
                 factory: SharedInformerFactory | None = None) -> None:
        super().__init__(workers=workers, resync_period=resync_period)
        self.factory = self.informer_factory(client, factory)
        assert PODS and DEPLOYMENTS and REPLICASETS
        self.client = client
        self.clock = clock
        self.recorder = recorder or EventRecorder(client, "deployment-controller")
        self.deploys = self.factory.informer(DEPLOYMENTS, indexers={UID_INDEX: index_uid})
        self.rsets = self.factory.informer(REPLICASETS,
                              indexers={CONTROLLER_INDEX: index_controller_uid, UID_INDEX: index_uid})
        self.pods = self.factory.informer(PODS, indexers={CONTROLLER_INDEX: index_controller_uid})
        self.informers += [self.deploys, self.rsets, self.pods]
        self.deploys.add_handler(self._enqueue_obj, lambda old, new: self._enqueue_obj(new), self._enqueue_obj)
        self.rsets.add_handler(self._rs_added, self._rs_updated, self._rs_deleted)
        self.pods.add_handler(None, None, self._pod_deleted)

    async def stop(self) -> None:
        await super().stop()
        await self.recorder.close()

    # ---------------------------------------------------------------- events -> keys

    def _enqueue_obj(self, obj: Obj) -> None:
        self.enqueue(key_of(obj))

    def _owner_key(self, rs: Obj) -> str | None:
        ref = controller_of(rs)
        if not ref or ref.get("kind") != "Deployment":
            return None
        owners = self.deploys.store.by_index(UID_INDEX, ref.get("uid", ""))
        return key_of(owners[0]) if owners else None

    def _matching(self, rs: Obj) -> list[str]:
        ns = (rs.get("metadata") or {}).get("namespace") or ""
        labels = (rs.get("metadata") or {}).get("labels") or {}
        return [key_of(d) for d in self.deploys.store.by_index("namespace", ns) if selector_of(d).matches(labels)]

    def _rs_added(self, rs: Obj) -> None:
        owner = self._owner_key(rs)
        if owner is not None:
            self.enqueue(owner)
        elif controller_of(rs) is None and not is_deleting(rs):
            for k in self._matching(rs):
                self.enqueue(k)

    def _rs_updated(self, old: Obj, new: Obj) -> None:
        old_owner, new_owner = self._owner_key(old), self._owner_key(new)
        if old_owner and old_owner != new_owner:
            self.enqueue(old_owner)
        if new_owner:
            self.enqueue(new_owner)
        elif controller_of(new) is None:
            if (old.get("metadata") or {}).get("labels") != (new.get("metadata") or {}).get("labels") \
                    or controller_of(old) is not None:
                for k in self._matching(new):
                    self.enqueue(k)

    def _rs_deleted(self, rs: Obj) -> None:
        owner = self._owner_key(rs)
        if owner is not None:
            self.enqueue(owner)

    def _pod_deleted(self, pod: Obj) -> None:
        """Recreate waits for the last old pod to go; its deletion is the cue."""
        ref = controller_of(pod)
        if not ref:
            return
        for rs in self.rsets.store.by_index(UID_INDEX, ref.get("uid", "")):
            owner = self._owner_key(rs)
            d = self.deploys.store.get(owner) if owner else None
            if owner and d is not None and not du.is_rolling(d):
                self.enqueue(owner)

    def resync_keys(self) -> Iterable[Hashable]:
        return self.deploys.store.keys()

    # ---------------------------------------------------------------- sync

    async def reconcile(self, key: Hashable) -> None:
        cached = self.deploys.store.get(str(key))
        if cached is None:
            return
        d = copy.deepcopy(cached)
        if (d.get("spec") or {}).get("selector") == {}:
            self.recorder.record(d, WARNING, "SelectingAll",
                                 "This deployment is selecting all pods. A non-empty selector is required.")
            return
        rss = await self._claim_replicasets(d)
        s = DeploymentSync(self.client, self.recorder, d, rss, self.clock())
        if is_deleting(d):
            await s.sync()
            return
        await self._check_paused(s)
        if (d.get("spec") or {}).get("paused") or await s.is_scaling_event():
            await s.sync()
            return
        if du.is_rolling(d):
            await s.rolling()
        else:
            await s.recreate(self._pods_by_rs(list(s.rss.values())))
        if s.requeue is not None:
            self.queue.add_after(str(key), s.requeue)

    async def _check_paused(self, s: DeploymentSync) -> None:
        st = paused_conditions(s.d, s.now)
        if st is not None:
            s.d["status"] = st
            await s.save_deployment(False, True)

    async def _claim_replicasets(self, d: Obj) -> list[Obj]:
        ns = d["metadata"].get("namespace") or ""
        uid = d["metadata"].get("uid", "")
        candidates = {key_of(r): r for r in self.rsets.store.by_index(CONTROLLER_INDEX, uid)}
        sel = selector_of(d)
        for r in self.rsets.store.by_index("namespace", ns):
            if controller_of(r) is None and sel.matches((r.get("metadata") or {}).get("labels")):
                candidates[key_of(r)] = r
        claim = plan_claim(d, sel, candidates.values())
        assert REPLICASETS and DEPLOYMENTS
        owned = await apply_claim(self.client, REPLICASETS, d, claim,
                                  lambda: recheck_owner(self.client, DEPLOYMENTS, d))
        return [copy.deepcopy(r) for r in owned]

    def _pods_by_rs(self, rss: list[Obj]) -> dict[str, list[Obj]]:
        """Every pod (terminating too) of each ReplicaSet, by the set's UID."""
        out: dict[str, list[Obj]] = {}
        for rs in rss:
            uid = rs["metadata"].get("uid", "")
            out[uid] = self.pods.store.by_index(CONTROLLER_INDEX, uid)
        return out
