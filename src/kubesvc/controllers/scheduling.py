"""Where a pod may run and where it should: the scheduler's pure core.

Filters, in upstream's plugin order, each naming the first reason a node is
out: NodeUnschedulable (``spec.unschedulable`` unless tolerated),
TaintToleration (``NoSchedule``/``NoExecute`` taints the pod does not
tolerate; a node whose Ready condition is not True counts as tainted
``not-ready`` or ``unreachable`` even before the node-lifecycle controller
has written the taint), NodeAffinity (``nodeSelector`` and required node
affinity).  Among the nodes left, the pod goes where its controller has the
fewest replicas, then where there are the fewest pods, then by name: the
spreading of upstream's PodTopologySpread/SelectorSpread defaults without
their randomness.  When nothing fits, :func:`fit_error` words it as
upstream does (``0/2 nodes are available: ...``).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

Obj = dict[str, Any]
NOT_READY = "node.kubernetes.io/not-ready"
UNREACHABLE = "node.kubernetes.io/unreachable"
UNSCHEDULABLE = "node.kubernetes.io/unschedulable"
R_UNSCHEDULABLE = "node(s) were unschedulable"
R_AFFINITY = "node(s) didn't match Pod's node affinity/selector"


@dataclass(frozen=True)
class NodeView:
    """What scheduling needs of a Node."""

    name: str
    labels: Mapping[str, str]
    taints: tuple[Obj, ...]
    unschedulable: bool


def node_view(node: Obj) -> NodeView:
    m = node.get("metadata") or {}
    spec = node.get("spec") or {}
    taints = list(spec.get("taints") or [])
    ready = next((c for c in (node.get("status") or {}).get("conditions") or [] if c.get("type") == "Ready"), None)
    status = (ready or {}).get("status", "Unknown")
    implied = NOT_READY if status == "False" else UNREACHABLE if status != "True" else None
    if implied and not any(t.get("key") == implied for t in taints):
        taints.append({"key": implied, "effect": "NoSchedule"})
    return NodeView(m.get("name", ""), m.get("labels") or {}, tuple(taints), bool(spec.get("unschedulable")))


def tolerates(toleration: Obj, taint: Obj) -> bool:
    """Upstream's Toleration.ToleratesTaint."""
    effect = toleration.get("effect") or ""
    if effect and effect != taint.get("effect"):
        return False
    key = toleration.get("key") or ""
    if key and key != taint.get("key"):
        return False
    op = toleration.get("operator") or "Equal"
    if op == "Exists":
        return True
    return bool(key) and (toleration.get("value") or "") == (taint.get("value") or "")


def untolerated(tolerations: Iterable[Obj], taints: Iterable[Obj], effects: tuple[str, ...]) -> Obj | None:
    tols = list(tolerations)
    for t in taints:
        if t.get("effect") in effects and not any(tolerates(tol, t) for tol in tols):
            return t
    return None


def _expr_matches(expr: Obj, labels: Mapping[str, str]) -> bool:
    key, op, values = expr.get("key", ""), expr.get("operator"), expr.get("values") or []
    if op == "In":
        return key in labels and labels[key] in values
    if op == "NotIn":
        return key not in labels or labels[key] not in values
    if op == "Exists":
        return key in labels
    if op == "DoesNotExist":
        return key not in labels
    if op in ("Gt", "Lt") and key in labels and len(values) == 1:
        try:
            have, want = int(labels[key]), int(values[0])
        except ValueError:
            return False
        return have > want if op == "Gt" else have < want
    return False


def _term_matches(term: Obj, node: NodeView) -> bool:
    exprs = term.get("matchExpressions") or []
    fields = term.get("matchFields") or []
    if not exprs and not fields:
        return False  # an empty term matches nothing, as upstream
    return all(_expr_matches(e, node.labels) for e in exprs) and all(
        _expr_matches(f, {"metadata.name": node.name}) for f in fields)


def affinity_matches(pod_spec: Obj, node: NodeView) -> bool:
    for k, v in (pod_spec.get("nodeSelector") or {}).items():
        if node.labels.get(k) != v:
            return False
    required = (((pod_spec.get("affinity") or {}).get("nodeAffinity") or {})
                .get("requiredDuringSchedulingIgnoredDuringExecution"))
    if required is None:
        return True
    return any(_term_matches(t, node) for t in required.get("nodeSelectorTerms") or [])


def filter_node(pod: Obj, node: NodeView) -> str | None:
    """Why ``pod`` cannot go to ``node`` (upstream's reason text), or None if it can."""
    spec = pod.get("spec") or {}
    tols = spec.get("tolerations") or []
    if node.unschedulable and not any(tolerates(t, {"key": UNSCHEDULABLE, "effect": "NoSchedule"}) for t in tols):
        return R_UNSCHEDULABLE
    taint = untolerated(tols, node.taints, ("NoSchedule", "NoExecute"))
    if taint is not None:
        return f"node(s) had untolerated taint {{{taint.get('key', '')}: {taint.get('value') or ''}}}"
    if not affinity_matches(spec, node):
        return R_AFFINITY
    return None


@dataclass(frozen=True)
class Load:
    """How many pods a node already runs: in total, and of the pod's own controller."""

    total: int = 0
    same_owner: int = 0


def choose_node(pod: Obj, nodes: Iterable[NodeView], load: Mapping[str, Load]) -> tuple[str | None, Counter[str]]:
    """The node to bind to (or None) and, per reason, how many nodes were filtered out."""
    reasons: Counter[str] = Counter()
    best: tuple[int, int, str] | None = None
    for n in nodes:
        why = filter_node(pod, n)
        if why is not None:
            reasons[why] += 1
            continue
        lo = load.get(n.name, Load())
        score = (lo.same_owner, lo.total, n.name)
        if best is None or score < best:
            best = score
    return (best[2] if best else None), reasons


def fit_error(num_nodes: int, reasons: Counter[str]) -> str:
    """Upstream's FitError text, with the preemption post-filter's verdict appended."""
    if num_nodes == 0:
        return "no nodes available to schedule pods"
    parts = sorted(f"{n} {r}" for r, n in reasons.items())
    return (f"0/{num_nodes} nodes are available: {', '.join(parts)}. preemption: 0/{num_nodes} nodes are "
            f"available: {num_nodes} Preemption is not helpful for scheduling.")
