"""Change trackers: which Services need replanning since the last sync.

Each tracker converts objects to views on ingest and keeps, per Service, the
state *before* the first pending change next to the current one; if a later
event brings them back equal, the change is dropped (upstream's "flip back"),
so a pod that blinks unready and ready again between two syncs costs nothing.
``take()`` hands the pending keys over to a sync and starts afresh.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import NamedTuple

from .model import Endpoint, Obj, ServicePort, SliceView, merge_slices, service_ports, slice_view

EndpointsByPort = dict[tuple[str, str], tuple[Endpoint, ...]]


def _key(obj: Obj) -> str:
    m = obj.get("metadata") or {}
    return f"{m.get('namespace', '')}/{m.get('name', '')}"


class ServiceTracker:
    """Service views by ``ns/name``."""

    def __init__(self) -> None:
        self.current: dict[str, tuple[ServicePort, ...]] = {}
        self._before: dict[str, tuple[ServicePort, ...]] = {}

    def update(self, old: Obj | None, new: Obj | None) -> bool:
        """Record an add (old None), update or delete (new None); True if a change is pending for it."""
        key = _key(new or old or {})
        ports = service_ports(new) if new else ()
        self._before.setdefault(key, self.current.get(key, ()))
        if ports:
            self.current[key] = ports
        else:
            self.current.pop(key, None)
        if self._before[key] == ports:
            del self._before[key]
            return False
        return True

    def take(self) -> set[str]:
        keys = set(self._before)
        self._before.clear()
        return keys


@dataclass
class _Pending:
    before: EndpointsByPort
    triggers: list[float] = field(default_factory=list)
    versions: dict[str, str] = field(default_factory=dict)  # "ns/slice-name" → resourceVersion


class Taken(NamedTuple):
    """What one sync takes over: the Services to replan and what their changes carry."""

    keys: set[str]
    triggers: list[float]  # last-change-trigger-times (epoch seconds), for the latency metric
    versions: dict[str, str]  # "ns/slice-name" → the resourceVersion of the slice this sync programs


def parse_trigger_time(text: str) -> float | None:
    """RFC 3339 (``2024-01-02T03:04:05Z``, fractional seconds allowed) → epoch seconds."""
    if not text:
        return None
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


class EndpointsTracker:
    """EndpointSlices merged per Service; remembers trigger times for the latency metric."""

    def __init__(self) -> None:
        self.slices: dict[str, dict[str, SliceView]] = {}  # service key → slice name → view
        self.current: dict[str, EndpointsByPort] = {}
        self._pending: dict[str, _Pending] = {}

    def update(self, old: Obj | None, new: Obj | None) -> bool:
        obj = new or old or {}
        name = (obj.get("metadata") or {}).get("name", "")
        view_old = slice_view(old) if old else None
        view_new = slice_view(new) if new else None
        touched = set()
        if view_old is not None and (view_new is None or view_new.service_key != view_old.service_key):
            self._set(view_old.service_key, name, None)  # gone, or now labelled for another Service
            touched.add(view_old.service_key)
        if view_new is not None:
            self._set(view_new.service_key, name, view_new)
            touched.add(view_new.service_key)
        meta = obj.get("metadata") or {}
        for k in touched:
            if (pend := self._pending.get(k)) is not None:
                pend.versions[f"{meta.get('namespace', '')}/{name}"] = str(meta.get("resourceVersion", ""))
        return any(k in self._pending for k in touched)

    def _set(self, svc: str, name: str, view: SliceView | None) -> None:
        by_name = self.slices.setdefault(svc, {})
        if by_name.get(name) == view:
            return
        pend = self._pending.get(svc) or _Pending(self.current.get(svc, {}))
        self._pending[svc] = pend
        if view is None:
            by_name.pop(name, None)
        else:
            by_name[name] = view
            t = parse_trigger_time(view.trigger_time)
            if t is not None:
                pend.triggers.append(t)
        merged = merge_slices(list(by_name.values())) if by_name else {}
        if merged:
            self.current[svc] = merged
        else:
            self.current.pop(svc, None)
            if not by_name:
                self.slices.pop(svc, None)
        if pend.before == merged:
            del self._pending[svc]

    def take(self) -> Taken:
        """Pending service keys, the trigger times of the changes behind them and the slice versions."""
        keys = set(self._pending)
        triggers = [t for p in self._pending.values() for t in p.triggers]
        versions = {n: v for p in self._pending.values() for n, v in p.versions.items()}
        self._pending.clear()
        return Taken(keys, triggers, versions)


def now() -> float:
    return time.time()
