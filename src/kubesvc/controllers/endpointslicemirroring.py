"""The EndpointSlice mirroring controller: hand-written Endpoints become EndpointSlices.

A Service without a selector is backed by whatever its users write.  Older
tools write v1 Endpoints; the data plane reads only EndpointSlices; so, as
upstream (pkg/controller/endpointslicemirroring), an Endpoints object is
mirrored when a Service of the same name exists, has no selector, and the
Endpoints is neither labelled ``endpointslice.kubernetes.io/skip-mirror=true``
nor a leader-election record.  In every other case its mirrored slices are
deleted.

Mirroring is simpler than the EndpointSlice controller: one slice per
(address type, port list), at most 1,000 addresses per subset, the slice owned
by the Endpoints and labelled with its labels plus service-name and
``managed-by: endpointslicemirroring-controller.k8s.io``.  The plan is pure
(:func:`mirror`); creates recycle slices that would otherwise be deleted.

As upstream, addresses left out are reported on the Endpoints as Warning
Events (``InvalidIPAddress``, ``TooManyAddressesToMirror``), failed writes as
``FailedToUpdateEndpointSlices``, and each sync is counted in
``endpoint_slice_mirroring_controller_*`` metrics (:mod:`.mirroringmetrics`).
"""

from __future__ import annotations

import ipaddress
import math
import time
from collections.abc import Hashable, Iterable
from typing import Any

from kubesvc.api.resources import Resource, by_plural
from kubesvc.client.controller import Controller
from kubesvc.client.events import WARNING, EventRecorder
from kubesvc.client.informer import split_key
from kubesvc.client.rest import ApiClient, ApiError
from kubesvc.client.sharedinformers import SharedInformerFactory

from .endpointslice.controller import (
    SLICE_INDEXERS,
    SLICE_SERVICE,
    SLICES,
    apply_slice_plan,
    index_slice_service,
)
from .endpointslice.model import (
    ANNOTATION_LAST_APPLIED,
    ANNOTATION_LEADER,
    ANNOTATION_TRIGGER_TIME,
    LABEL_MANAGED_BY,
    LABEL_SERVICE_NAME,
    LABEL_SKIP_MIRROR,
    MIRRORING_CONTROLLER_NAME,
    EndpointKey,
    PortKey,
    endpoint_key,
    endpoints_equal_beyond_key,
    port_key,
    service_selector,
)
from .endpointslice.ownwrites import OwnWrites
from .endpointslice.reconciler import Plan
from .mirroringmetrics import MirrorFigures, MirroringMetrics

Obj = dict[str, Any]
MAX_ENDPOINTS_PER_SUBSET = 1000
_Key = tuple[str, PortKey]


def _res(plural: str) -> Resource:
    r = by_plural("", "v1", plural)
    assert r is not None
    return r


SERVICES, ENDPOINTS = _res("services"), _res("endpoints")


# ---------------------------------------------------------------- pure part

def should_mirror(ep: Obj | None, svc: Obj | None) -> bool:
    if ep is None or svc is None or service_selector(svc) is not None:
        return False
    m = ep.get("metadata") or {}
    if (m.get("labels") or {}).get(LABEL_SKIP_MIRROR) == "true":
        return False
    return ANNOTATION_LEADER not in (m.get("annotations") or {})


def address_to_endpoint(addr: Obj, ready: bool) -> tuple[Obj, str] | None:
    """A slice endpoint for an Endpoints address, and its address type; None for a non-IP."""
    try:
        ip = ipaddress.ip_address(str(addr.get("ip", "")))
    except ValueError:
        return None
    ep: Obj = {"addresses": [str(ip)], "conditions": {"ready": ready}}
    if addr.get("targetRef"):
        ep["targetRef"] = dict(addr["targetRef"])
    if addr.get("nodeName"):
        ep["nodeName"] = addr["nodeName"]
    if addr.get("hostname"):
        ep["hostname"] = addr["hostname"]
    return ep, ("IPv6" if ip.version == 6 else "IPv4")


def _desired(ep: Obj, max_per_subset: int) -> dict[_Key, tuple[list[Obj], dict[EndpointKey, Obj]]]:
    groups: dict[_Key, tuple[list[Obj], dict[EndpointKey, Obj]]] = {}
    for subset in ep.get("subsets") or []:
        ports = [{"name": p.get("name") or "", "port": p.get("port"), "protocol": p.get("protocol") or "TCP",
                  **({"appProtocol": p["appProtocol"]} if p.get("appProtocol") else {})}
                 for p in subset.get("ports") or []]
        added = 0
        pairs = [(a, True) for a in subset.get("addresses") or []]
        pairs += [(a, False) for a in subset.get("notReadyAddresses") or []]
        for addr, ready in pairs:
            if added >= max_per_subset:
                break
            got = address_to_endpoint(addr, ready)
            if got is None:
                continue
            endpoint, addr_type = got
            group = groups.setdefault((addr_type, port_key(ports)), (ports, {}))
            group[1][endpoint_key(endpoint)] = endpoint
            added += 1
    return groups


