"""Strategic merge patch: ``application/strategic-merge-patch+json``.

What kubectl sends (``apply``, ``edit``, ``patch``, ``set image``, ``rollout restart``):

* maps merge recursively; a ``null`` value deletes the key;
* a list merges by its merge key when the field's strategy is ``merge``
  (see :mod:`.mergekeys`), a list of scalars with strategy ``merge`` is a set
  (union); any other list is replaced wholesale;
* directives: ``$patch: replace|delete|merge`` in a map or as a list item,
  ``$deleteFromPrimitiveList/<field>``, ``$setElementOrder/<field>`` and
  ``$retainKeys``.

Ordering follows upstream's rules: the items named in the patch (or in its
``$setElementOrder`` list) come in that order, and items only the server has
keep their relative order and are interleaved by their position in the live
list (so an item only the live object has stays where it was, or after the
patch's items).

Errors are 400 BadRequest with upstream's wording (``map: ... does not contain
declared merge key: name``), which upstream itself sometimes reports as 422/500.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

from kubesvc.api.errors import bad_request

from . import mergekeys
from .mergekeys import ListRule, child_path, item_path
from .mergepatch import decode_json_object

DIRECTIVE = "$patch"
RETAIN_KEYS = "$retainKeys"
SET_ORDER = "$setElementOrder/"
DELETE_PRIMITIVE = "$deleteFromPrimitiveList/"

_ABSENT = object()


def _go(value: Any) -> str:
    """Render a value like Go's ``%v`` of decoded JSON (``map[name:x]``)."""
    if isinstance(value, dict):
        return "map[" + " ".join(f"{k}:{_go(v)}" for k, v in sorted(value.items())) + "]"
    if isinstance(value, list):
        return "[" + " ".join(_go(v) for v in value) + "]"
    if value is None:
        return "<nil>"
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def strip(value: Any) -> Any:
    """A copy of a patch value with nulls and directives removed (what a typed decode keeps)."""
    if isinstance(value, dict):
        return {k: strip(v) for k, v in value.items() if v is not None and not k.startswith("$")}
    if isinstance(value, list):
        return [strip(v) for v in value if not (isinstance(v, dict) and DIRECTIVE in v)]
    return value


