"""The EndpointSlice reconcile step: (Service, pods, slices, nodes) -> slice writes.

Pure: no I/O, no clock, nothing mutated in place (cached objects are copied
before they change).  It follows upstream's placement rules
(staging/src/k8s.io/endpointslice/reconciler.go), whose aim is few writes:

1. Group desired endpoints by address type, then by the ports each pod
   resolves to (a named targetPort can resolve differently per pod, and one
   slice has one port list).
2. Per group, walk the existing slices: keep desired endpoints where they
   already are, update the ones that changed *in place*, drop the rest.  A
   slice that lost everything is deleted; one that changed is updated.
3. Leftover endpoints first fill the slices already being updated (fullest
   first), since that write happens anyway; then, if fewer than a slice's
   worth remain, the untouched slice that ends *closest to full*; only then
   new slices.
4. Services asking for topology-aware hints get them allocated per zone
   (:mod:`.topologycache`), or taken off with the reason as an event.
5. Finally creates are turned into updates of slices that would otherwise be
   deleted, and a Service with no endpoints keeps exactly one empty
   placeholder slice per address type.

Besides the writes, a plan carries the Events to record on the Service and
the figures upstream's metrics are made of (:class:`SyncStats`).

Upstream picks leftover endpoints in map order; here they go in key order, so
the same input always gives the same plan (and table tests can say which).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Any, Protocol

from .model import (
    ANNOTATION_TRIGGER_TIME,
    CLOSE_TRAFFIC,
    CONTROLLER_NAME,
    LABEL_HEADLESS,
    LABEL_MANAGED_BY,
    LABEL_SERVICE_NAME,
    RESERVED_LABELS,
    EndpointKey,
    PortKey,
    address_types,
    endpoint_key,
    endpoint_ports,
    endpoints_equal_beyond_key,
    hints_enabled,
    is_headless,
    owned_by,
    pod_to_endpoint,
    port_key,
    service_owner_ref,
    should_pod_be_in_endpoints,
)
from .topologycache import HintEvent, SliceInfo, TopologyCache, remove_hints_from_slices

Obj = dict[str, Any]
DEFAULT_MAX_ENDPOINTS_PER_SLICE = 100


class NodeLookup(Protocol):
    """Nodes by name: a dict in tests, the informer's store in the controller."""

    def get(self, key: str, /) -> Obj | None: ...


@dataclass
class SyncStats:
    """One address type's share of a sync, for upstream's metrics.

    ``added``/``removed``: endpoints new to the slices / dropped from them;
    ``slices_changed``: writes planned; ``efficiency``: per port group, the
    desired endpoints and the slices holding them once the plan is written.
    """

    address_type: str
    added: int = 0
    removed: int = 0
    slices_changed: int = 0
    efficiency: dict[PortKey, tuple[int, int]] = field(default_factory=dict)


@dataclass
class Plan:
    """What to write.  ``errors`` are reasons to look again later (e.g. a pod's node is not known yet)."""

    create: list[Obj] = field(default_factory=list)
    update: list[Obj] = field(default_factory=list)
    delete: list[Obj] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    events: list[HintEvent] = field(default_factory=list)
    stats: list[SyncStats] = field(default_factory=list)
    topology: str = "Disabled"  # "Auto" when topology-aware hints were asked for (and can be given)
    traffic_distribution: str = ""  # the trafficDistribution that shaped hints, if any

    @property
    def writes(self) -> int:
        return len(self.create) + len(self.update) + len(self.delete)


@dataclass(frozen=True)
class _Memo:
    finger: tuple[str, ...]
    ports: list[Obj]
    port_key: PortKey
    endpoint: Obj
    key: EndpointKey
    # the very objects it was computed from: informer caches replace objects and never edit
    # them, so identity means "same version" and the next sync can skip even the fingerprint
    pod: Obj | None = None
    svc: Obj | None = None
    node: Obj | None = None


@dataclass
class _Group:
    ports: list[Obj]
    endpoints: dict[EndpointKey, Obj] = field(default_factory=dict)


