"""Service defaulting, starting from the seed document's manifests verbatim."""

from __future__ import annotations

import copy

import pytest
import yaml

from kubesvc.cli.seed import SEED_CLUSTERIP, SEED_TEMPLATE
from kubesvc.registry.service.config import ServiceConfig
from kubesvc.registry.service.defaults import (
    apply_decode_defaults,
    default_service,
    default_service_update,
    drop_type_dependent_fields,
    init_ip_family_fields,
    normalize_cluster_ips,
)
from kubesvc.registry.service.validation import validate_service

CFG = ServiceConfig()

def load(text: str) -> dict:
    svc = yaml.safe_load(text)
    svc["metadata"]["namespace"] = "default"  # the apiserver fills it from the URL
    return svc


def test_seed_template():
    svc = load(SEED_TEMPLATE)
    default_service(svc, CFG)
    assert svc["spec"] == {
        "type": "ClusterIP",
        "clusterIP": "10.0.10.10",
        "clusterIPs": ["10.0.10.10"],
        "selector": {"app": "MyApp"},
        "ports": [{"protocol": "TCP", "port": 80, "targetPort": 9376}],
        "sessionAffinity": "None",
        "internalTrafficPolicy": "Cluster",
        "ipFamilyPolicy": "SingleStack",
        "ipFamilies": ["IPv4"],
    }
    assert validate_service(svc) == []


def test_seed_clusterip_service():
    svc = load(SEED_CLUSTERIP)
    default_service(svc, CFG)
    assert svc["spec"] == {
        "type": "ClusterIP",
        "selector": {"app": "nginx-for-svc"},
        "ports": [{"protocol": "TCP", "port": 80, "targetPort": 80}],
        "sessionAffinity": "None",
        "internalTrafficPolicy": "Cluster",
        "ipFamilyPolicy": "SingleStack",
        "ipFamilies": ["IPv4"],
    }
    assert validate_service(svc) == []


def decoded(spec: dict) -> dict:
    svc = {"metadata": {"name": "s"}, "spec": copy.deepcopy(spec)}
    apply_decode_defaults(svc)
    return svc["spec"]


@pytest.mark.parametrize(
    "spec,key,value",
    [
        ({}, "type", "ClusterIP"),
        ({}, "sessionAffinity", "None"),
        ({"sessionAffinity": "ClientIP"}, "sessionAffinityConfig", {"clientIP": {"timeoutSeconds": 10800}}),
        ({"sessionAffinity": "ClientIP", "sessionAffinityConfig": {"clientIP": {}}}, "sessionAffinityConfig", {"clientIP": {"timeoutSeconds": 10800}}),
        ({"sessionAffinity": "ClientIP", "sessionAffinityConfig": {"clientIP": {"timeoutSeconds": 60}}}, "sessionAffinityConfig", {"clientIP": {"timeoutSeconds": 60}}),
        ({"ports": [{"port": 80}]}, "ports", [{"port": 80, "protocol": "TCP", "targetPort": 80}]),
        ({"ports": [{"port": 80, "targetPort": ""}]}, "ports", [{"port": 80, "protocol": "TCP", "targetPort": 80}]),
        ({"ports": [{"port": 53, "protocol": "UDP", "targetPort": "dns"}]}, "ports", [{"port": 53, "protocol": "UDP", "targetPort": "dns"}]),
        ({}, "internalTrafficPolicy", "Cluster"),
        ({"type": "NodePort"}, "externalTrafficPolicy", "Cluster"),
        ({"type": "LoadBalancer"}, "externalTrafficPolicy", "Cluster"),
        ({"externalIPs": ["203.0.113.1"]}, "externalTrafficPolicy", "Cluster"),
        ({"type": "LoadBalancer"}, "allocateLoadBalancerNodePorts", True),
        ({"type": "LoadBalancer", "allocateLoadBalancerNodePorts": False}, "allocateLoadBalancerNodePorts", False),
    ],
)
def test_decode_defaults(spec, key, value):
    assert decoded(spec)[key] == value


@pytest.mark.parametrize(
    "spec,absent",
    [
        ({}, "externalTrafficPolicy"),
        ({}, "allocateLoadBalancerNodePorts"),
        ({"type": "ExternalName", "externalName": "a.b"}, "internalTrafficPolicy"),
        ({"sessionAffinity": "None", "sessionAffinityConfig": {"clientIP": {"timeoutSeconds": 5}}}, "sessionAffinityConfig"),
    ],
)
def test_decode_defaults_leave_out(spec, absent):
    assert absent not in decoded(spec)


def test_load_balancer_ingress_ip_mode():
    svc = {"spec": {"type": "LoadBalancer"}, "status": {"loadBalancer": {"ingress": [{"ip": "1.2.3.4"}, {"hostname": "x"}]}}}
    apply_decode_defaults(svc)
    assert svc["status"]["loadBalancer"]["ingress"] == [{"ip": "1.2.3.4", "ipMode": "VIP"}, {"hostname": "x"}]


