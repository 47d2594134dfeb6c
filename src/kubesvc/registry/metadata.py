"""Object-metadata validation for the generic registry, per kind.

Which name rule a kind uses is upstream's choice per resource (namespaces are
DNS-1123 labels, services DNS-1035 labels, almost everything else DNS-1123
subdomains); the rules themselves live in :mod:`kubesvc.api.validation`.
"""

from __future__ import annotations

from typing import Any

from kubesvc.api.errors import FieldError
from kubesvc.api.resources import Resource
from kubesvc.api.validation.meta import (
    NameFn,
    name_is_dns1035_label,
    name_is_dns_label,
    name_is_dns_subdomain,
    validate_object_meta,
    validate_object_meta_update,
)

Obj = dict[str, Any]

_NAME_RULES: dict[str, NameFn] = {
    "namespaces": name_is_dns_label,
    "services": name_is_dns1035_label,
}

#: kinds whose strategy validates metadata itself (so it is not reported twice)
SELF_VALIDATING = frozenset({"services"})


def name_rule(res: Resource) -> NameFn:
    return _NAME_RULES.get(res.plural, name_is_dns_subdomain)


def validate_meta_create(obj: Obj, res: Resource) -> list[FieldError]:
    if res.plural in SELF_VALIDATING:
        return []
    return validate_object_meta(obj.get("metadata") or {}, res.namespaced, name_rule(res), "metadata")


def validate_meta_update(obj: Obj, old: Obj, res: Resource) -> list[FieldError]:
    if res.plural in SELF_VALIDATING:
        return []
    return validate_object_meta_update(obj.get("metadata") or {}, old.get("metadata") or {}, "metadata")