def mirrored_slice(ep: Obj, ports: list[Obj], addr_type: str, endpoints: list[Obj], name: str = "") -> Obj:
    m = ep.get("metadata") or {}
    labels = {**(m.get("labels") or {}), LABEL_SERVICE_NAME: m.get("name", ""),
              LABEL_MANAGED_BY: MIRRORING_CONTROLLER_NAME}
    annotations = {k: v for k, v in (m.get("annotations") or {}).items()
                   if k not in (ANNOTATION_TRIGGER_TIME, ANNOTATION_LAST_APPLIED)}
    meta: Obj = {"namespace": m.get("namespace", ""), "labels": labels, "annotations": annotations,
                 "ownerReferences": [{"apiVersion": "v1", "kind": "Endpoints", "name": m.get("name", ""),
                                      "uid": m.get("uid", ""), "controller": True, "blockOwnerDeletion": True}]}
    if name:
        meta["name"] = name
    else:
        meta["generateName"] = f"{m.get('name', '')}-"
    return {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice", "metadata": meta,
            "addressType": addr_type, "ports": ports, "endpoints": endpoints}


def _same(existing: Obj, want: Obj) -> bool:
    have = {endpoint_key(e): e for e in existing.get("endpoints") or []}
    wanted = {endpoint_key(e): e for e in want["endpoints"]}
    if have.keys() != wanted.keys() or len(have) != len(existing.get("endpoints") or []):
        return False
    em = existing.get("metadata") or {}
    return (all(endpoints_equal_beyond_key(wanted[k], have[k]) for k in wanted)
            and (em.get("labels") or {}) == want["metadata"]["labels"]
            and (em.get("annotations") or {}) == want["metadata"]["annotations"]
            and (em.get("ownerReferences") or []) == want["metadata"]["ownerReferences"]
            and port_key(existing.get("ports")) == port_key(want["ports"]))


def mirror(ep: Obj, existing: list[Obj], max_per_subset: int = MAX_ENDPOINTS_PER_SUBSET) -> Plan:
    """The writes that make ``existing`` mirror ``ep``: per group keep one slice, update it if it differs."""
    plan = Plan()
    by_key: dict[_Key, list[Obj]] = {}
    for s in existing:
        by_key.setdefault((str(s.get("addressType")), port_key(s.get("ports"))), []).append(s)
    desired = _desired(ep, max_per_subset)
    for key, (ports, endpoints) in desired.items():
        have = by_key.pop(key, [])
        name = (have[0].get("metadata") or {}).get("name", "") if have else ""
        want = mirrored_slice(ep, ports, key[0], list(endpoints.values()), name)
        if not have:
            plan.create.append(want)
            continue
        plan.delete += have[1:]
        if not _same(have[0], want):
            want["metadata"]["resourceVersion"] = (have[0].get("metadata") or {}).get("resourceVersion", "")
            plan.update.append(want)
    for rest in by_key.values():
        plan.delete += rest
    _recycle(plan)
    if (ep.get("metadata") or {}).get("deletionTimestamp"):
        plan.create = []
    return plan


def mirror_figures(ep: Obj, existing: list[Obj], max_per_subset: int = MAX_ENDPOINTS_PER_SUBSET) -> MirrorFigures:
    """What a sync of ``ep`` over ``existing`` adds, updates, removes and skips, counted as upstream does.

    Per group of (address type, ports): with no slice yet every endpoint is
    added; else the first slice is compared endpoint by endpoint.  Skipped
    addresses are those left out of a subset: not an IP, or over the maximum.
    """
    invalid = skipped = 0
    for subset in ep.get("subsets") or []:
        pairs = [*(subset.get("addresses") or []), *(subset.get("notReadyAddresses") or [])]
        taken = 0
        for addr in pairs:
            if taken >= max_per_subset:
                break
            if address_to_endpoint(addr, True) is None:
                invalid += 1
            else:
                taken += 1
        skipped += len(pairs) - taken
    desired = _desired(ep, max_per_subset)
    firsts: dict[_Key, Obj] = {}
    for s in existing:
        firsts.setdefault((str(s.get("addressType")), port_key(s.get("ports"))), s)
    added = updated = removed = 0
    for key, (_ports, endpoints) in desired.items():
        have = firsts.get(key)
        if have is None:
            added += len(endpoints)
            continue
        matched = 0
        for e in have.get("endpoints") or []:
            want = endpoints.get(endpoint_key(e))
            if want is None:
                removed += 1
                continue
            matched += 1
            if not endpoints_equal_beyond_key(want, e):
                updated += 1
        added += len(endpoints) - matched
    count = sum(len(eps) for _, eps in desired.values())
    slices = sum(math.ceil(len(eps) / max_per_subset) for _, eps in desired.values())
    return MirrorFigures(added, updated, removed, invalid, skipped, count, slices)


