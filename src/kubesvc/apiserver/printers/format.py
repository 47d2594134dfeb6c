"""Cell formatting shared by every printer: ages, label maps, selectors.

kubectl prints whatever strings the server puts in a Table, so these helpers
reproduce upstream's spelling exactly (``5m30s``, ``<none>``, ``app=web``);
a difference here is a difference users see in ``kubectl get``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

NONE = "<none>"
UNKNOWN = "<unknown>"


def parse_time(value: Any) -> datetime | None:
    """An RFC 3339 metav1.Time or MicroTime, or None when absent or unreadable."""
    if not value or not isinstance(value, str):
        return None
    try:
        t = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    if t.tzinfo is None:
        t = t.replace(tzinfo=UTC)
    return t


def human_duration(seconds_total: float) -> str:
    """Upstream's ``duration.HumanDuration``: coarser the older it gets.

    Precision shrinks with age (``90s``, ``5m30s``, ``42m``, ``3h20m``, ``20h``,
    ``3d4h``, ``45d``, ``2y30d``, ``9y``) so the AGE column stays narrow.  Up to one
    second in the future counts as now, to tolerate clock skew.
    """
    seconds = int(seconds_total)  # Go truncates towards zero
    if seconds < -1:
        return "<invalid>"
    if seconds < 0:
        return "0s"
    if seconds < 60 * 2:
        return f"{seconds}s"
    minutes = seconds // 60
    if minutes < 10:
        s = seconds % 60
        return f"{minutes}m" if s == 0 else f"{minutes}m{s}s"
    if minutes < 60 * 3:
        return f"{minutes}m"
    hours = minutes // 60
    if hours < 8:
        m = minutes % 60
        return f"{hours}h" if m == 0 else f"{hours}h{m}m"
    if hours < 48:
        return f"{hours}h"
    if hours < 24 * 8:
        h = hours % 24
        return f"{hours // 24}d" if h == 0 else f"{hours // 24}d{h}h"
    if hours < 24 * 365 * 2:
        return f"{hours // 24}d"
    if hours < 24 * 365 * 8:
        dy = (hours // 24) % 365
        return f"{hours // 24 // 365}y" if dy == 0 else f"{hours // 24 // 365}y{dy}d"
    return f"{hours // 24 // 365}y"


def since(value: Any, now: datetime) -> str:
    """Age of a timestamp as the AGE column shows it; ``<unknown>`` when unset."""
    t = parse_time(value)
    if t is None:
        return UNKNOWN
    return human_duration((now - t).total_seconds())


def format_labels(labels: dict[str, str] | None) -> str:
    """``k1=v1,k2=v2`` sorted by key, or ``<none>`` (upstream's labels.FormatLabels)."""
    if not labels:
        return NONE
    return ",".join(f"{k}={labels[k]}" for k in sorted(labels))


def _requirement(key: str, op: str, values: list[str]) -> str:
    vals = sorted(values)
    if op == "Exists":
        return key
    if op == "DoesNotExist":
        return "!" + key
    if op == "In":
        return f"{key} in ({','.join(vals)})"
    if op == "NotIn":
        return f"{key} notin ({','.join(vals)})"
    return f"{key}={vals[0] if vals else ''}"


def selector_string(sel: dict[str, Any] | None) -> str:
    """A metav1.LabelSelector as a selector string, requirements sorted by key.

    Empty for a missing or empty selector, which is what upstream's
    ``LabelSelectorAsSelector(...).String()`` gives.
    """
    if not sel:
        return ""
    reqs: list[tuple[str, str]] = []
    for k, v in (sel.get("matchLabels") or {}).items():
        reqs.append((k, _requirement(k, "Equals", [v])))
    for expr in sel.get("matchExpressions") or []:
        k = expr.get("key", "")
        reqs.append((k, _requirement(k, expr.get("operator", ""), list(expr.get("values") or []))))
    reqs.sort(key=lambda r: r[0])
    return ",".join(r for _, r in reqs)


def format_selector(sel: dict[str, Any] | None) -> str:
    """Like :func:`selector_string` but ``<none>`` when empty (metav1.FormatLabelSelector)."""
    return selector_string(sel) or NONE


def containers_and_images(template_spec: dict[str, Any] | None) -> tuple[str, str]:
    """The CONTAINERS and IMAGES cells of a workload: comma-joined, in order."""
    containers = (template_spec or {}).get("containers") or []
    return (",".join(c.get("name", "") for c in containers),
            ",".join(c.get("image", "") for c in containers))


def join_host_port(host: str, port: Any) -> str:
    """``ip:port``, with IPv6 addresses bracketed as Go's net.JoinHostPort does."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def with_more(items: list[str], count: int, limit: int = 3, empty: str = "<unset>") -> str:
    """First ``limit`` items comma-joined plus `` + N more...``; ``empty`` when none."""
    shown = ",".join(items[:limit])
    if count > limit:
        return f"{shown} + {count - limit} more..."
    return shown or empty