class _Patcher:
    def __init__(self, kind: str) -> None:
        self.kind = kind

    # ---------------------------------------------------------------- maps

    def merge_map(self, original: dict[str, Any] | None, patch: dict[str, Any], path: str) -> dict[str, Any]:
        patch = dict(patch)
        if DIRECTIVE in patch:
            directive = patch.pop(DIRECTIVE)
            if directive == "replace":
                return strip(patch)
            if directive == "delete":
                return {}
            if directive != "merge":
                raise bad_request(f"unknown patch type: {directive} in map: {_go({**patch, DIRECTIVE: directive})}")
        out: dict[str, Any] = dict(original) if isinstance(original, dict) else {}
        if RETAIN_KEYS in patch:
            retain = patch.pop(RETAIN_KEYS)
            if not isinstance(retain, list):
                raise bad_request("invalid patch format of retainKeys")
            for key in [k for k in out if k not in retain]:
                del out[key]
        for key in [k for k in patch if k.startswith(SET_ORDER)]:
            self._set_element_order(out, patch, key, path)
        for key, value in patch.items():
            if key.startswith(SET_ORDER):
                continue
            if key.startswith(DELETE_PRIMITIVE):
                self._delete_from_primitive_list(out, key[len(DELETE_PRIMITIVE):], value)
                continue
            if value is None:
                out.pop(key, None)
                continue
            sub = child_path(path, key)
            current = out.get(key, _ABSENT)
            if current is _ABSENT or current is None:
                out[key] = self.merge_value(None, value, sub)
            elif type(current) is not type(value) and not (_is_num(current) and _is_num(value)):
                out[key] = strip(value)
            else:
                out[key] = self.merge_value(current, value, sub)
        return out

    def merge_value(self, original: Any, patch: Any, path: str) -> Any:
        if isinstance(patch, dict):
            if original is not None and not isinstance(original, dict):
                return strip(patch)
            return self.merge_map(original, patch, path)
        if isinstance(patch, list):
            rule = mergekeys.list_rule(self.kind, path)
            if rule is not None and rule.merges:
                return self.merge_list(original if isinstance(original, list) else [], patch, rule, path)
            return strip(patch)
        return patch

    def _delete_from_primitive_list(self, out: dict[str, Any], field: str, values: Any) -> None:
        if not isinstance(values, list):
            raise bad_request("invalid patch format of primitive list")
        current = out.get(field)
        if isinstance(current, list):
            out[field] = [v for v in current if v not in values]

    def _set_element_order(self, out: dict[str, Any], patch: dict[str, Any], key: str, path: str) -> None:
        order = patch[key]
        if not isinstance(order, list):
            raise bad_request("invalid patch format of setElementOrder list")
        field = key[len(SET_ORDER):]
        sub = child_path(path, field)
        rule = mergekeys.list_rule(self.kind, sub)
        merge_key = rule.merge_key if rule is not None else None
        original = out.get(field, _ABSENT)
        patch_list = patch.pop(field, _ABSENT)
        if original is not _ABSENT and not isinstance(original, list):
            raise bad_request(f"invalid type for {field}: expected a list")
        if patch_list is not _ABSENT and patch_list is not None and not isinstance(patch_list, list):
            raise bad_request(f"invalid type for {field}: expected a list")
        if patch_list is None:
            out.pop(field, None)
            return
        if original is _ABSENT and patch_list is _ABSENT:
            return
        if patch_list is _ABSENT:
            merged = list(original)
        else:
            merged = self.merge_value(original if original is not _ABSENT else None, patch_list, sub)
        if merge_key is not None:
            for item in order:
                if not isinstance(item, dict) or merge_key not in item:
                    raise bad_request(f"map: {_go(item)} does not contain declared merge key: {merge_key}")
        keyfn = _key_fn(merge_key)
        wanted = {_hashable(keyfn(item)) for item in order}
        in_order = [m for m in merged if _hashable(keyfn(m)) in wanted]
        server_only = [m for m in merged if _hashable(keyfn(m)) not in wanted]
        server_order = original if isinstance(original, list) else []
        out[field] = _normalize_order(in_order, server_only, order, server_order, keyfn)

    # --------------------------------------------------------------- lists

    def merge_list(self, original: list[Any], patch: list[Any], rule: ListRule, path: str) -> list[Any]:
        if not original and not patch:
            return list(original)
        if not any(isinstance(v, dict) for v in original + patch):
            merged = _dedupe(list(original) + [v for v in patch if v is not None])
            keyfn = _key_fn(None)
        else:
            merge_key = rule.merge_key
            if merge_key is None:
                raise bad_request(f"cannot merge lists without merge key for {path}")
            original, patch = self._special_items(list(original), patch, merge_key)
            merged = self._merge_items(original, patch, merge_key, item_path(path))
            keyfn = _key_fn(merge_key)
        wanted = {_hashable(keyfn(v)) for v in patch if not (isinstance(v, dict) and DIRECTIVE in v)}
        in_patch = [m for m in merged if _hashable(keyfn(m)) in wanted]
        server_only = [m for m in merged if _hashable(keyfn(m)) not in wanted]
        return _normalize_order(in_patch, server_only, patch, original, keyfn)

    def _special_items(self, original: list[Any], patch: list[Any], merge_key: str) -> tuple[list, list]:
        plain: list[Any] = []
        replace = False
        for item in patch:
            if not isinstance(item, dict):
                raise bad_request(f"unable to merge {_go(item)}: all list items must be maps")
            if DIRECTIVE not in item:
                plain.append(item)
                continue
            directive = item[DIRECTIVE]
            if directive == "delete":
                if merge_key not in item:
                    raise bad_request(f"map: {_go(item)} does not contain declared merge key: {merge_key}")
                original = [o for o in original
                            if not (isinstance(o, dict) and o.get(merge_key) == item[merge_key])]
            elif directive == "replace":
                replace = True
            elif directive == "merge":
                raise bad_request("merging lists cannot yet be specified in the patch")
            else:
                raise bad_request(f"unknown patch type: {directive} in map: {_go(item)}")
        if replace:
            return [], plain
        return original, plain

    def _merge_items(self, original: list[Any], patch: list[Any], merge_key: str, path: str) -> list[Any]:
        merged = list(original)
        for item in patch:
            if merge_key not in item:
                raise bad_request(f"map: {_go(item)} does not contain declared merge key: {merge_key}")
            for i, existing in enumerate(merged):
                if isinstance(existing, dict) and existing.get(merge_key) == item[merge_key]:
                    merged[i] = self.merge_map(existing, item, path)
                    break
            else:
                merged.append(self.merge_map(None, item, path))
        return merged