def _recycle(plan: Plan) -> None:
    """Turn a create plus a delete of the same address type into one update."""
    for new in list(plan.create):
        old = next((d for d in plan.delete if d.get("addressType") == new["addressType"]), None)
        if old is None:
            continue
        plan.create.remove(new)
        plan.delete.remove(old)
        meta = new["metadata"]
        meta.pop("generateName", None)
        meta["name"] = old["metadata"]["name"]
        meta["resourceVersion"] = old["metadata"].get("resourceVersion", "")
        plan.update.append(new)


# ---------------------------------------------------------------- controller

class EndpointSliceMirroringController(Controller):
    """Keys are Endpoints keys (the same as their Service's)."""

    name = "endpointslicemirroring"

    def __init__(self, client: ApiClient, *, workers: int = 2, resync_period: float | None = 300.0,
                 factory: SharedInformerFactory | None = None, recorder: EventRecorder | None = None,
                 metrics: MirroringMetrics | None = None) -> None:
        super().__init__(workers=workers, resync_period=resync_period)
        self.factory = self.informer_factory(client, factory)
        self.client = client
        self.recorder = recorder or EventRecorder(client, "endpointslice-mirroring-controller")
        self.metrics = metrics or MirroringMetrics()
        self.own = OwnWrites()
        self.endpoints = self.factory.informer(ENDPOINTS)
        self.services = self.factory.informer(SERVICES)
        self.slices = self.factory.informer(SLICES, label_selector=f"{LABEL_MANAGED_BY}={MIRRORING_CONTROLLER_NAME}",
                                            indexers=SLICE_INDEXERS)
        self.informers += [self.endpoints, self.services, self.slices]
        self.endpoints.add_handler(self._obj_event, lambda old, new: self._obj_event(new), self._obj_event)
        self.services.add_handler(self._obj_event, self._svc_updated, self._obj_event)
        self.slices.add_handler(self._slice_event, lambda old, new: self._slice_event(new), self._slice_deleted)

    async def stop(self) -> None:
        await super().stop()
        await self.recorder.close()

    def _obj_event(self, obj: Obj) -> None:
        m = obj.get("metadata") or {}
        self.enqueue(f"{m.get('namespace', '')}/{m.get('name', '')}")

    def _svc_updated(self, old: Obj, new: Obj) -> None:
        if (service_selector(old) is None) != (service_selector(new) is None):
            self._obj_event(new)

    def _slice_event(self, s: Obj) -> None:
        if not self.own.is_echo(s):
            for key in index_slice_service(s):
                self.enqueue(key)

    def _slice_deleted(self, s: Obj) -> None:
        if not self.own.is_delete_echo(s):
            for key in index_slice_service(s):
                self.enqueue(key)

    def resync_keys(self) -> Iterable[Hashable]:
        return {*self.endpoints.store.keys(), *(k for s in self.slices.store.list() for k in index_slice_service(s))}

    async def reconcile(self, key: Hashable) -> None:
        skey = str(key)
        ns, _ = split_key(skey)
        ep = self.endpoints.store.get(skey)
        existing = [s for s in self.own.view(skey, self.slices.store.by_index(SLICE_SERVICE, skey))
                    if not (s.get("metadata") or {}).get("deletionTimestamp")]
        start = time.monotonic()
        if ep is not None and should_mirror(ep, self.services.store.get(skey)):
            plan = mirror(ep, existing)
            figures = mirror_figures(ep, existing)
            self._report_skipped(ep, figures)
        else:
            plan = Plan(delete=existing)
            figures = MirrorFigures(removed=sum(len(s.get("endpoints") or []) for s in existing))
        self.metrics.observe(skey, figures, len(existing) + len(plan.create) - len(plan.delete))
        try:
            await apply_slice_plan(self.client, self.own, skey, ns or "", plan, self.metrics.wrote)
        except ApiError as e:
            if ep is not None:
                self.recorder.record(ep, WARNING, "FailedToUpdateEndpointSlices",
                                     f"Error updating EndpointSlices for Endpoints {skey}: {e}")
            raise
        finally:
            self.metrics.duration.observe(time.monotonic() - start)
        if ep is None:
            self.metrics.forget(skey)

    def _report_skipped(self, ep: Obj, f: MirrorFigures) -> None:
        if f.invalid:
            self.recorder.record(ep, WARNING, "InvalidIPAddress",
                                 f"Skipped {f.invalid} invalid IP addresses when mirroring to EndpointSlices")
        if f.skipped > f.invalid:
            self.recorder.record(ep, WARNING, "TooManyAddressesToMirror",
                                 f"A max of {MAX_ENDPOINTS_PER_SUBSET} addresses can be mirrored to EndpointSlices "
                                 f"per Endpoints subset. {f.skipped} addresses were skipped")
