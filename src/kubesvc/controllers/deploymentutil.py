"""Deployment arithmetic and bookkeeping, pure (upstream's ``deployment/util``).

* The pod-template hash names a Deployment's ReplicaSets
  (``<deployment>-<hash>``) and labels their pods.  Upstream hashes the Go
  struct with FNV-32a over a spew dump, which no other language can
  reproduce; kubesvc hashes the template's canonical JSON (sorted keys, no
  whitespace, the ``pod-template-hash`` label removed) with FNV-32a, appends
  the collision count as upstream does, and encodes the decimal number with
  upstream's ``SafeEncodeString`` alphabet.  Same shape
  (``nginx-7c5ddbdf54``), stable across restarts and Python versions.
* ``maxSurge`` rounds up and ``maxUnavailable`` rounds down; both zero means
  one unavailable (``resolve_fenceposts``).
* Revisions live in the ``deployment.kubernetes.io/revision`` annotation; a
  ReplicaSet also carries ``desired-replicas`` and ``max-replicas`` so a
  later resize can be shared out proportionally.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Iterable
from typing import Any

import orjson

Obj = dict[str, Any]
HASH_LABEL = "pod-template-hash"
REVISION = "deployment.kubernetes.io/revision"
REVISION_HISTORY = "deployment.kubernetes.io/revision-history"
DESIRED_REPLICAS = "deployment.kubernetes.io/desired-replicas"
MAX_REPLICAS = "deployment.kubernetes.io/max-replicas"
ROLLBACK_TO = "deprecated.deployment.rollback.to"
LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"
SKIP_ANNOTATIONS = frozenset({LAST_APPLIED, REVISION, REVISION_HISTORY, DESIRED_REPLICAS, MAX_REPLICAS, ROLLBACK_TO})
_SAFE_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"


# ---------------------------------------------------------------- hash

def fnv32a(data: bytes) -> int:
    h = 0x811C9DC5
    for b in data:
        h ^= b
        h = (h * 0x01000193) & 0xFFFFFFFF
    return h


def safe_encode(s: str) -> str:
    """Upstream's rand.SafeEncodeString: each byte mapped into a vowel-free alphabet."""
    return "".join(_SAFE_ALPHABET[b % len(_SAFE_ALPHABET)] for b in s.encode())


def _without_hash(template: Obj) -> Obj:
    t = copy.deepcopy(template or {})
    labels = (t.get("metadata") or {}).get("labels")
    if isinstance(labels, dict):
        labels.pop(HASH_LABEL, None)
        if not labels:
            t["metadata"].pop("labels")
    return t


def compute_hash(template: Obj, collision_count: int | None = None) -> str:
    data = orjson.dumps(_without_hash(template), option=orjson.OPT_SORT_KEYS)
    if collision_count is not None:
        data += int(collision_count).to_bytes(4, "little") + b"\0\0\0\0"
    return safe_encode(str(fnv32a(data)))


def equal_ignore_hash(a: Obj, b: Obj) -> bool:
    """Two pod templates are the same rollout if they differ only in the hash label."""
    return _without_hash(a) == _without_hash(b)


# ---------------------------------------------------------------- int-or-percent

def scaled_value(value: int | str | None, total: int, round_up: bool) -> int:
    """An IntOrString against ``total``: ints as is, ``"25%"`` scaled and rounded."""
    if value is None:
        return 0
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    s = str(value)
    if not s.endswith("%"):
        try:
            return int(s)
        except ValueError:
            raise ValueError("invalid value for IntOrString: invalid type: string is not a percentage") from None
    try:
        pct = int(s[:-1])
    except ValueError:
        raise ValueError(f"invalid value for IntOrString: invalid value {s!r}") from None
    exact = pct * total / 100
    return math.ceil(exact) if round_up else math.floor(exact)


def resolve_fenceposts(max_surge: int | str | None, max_unavailable: int | str | None, desired: int) -> tuple[int, int]:
    surge = scaled_value(max_surge, desired, True)
    unavailable = scaled_value(max_unavailable, desired, False)
    if surge == 0 and unavailable == 0:
        unavailable = 1  # otherwise the rollout could never make progress
    return surge, unavailable


def replicas(obj: Obj | None) -> int:
    if obj is None:
        return 0
    r = (obj.get("spec") or {}).get("replicas")
    return 1 if r is None else int(r)


def is_rolling(d: Obj) -> bool:
    return (((d.get("spec") or {}).get("strategy") or {}).get("type") or "RollingUpdate") == "RollingUpdate"


def _rolling_params(d: Obj) -> Obj:
    return (((d.get("spec") or {}).get("strategy") or {}).get("rollingUpdate")) or {}


def max_surge(d: Obj) -> int:
    if not is_rolling(d):
        return 0
    ru = _rolling_params(d)
    return resolve_fenceposts(ru.get("maxSurge", "25%"), ru.get("maxUnavailable", "25%"), replicas(d))[0]


def max_unavailable(d: Obj) -> int:
    if not is_rolling(d) or replicas(d) == 0:
        return 0
    ru = _rolling_params(d)
    u = resolve_fenceposts(ru.get("maxSurge", "25%"), ru.get("maxUnavailable", "25%"), replicas(d))[1]
    return min(u, replicas(d))


# ---------------------------------------------------------------- annotations and revisions