def registry_defaults(spec: dict, cfg: ServiceConfig = CFG) -> dict:
    svc = {"metadata": {"name": "s", "namespace": "d"}, "spec": copy.deepcopy(spec)}
    default_service(svc, cfg)
    return svc["spec"]


def test_headless_with_selector_is_single_stack():
    spec = registry_defaults({"clusterIP": "None", "selector": {"a": "b"}})
    assert (spec["ipFamilyPolicy"], spec["ipFamilies"], spec["clusterIPs"]) == ("SingleStack", ["IPv4"], ["None"])


def test_headless_selectorless_requires_dual_stack_even_on_single_stack():
    spec = registry_defaults({"clusterIP": "None"})
    assert (spec["ipFamilyPolicy"], spec["ipFamilies"]) == ("RequireDualStack", ["IPv4", "IPv6"])


def test_external_name_gets_no_ip_fields():
    spec = registry_defaults({"type": "ExternalName", "externalName": "a.b"})
    assert not {"ipFamilyPolicy", "ipFamilies", "clusterIPs"} & set(spec)


def test_dual_stack_cluster_prefer_dual_stack_gets_both_families():
    cfg = ServiceConfig(secondary_service_cidr="fd00:10::/108")
    spec = registry_defaults({"ipFamilyPolicy": "PreferDualStack"}, cfg)
    assert spec["ipFamilies"] == ["IPv4", "IPv6"]
    spec = registry_defaults({"ipFamilyPolicy": "PreferDualStack", "ipFamilies": ["IPv6"]}, cfg)
    assert spec["ipFamilies"] == ["IPv6", "IPv4"]


def test_ip_family_inferred_from_cluster_ip():
    cfg = ServiceConfig(secondary_service_cidr="fd00:10::/108")
    spec = registry_defaults({"clusterIP": "fd00:10::5"}, cfg)
    assert spec["ipFamilies"] == ["IPv6"]


def ip_family_errors(spec: dict, old: dict | None = None, families=("IPv4",)) -> list[str]:
    svc = {"metadata": {"name": "s"}, "spec": copy.deepcopy(spec)}
    apply_decode_defaults(svc)
    normalize_cluster_ips(svc, old)
    return [str(e) for e in init_ip_family_fields(svc, old, list(families))]


def test_require_dual_stack_on_single_stack_cluster():
    assert ip_family_errors({"ipFamilyPolicy": "RequireDualStack"}) == [
        'spec.ipFamilyPolicy: Invalid value: "RequireDualStack": this cluster is not configured for dual-stack services'
    ]


def test_family_not_configured():
    assert ip_family_errors({"ipFamilies": ["IPv6"]}) == ['spec.ipFamilies[0]: Invalid value: "IPv6": not configured on this cluster']
    assert ip_family_errors({"clusterIP": "2001:db8::1"}) == [
        'spec.clusterIPs[0]: Invalid value: []string{"2001:db8::1"}: IPv6 is not configured on this cluster'
    ]


def test_single_stack_with_two_ips():
    spec = {"clusterIP": "10.0.0.5", "clusterIPs": ["10.0.0.5", "fd00::5"], "ipFamilyPolicy": "SingleStack"}
    assert ip_family_errors(spec, families=("IPv4", "IPv6")) == [
        "spec.ipFamilyPolicy: Invalid value: \"SingleStack\": must be 'RequireDualStack' or 'PreferDualStack' when multiple cluster IPs are specified"
    ]


def test_dual_stack_downgrade_needs_single_stack_policy():
    old = {"spec": {"type": "ClusterIP", "clusterIP": "10.0.0.5", "clusterIPs": ["10.0.0.5", "fd00::5"], "ipFamilies": ["IPv4", "IPv6"], "ipFamilyPolicy": "PreferDualStack"}}
    spec = {"clusterIP": "10.0.0.5", "clusterIPs": ["10.0.0.5"], "ipFamilies": ["IPv4"]}
    assert ip_family_errors(spec, old, ("IPv4", "IPv6")) == [
        "spec.ipFamilyPolicy: Invalid value: \"PreferDualStack\": must be 'SingleStack' to release the secondary cluster IP",
        "spec.ipFamilyPolicy: Invalid value: \"PreferDualStack\": must be 'SingleStack' to release the secondary IP family",
    ]


def test_single_stack_policy_truncates_unchanged_dual_fields():
    old = {"spec": {"type": "ClusterIP", "clusterIP": "10.0.0.5", "clusterIPs": ["10.0.0.5", "fd00::5"], "ipFamilies": ["IPv4", "IPv6"], "ipFamilyPolicy": "PreferDualStack"}}
    new = copy.deepcopy(old)
    new["spec"]["ipFamilyPolicy"] = "SingleStack"
    assert init_ip_family_fields(new, old, ["IPv4", "IPv6"]) == []
    assert (new["spec"]["clusterIPs"], new["spec"]["ipFamilies"]) == (["10.0.0.5"], ["IPv4"])


