"""Server-side apply and ``metadata.managedFields``.

Field ownership is kept as upstream keeps it: each managedFields entry holds a
*set of field paths* in the FieldsV1 JSON form (``"f:spec": {"f:ports":
{"k:{\\"port\\":80,\\"protocol\\":\\"TCP\\"}": {".": {}, "f:port": {}}}}``).
A path is a tuple of elements: ``("f", name)`` a field or map key,
``("k", '{"port":80,"protocol":"TCP"}')`` an item of a keyed list,
``("v", '"x"')`` an item of a set, ``("i", 3)`` an item by index.

Apply (:func:`server_side_apply`), as structured-merge-diff does it:

1. the applied config's field set is every leaf, every atomic list/map and
   every list item it names (apiVersion, kind, metadata.name/namespace/uid/...
   and ``status`` are never owned);
2. the config is merged into the live object: maps key by key, keyed lists
   (``+listType=map``) item by item by their keys, sets by value, anything
   else (atomic) replaced;
3. fields the manager applied last time but no longer applies, and that no
   other manager owns, are removed (an item another manager still owns a part
   of stays);
4. live and result are compared; a field another manager owns whose value the
   apply adds or changes is a conflict: 409 ``Apply failed with 1 conflict:
   conflict with "kubectl-client-side-apply" using v1: .spec.selector``, unless
   ``force``, which moves the field to the applier.  Fields set to the same
   value become shared;
5. the applier's entry is rewritten (operation Apply); its time changes only
   when the object changed.

Updates (:func:`update_managed_fields`): the manager of a create/update/patch
comes to own every field the request added or changed (taken away from other
managers), and fields it removed leave every set, as upstream's Update path.

Simplifications (no Go type schema here; the facts used are in :mod:`.mergekeys`):

* Struct vs map is not known: every JSON object is walked key by key, so a
  ``map[string]struct`` value is owned leaf by leaf instead of also as a whole.
  Atomic maps/structs and keyed lists come from the table; lists not in the
  table are atomic.  Missing list-map key fields take only the ``protocol: TCP``
  default.
* ``".": {}`` markers for objects an update *added* follow upstream's pointer
  rules only for the value structs listed in ``mergekeys.VALUE_STRUCTS``.
* ``status`` is dropped from applied configs (upstream resets it through the
  strategy's reset fields); ``null`` values in an applied config are ignored.
* No cap of 10 Update entries ("ancient-changes"), no conversion between API
  versions of managed sets, no subresource argument (entries with a
  ``subresource`` are kept and only lose fields).
* A live object without managedFields is first owned by ``before-first-apply``.
* Emptied maps/lists left by pruning are removed.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

import orjson

from kubesvc.api.errors import StatusError, bad_request

from . import mergekeys
from .mergekeys import ListRule, child_path, item_path

PathElem = tuple[str, Any]
Path = tuple[PathElem, ...]
FieldSet = set[Path]

FIELDS_TYPE = "FieldsV1"
BEFORE_FIRST_APPLY = "before-first-apply"
_META_STRIPPED = ("name", "namespace", "creationTimestamp", "selfLink", "uid", "clusterName",
                  "generation", "managedFields", "resourceVersion")
_SECTIONS = frozenset({"metadata", "spec", "status"})


def _canon(value: Any) -> str:
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()


def _same(a: Any, b: Any) -> bool:
    return a == b and _canon(a) == _canon(b)


# --------------------------------------------------------------------------
# FieldsV1 and path text


def _elem_text(pe: PathElem) -> str:
    kind, value = pe
    return f"{kind}:{value}"


def _elem_order(pe: PathElem) -> tuple[int, Any]:
    return ({"f": 0, "k": 1, "v": 2, "i": 3}[pe[0]], pe[1])


def fields_to_json(paths: FieldSet) -> dict[str, Any]:
    """Encode a set of paths as upstream's FieldsV1 object."""
    tree: dict[PathElem, Any] = {}
    members: set[Path] = set(paths)
    for path in paths:
        node = tree
        for pe in path:
            node = node.setdefault(pe, {})

    def emit(node: dict[PathElem, Any], prefix: Path) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if node and prefix in members:
            out["."] = {}
        for pe in sorted(node, key=_elem_order):
            out[_elem_text(pe)] = emit(node[pe], prefix + (pe,))
        return out

    return emit(tree, ())


