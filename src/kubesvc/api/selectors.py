"""Label and field selectors with upstream's grammar, matching and error text.

Why this is a hand-written port of the *behaviour* of apimachinery's
``pkg/labels`` and ``pkg/fields`` rather than a regex: kubectl and controllers
send selectors such as ``x in (foo,,baz),!y,z notin ()`` and clients compare
the server's 400 message verbatim, so the tokenizer has to make the same
choices (maximal-munch operators, ``in``/``notin`` usable as values, ``()``
meaning the empty value) and fail with the same words.

Everything here is pure: strings and dicts in, frozen values or
:class:`~kubesvc.api.errors.StatusError` (400 BadRequest) out.

Two "empty" selectors exist, as upstream:

* :meth:`LabelSelector.everything` has no requirements and matches every
  object (what an empty ``labelSelector=`` query, ``selector_from_set({})`` or
  a ``metav1.LabelSelector`` of ``{}`` means).
* :meth:`LabelSelector.nothing` matches no object (what a *nil*
  ``metav1.LabelSelector`` means, see :func:`from_label_selector_dict`).

Use sites differ on which one applies; the callers decide (for example a
Service with no ``spec.selector`` gets no managed endpoints, while a
NetworkPolicy ``podSelector: {}`` selects every pod).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from kubesvc.api.errors import FieldError, StatusError, bad_request, invalid
from kubesvc.api.validation.names import is_qualified_name, is_valid_label_value

# label keys and values are checked with the shared upstream validators
qualified_name_errors = is_qualified_name
label_value_errors = is_valid_label_value


def _aggregate(errs: list[str]) -> str:
    """utilerrors.Aggregate's text: one message bare, several deduplicated in brackets."""
    seen: list[str] = []
    for e in errs:
        if e not in seen:
            seen.append(e)
    if len(errs) == 1 or len(seen) == 1:
        return seen[0]
    return "[" + ", ".join(seen) + "]"


class _ParseError(Exception):
    """Internal: a parse failure carrying upstream's message."""


# --------------------------------------------------------------------------
# label selectors

# Operator spellings (selection.Operator values).
EQUALS = "="
DOUBLE_EQUALS = "=="
NOT_EQUALS = "!="
IN = "in"
NOT_IN = "notin"
EXISTS = "exists"
DOES_NOT_EXIST = "!"
GREATER_THAN = "gt"
LESS_THAN = "lt"

_BINARY_OPERATORS = (IN, NOT_IN, EQUALS, DOUBLE_EQUALS, NOT_EQUALS, GREATER_THAN, LESS_THAN)
_ALL_OPERATORS = (*_BINARY_OPERATORS, EXISTS, DOES_NOT_EXIST)


def _is_int64(s: str) -> bool:
    if not re.fullmatch(r"[+-]?[0-9]+", s):
        return False
    return -(2**63) <= int(s) < 2**63


