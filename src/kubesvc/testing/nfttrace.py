"""A packet tracer over :class:`~kubesvc.testing.fakenft.FakeNft`: behaviour, not rule text.

``trace(fake, Packet(...))`` walks a new connection's first packet through
the table's base chains in hook and priority order (prerouting or, for a
packet the node itself sends, output; then postrouting) and reports every
possible outcome: each ``numgen random`` is explored for all its values, so
the result says exactly which endpoints the packet can reach, whether it is
dropped or rejected, and whether it is masqueraded.  ``connect()`` takes one
random branch and applies the ``update @set`` statements it passes (session
affinity), like a real connection would.

It interprets the rule vocabulary the proxy writes (matches on ip/th/meta/ct/
fib fields, concatenations, sets, maps, vmaps, numgen, mark arithmetic, dnat,
masquerade, reject) and raises on anything else, so an unsupported rule is a
test failure, not a silent pass.
"""

from __future__ import annotations

import ipaddress
import random
from dataclasses import dataclass, field, replace
from typing import Any

from .fakenft import FakeNft, FakeTable, split_elements

_PRIORITY = {"dstnat": -100, "srcnat": 100, "filter": 0, "mangle": -150}
_FIELDS = {("ip", "saddr"), ("ip", "daddr"), ("th", "dport"), ("meta", "l4proto"), ("meta", "mark"),
           ("ct", "mark"), ("ct", "state"), ("ct", "status")}
_PROTOS = {"tcp": 6, "udp": 17, "sctp": 132, "icmp": 1}


@dataclass(frozen=True)
class Packet:
    """The first packet of a new connection."""

    src: str
    dst: str
    proto: str = "tcp"
    dport: int = 80
    from_node: bool = False  # sent by the node itself (output hook), not arriving from a pod or outside


@dataclass(frozen=True)
class Outcome:
    verdict: str  # "ACCEPT" | "DROP" | "REJECT"
    endpoint: str | None = None  # "ip:port" if DNATed
    masquerade: bool = False


@dataclass
class _State:
    pkt: Packet
    daddr: str
    dport: int
    mark: int = 0
    ctmark: int = 0
    dnat: bool = False
    masq: bool = False
    updates: list[tuple[str, str]] = field(default_factory=list)


class _Branch(Exception):
    def __init__(self, n: int) -> None:
        self.n = n


class TraceError(Exception):
    """The tracer met a rule it does not understand."""


def _atom(text: str) -> Any:
    """Canonical value of one literal: int, IP, network, protocol name or text."""
    t = text.strip()
    if t in _PROTOS:
        return t
    try:
        return int(t, 0)
    except ValueError:
        pass
    try:
        return ipaddress.ip_network(t, strict=False) if "/" in t else ipaddress.ip_address(t)
    except ValueError:
        return t


def _matches(want: Any, got: Any) -> bool:
    if isinstance(want, ipaddress.IPv4Network):
        return isinstance(got, ipaddress.IPv4Address) and got in want
    if isinstance(want, str) and isinstance(got, int) and want in _PROTOS:
        return _PROTOS[want] == got
    return bool(want == got)


def _key_match(key_text: str, values: tuple[Any, ...]) -> bool:
    parts = [_atom(p) for p in key_text.split(" . ")]
    return len(parts) == len(values) and all(_matches(w, g) for w, g in zip(parts, values, strict=True))


def _tokens(rule: str) -> list[str]:
    """Whitespace tokens, with each ``{ ... }`` kept whole."""
    out: list[str] = []
    depth, cur = 0, ""
    for word in rule.split():
        if depth:
            cur += " " + word
            depth += word.count("{") - word.count("}")
            if depth == 0:
                out.append(cur)
            continue
        if word.startswith("{") and word.count("{") > word.count("}"):
            depth, cur = word.count("{") - word.count("}"), word
            continue
        out.append(word)
    return out


