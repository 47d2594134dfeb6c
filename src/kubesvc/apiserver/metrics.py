"""Prometheus metrics of the apiserver (``/metrics``).

Request counts and latency by verb, resource and code, with upstream's metric
names where one exists, so dashboards built for kube-apiserver read them.
"""

from __future__ import annotations

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest

REGISTRY = CollectorRegistry()
REQUESTS = Counter(
    "apiserver_request_total", "API requests by verb, resource and HTTP code.",
    ["verb", "resource", "code"], registry=REGISTRY,
)
LATENCY = Histogram(
    "apiserver_request_duration_seconds", "API request latency (watches: until the stream ends).",
    ["verb", "resource"], registry=REGISTRY,
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 60.0),
)


def _resource(path: str) -> str:
    parts = [p for p in path.split("/") if p]
    if parts[:1] == ["api"]:
        rest = parts[2:]
    elif parts[:1] == ["apis"]:
        rest = parts[3:]
    else:
        return ""
    if rest[:1] == ["namespaces"] and len(rest) >= 3:
        rest = rest[2:]
    return rest[0] if rest else ""


def observe_request(method: str, path: str, code: int, seconds: float) -> None:
    res = _resource(path)
    REQUESTS.labels(method, res, str(code)).inc()
    LATENCY.labels(method, res).observe(seconds)


def render() -> tuple[bytes, str]:
    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST
