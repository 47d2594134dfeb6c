"""One faithful fake of ``nft -f -`` for every proxy test.

It accepts the same transaction text the applier sends to the kernel, applies
it to a *copy* of its state and swaps the copy in only if every command
succeeded, so a failed transaction leaves nothing behind, as in the kernel.
It rejects what the kernel rejects in the ways that matter to a proxy:
references to chains, sets or maps that do not exist (in rules and in verdict
map elements), deleting something still referenced, deleting a missing
element, and re-adding a map key with a different value.  ``dump()`` prints
the table in nft syntax; :mod:`kubesvc.testing.nfttrace` walks packets
through it.
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass, field

from kubesvc.proxy.nftables import NftError

_REF = re.compile(r"@([A-Za-z0-9_./-]+)")
_JUMP = re.compile(r"\b(?:jump|goto)\s+([A-Za-z0-9_./-]+)")


@dataclass
class FakeSet:
    name: str
    spec: str
    is_map: bool
    elements: dict[str, str | None] = field(default_factory=dict)

    @property
    def dynamic(self) -> bool:
        return "dynamic" in self.spec


@dataclass
class FakeChain:
    name: str
    base: str = ""
    rules: list[str] = field(default_factory=list)


@dataclass
class FakeTable:
    family: str
    name: str
    chains: dict[str, FakeChain] = field(default_factory=dict)
    sets: dict[str, FakeSet] = field(default_factory=dict)


def split_elements(body: str) -> list[tuple[str, str | None]]:
    """``{ a : b, c : d }`` → ``[(a, b), (c, d)]`` (values never contain commas here)."""
    body = body.strip()
    if body.startswith("{"):
        body = body[1:body.rindex("}")]
    out: list[tuple[str, str | None]] = []
    for part in body.split(","):
        part = " ".join(part.split())
        if not part:
            continue
        key, sep, value = part.partition(" : ")
        out.append((key.strip(), value.strip() if sep else None))
    return out


class FakeNft:
    """Tables by (family, name); ``apply(text)`` is one atomic transaction."""

    def __init__(self, local_ips: tuple[str, ...] = ("127.0.0.1",)) -> None:
        self.tables: dict[tuple[str, str], FakeTable] = {}
        self.local_ips = set(local_ips)
        self.transactions: list[str] = []  # every transaction that succeeded
        self.failures = 0
        self.fail_next = 0  # tests set this to make the next N transactions fail

    # ------------------------------------------------------------- transactions

    def apply(self, text: str) -> None:
        if self.fail_next > 0:
            self.fail_next -= 1
            self.failures += 1
            raise NftError("injected failure")
        work = copy.deepcopy(self.tables)
        for lineno, line in enumerate(text.splitlines(), 1):
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            try:
                self._command(work, line)
            except NftError as e:
                self.failures += 1
                raise NftError(f"line {lineno}: {e}: {line[:200]}") from None
        self.tables = work
        self.transactions.append(text)

    def _command(self, tables: dict[tuple[str, str], FakeTable], line: str) -> None:
        words = line.split(None, 4)
        if len(words) < 4:
            raise NftError("syntax error")
        verb, obj, family, tname = words[:4]
        rest = words[4] if len(words) > 4 else ""
        if obj == "table":
            if verb == "add":
                tables.setdefault((family, tname), FakeTable(family, tname))
            elif verb == "delete":
                if tables.pop((family, tname), None) is None:
                    raise NftError("No such file or directory (table)")
            elif verb == "flush":
                t = self._table(tables, family, tname)
                for c in t.chains.values():
                    c.rules.clear()
                for s in t.sets.values():
                    s.elements.clear()
            return
        table = self._table(tables, family, tname)
        handler = {"chain": self._chain_cmd, "rule": self._rule_cmd, "set": self._set_cmd,
                   "map": self._set_cmd, "element": self._element_cmd}.get(obj)
        if handler is None:
            raise NftError(f"unknown object {obj}")
        handler(table, verb, rest, obj)

    @staticmethod
    def _table(tables: dict[tuple[str, str], FakeTable], family: str, name: str) -> FakeTable:
        t = tables.get((family, name))
        if t is None:
            raise NftError(f"No such file or directory (table {family} {name})")
        return t

    def _chain_cmd(self, t: FakeTable, verb: str, rest: str, _obj: str) -> None:
        name, _, decl = rest.partition(" ")
        if verb == "add":
            if name not in t.chains:
                base = decl.strip().strip("{}").strip().rstrip(";").strip()
                t.chains[name] = FakeChain(name, base)
            return
        chain = t.chains.get(name)
        if chain is None:
            raise NftError(f"No such file or directory (chain {name})")
        if verb == "flush":
            chain.rules.clear()
        elif verb == "delete":
            if self._chain_users(t, name):
                raise NftError(f"Device or resource busy (chain {name} is referenced)")
            del t.chains[name]
        else:
            raise NftError(f"unknown verb {verb}")

    def _rule_cmd(self, t: FakeTable, verb: str, rest: str, _obj: str) -> None:
        name, _, rule = rest.partition(" ")
        if verb != "add" or name not in t.chains:
            raise NftError(f"No such file or directory (chain {name})")
        for ref in _REF.findall(rule):
            if ref not in t.sets:
                raise NftError(f"No such file or directory (set {ref})")
        for target in _JUMP.findall(rule):
            if target not in t.chains:
                raise NftError(f"No such file or directory (chain {target})")
        t.chains[name].rules.append(" ".join(rule.split()))

    def _set_cmd(self, t: FakeTable, verb: str, rest: str, obj: str) -> None:
        name, _, spec = rest.partition(" ")
        if verb == "add":
            if name not in t.sets:
                t.sets[name] = FakeSet(name, " ".join(spec.strip().strip("{}").split()), obj == "map")
            return
        s = t.sets.get(name)
        if s is None:
            raise NftError(f"No such file or directory ({obj} {name})")
        if verb == "flush":
            s.elements.clear()
        elif verb == "delete":
            used = re.compile(rf"@{re.escape(name)}(?![A-Za-z0-9_./-])")
            if any(used.search(r) for c in t.chains.values() for r in c.rules):
                raise NftError(f"Device or resource busy ({obj} {name} is referenced)")
            del t.sets[name]

    def _element_cmd(self, t: FakeTable, verb: str, rest: str, _obj: str) -> None:
        name, _, body = rest.partition(" ")
        s = t.sets.get(name)
        if s is None:
            raise NftError(f"No such file or directory (set {name})")
        for key, value in split_elements(body):
            if verb == "add":
                if s.is_map and value is None:
                    raise NftError("map element needs a value")
                if value is not None:
                    for target in _JUMP.findall(value):
                        if target not in t.chains:
                            raise NftError(f"No such file or directory (chain {target})")
                old = s.elements.get(key, ...)
                if old is not ... and old != value:
                    raise NftError(f"File exists (element {key} in {name})")
                s.elements[key] = value
            elif verb == "delete":
                if key not in s.elements:
                    raise NftError(f"No such file or directory (element {key} in {name})")
                del s.elements[key]
            else:
                raise NftError(f"unknown verb {verb}")

    @staticmethod
    def _chain_users(t: FakeTable, name: str) -> bool:
        for c in t.chains.values():
            if c.name != name and any(name in _JUMP.findall(r) for r in c.rules):
                return True
        return any(v is not None and name in _JUMP.findall(v) for s in t.sets.values() for v in s.elements.values())

    # ------------------------------------------------------------------ reading

    def table(self, family: str = "ip", name: str = "kubesvc") -> FakeTable:
        t = self.tables.get((family, name))
        if t is None:
            raise NftError(f"No such file or directory (table {family} {name})")
        return t

    def delete_table(self, family: str = "ip", name: str = "kubesvc") -> None:
        self.tables.pop((family, name), None)

    def list_objects(self, family: str = "ip", name: str = "kubesvc") -> tuple[set[str], set[str]]:
        """Chain names and set/map names, as ``nft -t list table`` tells the real applier."""
        t = self.tables.get((family, name))
        return (set(t.chains), set(t.sets)) if t else (set(), set())

    def dump(self, family: str = "ip", name: str = "kubesvc") -> str:
        t = self.table(family, name)
        out = [f"table {family} {name} {{"]
        for s in sorted(t.sets.values(), key=lambda s: s.name):
            out.append(f"\t{'map' if s.is_map else 'set'} {s.name} {{")
            out += [f"\t\t{part.strip()};" for part in s.spec.split(";") if part.strip()]
            if s.elements:
                els = [k if v is None else f"{k} : {v}" for k, v in sorted(s.elements.items())]
                out.append("\t\telements = { " + ",\n\t\t\t     ".join(els) + " }")
            out.append("\t}")
        for c in sorted(t.chains.values(), key=lambda c: c.name):
            out.append(f"\tchain {c.name} {{")
            if c.base:
                out.append(f"\t\t{c.base}; policy accept;")
            out += [f"\t\t{r}" for r in c.rules]
            out.append("\t}")
        out.append("}")
        return "\n".join(out) + "\n"
