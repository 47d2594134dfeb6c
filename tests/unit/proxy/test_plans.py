"""Plans keeps the shared chains' inputs counted: assemble gives what a full scan gives."""

from __future__ import annotations

from proxy_builders import NODE

from kubesvc.proxy.planner import Plans, assemble
from kubesvc.proxy.ruleset import Chain, ServiceRules


def rules(*sizes: int, affinity: bool = False) -> ServiceRules:
    return ServiceRules(chains={"affinity-x": Chain("affinity-x")} if affinity else {}, pick_sizes=frozenset(sizes))


def test_plans_count_pool_sizes_and_affinity_as_plans_come_and_go() -> None:
    plans = Plans({"a": rules(40), "b": rules(3, 50, affinity=True)})
    steps = [lambda: plans.__setitem__("a", rules(41)), lambda: plans.pop("b"), lambda: plans.pop("zz", None),
             lambda: plans.__setitem__("c", rules(60, affinity=True)), lambda: plans.__delitem__("c"),
             lambda: plans.update({"d": rules(33)}), plans.clear]
    for step in steps:
        step()
        assert assemble(plans, NODE).chains == assemble(dict(plans), NODE).chains
    assert plans.shared() == (frozenset(), False)