def _parse_elem(text: str) -> PathElem:
    kind, sep, rest = text.partition(":")
    if not sep or kind not in ("f", "k", "v", "i"):
        raise ValueError(f"bad path element {text!r}")
    if kind == "f":
        return ("f", rest)
    if kind == "i":
        return ("i", int(rest))
    return (kind, _canon(orjson.loads(rest)))


def fields_from_json(obj: Any) -> FieldSet:
    """Decode a FieldsV1 object into a set of paths (ValueError when malformed)."""
    out: FieldSet = set()

    def walk(node: Any, prefix: Path) -> None:
        if not isinstance(node, dict):
            raise ValueError("FieldsV1 nodes must be objects")
        if not node and prefix:
            out.add(prefix)
        for key, child in node.items():
            if key == ".":
                out.add(prefix)
            else:
                walk(child, prefix + (_parse_elem(key),))

    walk(obj, ())
    out.discard(())
    return out


def path_string(path: Path) -> str:
    """``.spec.ports[port=80,protocol="TCP"]``: how upstream prints a field path."""
    parts = []
    for kind, value in path:
        if kind == "f":
            parts.append("." + value)
        elif kind == "k":
            key = orjson.loads(value)
            parts.append("[" + ",".join(f"{k}={_canon(v)}" for k, v in key.items()) + "]")
        elif kind == "v":
            parts.append(f"[={value}]")
        else:
            parts.append(f"[{value}]")
    return "".join(parts)


# --------------------------------------------------------------------------
# walking objects with the strategy table


@dataclass
class Comparison:
    added: FieldSet = field(default_factory=set)
    modified: FieldSet = field(default_factory=set)
    removed: FieldSet = field(default_factory=set)