def annotations(obj: Obj | None) -> dict[str, str]:
    return ((obj or {}).get("metadata") or {}).get("annotations") or {}


def revision(obj: Obj | None) -> int:
    try:
        return int(annotations(obj).get(REVISION) or 0)
    except ValueError:
        return 0


def max_revision(rss: Iterable[Obj]) -> int:
    return max((revision(r) for r in rss), default=0)


def int_annotation(obj: Obj, key: str) -> int | None:
    try:
        v = annotations(obj).get(key)
        return int(v) if v is not None else None
    except ValueError:
        return None


def _ann(obj: Obj) -> dict[str, str]:
    return obj.setdefault("metadata", {}).setdefault("annotations", {})


def set_replicas_annotations(rs: Obj, desired: int, max_total: int) -> bool:
    ann = _ann(rs)
    want = {DESIRED_REPLICAS: str(desired), MAX_REPLICAS: str(max_total)}
    changed = any(ann.get(k) != v for k, v in want.items())
    ann.update(want)
    return changed


def replicas_annotations_need_update(rs: Obj, desired: int, max_total: int) -> bool:
    ann = annotations(rs)
    return ann.get(DESIRED_REPLICAS) != str(desired) or ann.get(MAX_REPLICAS) != str(max_total)


def copy_deployment_annotations(d: Obj, rs: Obj) -> bool:
    """Copy the Deployment's own annotations (not the controller's bookkeeping) onto ``rs``."""
    ann = _ann(rs)
    changed = False
    for k, v in annotations(d).items():
        if k in SKIP_ANNOTATIONS or ann.get(k) == v:
            continue
        ann[k] = v
        changed = True
    return changed


def set_new_rs_annotations(d: Obj, rs: Obj, new_revision: int, exists: bool) -> bool:
    """Upstream's SetNewReplicaSetAnnotations: copied annotations, revision (+history), sizes."""
    changed = copy_deployment_annotations(d, rs)
    ann = _ann(rs)
    old = ann.get(REVISION, "")
    try:
        old_int = int(old) if old else 0
    except ValueError:
        return False
    if old_int < new_revision:
        ann[REVISION] = str(new_revision)
        changed = True
        if old:
            hist = ann.get(REVISION_HISTORY)
            ann[REVISION_HISTORY] = f"{hist},{old}" if hist else old
    if not exists and set_replicas_annotations(rs, replicas(d), replicas(d) + max_surge(d)):
        changed = True
    return changed


# ---------------------------------------------------------------- replica set queries

def by_creation(rss: Iterable[Obj], newest_first: bool = False) -> list[Obj]:
    def key(r: Obj) -> tuple[str, str]:
        m = r.get("metadata") or {}
        return (m.get("creationTimestamp") or "", m.get("name") or "")
    return sorted(rss, key=key, reverse=newest_first)


def find_new_rs(d: Obj, rss: Iterable[Obj]) -> Obj | None:
    """The oldest ReplicaSet whose template is the Deployment's (ignoring the hash label)."""
    tmpl = (d.get("spec") or {}).get("template") or {}
    for rs in by_creation(rss):
        if equal_ignore_hash((rs.get("spec") or {}).get("template") or {}, tmpl):
            return rs
    return None


def active(rss: Iterable[Obj | None]) -> list[Obj]:
    return [r for r in rss if r is not None and replicas(r) > 0]


def spec_total(rss: Iterable[Obj | None]) -> int:
    return sum(replicas(r) for r in rss if r is not None)


def _status_sum(rss: Iterable[Obj | None], field: str) -> int:
    return sum(int((r.get("status") or {}).get(field) or 0) for r in rss if r is not None)


def actual_total(rss: Iterable[Obj | None]) -> int:
    return _status_sum(rss, "replicas")


def ready_total(rss: Iterable[Obj | None]) -> int:
    return _status_sum(rss, "readyReplicas")


def available_total(rss: Iterable[Obj | None]) -> int:
    return _status_sum(rss, "availableReplicas")


def new_rs_new_replicas(d: Obj, all_rss: list[Obj], new_rs: Obj) -> int:
    """How big the new ReplicaSet may be now (upstream's NewRSNewReplicas)."""
    if not is_rolling(d):
        return replicas(d)
    current = spec_total(all_rss)
    max_total = replicas(d) + max_surge(d)
    if current >= max_total:
        return replicas(new_rs)
    up = min(max_total - current, replicas(d) - replicas(new_rs))
    return replicas(new_rs) + up


def is_saturated(d: Obj, rs: Obj | None) -> bool:
    if rs is None:
        return False
    desired = int_annotation(rs, DESIRED_REPLICAS)
    return (desired is not None and replicas(rs) == replicas(d) and desired == replicas(d)
            and int((rs.get("status") or {}).get("availableReplicas") or 0) == replicas(d))


def new_rs_template(d: Obj, hash_: str) -> tuple[Obj, Obj]:
    """The new ReplicaSet's (template, selector): the Deployment's, plus the hash label."""
    spec = d.get("spec") or {}
    tmpl = copy.deepcopy(spec.get("template") or {})
    tmpl.setdefault("metadata", {}).setdefault("labels", {})[HASH_LABEL] = hash_
    sel = copy.deepcopy(spec.get("selector") or {})
    sel.setdefault("matchLabels", {})[HASH_LABEL] = hash_
    return tmpl, sel