@dataclass(frozen=True)
class Requirement:
    """One ``key op values`` term; values keep their given order (``__str__`` sorts)."""

    key: str
    operator: str
    values: tuple[str, ...] = ()

    @staticmethod
    def new(key: str, operator: str, values: Iterable[str] = (), *, path: str | None = None) -> Requirement:
        """Build a validated requirement, as upstream's NewRequirement.

        ``path`` prefixes the field paths in error text (None prints as
        upstream's nil path would: ``key``, ``values[0]``...).  Raises a
        400 StatusError carrying the aggregated field errors.
        """
        vals = tuple(values)
        # Go renders the bad value of an empty (nil) values list as null.
        shown: list[str] | None = list(vals) or None
        base = f"{path}." if path else ""
        errs: list[FieldError] = []
        key_errs = qualified_name_errors(key)
        if key_errs:
            errs.append(invalid(base + "key", key, "; ".join(key_errs)))
        vpath = base + "values"
        if operator in (IN, NOT_IN):
            if not vals:
                errs.append(invalid(vpath, shown, "for 'in', 'notin' operators, values set can't be empty"))
        elif operator in (EQUALS, DOUBLE_EQUALS, NOT_EQUALS):
            if len(vals) != 1:
                errs.append(invalid(vpath, shown, "exact-match compatibility requires one single value"))
        elif operator in (EXISTS, DOES_NOT_EXIST):
            if vals:
                errs.append(invalid(vpath, shown, "values set must be empty for exists and does not exist"))
        elif operator in (GREATER_THAN, LESS_THAN):
            if len(vals) != 1:
                errs.append(invalid(vpath, shown, "for 'Gt', 'Lt' operators, exactly one value is required"))
            for i, v in enumerate(vals):
                if not _is_int64(v):
                    errs.append(
                        invalid(f"{vpath}[{i}]", v, "for 'Gt', 'Lt' operators, the value must be an integer")
                    )
        else:
            supported = ", ".join(f'"{o}"' for o in _ALL_OPERATORS)
            errs.append(
                FieldError("NotSupported", base + "operator", operator, f"supported values: {supported}")
            )
        for i, v in enumerate(vals):
            v_errs = label_value_errors(v)
            if v_errs:
                errs.append(invalid(f"{vpath}[{i}][{key}]", v, "; ".join(v_errs)))
        if errs:
            raise bad_request(_aggregate([str(e) for e in errs]))
        return Requirement(key, operator, vals)

    def matches(self, labels: Mapping[str, str]) -> bool:
        op = self.operator
        has = self.key in labels
        if op in (IN, EQUALS, DOUBLE_EQUALS):
            return has and labels[self.key] in self.values
        if op in (NOT_IN, NOT_EQUALS):
            return not has or labels[self.key] not in self.values
        if op == EXISTS:
            return has
        if op == DOES_NOT_EXIST:
            return not has
        if op in (GREATER_THAN, LESS_THAN):
            if not has or len(self.values) != 1:
                return False
            got, want = labels[self.key], self.values[0]
            if not (_is_int64(got) and _is_int64(want)):
                return False
            return int(got) > int(want) if op == GREATER_THAN else int(got) < int(want)
        return False

    def __str__(self) -> str:
        op = self.operator
        if op == EXISTS:
            return self.key
        if op == DOES_NOT_EXIST:
            return "!" + self.key
        sym = {
            EQUALS: "=",
            DOUBLE_EQUALS: "==",
            NOT_EQUALS: "!=",
            IN: " in ",
            NOT_IN: " notin ",
            GREATER_THAN: ">",
            LESS_THAN: "<",
        }[op]
        vals = self.values[0] if len(self.values) == 1 else ",".join(sorted(self.values))
        if op in (IN, NOT_IN):
            vals = f"({vals})"
        return f"{self.key}{sym}{vals}"


@dataclass(frozen=True)
class LabelSelector:
    """An AND of requirements, sorted by key; or the match-nothing selector."""

    requirements: tuple[Requirement, ...] = ()
    nothing_: bool = field(default=False, repr=False)

    @staticmethod
    def everything() -> LabelSelector:
        """Matches every label set (no requirements)."""
        return _EVERYTHING

    @staticmethod
    def nothing() -> LabelSelector:
        """Matches no label set: upstream's ``labels.Nothing()``."""
        return _NOTHING

    @property
    def empty(self) -> bool:
        """True when the selector does not restrict the selection (everything)."""
        return not self.nothing_ and not self.requirements

    def add(self, *reqs: Requirement) -> LabelSelector:
        if self.nothing_:
            return self
        return LabelSelector(tuple(sorted((*self.requirements, *reqs), key=lambda r: r.key)))

    def matches(self, labels: Mapping[str, str] | None) -> bool:
        if self.nothing_:
            return False
        ls = labels or {}
        return all(r.matches(ls) for r in self.requirements)

    def requires_exact_match(self, key: str) -> str | None:
        """The single value ``key`` must have, if the selector pins one (for index lookups)."""
        for r in self.requirements:
            if r.key == key:
                if r.operator in (EQUALS, DOUBLE_EQUALS, IN) and len(r.values) == 1:
                    return r.values[0]
                return None
        return None

    def __str__(self) -> str:
        return ",".join(str(r) for r in self.requirements)