class _Walker:
    """Field sets, comparison, merge and removal over plain JSON, for one kind."""

    def __init__(self, kind: str, strict_where: str = "") -> None:
        self.kind = kind
        self.strict_where = strict_where  # set: a bad keyed list is a 400 naming this object

    def rule(self, rpath: str) -> ListRule | None:
        rule = mergekeys.list_rule(self.kind, rpath)
        if rule is None or rule.list_type not in ("map", "set"):
            return None
        return rule

    def item_elem(self, rule: ListRule, item: Any) -> PathElem | str:
        """The path element of a list item, or the name of the key field it lacks."""
        if rule.list_type == "set":
            return ("v", _canon(item))
        if not isinstance(item, dict):
            return rule.map_keys[0]
        defaults = dict(rule.key_defaults)
        key: dict[str, Any] = {}
        for name in rule.map_keys:
            value = item.get(name, defaults.get(name))
            if value is None:
                return name
            key[name] = value
        return ("k", _canon(key))

    def index(self, rule: ListRule, items: list[Any], path: Path) -> list[tuple[PathElem, Any]] | None:
        """(element, item) for each distinct item; None if an item cannot be keyed."""
        out: list[tuple[PathElem, Any]] = []
        seen: set[PathElem] = set()
        for i, item in enumerate(items):
            pe = self.item_elem(rule, item)
            if isinstance(pe, str):
                if self.strict_where:
                    raise bad_request(
                        f"failed to create typed patch object ({self.strict_where}): {path_string(path)}: "
                        f'element {i}: associative list with keys has an element that omits key field "{pe}" '
                        "(and doesn't have default value)")
                return None
            if pe in seen:
                if self.strict_where:
                    raise bad_request(f"failed to create typed patch object ({self.strict_where}): "
                                      f"{path_string(path)}: duplicate entries for key {path_string((pe,))}")
                continue
            seen.add(pe)
            out.append((pe, item))
        return out

    # ---- ToFieldSet

    def field_set(self, value: Any, rpath: str = "", path: Path = ()) -> FieldSet:
        out: FieldSet = set()
        self._to_set(value, rpath, path, out)
        return out

    def _to_set(self, value: Any, rpath: str, path: Path, out: FieldSet) -> None:
        if isinstance(value, dict):
            if path and mergekeys.is_atomic_map(self.kind, rpath):
                out.add(path)
                return
            for key, child in value.items():
                self._to_set(child, child_path(rpath, key), path + (("f", key),), out)
            return
        if isinstance(value, list):
            rule = self.rule(rpath)
            items = self.index(rule, value, path) if rule else None
            if items is None:
                out.add(path)
                return
            for pe, item in items:
                out.add(path + (pe,))
                if rule.list_type == "map":
                    self._to_set(item, item_path(rpath), path + (pe,), out)
            return
        if path:
            out.add(path)

    # ---- Compare

    def compare(self, lhs: Any, rhs: Any) -> Comparison:
        c = Comparison()
        self._compare(lhs, rhs, "", (), c, False)
        return c

    def _leaf(self, lhs: Any, rhs: Any, path: Path, c: Comparison) -> None:
        if lhs is None:
            c.added.add(path)
        elif rhs is None:
            c.removed.add(path)
        elif not _same(lhs, rhs):
            c.modified.add(path)

    def _compare(self, lhs: Any, rhs: Any, rpath: str, path: Path, c: Comparison, fresh: bool) -> None:
        if lhs is None and rhs is None:
            return
        if not fresh and mergekeys.is_value_struct(self.kind, rpath) and (
                isinstance(lhs, dict) or isinstance(rhs, dict)):
            lhs = {} if lhs is None else lhs
            rhs = {} if rhs is None else rhs
        both_maps = isinstance(lhs, dict | None) and isinstance(rhs, dict | None)
        both_lists = isinstance(lhs, list | None) and isinstance(rhs, list | None)
        fresh = fresh or lhs is None or rhs is None
        if both_maps and (lhs or rhs) and not (path and mergekeys.is_atomic_map(self.kind, rpath)):
            lmap: dict[str, Any] = lhs or {}
            rmap: dict[str, Any] = rhs or {}
            for key in list(lmap) + [k for k in rmap if k not in lmap]:
                self._compare(lmap.get(key), rmap.get(key), child_path(rpath, key),
                              path + (("f", key),), c, fresh)
        elif both_lists and (lhs or rhs) and self.rule(rpath) and self._compare_lists(
                lhs, rhs, rpath, path, c, fresh):
            pass
        else:
            if path:
                self._leaf(lhs, rhs, path, c)
            return
        if path:
            if lhs is None:
                c.added.add(path)
            elif rhs is None:
                c.removed.add(path)

    def _compare_lists(self, lhs: list | None, rhs: list | None, rpath: str, path: Path,
                       c: Comparison, fresh: bool) -> bool:
        rule = self.rule(rpath)
        assert rule is not None
        left = self.index(rule, lhs or [], path)
        right = self.index(rule, rhs or [], path)
        if left is None or right is None:
            return False
        lmap, rmap = dict(left), dict(right)
        ipath = item_path(rpath)
        for pe, item in right:
            self._compare_item(lmap.get(pe), item, rule, ipath, path + (pe,), c, fresh)
        for pe, item in left:
            if pe not in rmap:
                self._compare_item(item, None, rule, ipath, path + (pe,), c, fresh)
        return True

    def _compare_item(self, lhs: Any, rhs: Any, rule: ListRule, ipath: str, path: Path,
                      c: Comparison, fresh: bool) -> None:
        if rule.list_type == "set" or not (isinstance(lhs, dict | None) and isinstance(rhs, dict | None)):
            self._leaf(lhs, rhs, path, c)
            return
        if not lhs and not rhs:
            self._leaf(lhs, rhs, path, c)
            return
        self._compare(lhs, rhs, ipath, path, c, fresh)

    # ---- Merge (apply the config onto the live object)

    def merge(self, live: Any, cfg: Any, rpath: str = "", path: Path = ()) -> Any:
        if isinstance(cfg, dict) and isinstance(live, dict) and not (
                path and mergekeys.is_atomic_map(self.kind, rpath)):
            out = dict(live)
            for key, value in cfg.items():
                sub = child_path(rpath, key)
                out[key] = self.merge(live[key], value, sub, path + (("f", key),)) if key in live \
                    else copy.deepcopy(value)
            return out
        if isinstance(cfg, list) and isinstance(live, list):
            rule = self.rule(rpath)
            if rule is not None:
                merged = self._merge_lists(live, cfg, rule, rpath, path)
                if merged is not None:
                    return merged
        return copy.deepcopy(cfg)

    def _merge_lists(self, live: list, cfg: list, rule: ListRule, rpath: str, path: Path) -> list | None:
        left = self.index(rule, live, path)
        right = self.index(rule, cfg, path)
        if left is None or right is None:
            return None
        lmap, rmap = dict(left), dict(right)
        ipath = item_path(rpath)

        def merged_item(pe: PathElem) -> Any:
            if pe in lmap and rule.list_type == "map":
                return self.merge(lmap[pe], rmap[pe], ipath, path + (pe,))
            return copy.deepcopy(rmap[pe])

        shared = [pe for pe, _ in right if pe in lmap]
        out: list[Any] = []
        emitted: set[PathElem] = set()
        li = ri = 0
        while li < len(left) or ri < len(right):
            if li < len(left):
                pe, item = left[li]
                if pe in emitted:
                    li += 1
                    continue
                if pe not in rmap:
                    out.append(item)
                    li += 1
                    continue
                pending = [s for s in shared if s not in emitted]
                if ri < len(right) and right[ri][0] == pe:
                    li += 1
                elif pending and pending[0] != pe:
                    li += 1
                    continue
            if ri < len(right):
                pe = right[ri][0]
                out.append(merged_item(pe))
                emitted.add(pe)
                ri += 1
        return out

    # ---- Remove one path

    def remove(self, node: Any, path: Path, rpath: str = "") -> bool:
        """Remove ``path`` from ``node`` in place; True if something was removed."""
        pe, rest = path[0], path[1:]
        if pe[0] == "f":
            if not isinstance(node, dict) or pe[1] not in node:
                return False
            if not rest:
                del node[pe[1]]
                return True
            child = node[pe[1]]
            removed = self.remove(child, rest, child_path(rpath, pe[1]))
            if removed and child in ({}, []) and not (rpath == "" and pe[1] in _SECTIONS):
                del node[pe[1]]
            return removed
        if not isinstance(node, list):
            return False
        idx = self._find_item(node, pe, rpath)
        if idx is None:
            return False
        if not rest:
            del node[idx]
            return True
        return self.remove(node[idx], rest, item_path(rpath))

    def _find_item(self, items: list, pe: PathElem, rpath: str) -> int | None:
        if pe[0] == "i":
            return pe[1] if 0 <= pe[1] < len(items) else None
        rule = self.rule(rpath)
        if rule is None:
            return None
        for i, item in enumerate(items):
            if self.item_elem(rule, item) == pe:
                return i
        return None


