"""Small helpers over object metadata shared by every layer.

Objects are plain JSON dicts (as the API returns them); these helpers read and
write the ``metadata`` part without each caller repeating the ``setdefault``
dance.
"""

from __future__ import annotations

import secrets
import uuid
from datetime import UTC, datetime
from typing import Any

Obj = dict[str, Any]

# upstream's utilrand alphabet: no vowels, no easily-confused characters
_NAME_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"
GENERATE_SUFFIX_LEN = 5
MAX_GENERATED_NAME_LEN = 63 - GENERATE_SUFFIX_LEN


def meta(obj: Obj) -> dict[str, Any]:
    m = obj.get("metadata")
    if not isinstance(m, dict):
        m = {}
        obj["metadata"] = m
    return m


def name_of(obj: Obj) -> str:
    return str((obj.get("metadata") or {}).get("name") or "")


def namespace_of(obj: Obj) -> str:
    return str((obj.get("metadata") or {}).get("namespace") or "")


def labels_of(obj: Obj) -> dict[str, str]:
    return (obj.get("metadata") or {}).get("labels") or {}


def key_of(obj: Obj) -> str:
    """``namespace/name`` (or ``name`` for cluster-scoped objects): the cache key."""
    ns = namespace_of(obj)
    return f"{ns}/{name_of(obj)}" if ns else name_of(obj)


def new_uid() -> str:
    return str(uuid.uuid4())


def now_rfc3339(now: datetime | None = None) -> str:
    """``2024-01-02T03:04:05Z``: metav1.Time has second precision on the wire."""
    return (now or datetime.now(UTC)).strftime("%Y-%m-%dT%H:%M:%SZ")


def now_micro(now: datetime | None = None) -> str:
    """metav1.MicroTime: ``2024-01-02T03:04:05.123456Z``."""
    return (now or datetime.now(UTC)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_time(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


def generate_name(prefix: str) -> str:
    """generateName semantics: the prefix, cut to leave room, plus 5 random characters."""
    if len(prefix) > MAX_GENERATED_NAME_LEN:
        prefix = prefix[:MAX_GENERATED_NAME_LEN]
    return prefix + "".join(secrets.choice(_NAME_ALPHABET) for _ in range(GENERATE_SUFFIX_LEN))


def owner_uids(obj: Obj) -> list[str]:
    return [r.get("uid", "") for r in (obj.get("metadata") or {}).get("ownerReferences") or []]


def controller_of(obj: Obj) -> dict[str, Any] | None:
    """The ownerReference with ``controller: true``, if any."""
    for ref in (obj.get("metadata") or {}).get("ownerReferences") or []:
        if ref.get("controller"):
            return ref
    return None