class _Rule:
    """Evaluates one rule's tokens against a state; see the module docstring for the vocabulary."""

    def __init__(self, tracer: Tracer, tokens: list[str], st: _State, numgen: int | None) -> None:
        self.tr, self.tok, self.st, self.numgen, self.i = tracer, tokens, st, numgen, 0

    def peek(self, k: int = 0) -> str:
        j = self.i + k
        return self.tok[j] if j < len(self.tok) else ""

    def take(self) -> str:
        self.i += 1
        return self.tok[self.i - 1]

    def value(self) -> tuple[Any, ...]:
        """A (possibly concatenated) expression's value."""
        parts = [self.one()]
        while self.peek() == ".":
            self.take()
            parts.append(self.one())
        return tuple(parts)

    def one(self) -> Any:
        a = self.take()
        st = self.st
        if (a, self.peek()) in _FIELDS:
            b = self.take()
            v: Any = {("ip", "saddr"): ipaddress.ip_address(st.pkt.src), ("ip", "daddr"): ipaddress.ip_address(st.daddr),
                      ("th", "dport"): st.dport, ("meta", "l4proto"): _PROTOS[st.pkt.proto], ("meta", "mark"): st.mark,
                      ("ct", "mark"): st.ctmark, ("ct", "state"): "new",
                      ("ct", "status"): "dnat" if st.dnat else ""}[(a, b)]
        elif a == "fib":
            which, _ = self.take(), self.take()  # "saddr|daddr", "type"
            addr = st.pkt.src if which == "saddr" else st.daddr
            v = "local" if addr in self.tr.fake.local_ips else "unicast"
        elif a == "numgen":
            self.take(), self.take()
            n = int(self.take())
            if self.numgen is None:
                raise _Branch(n)
            v = self.numgen
        else:
            v = _atom(a)
        while self.peek() in ("&", "|"):
            op, rhs = self.take(), int(self.take(), 0)
            v = v & rhs if op == "&" else v | rhs
        return v

    def lookup(self, ref: str, key: tuple[Any, ...]) -> str | None | bool:
        """Map value for ``key`` (False if absent); sets give None when present."""
        if ref.startswith("@"):
            items = self.tr.table.sets[ref[1:]].elements.items()
        else:
            items = split_elements(ref)  # an anonymous set or map
        for k, val in items:
            if _key_match(k, key):
                return val
        return False

    def run(self) -> str | None:
        """Return a verdict token, "" when the rule stops matching, or None to fall through."""
        while self.i < len(self.tok):
            w = self.peek()
            if w in ("drop", "accept", "return"):
                return w
            if w in ("jump", "goto"):
                self.take()
                return f"{w} {self.take()}"
            if w == "reject":
                return "reject"
            if w == "masquerade":
                self.st.masq = True
                return "accept"
            if w == "update":
                self._update()
                continue
            if w == "dnat":
                return self._dnat()
            if (w, self.peek(1)) in (("meta", "mark"), ("ct", "mark")) and self.peek(2) == "set":
                self.i += 3
                got = self._expr_value()
                if got is False:
                    return ""
                setattr(self.st, "mark" if w == "meta" else "ctmark", got)
                continue
            res = self._match()
            if res is not True:
                return res
        return None

    def _expr_value(self) -> Any:
        v = self.value()
        if self.peek() == "map":
            self.take()
            found = self.lookup(self.take(), v)
            return False if found is False or found is None else tuple(_atom(p) for p in found.split(" . "))[0]
        return v[0]

    def _match(self) -> str | bool | None:
        v = self.value()
        op = self.peek()
        if op == "vmap":
            self.take()
            found = self.lookup(self.take(), v)
            return "" if found is False or found is None else found
        neg = op == "!="
        if op in ("!=", "=="):
            self.take()
        rhs = self.take()
        if rhs.startswith("@") or rhs.startswith("{"):
            hit = self.lookup(rhs, v) is not False
        else:
            want = tuple(_atom(p) for p in rhs.split(".")) if len(v) > 1 else (_atom(rhs),)
            hit = all(_matches(w, g) for w, g in zip(want, v, strict=True))
        return True if hit != neg else ""

    def _update(self) -> None:
        self.take()
        name = self.take()[1:]
        inner = self.take()
        sub = _Rule(self.tr, _tokens(inner.strip("{} ")), self.st, self.numgen)
        key = " . ".join(str(p) for p in sub.value())
        self.st.updates.append((name, key))

    def _dnat(self) -> str:
        self.take()
        if self.peek() == "ip":
            self.take()
        if self.take() != "to":
            raise TraceError("dnat without 'to'")
        if self.peek(1) == "." or self.peek(1) == "map" or self.peek() in ("meta", "numgen"):
            key = self.value()
            if self.take() != "map":
                raise TraceError("dnat expects a map")
            found = self.lookup(self.take(), key)
            if found is False or found is None:
                return ""
            ip, port = (p.strip() for p in found.split(" . "))
        else:
            ip, _, port = self.take().partition(":")
        self.st.daddr, self.st.dport, self.st.dnat = ip, int(port), True
        return "accept"