class Reconciler:
    """Upstream's Reconciler minus the API calls: ``reconcile()`` returns a :class:`Plan`."""

    def __init__(self, max_endpoints_per_slice: int = DEFAULT_MAX_ENDPOINTS_PER_SLICE,
                 controller_name: str = CONTROLLER_NAME, topology: TopologyCache | None = None) -> None:
        if max_endpoints_per_slice < 1:
            raise ValueError("max_endpoints_per_slice must be at least 1")
        self.max = max_endpoints_per_slice
        self.controller_name = controller_name
        self.topology = topology  # None: topology-aware hints are never given (and taken off where found)
        # per Service and address type: pod uid -> _Memo; see _endpoint_for
        self._memo: dict[str, dict[str, _Memo]] = {}
        # per Service: slice name -> (the cached slice object, its endpoints' keys, and per
        # endpoint the desired endpoint last found equal to it; see _by_port_mapping)
        self._slice_keys: dict[str, dict[str, tuple[Obj, list[EndpointKey], list[Obj | None]]]] = {}

    def forget(self, svc_uid: str) -> None:
        """Drop what was remembered about a Service's pods (it is gone)."""
        for addr_type in ("IPv4", "IPv6"):
            self._memo.pop(f"{svc_uid}/{addr_type}", None)
        self._slice_keys.pop(svc_uid, None)

    def reconcile(self, svc: Obj, pods: list[Obj], existing: list[Obj], nodes: NodeLookup,
                  trigger_time: str = "") -> Plan:
        """Slices of address types the Service no longer has go; each remaining type is reconciled alone."""
        plan = Plan()
        auto = self.topology is not None and hints_enabled(svc)
        traffic = (svc.get("spec") or {}).get("trafficDistribution")
        plan.topology = "Auto" if auto else "Disabled"
        plan.traffic_distribution = traffic if traffic in CLOSE_TRAFFIC and not hints_enabled(svc) else ""
        keys = self._slice_keys.get((svc.get("metadata") or {}).get("uid", ""))
        if keys:  # forget slices that are gone
            for name in keys.keys() - {_name(s) for s in existing}:
                del keys[name]
        types = address_types(svc)
        by_type: dict[str, list[Obj]] = {t: [] for t in types}
        for s in existing:
            if s.get("addressType") in by_type:
                by_type[s["addressType"]].append(s)
            else:
                plan.delete.append(s)
                if self.topology is not None:
                    self.topology.remove_hints(_service_key(svc), str(s.get("addressType")))
        for t in types:
            self._by_address_type(svc, pods, by_type[t], nodes, t, trigger_time, plan)
        return plan

    # ---------------------------------------------------------------- steps

    def _desired(self, svc: Obj, pods: list[Obj], nodes: NodeLookup, addr_type: str,
                 errors: list[str]) -> dict[PortKey, _Group]:
        """Desired endpoints grouped by the ports their pod resolves to."""
        publish = bool((svc.get("spec") or {}).get("publishNotReadyAddresses"))
        svc_uid = (svc.get("metadata") or {}).get("uid", "")
        memo_key = f"{svc_uid}/{addr_type}"
        memo = self._memo.get(memo_key, {})
        fresh: dict[str, _Memo] = {}
        groups: dict[PortKey, _Group] = {}
        svc_rv = str((svc.get("metadata") or {}).get("resourceVersion") or "")
        for pod in pods:
            pm = pod.get("metadata") or {}
            hit = memo.get(pm.get("uid") or "")
            if (hit is not None and hit.pod is pod and hit.svc is svc and hit.finger[1] == svc_rv
                    and hit.finger[0] == str(pm.get("resourceVersion") or "")):
                # the same pod and Service, unedited since last sync: only the node can have moved
                node_name = (pod.get("spec") or {}).get("nodeName") or ""
                node = nodes.get(node_name) if node_name else None
                if node is hit.node and hit.finger[2] == str(((node or {}).get("metadata") or {})
                                                             .get("resourceVersion") or ""):
                    fresh[pod["metadata"]["uid"]] = hit
                    group = groups.get(hit.port_key)
                    if group is None:
                        group = groups[hit.port_key] = _Group(hit.ports)
                    if hit.endpoint["addresses"]:
                        group.endpoints[hit.key] = hit.endpoint
                    continue
            if not should_pod_be_in_endpoints(pod, include_terminating=True):
                continue
            node_name = (pod.get("spec") or {}).get("nodeName") or ""
            node = nodes.get(node_name) if node_name else None
            if node is None and not publish:
                # Upstream: leave the pod out for now and retry, so a missing node cannot wedge the slice.
                errors.append(f"skipping Pod {_name(pod)} for Service {_ns(svc)}/{_name(svc)}: "
                              f"Node {node_name} Not Found")
                ports = endpoint_ports(svc, pod)
                groups.setdefault(port_key(ports), _Group(ports))
                continue
            m = self._endpoint_for(svc, pod, node, addr_type, memo, fresh)
            group = groups.get(m.port_key)
            if group is None:
                group = groups[m.port_key] = _Group(m.ports)
            if m.endpoint["addresses"]:
                group.endpoints[m.key] = m.endpoint
        if svc_uid:
            self._memo[memo_key] = fresh
        return groups

    @staticmethod
    def _endpoint_for(svc: Obj, pod: Obj, node: Obj | None, addr_type: str, memo: dict[str, _Memo],
                      fresh: dict[str, _Memo]) -> _Memo:
        """A pod's ports and endpoint (and their keys), remembered while nothing they depend on changes.

        A sync of a 1,000-pod Service rebuilds 1,000 endpoints to change one;
        the fingerprint (pod, Service and node resourceVersions, address type)
        lets the other 999 be reused.  Objects without resourceVersions
        (tests) are simply recomputed.
        """
        pm = pod.get("metadata") or {}
        uid = pm.get("uid") or ""
        finger = (str(pm.get("resourceVersion") or ""), str((svc.get("metadata") or {}).get("resourceVersion") or ""),
                  str(((node or {}).get("metadata") or {}).get("resourceVersion") or ""), addr_type)
        usable = bool(uid and finger[0] and finger[1])
        hit = memo.get(uid) if usable else None
        if hit is None or hit.finger != finger:
            ports, ep = endpoint_ports(svc, pod), pod_to_endpoint(pod, node, svc, addr_type)
            hit = _Memo(finger, ports, port_key(ports), ep, endpoint_key(ep), pod, svc, node)
        elif hit.pod is not pod or hit.svc is not svc or hit.node is not node:
            hit = _Memo(hit.finger, hit.ports, hit.port_key, hit.endpoint, hit.key, pod, svc, node)
        if usable:
            fresh[uid] = hit
        return hit

    def _existing_keys(self, svc: Obj, s: Obj) -> tuple[list[EndpointKey], list[Obj | None]]:
        """The keys of a cached slice's endpoints, computed once per version of the slice,
        and the desired endpoints already found equal to them (``None``: not compared yet).

        Informer caches replace objects, never edit them, so identity says "same version".
        """
        per_svc = self._slice_keys.setdefault((svc.get("metadata") or {}).get("uid", ""), {})
        name = _name(s)
        hit = per_svc.get(name)
        if hit is None or hit[0] is not s or len(hit[1]) != len(s.get("endpoints") or ()):
            keys = [endpoint_key(ep) for ep in s.get("endpoints") or []]
            hit = (s, keys, [None] * len(keys))
            per_svc[name] = hit
        return hit[1], hit[2]

    def _by_address_type(self, svc: Obj, pods: list[Obj], existing: list[Obj], nodes: NodeLookup,
                         addr_type: str, trigger_time: str, plan: Plan) -> None:
        uid = (svc.get("metadata") or {}).get("uid", "")
        to_delete: list[Obj] = []
        existing_by_ports: dict[PortKey, list[Obj]] = {}
        for s in existing:
            if owned_by(s, uid, "Service"):
                existing_by_ports.setdefault(port_key(s.get("ports")), []).append(s)
            else:
                to_delete.append(s)
        desired = self._desired(svc, pods, nodes, addr_type, plan.errors)
        stats = SyncStats(addr_type)
        to_create: list[Obj] = []
        to_update: list[Obj] = []
        auto = plan.topology == "Auto"
        for pk, group in desired.items():
            have = existing_by_ports.get(pk, [])
            c, u, d = self._by_port_mapping(svc, have, group, addr_type, stats, compare_hints=not auto)
            stats.efficiency[pk] = (len(group.endpoints), len(have) + len(c) - len(d))
            to_create += c
            to_update += u
            to_delete += d
        for pk, slices in existing_by_ports.items():
            if pk not in desired:
                to_delete += slices
        if len(existing) == len(to_delete) and not to_create:
            placeholder = self.new_slice(svc, [], addr_type)
            if len(to_delete) == 1 and _same_placeholder(to_delete[0], placeholder):
                to_delete = []
            else:
                to_create.append(placeholder)
            stats.efficiency[()] = (0, 1)
        written = {_name(s) for s in (*to_update, *to_delete)}
        si = SliceInfo(_service_key(svc), addr_type, to_create, to_update,
                       [s for s in existing if _name(s) not in written])
        self._hints(svc, si, auto, plan)
        stats.slices_changed = self._finalize(svc, si.to_create, si.to_update, to_delete, trigger_time, plan)
        plan.stats.append(stats)

    def _hints(self, svc: Obj, si: SliceInfo, auto: bool, plan: Plan) -> None:
        """Topology-aware hints for an Auto Service; otherwise forget any it had (and say so once)."""
        if auto:
            assert self.topology is not None
            plan.events += self.topology.add_hints(si)
            return
        if self.topology is not None:
            plan.events += self.topology.not_asked(si.service_key, si.address_type)
        if hints_enabled(svc):  # asked for, but this controller gives none: take off what is there
            remove_hints_from_slices(si)

    def _by_port_mapping(self, svc: Obj, existing: list[Obj], group: _Group, addr_type: str, stats: SyncStats,
                         *, compare_hints: bool = True) -> tuple[list[Obj], list[Obj], list[Obj]]:
        """Steps 2 and 3 of the module docstring for one port group: (create, update, delete)."""
        desired = dict(group.endpoints)
        labels = self.labels(svc)
        unchanged: list[Obj] = []
        updated: dict[str, Obj] = {}
        deleted: list[Obj] = []
        for s in existing:
            kept: list[Obj] = []
            changed = False
            keys, same = self._existing_keys(svc, s)
            for i, ep in enumerate(s.get("endpoints") or []):
                want = desired.pop(keys[i], None)
                if want is not None:
                    kept.append(want)
                    if want is same[i]:
                        continue  # this very desired endpoint was found equal to this version before
                    if want == ep or endpoints_equal_beyond_key(want, ep, compare_hints=compare_hints):
                        same[i] = want
                    else:
                        changed = True
            if changed or len(kept) != len(s.get("endpoints") or []):
                stats.removed += len(s.get("endpoints") or []) - len(kept)
                if kept:
                    updated[_name(s)] = _with(s, endpoints=kept, labels=labels)
                else:
                    deleted.append(s)
            elif _labels(s) != labels:
                updated[_name(s)] = _with(s, endpoints=list(s.get("endpoints") or []), labels=labels)
            else:
                unchanged.append(s)

        remaining = deque(desired[k] for k in sorted(desired))
        stats.added += len(remaining)
        for s in sorted(updated.values(), key=lambda s: -len(s["endpoints"])):
            self._fill(s, remaining)
        created: list[Obj] = []
        while remaining:
            target = None
            if len(remaining) < self.max and unchanged:
                target = _slice_to_fill(unchanged, len(remaining), self.max)
            if target is None:
                fresh = self.new_slice(svc, group.ports, addr_type)
                self._fill(fresh, remaining)
                created.append(fresh)
            else:
                unchanged.remove(target)
                s = _with(target, endpoints=list(target.get("endpoints") or []), labels=labels)
                self._fill(s, remaining)
                updated[_name(s)] = s
        return created, list(updated.values()), deleted

    def _fill(self, s: Obj, remaining: deque[Obj]) -> None:
        while remaining and len(s["endpoints"]) < self.max:
            s["endpoints"].append(remaining.popleft())

    def _finalize(self, svc: Obj, create: list[Obj], update: list[Obj], delete: list[Obj],
                  trigger_time: str, plan: Plan) -> int:
        """Recycle slices about to be deleted as the bodies of creates; stamp the trigger time.  Returns the writes."""
        uid = (svc.get("metadata") or {}).get("uid", "")
        i = 0
        while i < len(delete) and create:
            old = delete[i]
            if old.get("addressType") == create[-1].get("addressType") and owned_by(old, uid, "Service"):
                update.append(_recycle(create.pop(), old))
                delete.pop(i)
            else:
                i += 1
        if (svc.get("metadata") or {}).get("deletionTimestamp"):
            create = []  # racing the garbage collector would only leave orphans behind
        for s in (*create, *update):
            annotations = dict((s["metadata"].get("annotations")) or {})
            if trigger_time:
                annotations[ANNOTATION_TRIGGER_TIME] = trigger_time
            else:
                annotations.pop(ANNOTATION_TRIGGER_TIME, None)
            s["metadata"]["annotations"] = annotations
        plan.create += create
        plan.update += update
        plan.delete += delete
        return len(create) + len(update) + len(delete)

    # ---------------------------------------------------------------- objects

    def labels(self, svc: Obj) -> dict[str, str]:
        """The Service's own labels, then the reserved ones this controller owns."""
        out = {k: v for k, v in _labels(svc).items() if k not in RESERVED_LABELS}
        if is_headless(svc):
            out[LABEL_HEADLESS] = ""
        out[LABEL_SERVICE_NAME] = _name(svc)
        out[LABEL_MANAGED_BY] = self.controller_name
        return out

    def new_slice(self, svc: Obj, ports: list[Obj], addr_type: str) -> Obj:
        return {
            "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
            "metadata": {"generateName": f"{_name(svc)}-", "namespace": _ns(svc),
                         "labels": self.labels(svc), "ownerReferences": [service_owner_ref(svc)]},
            "addressType": addr_type,
            "ports": [dict(p) for p in ports],
            "endpoints": [],
        }


