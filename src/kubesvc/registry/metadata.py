"""Object-metadata validation for the generic registry, per kind.

Which name rule a kind uses is upstream's choice per resource (namespaces are
DNS-1123 labels, services DNS-1035 labels, almost everything else DNS-1123
subdomains); the rules themselves live in :mod:`kubesvc.api.validation`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from kubesvc.api.errors import FieldError
from kubesvc.api.resources import Resource
from kubesvc.api.validation import names
from kubesvc.api.validation.meta import validate_object_meta, validate_object_meta_update

Obj = dict[str, Any]

_NAME_RULES: dict[str, Callable[[str], list[str]]] = {
    "namespaces": names.is_dns1123_label,
    "services": names.is_dns1035_label,
}

#: kinds whose strategy validates metadata itself (so it is not reported twice)
SELF_VALIDATING = frozenset({"services"})


def name_rule(res: Resource) -> Callable[[str], list[str]]:
    return _NAME_RULES.get(res.plural, names.is_dns1123_subdomain)


def _name_fn(res: Resource) -> Callable[[str, bool], list[str]]:
    rule = name_rule(res)

    def fn(name: str, prefix: bool) -> list[str]:
        # generateName prefixes are checked as if a suffix were already there
        return rule(name + "a" if prefix and name else name)

    return fn


def validate_meta_create(obj: Obj, res: Resource) -> list[FieldError]:
    if res.plural in SELF_VALIDATING:
        return []
    return validate_object_meta(obj.get("metadata") or {}, res.namespaced, _name_fn(res), "metadata")


def validate_meta_update(obj: Obj, old: Obj, res: Resource) -> list[FieldError]:
    errs = validate_object_meta_update(obj.get("metadata") or {}, old.get("metadata") or {}, "metadata")
    if res.plural not in SELF_VALIDATING:
        errs = validate_object_meta(obj.get("metadata") or {}, res.namespaced, _name_fn(res), "metadata") + errs
    return errs
