"""Table tests of the v1 Endpoints controller's pure part: subsets, repacking, truncation, no-op detection."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from kubesvc.controllers.endpoints import desired_endpoints, desired_subsets, truncate
from kubesvc.testing.endpointfixtures import pod, service

Obj = dict[str, Any]


def ips(subset: Obj, field: str = "addresses") -> list[str]:
    return [a["ip"] for a in subset.get(field) or []]


def test_ready_and_not_ready_addresses_share_a_subset() -> None:
    (s,) = desired_subsets(service(), [pod(2), pod(1), pod(3, ready=False)])
    assert ips(s) == ["10.244.0.2", "10.244.0.3"] and ips(s, "notReadyAddresses") == ["10.244.0.4"]
    assert s["ports"] == [{"name": "http", "port": 8080, "protocol": "TCP"}]


def test_address_fields() -> None:
    (s,) = desired_subsets(service(), [pod(1, hostname="h", subdomain="web")])
    assert s["addresses"] == [{"ip": "10.244.0.2", "hostname": "h", "nodeName": "node-1",
                               "targetRef": {"kind": "Pod", "namespace": "default", "name": "pod-1", "uid": "uid-1"}}]


@pytest.mark.parametrize(("publish", "want_ready", "want_not_ready"), [
    (False, [], []),                  # terminating pods are left out of Endpoints...
    (True, ["10.244.0.2"], []),       # ...unless the Service publishes not-ready addresses
])
def test_terminating_pods(publish: bool, want_ready: list[str], want_not_ready: list[str]) -> None:
    subsets = desired_subsets(service(publish=publish), [pod(1, terminating=True)])
    assert [ips(s) for s in subsets] == ([want_ready] if want_ready else [])


def test_publish_not_ready_makes_every_address_ready() -> None:
    (s,) = desired_subsets(service(publish=True), [pod(1, ready=False)])
    assert ips(s) == ["10.244.0.2"] and "notReadyAddresses" not in s


def test_named_ports_resolving_differently_give_two_subsets() -> None:
    named = [{"name": "http", "port": 80, "targetPort": "web", "protocol": "TCP"}]
    pods = [pod(1, ports=[{"name": "web", "containerPort": 3000, "protocol": "TCP"}]),
            pod(2, ports=[{"name": "web", "containerPort": 3001, "protocol": "TCP"}]),
            pod(3, ports=[])]
    subsets = desired_subsets(service(ports=named), pods)
    assert [(s["ports"][0]["port"], ips(s)) for s in subsets] == [(3000, ["10.244.0.2"]), (3001, ["10.244.0.3"])]


def test_multiple_ports_share_one_subset() -> None:
    ports = [{"name": "a", "port": 80, "targetPort": 80, "protocol": "TCP"},
             {"name": "b", "port": 81, "targetPort": 81, "protocol": "TCP"}]
    (s,) = desired_subsets(service(ports=ports), [pod(1), pod(2)])
    assert [p["port"] for p in s["ports"]] == [80, 81] and len(s["addresses"]) == 2


def test_headless_without_ports() -> None:
    (s,) = desired_subsets(service(ports=[], cluster_ip="None"), [pod(1), pod(2, ready=False)])
    assert "ports" not in s and ips(s) == ["10.244.0.2"] and ips(s, "notReadyAddresses") == ["10.244.0.3"]


def test_primary_family_address() -> None:
    p = pod(1)
    p["status"]["podIPs"] = [{"ip": "10.244.0.2"}, {"ip": "fd00::2"}]
    (s,) = desired_subsets(service(families=["IPv6", "IPv4"], cluster_ip="fd00::1"), [p])
    assert ips(s) == ["fd00::2"]


def test_truncation_keeps_ready_first() -> None:
    subsets = [{"addresses": [{"ip": f"r{i}"} for i in range(900)],
                "notReadyAddresses": [{"ip": f"n{i}"} for i in range(300)]}]
    assert truncate(subsets) is True
    assert len(subsets[0]["addresses"]) == 900 and len(subsets[0]["notReadyAddresses"]) == 100


def test_truncation_of_ready_is_proportional_and_drops_not_ready() -> None:
    subsets = [{"addresses": [{"ip": f"a{i}"} for i in range(900)], "notReadyAddresses": [{"ip": "n"}]},
               {"addresses": [{"ip": f"b{i}"} for i in range(300)]}]
    assert truncate(subsets) is True
    assert [len(s["addresses"]) for s in subsets] == [750, 250] and "notReadyAddresses" not in subsets[0]


def test_1200_pods_are_truncated_with_annotation() -> None:
    ep = desired_endpoints(service(), [pod(i) for i in range(1200)], None)
    assert ep is not None
    assert sum(len(s["addresses"]) for s in ep["subsets"]) == 1000
    assert ep["metadata"]["annotations"]["endpoints.kubernetes.io/over-capacity"] == "truncated"
    assert desired_endpoints(service(), [pod(i) for i in range(1200)], ep) is None


def test_no_write_when_nothing_changed() -> None:
    ep = desired_endpoints(service(labels={"a": "b"}), [pod(1)], None, "2024-01-01T00:00:00Z")
    assert ep is not None and ep["metadata"]["name"] == "web" and ep["metadata"]["labels"] == {"a": "b"}
    assert ep["metadata"]["annotations"] == {"endpoints.kubernetes.io/last-change-trigger-time": "2024-01-01T00:00:00Z"}
    stored = copy.deepcopy(ep)
    stored["subsets"][0]["addresses"][0]["targetRef"]["resourceVersion"] = "7"
    assert desired_endpoints(service(labels={"a": "b"}), [pod(1)], stored) is None
    changed = desired_endpoints(service(labels={"a": "b"}), [pod(1, ready=False)], stored)
    assert changed is not None and ips(changed["subsets"][0], "notReadyAddresses") == ["10.244.0.2"]


def test_headless_label_and_over_capacity_cleared() -> None:
    stored = desired_endpoints(service(cluster_ip="None"), [pod(i) for i in range(1001)], None)
    assert stored is not None and stored["metadata"]["labels"] == {"service.kubernetes.io/headless": ""}
    after = desired_endpoints(service(cluster_ip="None"), [pod(1)], stored)
    assert after is not None and "endpoints.kubernetes.io/over-capacity" not in after["metadata"].get("annotations", {})


def test_no_pods_gives_empty_subsets() -> None:
    ep = desired_endpoints(service(), [], None)
    assert ep is not None and "subsets" not in ep and "labels" not in ep["metadata"]