_EVERYTHING = LabelSelector()
_NOTHING = LabelSelector((), True)


# ---- lexer: a port of the upstream token rules

_T_ERROR = "error"
_T_EOS = "eos"
_T_CLOSE = ")"
_T_COMMA = ","
_T_NOT = "!"
_T_DEQ = "=="
_T_EQ = "="
_T_GT = ">"
_T_ID = "id"
_T_IN = "in"
_T_LT = "<"
_T_NEQ = "!="
_T_NOTIN = "notin"
_T_OPEN = "("

_LITERAL_TOKENS = {
    ")": _T_CLOSE,
    ",": _T_COMMA,
    "!": _T_NOT,
    "==": _T_DEQ,
    "=": _T_EQ,
    ">": _T_GT,
    "in": _T_IN,
    "<": _T_LT,
    "!=": _T_NEQ,
    "notin": _T_NOTIN,
    "(": _T_OPEN,
}
_SPECIAL = frozenset("=!(),><")
_WHITESPACE = frozenset(" \t\r\n")


def _lex(s: str) -> list[tuple[str, str]]:
    """Split ``s`` into (token, literal) pairs ending with an end-of-string token."""
    out: list[tuple[str, str]] = []
    pos, n = 0, len(s)
    while True:
        while pos < n and s[pos] in _WHITESPACE:
            pos += 1
        if pos >= n:
            out.append((_T_EOS, ""))
            return out
        if s[pos] in _SPECIAL:
            # Longest operator, but stop at the first run that stops being one.
            buf, last, start = "", None, pos
            while pos < n and s[pos] in _SPECIAL:
                buf += s[pos]
                if buf in _LITERAL_TOKENS:
                    last = (_LITERAL_TOKENS[buf], buf)
                    pos += 1
                elif last is not None:
                    break
                else:
                    pos += 1
            if last is None:
                out.append((_T_ERROR, f"error expected: keyword found '{s[start:pos]}'"))
            else:
                out.append(last)
            continue
        start = pos
        while pos < n and s[pos] not in _SPECIAL and s[pos] not in _WHITESPACE:
            pos += 1
        word = s[start:pos]
        out.append((_LITERAL_TOKENS.get(word, _T_ID), word))