# --------------------------------------------------------------------------
# update-time carry-over and clean-up


def stored(spec: dict) -> dict:
    svc = {"metadata": {"name": "s", "namespace": "d"}, "spec": copy.deepcopy(spec)}
    default_service(svc, CFG)
    return svc


def test_update_policy_inherited_from_old():
    old = stored({"clusterIP": "10.0.0.5"})
    new = {"metadata": {"name": "s"}, "spec": {"clusterIP": "10.0.0.5", "ports": []}}
    default_service_update(new, old, CFG)
    assert new["spec"]["ipFamilyPolicy"] == "SingleStack" and new["spec"]["clusterIPs"] == ["10.0.0.5"]


def test_update_patches_node_ports_by_name():
    old = stored({"type": "NodePort", "clusterIP": "10.0.0.5", "ports": [{"name": "http", "port": 80, "nodePort": 30080}, {"name": "https", "port": 443, "nodePort": 30443}]})
    new = {"metadata": {"name": "s"}, "spec": {"type": "NodePort", "ports": [{"name": "https", "port": 443}, {"name": "http", "port": 80}]}}
    default_service_update(new, old, CFG)
    assert [p["nodePort"] for p in new["spec"]["ports"]] == [30443, 30080]
    assert new["spec"]["clusterIP"] == "10.0.0.5"


def test_update_does_not_patch_a_node_port_already_used():
    old = stored({"type": "NodePort", "ports": [{"name": "a", "port": 80, "nodePort": 30080}]})
    new = {"metadata": {"name": "s"}, "spec": {"type": "NodePort", "ports": [{"name": "a", "port": 80}, {"name": "b", "port": 81, "nodePort": 30080}]}}
    default_service_update(new, old, CFG)
    assert "nodePort" not in new["spec"]["ports"][0]


def test_update_patches_health_check_port():
    old = stored({"type": "LoadBalancer", "externalTrafficPolicy": "Local", "healthCheckNodePort": 30999})
    new = {"metadata": {"name": "s"}, "spec": {"type": "LoadBalancer", "externalTrafficPolicy": "Local"}}
    default_service_update(new, old, CFG)
    assert new["spec"]["healthCheckNodePort"] == 30999


def test_normalize_cleared_cluster_ip_clears_plural():
    old = stored({"clusterIP": "10.0.0.5"})
    new = copy.deepcopy(old)
    new["spec"]["clusterIP"] = ""
    normalize_cluster_ips(new, old)
    assert "clusterIPs" not in new["spec"]


def test_normalize_changed_cluster_ip_updates_plural():
    old = stored({"clusterIP": "10.0.0.5"})
    new = copy.deepcopy(old)
    new["spec"]["clusterIP"] = "10.0.0.6"
    normalize_cluster_ips(new, old)
    assert new["spec"]["clusterIPs"] == ["10.0.0.6"]


def test_drop_fields_when_leaving_node_port_and_load_balancer():
    old = stored({"type": "LoadBalancer", "externalTrafficPolicy": "Local", "healthCheckNodePort": 30999, "loadBalancerClass": "x.io/lb", "clusterIP": "10.0.0.5", "ports": [{"port": 80, "nodePort": 30080}]})
    old["status"] = {"loadBalancer": {"ingress": [{"ip": "1.2.3.4"}]}}
    new = copy.deepcopy(old)
    new["spec"]["type"] = "ClusterIP"
    drop_type_dependent_fields(new, old)
    spec = new["spec"]
    gone = {"healthCheckNodePort", "loadBalancerClass", "allocateLoadBalancerNodePorts", "externalTrafficPolicy"}
    assert not gone & set(spec)
    assert "nodePort" not in spec["ports"][0] and spec["clusterIP"] == "10.0.0.5"
    assert new["status"]["loadBalancer"] == {}


def test_drop_keeps_node_ports_the_user_changed():
    old = stored({"type": "NodePort", "ports": [{"port": 80, "nodePort": 30080}]})
    new = copy.deepcopy(old)
    new["spec"]["type"] = "ClusterIP"
    new["spec"]["ports"][0]["nodePort"] = 30081
    drop_type_dependent_fields(new, old)
    assert new["spec"]["ports"][0]["nodePort"] == 30081  # validation then rejects it


def test_drop_ip_fields_when_becoming_external_name():
    old = stored({"clusterIP": "10.0.0.5"})
    new = copy.deepcopy(old)
    new["spec"].update(type="ExternalName", externalName="a.b")
    drop_type_dependent_fields(new, old)
    assert not {"clusterIP", "clusterIPs", "ipFamilies", "ipFamilyPolicy"} & set(new["spec"])