# --------------------------------------------------------------------------
# managedFields entries


@dataclass
class Entry:
    manager: str
    operation: str
    api_version: str
    time: str | None
    fields: FieldSet
    subresource: str = ""

    def identity(self) -> tuple[str, str, str, str]:
        version = "" if self.operation == "Apply" else self.api_version
        return (self.manager, self.operation, version, self.subresource)

    def encode(self) -> dict[str, Any]:
        out: dict[str, Any] = {"manager": self.manager, "operation": self.operation,
                               "apiVersion": self.api_version}
        if self.time is not None:
            out["time"] = self.time
        out["fieldsType"] = FIELDS_TYPE
        out["fieldsV1"] = fields_to_json(self.fields)
        if self.subresource:
            out["subresource"] = self.subresource
        return out

    def printed(self) -> str:
        """How a conflict message names this manager."""
        text = orjson.dumps(self.manager).decode()
        if self.subresource:
            text += f' with subresource "{self.subresource}"'
        if self.operation == "Update":
            text += f" using {self.api_version}"
        return text


def decode_entries(raw: Any) -> list[Entry] | None:
    """Decode ``metadata.managedFields``; None when it is malformed."""
    if not isinstance(raw, list):
        return None
    out = []
    try:
        for item in raw:
            if not isinstance(item, dict) or item.get("fieldsType", FIELDS_TYPE) != FIELDS_TYPE:
                return None
            out.append(Entry(str(item.get("manager", "")), str(item.get("operation", "")),
                             str(item.get("apiVersion", "")), item.get("time"),
                             fields_from_json(item.get("fieldsV1", {})), str(item.get("subresource", ""))))
    except (ValueError, TypeError, orjson.JSONDecodeError):
        return None
    return out