class _LabelParser:
    """Recursive descent over the token list, as upstream's Parser."""

    def __init__(self, s: str) -> None:
        self.items = _lex(s)
        self.pos = 0

    def _tok(self, i: int, values: bool) -> tuple[str, str]:
        tok, lit = self.items[i]
        if values and tok in (_T_IN, _T_NOTIN):
            tok = _T_ID
        return tok, lit

    def lookahead(self, values: bool = True) -> tuple[str, str]:
        return self._tok(self.pos, values)

    def consume(self, values: bool = True) -> tuple[str, str]:
        self.pos += 1
        return self._tok(self.pos - 1, values)

    def parse(self) -> list[Requirement]:
        reqs: list[Requirement] = []
        while True:
            tok, lit = self.lookahead()
            if tok in (_T_ID, _T_NOT):
                try:
                    reqs.append(self.requirement())
                except _ParseError as e:
                    raise _ParseError(f"unable to parse requirement: {e}") from None
                t, lit2 = self.consume()
                if t == _T_EOS:
                    return reqs
                if t == _T_COMMA:
                    t2, l2 = self.lookahead()
                    if t2 not in (_T_ID, _T_NOT):
                        raise _ParseError(f"found '{l2}', expected: identifier after ','")
                else:
                    raise _ParseError(f"found '{lit2}', expected: ',' or 'end of string'")
            elif tok == _T_EOS:
                return reqs
            else:
                raise _ParseError(f"found '{lit}', expected: !, identifier, or 'end of string'")

    def requirement(self) -> Requirement:
        key, op = self.key_and_inferred_operator()
        if op in (EXISTS, DOES_NOT_EXIST):
            return self._new(key, op, [])
        op = self.operator()
        vals = self.set_values() if op in (IN, NOT_IN) else self.exact_value()
        return self._new(key, op, sorted(vals))

    @staticmethod
    def _new(key: str, op: str, vals: list[str]) -> Requirement:
        try:
            return Requirement.new(key, op, vals)
        except StatusError as e:  # validation failed: keep its words
            raise _ParseError(e.message) from None

    def key_and_inferred_operator(self) -> tuple[str, str]:
        op = ""
        tok, lit = self.consume()
        if tok == _T_NOT:
            op = DOES_NOT_EXIST
            tok, lit = self.consume()
        if tok != _T_ID:
            raise _ParseError(f"found '{lit}', expected: identifier")
        errs = qualified_name_errors(lit)
        if errs:
            raise _ParseError(str(invalid("<nil>", lit, "; ".join(errs))))
        t, _ = self.lookahead()
        if t in (_T_EOS, _T_COMMA) and op != DOES_NOT_EXIST:
            op = EXISTS
        return lit, op

    def operator(self) -> str:
        tok, lit = self.consume(values=False)
        ops = {
            _T_IN: IN,
            _T_EQ: EQUALS,
            _T_DEQ: DOUBLE_EQUALS,
            _T_GT: GREATER_THAN,
            _T_LT: LESS_THAN,
            _T_NOTIN: NOT_IN,
            _T_NEQ: NOT_EQUALS,
        }
        if tok not in ops:
            raise _ParseError(f"found '{lit}', expected: {', '.join(_BINARY_OPERATORS)}")
        return ops[tok]

    def set_values(self) -> set[str]:
        tok, lit = self.consume()
        if tok != _T_OPEN:
            raise _ParseError(f"found '{lit}' expected: '('")
        tok, lit = self.lookahead()
        if tok in (_T_ID, _T_COMMA):
            s = self.identifier_list()
            if self.consume()[0] != _T_CLOSE:
                raise _ParseError(f"found '{lit}', expected: ')'")
            return s
        if tok == _T_CLOSE:  # "()" is the empty value
            self.consume()
            return {""}
        raise _ParseError(f"found '{lit}', expected: ',', ')' or identifier")

    def identifier_list(self) -> set[str]:
        s: set[str] = set()
        while True:
            tok, lit = self.consume()
            if tok == _T_ID:
                s.add(lit)
                t2, l2 = self.lookahead()
                if t2 == _T_COMMA:
                    continue
                if t2 == _T_CLOSE:
                    return s
                raise _ParseError(f"found '{l2}', expected: ',' or ')'")
            if tok == _T_COMMA:  # empty values around commas: "(,", ",,", ",)"
                if not s:
                    s.add("")
                t2, _ = self.lookahead()
                if t2 == _T_CLOSE:
                    s.add("")
                    return s
                if t2 == _T_COMMA:
                    self.consume()
                    s.add("")
                continue
            raise _ParseError(f"found '{lit}', expected: ',', or identifier")

    def exact_value(self) -> set[str]:
        tok, _ = self.lookahead()
        if tok in (_T_EOS, _T_COMMA):
            return {""}
        tok, lit = self.consume()
        if tok == _T_ID:
            return {lit}
        raise _ParseError(f"found '{lit}', expected: identifier")


def parse_label_selector(s: str) -> LabelSelector:
    """Parse a ``labelSelector`` query string; ``""`` gives :meth:`LabelSelector.everything`.

    Raises a 400 StatusError with upstream's message on bad input.
    """
    try:
        reqs = _LabelParser(s).parse()
    except _ParseError as e:
        raise bad_request(str(e)) from None
    return LabelSelector(tuple(sorted(reqs, key=lambda r: r.key)))


