"""JSON patch (RFC 6902): ``application/json-patch+json``, applied with the ``jsonpatch`` library.

Upstream decodes the body (a 400 BadRequest if it is not a list of operations)
and then applies it; a failed operation is a 422 whose message is the generic
"the server rejected our request due to an error in our request" with the
library's error text as the one cause (kubectl prints
``The request is invalid: ...``).  The cause texts here follow the wording of
the Go library upstream uses (``testing value /x failed: test failed``).
"""

from __future__ import annotations

import copy
from typing import Any

import jsonpatch
import jsonpointer

from kubesvc.api.errors import StatusError, bad_request, too_large

from .mergepatch import decode_json, go_type_name

MAX_OPERATIONS = 10000
REJECTED = "the server rejected our request due to an error in our request"
_OPS = ("add", "remove", "replace", "move", "copy", "test")


def rejected(cause: str) -> StatusError:
    """The 422 upstream returns when a JSON patch does not apply."""
    return StatusError(422, "Invalid", REJECTED,
                       {"causes": [{"reason": "UnexpectedServerResponse", "message": cause}]})


def _decode_operations(body: bytes | str) -> list[dict[str, Any]]:
    ops = decode_json(body)
    if not isinstance(ops, list):
        raise bad_request(f"json: cannot unmarshal {go_type_name(ops)} into Go value of type jsonpatch.Patch")
    for op in ops:
        if not isinstance(op, dict):
            raise bad_request(
                f"json: cannot unmarshal {go_type_name(op)} into Go value of type jsonpatch.Operation")
    if len(ops) > MAX_OPERATIONS:
        raise too_large(f"The allowed maximum operations in a JSON patch is {MAX_OPERATIONS}, got {len(ops)}")
    return ops


def _resolves(doc: Any, pointer: str) -> bool:
    try:
        jsonpointer.resolve_pointer(doc, pointer)
    except (jsonpointer.JsonPointerException, TypeError, KeyError, IndexError):
        return False
    return True


def _parent(pointer: str) -> tuple[str, str]:
    head, _, last = pointer.rpartition("/")
    return head, last.replace("~1", "/").replace("~0", "~")


def _failure_text(doc: Any, op: dict[str, Any]) -> str:
    """Explain why ``op`` failed on ``doc``, in the Go library's words."""
    kind = op.get("op")
    path = op.get("path")
    if kind not in _OPS:
        return f"Unexpected kind: {kind}"
    if not isinstance(path, str):
        return f"{kind} operation failed to decode path: operation missing path field"
    if kind in ("add", "replace", "test") and "value" not in op:
        return f"{kind} operation does not apply: the operation has no value: missing value"
    if kind == "test":
        return f"testing value {path} failed: test failed"
    if kind in ("move", "copy"):
        src = op.get("from")
        if not isinstance(src, str):
            return f"{kind} operation failed to decode from: operation missing from field"
        if not _resolves(doc, src):
            return f'{kind} operation does not apply: doc is missing from path: "{src}": missing value'
    head, last = _parent(path)
    if not _resolves(doc, head):
        return f'{kind} operation does not apply: doc is missing path: "{path}": missing value'
    container = jsonpointer.resolve_pointer(doc, head)
    if isinstance(container, list):
        return f"Unable to access invalid index: {last}: invalid index referenced"
    if kind == "remove":
        return f"error in remove for path: '{path}': Unable to remove nonexistent key: {last}: missing value"
    if kind == "replace":
        return f"replace operation does not apply: doc is missing key: {path}: missing value"
    return f"{kind} operation does not apply: doc is missing path: \"{path}\": missing value"


def apply_json_patch(original: dict[str, Any], body: bytes | str) -> dict[str, Any]:
    """Apply an RFC 6902 patch body to ``original`` (left untouched); returns the new document."""
    ops = _decode_operations(body)
    doc: Any = copy.deepcopy(original)
    for op in ops:
        try:
            doc = jsonpatch.JsonPatch([op]).apply(doc, in_place=True)
        except (jsonpatch.JsonPatchException, jsonpointer.JsonPointerException, TypeError, KeyError,
                IndexError, ValueError):
            raise rejected(_failure_text(doc, op)) from None
    if not isinstance(doc, dict):
        raise bad_request(f"json: cannot unmarshal {go_type_name(doc)} into Go value of type map[string]interface {{}}")
    return doc
