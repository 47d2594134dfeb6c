"""The v1 Endpoints controller: one ``Endpoints`` object per Service with a selector.

EndpointSlices are what the data plane reads; Endpoints are what ``kubectl get
endpoints`` and ``kubectl describe svc`` show and what older clients watch, so
upstream still keeps them (pkg/controller/endpoint).  The pure part
(:func:`desired_subsets`, :func:`truncate`, :func:`desired_endpoints`) turns a
Service and its pods into the object; the controller writes it only when it
differs.

Rules, as upstream: terminating pods are left out unless
``publishNotReadyAddresses``; an address is ready when its pod is Ready (or the
Service publishes not-ready addresses); subsets are repacked into the
canonical form (addresses that offer the same ports share a subset); past
1,000 addresses the object is truncated, ready addresses first, and annotated
``endpoints.kubernetes.io/over-capacity: truncated``.  Endpoints of
selectorless Services are the user's and left alone; when a Service goes, its
Endpoints go too.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Iterable
from typing import Any

from kubesvc.api.resources import Resource, by_plural
from kubesvc.client.controller import Controller
from kubesvc.client.informer import split_key
from kubesvc.client.rest import ApiClient, ApiError
from kubesvc.client.sharedinformers import SharedInformerFactory

from .endpointslice.index import POD_INDEXERS, SERVICE_INDEXERS, pods_for_service, services_to_sync
from .endpointslice.model import (
    ANNOTATION_LEADER,
    ANNOTATION_OVER_CAPACITY,
    ANNOTATION_TRIGGER_TIME,
    LABEL_HEADLESS,
    family_of,
    find_port,
    is_headless,
    is_pod_ready,
    pod_ips,
    service_selector,
    should_pod_be_in_endpoints,
    should_set_hostname,
)
from .endpointslice.ownwrites import OwnWrites
from .endpointslice.triggertime import TriggerTimeTracker

Obj = dict[str, Any]
MAX_CAPACITY = 1000
TRUNCATED = "truncated"
_NO_PORT = ("", -1, "", "")  # upstream's sentinel: addresses of a headless Service without ports


def _res(plural: str) -> Resource:
    r = by_plural("", "v1", plural)
    assert r is not None
    return r


SERVICES, PODS, ENDPOINTS = _res("services"), _res("pods"), _res("endpoints")


# ---------------------------------------------------------------- pure part

def pod_address(pod: Obj, svc: Obj) -> Obj | None:
    """The pod's EndpointAddress for this Service: its IP of the Service's primary family."""
    spec = svc.get("spec") or {}
    ips = pod_ips(pod)
    families = spec.get("ipFamilies") or []
    if families:
        ips = [ip for ip in ips if family_of(ip) == families[0]]
    elif not is_headless(svc) and spec.get("clusterIP"):
        ips = [ip for ip in ips if family_of(ip) == family_of(spec["clusterIP"])]
    if not ips:
        return None
    m = pod.get("metadata") or {}
    addr: Obj = {"ip": ips[0]}
    if should_set_hostname(pod, svc):
        addr["hostname"] = pod["spec"]["hostname"]
    if (pod.get("spec") or {}).get("nodeName"):
        addr["nodeName"] = pod["spec"]["nodeName"]
    addr["targetRef"] = {"kind": "Pod", "namespace": m.get("namespace", ""), "name": m.get("name", ""),
                         "uid": m.get("uid", "")}
    return addr


def _port_tuple(p: Obj) -> tuple[str, int, str, str]:
    return (p.get("name") or "", int(p.get("port") or 0), p.get("protocol") or "TCP", p.get("appProtocol") or "")


def _port_obj(t: tuple[str, int, str, str]) -> Obj:
    out: Obj = {"name": t[0], "port": t[1], "protocol": t[2]} if t[0] else {"port": t[1], "protocol": t[2]}
    if t[3]:
        out["appProtocol"] = t[3]
    return out


def _addr_key(a: Obj) -> tuple[bytes, str]:
    return a.get("ip", "").encode(), (a.get("targetRef") or {}).get("uid", "")


_Port = tuple[str, int, str, str]
_Entry = tuple[Obj, bool, list[_Port]]


def _pod_entry(svc: Obj, pod: Obj) -> _Entry | None:
    """The pod's address, readiness and resolved ports for this Service (None: not in Endpoints)."""
    spec = svc.get("spec") or {}
    publish = bool(spec.get("publishNotReadyAddresses"))
    if not should_pod_be_in_endpoints(pod, include_terminating=publish):
        return None
    addr = pod_address(pod, svc)
    if addr is None:
        return None
    ports: list[_Port] = [_NO_PORT] if not spec.get("ports") and is_headless(svc) else []
    for sp in spec.get("ports") or []:
        num = find_port(pod, sp)
        if num is not None:
            ports.append((sp.get("name") or "", num, sp.get("protocol") or "TCP", sp.get("appProtocol") or ""))
    return addr, publish or is_pod_ready(pod), ports