def _store_entries(obj: dict[str, Any], entries: list[Entry]) -> None:
    entries = [e for e in entries if e.fields]
    entries.sort(key=lambda e: (e.operation, e.time or "", e.manager, e.api_version, e.subresource))
    meta = obj.setdefault("metadata", {})
    if entries:
        meta["managedFields"] = [e.encode() for e in entries]
    else:
        meta.pop("managedFields", None)


def _is_reset(raw: Any) -> bool:
    return isinstance(raw, list) and (raw == [] or raw == [{}])


def _stripped(obj: dict[str, Any] | None, *, drop_status: bool) -> dict[str, Any]:
    """The part of an object that fields can be owned in."""
    if not obj:
        return {}
    out = {k: v for k, v in obj.items() if k not in ("apiVersion", "kind")}
    if drop_status:
        out.pop("status", None)
    if isinstance(out.get("metadata"), dict):
        out["metadata"] = {k: v for k, v in out["metadata"].items() if k not in _META_STRIPPED}
    return out


def _drop_nulls(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _drop_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_drop_nulls(v) for v in value]
    return value


def _meta(obj: dict[str, Any] | None) -> dict[str, Any]:
    meta = (obj or {}).get("metadata")
    return meta if isinstance(meta, dict) else {}


# --------------------------------------------------------------------------
# Update


def update_managed_fields(old: dict | None, new: dict, *, manager: str, operation: str,
                          api_version: str, now: str) -> None:
    """Record in ``new.metadata.managedFields`` that ``manager`` set what this request changed."""
    walker = _Walker(_kind_of(new, old))
    raw_new = _meta(new).get("managedFields")
    if _is_reset(raw_new):
        entries: list[Entry] = []
    else:
        entries = decode_entries(raw_new) or decode_entries(_meta(old).get("managedFields")) or []
    c = walker.compare(_stripped(old, drop_status=False), _stripped(new, drop_status=False))
    changed = c.added | c.modified
    me = Entry(manager, operation, api_version, None, set())
    own = next((e for e in entries if e.identity() == me.identity()), None)
    for entry in entries:
        if entry is not own:
            entry.fields -= changed | c.removed
    if own is None:
        own = me
        entries.append(own)
    own.api_version = api_version
    own.fields = (own.fields - c.removed) | changed
    if changed:
        own.time = now
    _store_entries(new, entries)


def _kind_of(*objs: dict | None) -> str:
    for obj in objs:
        if obj and isinstance(obj.get("kind"), str):
            return obj["kind"]
    return ""


# --------------------------------------------------------------------------
# Apply


def _group_version_text(api_version: str) -> str:
    return api_version if "/" in api_version else f"/{api_version}"


def _check_applied(applied: Any, kind: str, api_version: str) -> None:
    if not isinstance(applied, dict):
        raise bad_request("error decoding YAML: the applied configuration must be an object")
    if not applied.get("kind"):
        raise bad_request(f"Object 'Kind' is missing in '{_canon(applied)}'")
    if applied.get("apiVersion") != api_version:
        raise bad_request("Incorrect version specified in apply patch. "
                          f"Specified patch version: {applied.get('apiVersion') or ''}, expected: {api_version}")
    if applied.get("kind") != kind:
        raise bad_request("Incorrect kind specified in apply patch. "
                          f"Specified patch kind: {applied.get('kind')}, expected: {kind}")
    if _meta(applied).get("managedFields"):
        raise bad_request("metadata.managedFields must be nil")


