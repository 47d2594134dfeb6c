"""Table tests of the mirroring controller's pure part: hand-written Endpoints -> EndpointSlices."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from kubesvc.controllers.endpointslice.reconciler import Plan
from kubesvc.controllers.endpointslicemirroring import mirror, mirror_figures, should_mirror
from kubesvc.controllers.mirroringmetrics import MirrorFigures
from kubesvc.testing.endpointfixtures import service

Obj = dict[str, Any]


def endpoints(*subsets: Obj, labels: dict[str, str] | None = None, annotations: dict[str, str] | None = None) -> Obj:
    return {"apiVersion": "v1", "kind": "Endpoints",
            "metadata": {"name": "ext", "namespace": "default", "uid": "ep-uid", "labels": labels or {},
                         "annotations": annotations or {}},
            "subsets": list(subsets)}


def subset(*ips: str, port: int = 80, not_ready: tuple[str, ...] = ()) -> Obj:
    return {"addresses": [{"ip": ip} for ip in ips], "notReadyAddresses": [{"ip": ip} for ip in not_ready],
            "ports": [{"name": "http", "port": port, "protocol": "TCP"}]}


def stored(plan: Plan, existing: list[Obj] | None = None) -> list[Obj]:
    out = {s["metadata"]["name"]: s for s in existing or []}
    for s in plan.delete:
        del out[s["metadata"]["name"]]
    for s in plan.update:
        out[s["metadata"]["name"]] = copy.deepcopy(s)
    for i, s in enumerate(plan.create):
        s = copy.deepcopy(s)
        s["metadata"]["name"] = f"{s['metadata'].pop('generateName')}{i}{len(out)}"
        s["metadata"]["resourceVersion"] = "1"
        out[s["metadata"]["name"]] = s
    return list(out.values())


def test_mirrors_addresses_ports_labels_and_owner() -> None:
    plan = mirror(endpoints(subset("10.1.2.3", not_ready=("10.1.2.4",)), labels={"team": "x"},
                            annotations={"endpoints.kubernetes.io/last-change-trigger-time": "t", "a": "b"}), [])
    (s,) = plan.create
    assert s["addressType"] == "IPv4" and s["ports"] == [{"name": "http", "port": 80, "protocol": "TCP"}]
    assert [(e["addresses"], e["conditions"]["ready"]) for e in s["endpoints"]] == [
        (["10.1.2.3"], True), (["10.1.2.4"], False)]
    assert s["metadata"]["labels"] == {"team": "x", "kubernetes.io/service-name": "ext",
                                       "endpointslice.kubernetes.io/managed-by": "endpointslicemirroring-controller.k8s.io"}
    assert s["metadata"]["annotations"] == {"a": "b"}
    assert s["metadata"]["ownerReferences"][0]["kind"] == "Endpoints"
    assert s["metadata"]["generateName"] == "ext-"


def test_unchanged_mirror_writes_nothing_and_a_change_updates_in_place() -> None:
    slices = stored(mirror(endpoints(subset("10.1.2.3")), []))
    assert mirror(endpoints(subset("10.1.2.3")), slices).writes == 0
    plan = mirror(endpoints(subset("10.2.3.4")), slices)
    assert (len(plan.create), len(plan.update), len(plan.delete)) == (0, 1, 0)
    assert plan.update[0]["metadata"]["name"] == slices[0]["metadata"]["name"]


def test_subsets_with_different_ports_and_families_get_their_own_slices() -> None:
    ep = endpoints(subset("10.1.2.3", port=8090), subset("10.1.2.3", port=9090), subset("fd00::1", port=8090))
    plan = mirror(ep, [])
    assert sorted((s["addressType"], s["ports"][0]["port"]) for s in plan.create) == [
        ("IPv4", 8090), ("IPv4", 9090), ("IPv6", 8090)]


def test_invalid_ips_are_skipped_and_subsets_capped() -> None:
    plan = mirror(endpoints(subset("not-an-ip", "10.0.0.1", "10.0.0.2", "10.0.0.3")), [], max_per_subset=2)
    assert [e["addresses"][0] for e in plan.create[0]["endpoints"]] == ["10.0.0.1", "10.0.0.2"]


def test_ports_change_recycles_the_slice() -> None:
    slices = stored(mirror(endpoints(subset("10.1.2.3", port=80)), []))
    plan = mirror(endpoints(subset("10.1.2.3", port=81)), slices)
    assert (len(plan.create), len(plan.update), len(plan.delete)) == (0, 1, 0)


def test_empty_endpoints_delete_mirrored_slices() -> None:
    slices = stored(mirror(endpoints(subset("10.1.2.3")), []))
    plan = mirror(endpoints(), slices)
    assert len(plan.delete) == 1 and not plan.create and not plan.update


@pytest.mark.parametrize(("ep_labels", "ep_annotations", "selector", "want"), [
    ({}, {}, {}, True),
    ({"endpointslice.kubernetes.io/skip-mirror": "true"}, {}, {}, False),
    ({}, {"control-plane.alpha.kubernetes.io/leader": "{}"}, {}, False),
    ({}, {}, {"app": "web"}, False),
])
def test_what_is_mirrored(ep_labels: dict[str, str], ep_annotations: dict[str, str], selector: dict[str, str],
                          want: bool) -> None:
    ep = endpoints(subset("10.1.2.3"), labels=ep_labels, annotations=ep_annotations)
    assert should_mirror(ep, service("ext", selector=selector)) is want
    assert should_mirror(ep, None) is False


# ---------------------------------------------------------------- figures for metrics and events

def test_figures_of_a_first_mirror_count_adds_and_skipped_addresses() -> None:
    ep = endpoints(subset("10.1.2.3", "not-an-ip", "10.1.2.5", not_ready=("10.1.2.4",)))
    f = mirror_figures(ep, [])
    assert (f.added, f.updated, f.removed, f.invalid, f.skipped) == (3, 0, 0, 1, 1)
    assert (f.endpoints, f.desired_slices) == (3, 1)


def test_figures_of_a_change_count_updates_and_removals() -> None:
    slices = stored(mirror(endpoints(subset("10.1.2.3", "10.1.2.4", "10.1.2.5")), []))
    f = mirror_figures(endpoints(subset("10.1.2.3", "10.1.2.6", not_ready=("10.1.2.4",))), slices)
    assert (f.added, f.updated, f.removed) == (1, 1, 1)
    assert mirror_figures(endpoints(subset("10.1.2.3", "10.1.2.4", "10.1.2.5")), slices) == \
        MirrorFigures(endpoints=3, desired_slices=1)


def test_figures_count_addresses_over_the_subset_maximum() -> None:
    f = mirror_figures(endpoints(subset("10.1.2.3", "10.1.2.4", "10.1.2.5")), [], max_per_subset=2)
    assert (f.added, f.invalid, f.skipped, f.endpoints) == (2, 0, 1, 2)
