"""API errors in upstream's shape: ``metav1.Status`` and ``field.Error``.

Every failure that crosses the API is a :class:`StatusError` carrying the exact
reason, code and message a real kube-apiserver would send, because kubectl
prints ``message`` verbatim (``Error from server (NotFound): services "x" not
found``) and clients branch on ``reason``.  Field errors render the way
``k8s.io/apimachinery/pkg/util/validation/field`` renders them, so validation
messages match upstream word for word.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import orjson

# --------------------------------------------------------------------------
# field.Error


class _Omit:
    """Marker: the error has no value to print (field.OmitValueType)."""

    def __repr__(self) -> str:
        return "<omit>"


OMIT: Any = _Omit()

# type -> (cause reason, text)
_FIELD_TYPES: dict[str, tuple[str, str]] = {
    "NotFound": ("FieldValueNotFound", "Not found"),
    "Required": ("FieldValueRequired", "Required value"),
    "Duplicate": ("FieldValueDuplicate", "Duplicate value"),
    "Invalid": ("FieldValueInvalid", "Invalid value"),
    "NotSupported": ("FieldValueNotSupported", "Unsupported value"),
    "Forbidden": ("FieldValueForbidden", "Forbidden"),
    "TooLong": ("FieldValueTooLong", "Too long"),
    "TooMany": ("FieldValueTooMany", "Too many"),
    "Internal": ("InternalError", "Internal error"),
    "TypeInvalid": ("FieldValueTypeInvalid", "Invalid value"),
}


def format_value(value: Any) -> str:
    """Render a bad value as Go's field errors do (strings quoted, numbers bare)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return orjson.dumps(value).decode()
    if isinstance(value, int | float):
        return str(value)
    if value is None:
        return "null"
    try:
        return orjson.dumps(value).decode()
    except TypeError:
        return str(value)


@dataclass(frozen=True)
class FieldError:
    """One validation failure at a field path, like upstream's ``field.Error``."""

    type: str
    field: str
    value: Any = OMIT
    detail: str = ""

    @property
    def reason(self) -> str:
        return _FIELD_TYPES[self.type][0]

    def body(self) -> str:
        """The message without the field path (a Status cause's ``message``)."""
        text = _FIELD_TYPES[self.type][1]
        if self.type in ("Required", "Forbidden", "TooLong", "Internal") or self.value is OMIT:
            s = text
        else:
            s = f"{text}: {format_value(self.value)}"
        if self.detail:
            s += f": {self.detail}"
        return s

    def __str__(self) -> str:
        return f"{self.field}: {self.body()}"


def required(path: str, detail: str = "") -> FieldError:
    return FieldError("Required", path, OMIT, detail)


def invalid(path: str, value: Any, detail: str = "") -> FieldError:
    return FieldError("Invalid", path, value, detail)


def forbidden(path: str, detail: str) -> FieldError:
    return FieldError("Forbidden", path, OMIT, detail)


def duplicate(path: str, value: Any) -> FieldError:
    return FieldError("Duplicate", path, value)


def not_supported(path: str, value: Any, supported: Iterable[str]) -> FieldError:
    values = ", ".join(orjson.dumps(v).decode() for v in supported)
    return FieldError("NotSupported", path, value, f"supported values: {values}" if values else "")


def not_found(path: str, value: Any) -> FieldError:
    return FieldError("NotFound", path, value)


def too_long(path: str, limit: int) -> FieldError:
    return FieldError("TooLong", path, OMIT, f"may not be more than {limit} bytes")


def too_many(path: str, actual: int, limit: int) -> FieldError:
    return FieldError("TooMany", path, actual, f"must have at most {limit} items")


def internal(path: str, detail: str) -> FieldError:
    return FieldError("Internal", path, OMIT, detail)


# --------------------------------------------------------------------------
# metav1.Status


@dataclass
class StatusError(Exception):
    """An API failure, serialised as ``metav1.Status``."""

    code: int
    reason: str
    message: str
    details: dict[str, Any] | None = None
    headers: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        super().__init__(self.message)

    def status(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        }
        if self.details:
            out["details"] = self.details
        return out

    def __str__(self) -> str:
        return self.message


def qualified(resource: str, group: str) -> str:
    """``services`` or ``deployments.apps``: how upstream names a resource in messages."""
    return f"{resource}.{group}" if group else resource


def _details(name: str, group: str, kind: str) -> dict[str, Any]:
    d: dict[str, Any] = {}
    if name:
        d["name"] = name
    if group:
        d["group"] = group
    d["kind"] = kind
    return d


def not_found_error(resource: str, name: str, group: str = "") -> StatusError:
    return StatusError(
        404, "NotFound", f'{qualified(resource, group)} "{name}" not found', _details(name, group, resource)
    )


def already_exists(resource: str, name: str, group: str = "") -> StatusError:
    return StatusError(
        409,
        "AlreadyExists",
        f'{qualified(resource, group)} "{name}" already exists',
        _details(name, group, resource),
    )


def conflict(resource: str, name: str, detail: str, group: str = "") -> StatusError:
    return StatusError(
        409,
        "Conflict",
        f'Operation cannot be fulfilled on {qualified(resource, group)} "{name}": {detail}',
        _details(name, group, resource),
    )


OPTIMISTIC_LOCK_MSG = "the object has been modified; please apply your changes to the latest version and try again"


def invalid_error(kind: str, name: str, errors: list[FieldError], group: str = "") -> StatusError:
    """422 Invalid: ``Service "x" is invalid: spec.ports[0].port: Invalid value: ...``."""
    gk = f"{kind}.{group}" if group else kind
    if len(errors) == 1:
        agg = str(errors[0])
    else:
        agg = "[" + ", ".join(str(e) for e in errors) + "]"
    details = _details(name, group, kind)
    details["causes"] = [{"reason": e.reason, "message": e.body(), "field": e.field} for e in errors]
    return StatusError(422, "Invalid", f'{gk} "{name}" is invalid: {agg}', details)


def bad_request(message: str) -> StatusError:
    return StatusError(400, "BadRequest", message)


def method_not_allowed(message: str) -> StatusError:
    return StatusError(405, "MethodNotAllowed", message)


def gone(message: str) -> StatusError:
    """410 Expired: a watch or continue token that is too old."""
    return StatusError(410, "Expired", message)


def unsupported_media_type(content_type: str) -> StatusError:
    return StatusError(
        415, "UnsupportedMediaType", f'the body of the request was in an unknown format - accepted media types include: application/json, application/yaml, application/vnd.kubernetes.protobuf (got "{content_type}")'
    )


def too_large(message: str = "Request entity too large: limit is 3145728") -> StatusError:
    return StatusError(413, "RequestEntityTooLarge", message)


def unauthorized() -> StatusError:
    return StatusError(401, "Unauthorized", "Unauthorized")


def forbidden_error(message: str) -> StatusError:
    return StatusError(403, "Forbidden", message)


def internal_error(message: str) -> StatusError:
    return StatusError(500, "InternalError", f"Internal error occurred: {message}")


def timeout_error(message: str) -> StatusError:
    return StatusError(504, "Timeout", message)
