"""JSON merge patch (RFC 7386): ``application/merge-patch+json``.

Also holds the body decoding shared by the patch types, with Go's
``encoding/json`` wording for the common failures, because upstream returns
those messages verbatim in a 400 BadRequest.
"""

from __future__ import annotations

import copy
from typing import Any

import orjson

from kubesvc.api.errors import bad_request

_GO_TYPES = {dict: "object", list: "array", str: "string", bool: "bool", int: "number", float: "number"}


def go_type_name(value: Any) -> str:
    """How Go's json package names a JSON value's type in unmarshal errors."""
    if value is None:
        return "null"
    return _GO_TYPES.get(type(value), "value")


def decode_json(body: bytes | str) -> Any:
    """Parse a patch body; a syntax error is a 400 worded like Go's decoder."""
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        text = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
        stripped = text.strip()
        if not stripped:
            raise bad_request("unexpected end of JSON input") from None
        first = stripped[0]
        if first not in '{["-0123456789tfn':
            raise bad_request(f"invalid character '{first}' looking for beginning of value") from None
        raise bad_request(f"invalid JSON in patch: {exc.msg}") from None


def decode_json_object(body: bytes | str, go_type: str = "map[string]interface {}") -> dict[str, Any]:
    """Parse a patch body that must be a JSON object."""
    value = decode_json(body)
    if not isinstance(value, dict):
        raise bad_request(f"json: cannot unmarshal {go_type_name(value)} into Go value of type {go_type}")
    return value


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386 MergePatch: returns the new value; neither argument is modified."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    out: dict[str, Any] = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        else:
            out[key] = merge_patch(out.get(key), value)
    return out


def apply_merge_patch(original: dict[str, Any], body: bytes | str) -> dict[str, Any]:
    """Apply an ``application/merge-patch+json`` body to ``original`` (left untouched)."""
    patch = decode_json_object(body)
    return merge_patch(copy.deepcopy(original), patch)