class Tracer:
    def __init__(self, fake: FakeNft, family: str = "ip", table: str = "kubesvc") -> None:
        self.fake = fake
        self.table: FakeTable = fake.table(family, table)

    def _hooks(self, hook: str) -> list[str]:
        chains = []
        for c in self.table.chains.values():
            parts = c.base.split()
            if "hook" in parts and parts[parts.index("hook") + 1] == hook:
                prio = " ".join(parts[parts.index("priority") + 1:])
                value = sum(_PRIORITY.get(p, 0) if not p.lstrip("-").isdigit() else int(p)
                            for p in prio.replace("+", " ").replace(" - ", " -").split())
                chains.append((value, c.name))
        return [n for _, n in sorted(chains)]

    def run_chain(self, name: str, st: _State, depth: int = 0) -> list[tuple[_State, str]]:
        """All (state, result) pairs; result is 'return', 'accept', 'drop' or 'reject'."""
        if depth > 32:
            raise TraceError("chain loop")
        results: list[tuple[_State, str]] = []
        todo: list[tuple[_State, int]] = [(st, 0)]
        rules = self.table.chains[name].rules
        while todo:
            cur, idx = todo.pop()
            if idx >= len(rules):
                results.append((cur, "return"))
                continue
            for branch, verdict in self._rule(rules[idx], cur):
                if verdict is None or verdict == "":
                    todo.append((branch, idx + 1))
                elif verdict.startswith("jump "):
                    for sub, res in self.run_chain(verdict[5:], branch, depth + 1):
                        if res == "return":
                            todo.append((sub, idx + 1))
                        else:
                            results.append((sub, res))
                elif verdict.startswith("goto "):
                    results += self.run_chain(verdict[5:], branch, depth + 1)
                else:
                    results.append((branch, verdict))
        return results

    def _rule(self, rule: str, st: _State) -> list[tuple[_State, str | None]]:
        toks = _tokens(rule)
        try:
            s = replace(st, updates=list(st.updates))
            return [(s, _Rule(self, toks, s, None).run())]
        except _Branch as b:
            out = []
            for k in range(b.n):
                s = replace(st, updates=list(st.updates))
                out.append((s, _Rule(self, toks, s, k).run()))
            return out

    def _through(self, hook: str, states: list[_State]) -> list[tuple[_State, str]]:
        out = [(s, "accept") for s in states]
        for chain in self._hooks(hook):
            nxt = []
            for s, v in out:
                if v in ("drop", "reject"):
                    nxt.append((s, v))
                    continue
                for s2, res in self.run_chain(chain, s):
                    nxt.append((s2, "accept" if res == "return" else res))
            out = nxt
        return out

    def states(self, pkt: Packet) -> list[tuple[_State, str]]:
        first = self._through("output" if pkt.from_node else "prerouting", [_State(pkt, pkt.dst, pkt.dport)])
        alive = [s for s, v in first if v == "accept"]
        return [(s, v) for s, v in first if v != "accept"] + self._through("postrouting", alive)


def trace(fake: FakeNft, pkt: Packet) -> set[Outcome]:
    """Every outcome the packet can have."""
    out = set()
    for st, verdict in Tracer(fake).states(pkt):
        ep = f"{st.daddr}:{st.dport}" if st.dnat else None
        out.add(Outcome(verdict.upper(), ep, st.masq))
    return out


def connect(fake: FakeNft, pkt: Packet, rng: random.Random | None = None) -> Outcome:
    """One connection: a random branch, with its ``update @set`` statements applied to the fake."""
    tracer = Tracer(fake)
    choices = tracer.states(pkt)
    st, verdict = (rng or random).choice(choices)
    for name, key in st.updates:
        tracer.table.sets[name].elements[key] = None
    return Outcome(verdict.upper(), f"{st.daddr}:{st.dport}" if st.dnat else None, st.masq)
