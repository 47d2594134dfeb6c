"""Turn a request path into what it addresses (upstream's RequestInfo).

Pure: ``/api/v1/namespaces/default/services/web/status`` becomes
``RequestInfo(group="", version="v1", resource=services, namespace="default",
name="web", subresource="status")``.  The one ambiguity of the URL scheme,
``/api/v1/namespaces/NAME/SUB`` (a namespace's own subresource, or a namespaced
collection), is settled the way upstream settles it: ``status`` and
``finalize`` are subresources of the Namespace, anything else is a collection.
"""

from __future__ import annotations

from dataclasses import dataclass

from kubesvc.api.resources import Resource, by_plural

NAMESPACE_SUBRESOURCES = ("status", "finalize")


@dataclass(frozen=True)
class RequestInfo:
    """A resource request: which resource, namespace, object and subresource."""

    group: str
    version: str
    plural: str
    resource: Resource | None
    namespace: str | None
    name: str | None
    subresource: str | None
    watch_path: bool = False  # the deprecated /watch/ path form


class NotAResourcePath(Exception):
    """The path is not a resource path (discovery, health, or unknown)."""


def parse(path: str) -> RequestInfo:
    """Parse a resource path; raise :class:`NotAResourcePath` otherwise.

    The returned ``resource`` is None when the group/version/plural is not
    served (the caller answers 404 then).
    """
    parts = [p for p in path.split("/") if p]
    if len(parts) >= 2 and parts[0] == "api":
        group, version, rest = "", parts[1], parts[2:]
    elif len(parts) >= 3 and parts[0] == "apis":
        group, version, rest = parts[1], parts[2], parts[3:]
    else:
        raise NotAResourcePath(path)
    if not rest:
        raise NotAResourcePath(path)
    watch_path = False
    if rest[0] == "watch":
        watch_path = True
        rest = rest[1:]
        if not rest:
            raise NotAResourcePath(path)
    namespace: str | None = None
    if rest[0] == "namespaces" and len(rest) >= 3 and rest[2] not in NAMESPACE_SUBRESOURCES:
        namespace = rest[1]
        rest = rest[2:]
    plural = rest[0]
    name = rest[1] if len(rest) >= 2 else None
    sub = rest[2] if len(rest) >= 3 else None
    if len(rest) > 3:
        return RequestInfo(group, version, plural, None, namespace, name, sub, watch_path)
    res = by_plural(group, version, plural)
    if res is not None and not res.namespaced and namespace is not None:
        res = None
    if res is not None and sub is not None and sub not in res.subresources:
        res = None
    return RequestInfo(group, version, plural, res, namespace, name, sub, watch_path)