def _entries(svc: Obj, pods: list[Obj], memo: dict[str, Any] | None) -> list[_Entry]:
    """Every pod's entry; with a memo, unchanged pods (same pod and Service resourceVersions) are reused."""
    if memo is None:
        return [e for p in pods if (e := _pod_entry(svc, p)) is not None]
    svc_rv = str((svc.get("metadata") or {}).get("resourceVersion") or "")
    fresh: dict[str, Any] = {}
    out = []
    for pod in pods:
        pm = pod.get("metadata") or {}
        uid, finger = pm.get("uid") or "", (str(pm.get("resourceVersion") or ""), svc_rv)
        hit = memo.get(uid)
        entry = hit[1] if hit is not None and hit[0] == finger and all(finger) else _pod_entry(svc, pod)
        fresh[uid] = (finger, entry)
        if entry is not None:
            out.append(entry)
    memo.clear()
    memo.update(fresh)
    return out


def desired_subsets(svc: Obj, pods: list[Obj], memo: dict[str, Any] | None = None) -> list[Obj]:
    """Every (address, port) the Service's pods offer, repacked into canonical subsets."""
    addrs: dict[tuple[bytes, str], Obj] = {}
    by_port: dict[_Port, dict[tuple[bytes, str], bool]] = {}
    for addr, ready, ports in _entries(svc, pods, memo):
        key = _addr_key(addr)
        addrs.setdefault(key, addr)
        for port in ports:
            seen = by_port.setdefault(port, {})
            seen[key] = seen.get(key, True) and ready  # not ready wins, as upstream
    groups: dict[tuple[tuple[tuple[bytes, str], bool], ...], list[_Port]] = {}
    for port, seen_by_addr in by_port.items():
        groups.setdefault(tuple(sorted(seen_by_addr.items())), []).append(port)
    subsets = []
    for members, ports in groups.items():
        subset: Obj = {}
        ready_addrs = [addrs[k] for k, r in members if r]
        not_ready = [addrs[k] for k, r in members if not r]
        if ready_addrs:
            subset["addresses"] = ready_addrs
        if not_ready:
            subset["notReadyAddresses"] = not_ready
        if ports != [_NO_PORT]:
            subset["ports"] = [_port_obj(p) for p in sorted(ports)]
        subsets.append(subset)
    return sorted(subsets, key=lambda s: [_port_tuple(p) for p in s.get("ports") or []])


def truncate(subsets: list[Obj], max_capacity: int = MAX_CAPACITY) -> bool:
    """Cut to ``max_capacity`` addresses in place, ready ones first, proportionally per subset."""
    total_ready = sum(len(s.get("addresses") or []) for s in subsets)
    total_not_ready = sum(len(s.get("notReadyAddresses") or []) for s in subsets)
    if total_ready + total_not_ready <= max_capacity:
        return False
    cut_ready = total_ready > max_capacity
    budget = max_capacity if cut_ready else max_capacity - total_ready
    total = total_ready if cut_ready else total_not_ready
    left = budget
    for s in subsets:
        field = "addresses" if cut_ready else "notReadyAddresses"
        have = s.get(field) or []
        take = min(left, math.ceil(len(have) / total * budget)) if total else 0
        s[field] = have[:take]
        if cut_ready:
            s.pop("notReadyAddresses", None)
        left -= len(s[field])
        if not s[field]:
            s.pop(field)
    return True


def _norm(subsets: list[Obj] | None) -> list[Obj]:
    """Subsets for comparison: empty lists dropped, the pods' resourceVersions ignored."""
    out = []
    for s in subsets or []:
        n: Obj = {}
        for field in ("addresses", "notReadyAddresses"):
            if s.get(field):
                n[field] = [{**a, "targetRef": {k: v for k, v in (a.get("targetRef") or {}).items()
                                                if k != "resourceVersion"}} for a in s[field]]
        if s.get("ports"):
            n["ports"] = s["ports"]
        out.append(n)
    return out


def _same_subsets(have: list[Obj], want: list[Obj]) -> bool:
    """Equal as written (checked at C speed), else equal once normalised.

    What this controller writes is already normal (no empty lists, no pod
    resourceVersions), so normalising is needed only when ``have`` is not:
    a real change -- the common reason for a difference -- costs one scan.
    """
    if have == want:
        return True
    if not _needs_norm(have):
        return False
    return _norm(have) == _norm(want)


def _needs_norm(subsets: list[Obj]) -> bool:
    for s in subsets:
        for field in ("addresses", "notReadyAddresses", "ports"):
            if field in s and not s[field]:
                return True
        for field in ("addresses", "notReadyAddresses"):
            if any("resourceVersion" in (a.get("targetRef") or {}) for a in s.get(field) or ()):
                return True
    return False


def desired_endpoints(svc: Obj, pods: list[Obj], current: Obj | None, trigger_time: str = "",
                      memo: dict[str, Any] | None = None) -> Obj | None:
    """The Endpoints object to write, or None when ``current`` already says the same."""
    subsets = desired_subsets(svc, pods, memo)
    truncated = truncate(subsets)
    labels = dict((svc.get("metadata") or {}).get("labels") or {})
    if is_headless(svc):
        labels[LABEL_HEADLESS] = ""
    else:
        labels.pop(LABEL_HEADLESS, None)
    cur_meta = (current or {}).get("metadata") or {}
    cur_truncated = ANNOTATION_OVER_CAPACITY in (cur_meta.get("annotations") or {})
    if (current is not None and _same_subsets(current.get("subsets") or [], subsets)
            and (cur_meta.get("labels") or {}) == labels and cur_truncated == truncated):
        return None
    meta = dict(cur_meta) if current is not None else {
        "name": (svc.get("metadata") or {}).get("name", ""), "namespace": (svc.get("metadata") or {}).get("namespace", "")}
    annotations = dict(meta.get("annotations") or {})
    for key, value, on in ((ANNOTATION_TRIGGER_TIME, trigger_time, bool(trigger_time)),
                           (ANNOTATION_OVER_CAPACITY, TRUNCATED, truncated)):
        if on:
            annotations[key] = value
        else:
            annotations.pop(key, None)
    for name, mapping in (("labels", labels), ("annotations", annotations)):
        if mapping:
            meta[name] = mapping
        else:
            meta.pop(name, None)  # empty maps are omitted on the wire, as upstream's omitempty
    out: Obj = {"apiVersion": "v1", "kind": "Endpoints", "metadata": meta}
    if subsets:
        out["subsets"] = subsets
    return out


# ---------------------------------------------------------------- controller