def selector_from_set(labels: Mapping[str, str] | None) -> LabelSelector:
    """``k1=v1,k2=v2`` for a label map; None or ``{}`` give everything (upstream's SelectorFromSet).

    No validation, as upstream: the map came from a stored, validated object.
    Callers where an absent map means "select nothing" (a Service without a
    selector) must check for that before calling.
    """
    if not labels:
        return _EVERYTHING
    return LabelSelector(tuple(Requirement(k, EQUALS, (v,)) for k, v in sorted(labels.items())))


_EXPR_OPERATORS = {"In": IN, "NotIn": NOT_IN, "Exists": EXISTS, "DoesNotExist": DOES_NOT_EXIST}


def from_label_selector_dict(d: Mapping[str, Any] | None) -> LabelSelector:
    """Convert a ``metav1.LabelSelector`` dict, as upstream's LabelSelectorAsSelector.

    * ``None`` (the field is absent: a nil selector) -> matches nothing.
    * ``{}`` or no matchLabels/matchExpressions -> matches everything.

    Raises a 400 StatusError for an unknown operator or invalid keys/values.
    """
    if d is None:
        return _NOTHING
    match_labels = d.get("matchLabels") or {}
    exprs = d.get("matchExpressions") or []
    if not match_labels and not exprs:
        return _EVERYTHING
    reqs: list[Requirement] = [
        Requirement.new(str(k), EQUALS, ["" if v is None else str(v)]) for k, v in match_labels.items()
    ]
    for expr in exprs:
        op_name = expr.get("operator", "")
        op = _EXPR_OPERATORS.get(op_name)
        if op is None:
            raise bad_request(f'"{op_name}" is not a valid label selector operator')
        values = [str(v) for v in expr.get("values") or []]
        reqs.append(Requirement.new(str(expr.get("key") or ""), op, values))
    return LabelSelector().add(*reqs)


# --------------------------------------------------------------------------
# field selectors

_FIELD_OPERATORS = ("!=", "==", "=")  # "==" before "=" so it is not left in the value


def escape_field_value(s: str) -> str:
    """Escape ``\\``, ``,`` and ``=`` so any literal survives a field selector."""
    return s.replace("\\", "\\\\").replace(",", "\\,").replace("=", "\\=")


def _unescape_field_value(s: str) -> str:
    if not any(c in s for c in "\\,="):
        return s
    out: list[str] = []
    in_slash = False
    for c in s:
        if in_slash:
            if c not in "\\,=":
                raise _ParseError(f"invalid field selector: invalid escape sequence: \\{c}")
            out.append(c)
            in_slash = False
        elif c == "\\":
            in_slash = True
        elif c in ",=":
            # Upstream prints the rune with %v, i.e. its code point.
            raise _ParseError(f"invalid field selector: unescaped character in value: {ord(c)}")
        else:
            out.append(c)
    if in_slash:
        raise _ParseError("invalid field selector: invalid escape sequence: \\")
    return "".join(out)


def _split_field_terms(s: str) -> list[str]:
    """Split on commas not escaped by a backslash (escapes stay in the terms)."""
    if not s:
        return []
    terms: list[str] = []
    start, in_slash = 0, False
    for i, c in enumerate(s):
        if in_slash:
            in_slash = False
        elif c == "\\":
            in_slash = True
        elif c == ",":
            terms.append(s[start:i])
            start = i + 1
    terms.append(s[start:])
    return terms


def _split_field_term(term: str) -> tuple[str, str, str] | None:
    for i in range(len(term)):
        for op in _FIELD_OPERATORS:
            if term.startswith(op, i):
                return term[:i], op, term[i + len(op) :]
    return None


@dataclass(frozen=True)
class FieldSelector:
    """An AND of ``field = value`` / ``field != value`` terms (``==`` is stored as ``=``)."""

    requirements: tuple[tuple[str, str, str], ...] = ()

    @staticmethod
    def everything() -> FieldSelector:
        return FieldSelector()

    @property
    def empty(self) -> bool:
        return not self.requirements

    def matches(self, fields: Mapping[str, str]) -> bool:
        for f, op, v in self.requirements:
            got = fields.get(f, "")
            if (got == v) != (op == "="):
                return False
        return True

    def requires_exact_match(self, field_name: str) -> str | None:
        """The value ``field_name`` must equal, if the selector pins one (e.g. spec.nodeName)."""
        for f, op, v in self.requirements:
            if f == field_name and op == "=":
                return v
        return None

    def __str__(self) -> str:
        return ",".join(f"{f}{op}{escape_field_value(v)}" for f, op, v in self.requirements)


