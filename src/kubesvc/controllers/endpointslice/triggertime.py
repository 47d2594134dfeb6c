"""The ``endpoints.kubernetes.io/last-change-trigger-time`` value, as upstream's TriggerTimeTracker.

The annotation says when the change that a slice (or Endpoints) write carries
*began*: kube-proxy subtracts it from the time it programs the rule to report
network programming latency.  A pod's change time is its Ready condition's
``lastTransitionTime``; a Service's is its creation time.  Per Service we
remember the times seen at the previous sync; the value for this sync is the
earliest time among the pods (and the Service) whose time moved since, so a
batch of changes is dated by its oldest member.  Nothing moved: empty string
(the annotation is then cleared on whatever is written).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from kubesvc.api.meta import parse_time

from .model import ready_transition_time

Obj = dict[str, Any]


@dataclass
class _Seen:
    service_time: str = ""
    pod_times: dict[str, tuple[str, str]] = field(default_factory=dict)  # pod name -> (resourceVersion, time)


class TriggerTimeTracker:
    """State per Service key; call :meth:`compute` once per sync and :meth:`forget` when it goes."""

    def __init__(self) -> None:
        self._seen: dict[str, _Seen] = {}

    def compute(self, key: str, svc: Obj, pods: list[Obj]) -> str:
        prev = self._seen.get(key)
        now = _Seen(str((svc.get("metadata") or {}).get("creationTimestamp") or ""))
        candidates: list[str] = []
        if prev is None or prev.service_time != now.service_time:
            candidates.append(now.service_time)
        prev_times = prev.pod_times if prev is not None else {}
        for pod in pods:
            m = pod.get("metadata") or {}
            pkey = m.get("name") or ""  # a Service's pods share its namespace
            rv = m.get("resourceVersion") or ""
            seen = prev_times.get(pkey)
            if seen is not None and rv and seen[0] == rv:
                now.pod_times[pkey] = seen  # same version of the pod: same time, nothing moved
                continue
            rv = str(rv)
            t = ready_transition_time(pod)
            now.pod_times[pkey] = (rv, t)
            if seen is None or seen[1] != t:
                candidates.append(t)
        self._seen[key] = now
        dated = [(d, t) for t in candidates if (d := parse_time(t)) is not None]
        return min(dated, key=_first)[1] if dated else ""

    def forget(self, key: str) -> None:
        self._seen.pop(key, None)


def _first(item: tuple[datetime, str]) -> datetime:
    return item[0]
