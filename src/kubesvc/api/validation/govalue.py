"""Bad values rendered as Go prints them inside ``field.Error`` messages.

Upstream formats a field error's value with ``%#v`` when it is not a plain
string or number, so a list of cluster IPs reads ``[]string{"10.0.10.10"}``
and a duplicate port reads ``core.ServicePort{Name:"", ...}``.  kubectl users
see those strings, so we reproduce them.  :class:`GoValue` carries the already
rendered text; :func:`kubesvc.api.errors.format_value` prints it through
``str()`` because orjson refuses to serialise it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


class GoValue:
    """A value whose Go rendering is already known (not JSON-serialisable on purpose)."""

    __slots__ = ("text",)

    def __init__(self, text: str) -> None:
        self.text = text

    def __str__(self) -> str:
        return self.text

    def __repr__(self) -> str:
        return f"GoValue({self.text!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, GoValue) and other.text == self.text

    def __hash__(self) -> int:
        return hash(self.text)


def go_quote(s: str) -> str:
    """Go's ``%q`` for the strings we meet (ASCII printable plus common escapes)."""
    out = ['"']
    for ch in s:
        code = ord(ch)
        if ch == '"':
            out.append('\\"')
        elif ch == "\\":
            out.append("\\\\")
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\t":
            out.append("\\t")
        elif ch == "\r":
            out.append("\\r")
        elif code < 0x20 or code == 0x7F:
            out.append(f"\\x{code:02x}")
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def string_slice(values: Sequence[Any] | None, type_name: str = "[]string") -> GoValue:
    """``[]string{"a", "b"}``; ``[]string(nil)`` for a missing list."""
    if values is None:
        return GoValue(f"{type_name}(nil)")
    inner = ", ".join(go_quote(str(v)) for v in values)
    return GoValue(f"{type_name}{{{inner}}}")


def ip_family_slice(values: Sequence[Any] | None) -> GoValue:
    """``ipFamilies`` as the internal API type prints: ``[]core.IPFamily{"IPv4"}``."""
    return string_slice(values, "[]core.IPFamily")


def string_ptr(value: str | None) -> Any:
    """A ``*string`` field: Go dereferences non-nil pointers and prints nil as ``null``."""
    return GoValue("null") if value is None else value