def conflict_error(conflicts: list[tuple[Entry, Path]]) -> StatusError:
    """409 Conflict in upstream's words for an apply that would take others' fields."""
    conflicts = sorted(conflicts, key=lambda c: (c[0].printed(), path_string(c[1])))
    causes = [{"reason": "FieldManagerConflict", "message": f"conflict with {e.printed()}",
               "field": path_string(p)} for e, p in conflicts]
    if len(conflicts) == 1:
        e, p = conflicts[0]
        message = f"Apply failed with 1 conflict: conflict with {e.printed()}: {path_string(p)}"
    else:
        lines: list[str] = []
        for printed in sorted({e.printed() for e, _ in conflicts}):
            lines.append(f"conflicts with {printed}:")
            lines.extend(f"- {path_string(p)}" for e, p in conflicts if e.printed() == printed)
        message = f"Apply failed with {len(conflicts)} conflicts: " + "\n".join(lines)
    return StatusError(409, "Conflict", message, {"causes": causes})


def _prune(walker: _Walker, obj: dict[str, Any], last: FieldSet, owned: FieldSet) -> None:
    """Remove what the applier owned before, no longer applies, and nobody else owns."""
    for path in sorted(last - owned, key=len):
        if any(len(o) > len(path) and o[:len(path)] == path for o in owned):
            continue
        walker.remove(obj, path)


def server_side_apply(live: dict | None, applied: dict, *, manager: str, force: bool, kind: str,
                      api_version: str, now: str) -> dict:
    """Apply ``applied`` for ``manager``; returns the new object (``live`` untouched)."""
    _check_applied(applied, kind, api_version)
    meta = _meta(applied)
    where = f"{meta.get('namespace', '')}/{meta.get('name', '')}; {_group_version_text(api_version)}, Kind={kind}"
    walker = _Walker(kind, strict_where=where)
    config = _drop_nulls(applied)
    config.pop("status", None)
    config_set = walker.field_set(_stripped(config, drop_status=True))
    walker.strict_where = ""

    base: dict[str, Any] = copy.deepcopy(live) if live is not None else {}
    entries = decode_entries(_meta(base).get("managedFields")) or []
    _meta(base).pop("managedFields", None)
    if live is not None and not entries:
        entries = [Entry(BEFORE_FIRST_APPLY, "Update", api_version, None,
                         walker.field_set(_stripped(base, drop_status=True)))]
    merged = walker.merge(base, config) if live is not None else copy.deepcopy(config)

    me = Entry(manager, "Apply", api_version, None, set())
    own = next((e for e in entries if e.identity() == me.identity()), None)
    others = [e for e in entries if e is not own]
    if own is not None and own.fields:
        owned = set(config_set)
        for entry in others:
            owned |= entry.fields
        _prune(walker, merged, own.fields, owned)

    c = walker.compare(_stripped(base, drop_status=True), _stripped(merged, drop_status=True))
    changed = c.added | c.modified
    conflicts = [(e, p) for e in others for p in sorted(e.fields & changed, key=path_string)]
    if conflicts and not force:
        raise conflict_error(conflicts)
    for entry in others:
        entry.fields -= changed | c.removed

    object_changed = live is None or not _same(_without_managed(live), merged)
    me.fields = config_set
    me.time = now if (object_changed or own is None or own.time is None) else own.time
    _store_entries(merged, others + [me])
    return merged


def _without_managed(obj: dict[str, Any]) -> dict[str, Any]:
    out = dict(obj)
    if isinstance(out.get("metadata"), dict):
        out["metadata"] = {k: v for k, v in out["metadata"].items() if k != "managedFields"}
    return out