# ------------------------------------------------------------------ ordering


def _is_num(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def _hashable(v: Any) -> Any:
    if isinstance(v, dict | list):
        return repr(v)
    return (type(v) is bool, v)


def _key_fn(merge_key: str | None) -> Callable[[Any], Any]:
    if merge_key is None:
        return lambda v: v
    return lambda v: v.get(merge_key) if isinstance(v, dict) else v


def _dedupe(values: list[Any]) -> list[Any]:
    seen: set[Any] = set()
    out = []
    for v in values:
        h = _hashable(v)
        if h not in seen:
            seen.add(h)
            out.append(v)
    return out


def _index_of(order: list[Any], item: Any, keyfn: Callable[[Any], Any]) -> int:
    want = _hashable(keyfn(item))
    for i, o in enumerate(order):
        if _hashable(keyfn(o)) == want:
            return i
    return -1


def _sort_by(items: list[Any], order: list[Any], keyfn: Callable[[Any], Any]) -> list[Any]:
    found = [(i, it) for it in items if (i := _index_of(order, it, keyfn)) >= 0]
    found.sort(key=lambda p: p[0])
    rest = [it for it in items if _index_of(order, it, keyfn) < 0]
    return [it for _, it in found] + rest


def _normalize_order(patch_items: list[Any], server_only: list[Any], patch_order: list[Any],
                     server_order: list[Any], keyfn: Callable[[Any], Any]) -> list[Any]:
    """Patch items in patch order, server-only items in live order, interleaved by live position."""
    right = _sort_by(patch_items, patch_order, keyfn)
    left = _sort_by(server_only, server_order, keyfn)
    out: list[Any] = []
    i = j = 0
    while i < len(left) or j < len(right):
        if i >= len(left):
            out.append(right[j])
            j += 1
        elif j >= len(right):
            out.append(left[i])
            i += 1
        else:
            li = _index_of(server_order, left[i], keyfn)
            ri = _index_of(server_order, right[j], keyfn)
            if li >= 0 and ri >= 0 and li < ri:
                out.append(left[i])
                i += 1
            else:
                out.append(right[j])
                j += 1
    return out


def strategic_merge(original: dict[str, Any], patch: dict[str, Any], kind: str) -> dict[str, Any]:
    """Merge a decoded strategic patch into a copy of ``original``."""
    return _Patcher(kind).merge_map(copy.deepcopy(original), copy.deepcopy(patch), "")


def apply_strategic_merge_patch(original: dict[str, Any], body: bytes | str, *, kind: str) -> dict[str, Any]:
    """Apply an ``application/strategic-merge-patch+json`` body to ``original`` (left untouched)."""
    return strategic_merge(original, decode_json_object(body), kind)
