"""Desired ruleset in, one atomic ``nft -f -`` transaction out.

The applier remembers what it last wrote.  A partial sync compares only the
changed Services' groups (and the few shared chains) with that memory and
emits: new sets and chains, rewritten chains, element deletes, element adds,
then deletes of what is gone, in an order the kernel accepts within one
transaction.  A full sync (at start, after any failure, and periodically)
rewrites every chain and map but never flushes the affinity sets the packet
path fills, and deletes whatever else it finds in the table.  A failed
transaction changes nothing in the kernel and nothing here except forcing the
next sync to be full, so the last good ruleset stays in force.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field

from . import layout as L
from .nftables import NftBackend
from .ruleset import Chain, Element, Ruleset, SetDef, element_text

CHUNK = 2000  # elements per ``add element`` command: keeps lines sane on a full sync
PICK_ROTATE = 4  # trusted ``pick-N`` chains a periodic full sync rewrites anyway, in turn


@dataclass(frozen=True)
class SyncResult:
    full: bool
    commands: int
    size: int  # bytes of transaction text
    text: str
    # wall clock when the kernel held the rules: ``nft -f`` returned (or, with nothing to send, the decision)
    applied_at: float = field(default_factory=time.time)


class _Tx:
    """Commands in the five phases one transaction needs."""

    def __init__(self, family: str, table: str) -> None:
        self.t = f"{family} {table}"
        self.create: list[str] = [f"add table {self.t}"]
        self.rules: list[str] = []
        self.remove_el: dict[str, list[str]] = defaultdict(list)
        self.add_el: dict[str, list[str]] = defaultdict(list)
        self.drop_chains: list[str] = []
        self.drop_sets: list[tuple[str, str]] = []  # (set|map, name)

    def add_set(self, s: SetDef) -> None:
        self.create.append(f"add {s.kind} {self.t} {s.name} {{ {s.spec} }}")

    def write_chain(self, c: Chain, new: bool) -> None:
        if new:
            self.create.append(f"add chain {self.t} {c.name} {c.declaration()}".rstrip())
        else:
            self.rules.append(f"flush chain {self.t} {c.name}")
        self.rules += [f"add rule {self.t} {c.name} {r}" for r in c.rules]

    def text(self) -> str:
        lines = self.create + self.rules
        for verb, groups in (("delete", self.remove_el), ("add", self.add_el)):
            for name in sorted(groups):
                items = groups[name]
                for i in range(0, len(items), CHUNK):
                    lines.append(f"{verb} element {self.t} {name} {{ {', '.join(items[i:i + CHUNK])} }}")
        # rules go before their chains: flush every chain to delete, then delete them
        lines += [f"flush chain {self.t} {n}" for n in self.drop_chains]
        lines += [f"delete chain {self.t} {n}" for n in self.drop_chains]
        lines += [f"delete {kind} {self.t} {n}" for kind, n in self.drop_sets]
        return "\n".join(lines) + "\n"

    @property
    def empty(self) -> bool:
        return len(self.create) == 1 and not (self.rules or self.remove_el or self.add_el or self.drop_chains or self.drop_sets)


class Applier:
    def __init__(self, backend: NftBackend, family: str = L.FAMILY, table: str = "kubesvc") -> None:
        self.backend = backend
        self.family, self.table = family, table
        self.written: Ruleset | None = None
        self.need_full = True
        self._suspect = True  # nothing written yet, or a transaction failed: trust no chain of ours
        self._turn = 0  # which trusted pick chains the next full sync rewrites anyway

    def sync(self, desired: Ruleset, changed: Iterable[str] | None = None) -> SyncResult:
        """Make the kernel match ``desired``; ``changed`` None (or a pending full sync) means all."""
        full = self.need_full or changed is None or self.written is None
        tx = self._full(desired) if full else self._partial(desired, set(changed or ()))
        text = tx.text()
        if not (not full and tx.empty):
            try:
                self.backend.apply(text)
            except Exception:
                self.need_full = self._suspect = True
                raise
        applied_at = time.time()
        if full:
            self._suspect = False
        self.written = Ruleset(dict(desired.chains), dict(desired.sets), desired.elements, dict(desired.services))
        self.need_full = False
        return SyncResult(full, 0 if (not full and tx.empty) else text.count("\n"), len(text), text, applied_at)

    def _full(self, desired: Ruleset) -> _Tx:
        tx = _Tx(self.family, self.table)
        have_chains, have_sets = self.backend.list_objects(self.family, self.table)
        sets, chains = desired.all_sets(), desired.all_chains()
        for s in sets.values():
            tx.add_set(s)
            if s.name in have_sets and not s.dynamic:
                tx.rules.append(f"flush {s.kind} {tx.t} {s.name}")
        trusted = self._trusted_picks(desired, have_chains)
        for c in chains.values():
            if c.name in have_chains:
                tx.create.append(f"add chain {tx.t} {c.name} {c.declaration()}".rstrip())
            if c.name not in trusted:
                tx.write_chain(c, new=c.name not in have_chains)
        # key -> text per set; two Services claiming one key: the first keeps it, so the groups are
        # written last to first and an earlier one overwrites (dict.update of cached pairs, in C)
        by_set: dict[str, dict[str, str]] = defaultdict(dict)
        for rules in reversed(list(desired.services.values())):
            for name, pairs in rules.rendered().items():
                by_set[name].update(pairs)
        for e in desired.elements:  # shared elements first of all
            by_set[e[0]][e[1]] = element_text(e)
        for name, texts in by_set.items():
            tx.add_el[name] = list(texts.values())
        tx.drop_chains += sorted(have_chains - set(chains))
        static_maps = {s.name for s in L.STATIC_SETS.values() if s.is_map}  # services own only sets
        tx.drop_sets += [("map" if n in static_maps else "set", n) for n in sorted(have_sets - set(sets))]
        return tx

    def _trusted_picks(self, desired: Ruleset, have_chains: set[str]) -> set[str]:
        """The ``pick-N`` chains a full sync may leave as they are.

        Rewriting a rule that names a map makes the kernel walk the map's
        elements when it binds it: the 32+ ``pick-N`` chains name the endpoint
        maps, so rewriting them all costs about half a second at 100,000
        endpoints (a third of the nft time of a full sync).  Their rules are a
        function of N alone, so a chain we wrote in a committed transaction,
        unchanged since and still present, is left alone, except
        ``PICK_ROTATE`` of them rewritten in turn on every full sync: drift a
        third party makes inside one is repaired within a few periods.
        Everything is rewritten after a failed transaction.
        """
        if self._suspect or self.written is None:
            return set()
        picks = sorted(n for n, c in desired.chains.items()
                       if n.startswith("pick-") and n in have_chains and self.written.chains.get(n) == c)
        if not picks:
            return set()
        start = self._turn % len(picks)
        self._turn = start + PICK_ROTATE
        redo = {picks[(start + i) % len(picks)] for i in range(min(PICK_ROTATE, len(picks)))}
        return set(picks) - redo

    def _partial(self, desired: Ruleset, changed: set[str]) -> _Tx:
        old = self.written
        assert old is not None
        tx = _Tx(self.family, self.table)
        self._diff_objects(tx, old.chains, desired.chains, old.sets, desired.sets)
        self._diff_elements(tx, old.elements, desired.elements)
        for key in sorted(changed):
            was, now = old.services.get(key), desired.services.get(key)
            if was == now:
                continue
            self._diff_objects(tx, was.chains if was else {}, now.chains if now else {},
                               was.sets if was else {}, now.sets if now else {})
            self._diff_elements(tx, was.elements if was else frozenset(), now.elements if now else frozenset())
        return tx

    @staticmethod
    def _diff_objects(tx: _Tx, old_c: dict[str, Chain], new_c: dict[str, Chain],
                      old_s: dict[str, SetDef], new_s: dict[str, SetDef]) -> None:
        for name, s in new_s.items():
            if name not in old_s:
                tx.add_set(s)
        for name, c in new_c.items():
            if old_c.get(name) != c:
                tx.write_chain(c, new=name not in old_c)
        tx.drop_chains += sorted(old_c.keys() - new_c.keys())
        tx.drop_sets += [(old_s[n].kind, n) for n in sorted(old_s.keys() - new_s.keys())]

    @staticmethod
    def _diff_elements(tx: _Tx, old: frozenset[Element], new: frozenset[Element]) -> None:
        for e in old - new:
            tx.remove_el[e[0]].append(e[1])  # deleting takes the key alone
        for e in new - old:
            tx.add_el[e[0]].append(element_text(e))
