"""The desired ruleset as data: chains, sets and maps, and their elements.

The planner produces a :class:`Ruleset`; the applier diffs two of them and
renders only the difference as nft commands.  Everything owned by one Service
is grouped in a :class:`ServiceRules`, so a partial sync compares just the
changed Services' groups, never the whole table.  Rules are kept as nft text
(one line each) because that is what the kernel is told; they are compared,
not interpreted, except by the test tracer.
"""

from __future__ import annotations

from dataclasses import dataclass, field

Element = tuple[str, str, str | None]  # (set or map name, key, value or None for sets)


@dataclass(frozen=True)
class Chain:
    """A chain and its rules; ``base`` is ``"type nat hook prerouting priority dstnat"`` for base chains."""

    name: str
    rules: tuple[str, ...] = ()
    base: str = ""

    def declaration(self) -> str:
        return f"{{ {self.base}; }}" if self.base else ""


@dataclass(frozen=True)
class SetDef:
    """A set or map; ``spec`` is the body, e.g. ``type mark : verdict;``."""

    name: str
    spec: str
    is_map: bool = False
    dynamic: bool = False  # written by the packet path (affinity): never flushed by a sync

    @property
    def kind(self) -> str:
        return "map" if self.is_map else "set"


@dataclass
class ServiceRules:
    """Everything one Service owns in the table."""

    elements: frozenset[Element] = frozenset()
    chains: dict[str, Chain] = field(default_factory=dict)
    sets: dict[str, SetDef] = field(default_factory=dict)
    pick_sizes: frozenset[int] = frozenset()  # which shared ``pick-N`` chains it jumps to
    _rendered: dict[str, list[tuple[str, str]]] | None = field(default=None, repr=False, compare=False)

    def rendered(self) -> dict[str, list[tuple[str, str]]]:
        """Its elements as nft text, by set: ``{name: [(key, "key : value"), ...]}``.

        Rendered once per plan and kept: a full sync writes every Service's
        elements, but only a replanned Service (a new object) is rendered
        again.  Call it only once planning has filled ``elements``.
        """
        if self._rendered is None:
            out: dict[str, list[tuple[str, str]]] = {}
            for e in self.elements:
                out.setdefault(e[0], []).append((e[1], element_text(e)))
            self._rendered = out
        return self._rendered

    def __eq__(self, other: object) -> bool:
        return (isinstance(other, ServiceRules) and self.elements == other.elements
                and self.chains == other.chains and self.sets == other.sets)


@dataclass
class Ruleset:
    """The whole table: shared (static) parts plus each Service's own parts."""

    chains: dict[str, Chain] = field(default_factory=dict)
    sets: dict[str, SetDef] = field(default_factory=dict)
    elements: frozenset[Element] = frozenset()
    services: dict[str, ServiceRules] = field(default_factory=dict)

    def all_chains(self) -> dict[str, Chain]:
        out = dict(self.chains)
        for s in self.services.values():
            out.update(s.chains)
        return out

    def all_sets(self) -> dict[str, SetDef]:
        out = dict(self.sets)
        for s in self.services.values():
            out.update(s.sets)
        return out


def element_text(e: Element) -> str:
    return e[1] if e[2] is None else f"{e[1]} : {e[2]}"