def _slice_to_fill(slices: list[Obj], n: int, max_endpoints: int) -> Obj | None:
    """The slice that ends closest to full after taking ``n`` more endpoints (None if none fits)."""
    best, best_gap = None, max_endpoints
    for s in slices:
        gap = max_endpoints - (n + len(s.get("endpoints") or []))
        if 0 <= gap < best_gap:
            best, best_gap = s, gap
            if gap == 0:
                break
    return best


def _same_placeholder(s: Obj, placeholder: Obj) -> bool:
    """An existing slice that already is the placeholder we would create (so keep it)."""
    m, pm = s.get("metadata") or {}, placeholder["metadata"]
    return (m.get("namespace") == pm["namespace"] and (m.get("labels") or {}) == pm["labels"]
            and (m.get("ownerReferences") or []) == pm["ownerReferences"]
            and s.get("addressType") == placeholder["addressType"]
            and not s.get("ports") and not s.get("endpoints"))


def _with(s: Obj, **fields: Any) -> Obj:
    """A copy of a cached slice with some fields replaced (metadata copied, so labels can change)."""
    out = dict(s)
    out["metadata"] = dict(s.get("metadata") or {})
    if "labels" in fields:
        out["metadata"]["labels"] = fields.pop("labels")
    out.update(fields)
    return out


def _recycle(new: Obj, old: Obj) -> Obj:
    """The body of ``new`` written over ``old``: an update instead of a create plus a delete."""
    out = dict(new)
    meta = dict(new["metadata"])
    meta.pop("generateName", None)
    old_meta = old.get("metadata") or {}
    meta["name"] = old_meta.get("name", "")
    if old_meta.get("resourceVersion"):
        meta["resourceVersion"] = old_meta["resourceVersion"]
    out["metadata"] = meta
    return out


def _labels(obj: Obj) -> dict[str, str]:
    return (obj.get("metadata") or {}).get("labels") or {}


def _service_key(svc: Obj) -> str:
    return f"{_ns(svc)}/{_name(svc)}"


def _name(obj: Obj) -> str:
    return str((obj.get("metadata") or {}).get("name") or "")


def _ns(obj: Obj) -> str:
    return str((obj.get("metadata") or {}).get("namespace") or "")
