"""The patch layer of the apiserver: pure functions over plain JSON objects, no I/O.

* :func:`apply_patch` - JSON patch (RFC 6902), JSON merge patch (RFC 7386) and
  strategic merge patch, chosen by the request's Content-Type;
* :func:`server_side_apply` - ``application/apply-patch+yaml`` with field
  ownership and conflicts;
* :func:`update_managed_fields` - managedFields bookkeeping for plain
  create/update/patch requests.

Failures raise :class:`kubesvc.api.errors.StatusError` in upstream's shape.
"""

from __future__ import annotations

from kubesvc.api.errors import StatusError

from .apply import server_side_apply, update_managed_fields
from .jsonpatch_apply import apply_json_patch
from .mergekeys import LIST_RULES, ListRule, list_rule
from .mergepatch import apply_merge_patch
from .strategic import apply_strategic_merge_patch

JSON_PATCH = "application/json-patch+json"
MERGE_PATCH = "application/merge-patch+json"
STRATEGIC_MERGE_PATCH = "application/strategic-merge-patch+json"
APPLY_PATCH = "application/apply-patch+yaml"
PATCH_TYPES = (JSON_PATCH, MERGE_PATCH, APPLY_PATCH, STRATEGIC_MERGE_PATCH)


def apply_patch(patch_type: str, original: dict, patch_body: bytes, *, kind: str, api_version: str) -> dict:
    """Apply a JSON, merge or strategic merge patch; returns the new object (``original`` untouched)."""
    if patch_type == JSON_PATCH:
        return apply_json_patch(original, patch_body)
    if patch_type == MERGE_PATCH:
        return apply_merge_patch(original, patch_body)
    if patch_type == STRATEGIC_MERGE_PATCH:
        return apply_strategic_merge_patch(original, patch_body, kind=kind)
    raise StatusError(
        415, "UnsupportedMediaType",
        "the body of the request was in an unknown format - accepted media types include: "
        + ", ".join(PATCH_TYPES),
    )


__all__ = [
    "APPLY_PATCH",
    "JSON_PATCH",
    "LIST_RULES",
    "MERGE_PATCH",
    "PATCH_TYPES",
    "STRATEGIC_MERGE_PATCH",
    "ListRule",
    "apply_patch",
    "apply_json_patch",
    "apply_merge_patch",
    "apply_strategic_merge_patch",
    "list_rule",
    "server_side_apply",
    "update_managed_fields",
]