class EndpointsController(Controller):
    """Keys are Service keys; see the module docstring."""

    name = "endpoints"

    def __init__(self, client: ApiClient, *, batch_period: float = 1.0, workers: int = 4,
                 resync_period: float | None = 300.0,
                 factory: SharedInformerFactory | None = None) -> None:
        """``batch_period``: pod changes wait this long, so a burst becomes one write (upstream's
        ``--endpoint-updates-batch-period``).  An Endpoints object holds every address of its
        Service -- a 1,000-pod Service's is ~200 KB -- and nothing on the data path reads it
        (that is what EndpointSlices are for), so it trails the slices rather than compete
        with them for the event loop on every pod change.
        """
        super().__init__(workers=workers, resync_period=resync_period)
        self.factory = self.informer_factory(client, factory)
        self.batch_period = batch_period
        self.client = client
        self.triggers = TriggerTimeTracker()
        self.own = OwnWrites()
        self.memo: dict[str, dict[str, Any]] = {}  # per Service key: pods' entries (see _entries)
        self.services = self.factory.informer(SERVICES, indexers=SERVICE_INDEXERS)
        self.pods = self.factory.informer(PODS, indexers=POD_INDEXERS)
        self.endpoints = self.factory.informer(ENDPOINTS)
        self.informers += [self.services, self.pods, self.endpoints]
        self.services.add_handler(self._svc_event, lambda old, new: self._svc_event(new), self._svc_event)
        self.pods.add_handler(lambda p: self._pod_event(None, p), self._pod_event,
                              lambda p: self._pod_event(p, None))
        self.endpoints.add_handler(None, lambda old, new: self._ep_changed(new), self._ep_deleted)

    def _svc_event(self, svc: Obj) -> None:
        m = svc.get("metadata") or {}
        self.enqueue(f"{m.get('namespace', '')}/{m.get('name', '')}")

    def _pod_event(self, old: Obj | None, new: Obj | None) -> None:
        for key in services_to_sync(self.services.store, old, new):
            if self.batch_period > 0:
                self.queue.add_after(key, self.batch_period)
            else:
                self.enqueue(key)

    def _ep_changed(self, ep: Obj) -> None:
        """Someone else edited Endpoints we manage: put it right."""
        if not self.own.is_echo(ep):
            self._repair(ep)

    def _ep_deleted(self, ep: Obj) -> None:
        if not self.own.is_delete_echo(ep):
            self._repair(ep)

    def _repair(self, ep: Obj) -> None:
        m = ep.get("metadata") or {}
        key = f"{m.get('namespace', '')}/{m.get('name', '')}"
        svc = self.services.store.get(key)
        if svc is not None and service_selector(svc) is not None:
            self.enqueue(key)

    async def start(self) -> None:
        """Also look once at every Endpoints object: those whose Service is gone are deleted (upstream's leftover check)."""
        await super().start()
        for key in self.endpoints.store.keys():
            if key not in self.services.store:
                self.enqueue(key)

    def resync_keys(self) -> Iterable[Hashable]:
        return self.services.store.keys()

    async def reconcile(self, key: Hashable) -> None:
        skey = str(key)
        ns, name = split_key(skey)
        svc = self.services.store.get(skey)
        cached = self.endpoints.store.get(skey)
        current = next(iter(self.own.view(skey, [cached] if cached is not None else [])), None)
        if svc is None:
            self.triggers.forget(skey)
            self.memo.pop(skey, None)
            if current is not None and ANNOTATION_LEADER not in ((current.get("metadata") or {}).get("annotations") or {}):
                await self._delete(current, ns or "", name)
            return
        if (svc.get("spec") or {}).get("type") == "ExternalName" or service_selector(svc) is None:
            return
        pods = pods_for_service(self.pods.store, svc)
        trigger = self.triggers.compute(skey, svc, pods)
        body = desired_endpoints(svc, pods, current, trigger, self.memo.setdefault(skey, {}))
        if body is None:
            return
        if current is None:
            try:
                result = await self.client.create(ENDPOINTS, body, ns)
            except ApiError as e:
                if e.reason == "Forbidden" and "terminat" in e.message:
                    return  # the namespace is going away
                raise
        else:
            try:
                result = await self.client.replace(ENDPOINTS, body, ns)
            except ApiError as e:
                if e.code == 404:
                    self.own.drop(skey, body)
                raise
        self.own.wrote(skey, result)

    async def _delete(self, current: Obj, ns: str, name: str) -> None:
        try:
            await self.client.delete(ENDPOINTS, name, ns)
        except ApiError as e:
            if e.code != 404:
                raise
        self.own.deleted(f"{ns}/{name}", current)
        self.own.forget(f"{ns}/{name}")