def parse_field_selector(s: str) -> FieldSelector:
    """Parse a ``fieldSelector`` query string; ``""`` gives everything.

    Terms are sorted (as upstream sorts them) so the first unsupported field
    reported is the same one a real apiserver reports.
    """
    reqs: list[tuple[str, str, str]] = []
    try:
        for part in sorted(_split_field_terms(s)):
            if not part:
                continue
            split = _split_field_term(part)
            if split is None:
                raise _ParseError(f"invalid selector: '{s}'; can't understand '{part}'")
            lhs, op, rhs = split
            reqs.append((lhs, "!=" if op == "!=" else "=", _unescape_field_value(rhs)))
    except _ParseError as e:
        raise bad_request(str(e)) from None
    return FieldSelector(tuple(reqs))


# ---- the fields of an object

# Selectable fields whose Go type is bool: absent means "false", not "".
_BOOL_FIELDS = frozenset({"spec.hostNetwork", "spec.unschedulable"})

# Resources whose upstream field-label conversion is hand-registered; they
# answer "field label not supported: X".  Others use the default conversion
# and its different sentence.
_CUSTOM_CONVERSION = frozenset(
    {"pods", "nodes", "replicationcontrollers", "events", "namespaces", "secrets", "services"}
)


def _lookup(obj: Any, path: str) -> Any:
    cur = obj
    for part in path.split("."):
        if not isinstance(cur, Mapping):
            return None
        cur = cur.get(part)
    return cur


def _render(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int | float | str):
        return str(v)
    return ""


def object_fields(obj: Mapping[str, Any], supported: Iterable[str] = ()) -> dict[str, str]:
    """The field set a field selector is matched against, as upstream's ToSelectableFields.

    Always ``metadata.name`` and ``metadata.namespace``; then each supported
    dotted path read from the object: missing -> ``""`` (``"false"`` for the
    boolean fields), booleans ``"true"``/``"false"``, numbers in decimal.
    Special cases follow upstream: an Event's ``source`` is
    ``source.component``; a Pod's ``status.podIP`` falls back to
    ``status.podIPs[0].ip``.
    """
    meta = obj.get("metadata") or {}
    out = {
        "metadata.name": _render(meta.get("name")),
        "metadata.namespace": _render(meta.get("namespace")),
    }
    for path in supported:
        if path in out:
            continue
        if path == "source":
            v = _lookup(obj, "source.component")
        else:
            v = _lookup(obj, path)
            if v is None and path == "status.podIP":
                ips = _lookup(obj, "status.podIPs") or []
                v = ips[0].get("ip") if ips and isinstance(ips[0], Mapping) else None
        if v is None and path in _BOOL_FIELDS:
            v = False
        out[path] = _render(v)
    return out


def check_field_selector(sel: FieldSelector, supported: Iterable[str], resource_name: str) -> None:
    """Reject fields the resource cannot select on, with upstream's 400 text.

    ``metadata.name`` and ``metadata.namespace`` are always allowed.  For
    resources with their own upstream conversion (pods, services, events...)
    or any extra supported field the message is ``field label not supported:
    X``; for the rest it is the default conversion's ``"X" is not a known
    field selector: only "metadata.name", "metadata.namespace"``.
    """
    allowed = {"metadata.name", "metadata.namespace", *supported}
    custom = resource_name in _CUSTOM_CONVERSION or bool(allowed - {"metadata.name", "metadata.namespace"})
    for f, _, _ in sel.requirements:
        if f in allowed:
            continue
        if custom:
            raise bad_request(f"field label not supported: {f}")
        raise bad_request(f'"{f}" is not a known field selector: only "metadata.name", "metadata.namespace"')
