"""The allocation planner: create, update (every type transition), delete, rollback, rebuild."""

from __future__ import annotations

import copy
import random

import pytest

from kubesvc.api.errors import invalid_error
from kubesvc.registry.service.allocation import AllocationError, plan_allocations, rebuild
from kubesvc.registry.service.config import ServiceConfig
from kubesvc.registry.service.defaults import default_service, default_service_update
from kubesvc.registry.service.ipallocator import IPAllocator
from kubesvc.registry.service.portallocator import PortAllocator
from kubesvc.registry.service.validation import validate_service, validate_service_update

CFG = ServiceConfig()


class Cluster:
    """Allocators plus the registry's call sequence (what strategy.py will do)."""

    def __init__(self, cfg: ServiceConfig = CFG, seed: int = 1) -> None:
        self.cfg = cfg
        self.ips = {fam: IPAllocator(cidr, random.Random(seed)) for fam, cidr in zip(cfg.ip_families, cfg.service_cidrs, strict=True)}
        self.ports = PortAllocator(cfg.node_port_range, random.Random(seed))

    @property
    def ip4(self) -> IPAllocator:
        return self.ips["IPv4"]

    def create(self, spec: dict, name: str = "svc") -> dict:
        svc = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name, "namespace": "default"}, "spec": copy.deepcopy(spec)}
        default_service(svc, self.cfg)
        txn = plan_allocations(svc, None, self.ips, self.ports)
        errs = validate_service(svc)
        if errs:
            txn.rollback()
            raise AssertionError(invalid_error("Service", name, errs).message)
        txn.commit()
        return svc

    def update(self, old: dict, change, commit: bool = True) -> dict:
        new = copy.deepcopy(old)
        change(new["spec"])
        default_service_update(new, old, self.cfg)
        txn = plan_allocations(new, old, self.ips, self.ports)
        errs = validate_service_update(new, old)
        if errs or not commit:
            txn.rollback()
            if errs:
                raise AssertionError(invalid_error("Service", "svc", errs).message)
            return new
        txn.commit()
        return new

    def delete(self, old: dict) -> None:
        plan_allocations(None, old, self.ips, self.ports).commit()

    def fails(self, spec: dict, name: str = "svc") -> str:
        svc = {"metadata": {"name": name, "namespace": "default"}, "spec": copy.deepcopy(spec)}
        default_service(svc, self.cfg)
        with pytest.raises(AllocationError) as e:
            plan_allocations(svc, None, self.ips, self.ports)
        return e.value.status(name).message


def _ports() -> list[dict]:
    return [{"port": 80, "targetPort": 9376}]


# --------------------------------------------------------------------------
# create


def test_seed_template_gets_its_cluster_ip():
    c = Cluster()
    svc = c.create({"type": "ClusterIP", "clusterIP": "10.0.10.10", "selector": {"app": "MyApp"}, "ports": _ports()})
    assert svc["spec"]["clusterIPs"] == ["10.0.10.10"] and c.ip4.has("10.0.10.10")


def test_automatic_cluster_ip_from_upper_band():
    c = Cluster()
    svc = c.create({"ports": _ports()})
    ip = svc["spec"]["clusterIP"]
    assert svc["spec"]["clusterIPs"] == [ip] and c.ip4.has(ip) and c.ip4._offset(ip) >= 256


def test_cluster_ip_already_allocated():
    c = Cluster()
    c.create({"clusterIP": "10.0.10.10", "ports": _ports()})
    msg = c.fails({"clusterIP": "10.0.10.10", "ports": _ports()}, name="x")
    assert msg == (
        'Service "x" is invalid: spec.clusterIPs: Invalid value: []string{"10.0.10.10"}: '
        "failed to allocate IP 10.0.10.10: provided IP is already allocated"
    )
    assert c.ip4.used == 1


def test_cluster_ip_out_of_range():
    msg = Cluster().fails({"clusterIP": "10.1.0.1", "ports": _ports()})
    assert msg == (
        'Service "svc" is invalid: spec.clusterIPs: Invalid value: []string{"10.1.0.1"}: failed to allocate IP '
        "10.1.0.1: the provided IP (10.1.0.1) is not in the valid range. The range of valid IPs is 10.0.0.0/16"
    )


def test_cluster_ip_range_full_is_internal_error():
    c = Cluster(ServiceConfig(service_cidr="10.0.0.0/30"))
    c.create({"ports": _ports()}, "a")
    c.create({"ports": _ports()}, "b")
    assert c.fails({"ports": _ports()}) == "Internal error occurred: failed to allocate a serviceIP: range is full"


def test_node_port_automatic_and_explicit():
    c = Cluster()
    svc = c.create({"type": "NodePort", "ports": [{"name": "a", "port": 80}, {"name": "b", "port": 443, "nodePort": 30443}]})
    auto, explicit = (p["nodePort"] for p in svc["spec"]["ports"])
    assert 30086 <= auto <= 32767 and explicit == 30443
    assert c.ports.has(auto) and c.ports.has(30443)


def test_node_port_collision_rolls_back_the_cluster_ip():
    c = Cluster()
    c.create({"type": "NodePort", "ports": [{"port": 80, "nodePort": 30080}]}, "a")
    used_ips = c.ip4.used
    msg = c.fails({"type": "NodePort", "ports": [{"port": 80, "nodePort": 30080}]}, "b")
    assert msg == 'Service "b" is invalid: spec.ports[0].nodePort: Invalid value: 30080: provided port is already allocated'
    assert c.ip4.used == used_ips and c.ports.used == 1


def test_node_port_out_of_range():
    msg = Cluster().fails({"type": "NodePort", "ports": [{"port": 80, "nodePort": 80}]})
    assert msg == (
        'Service "svc" is invalid: spec.ports[0].nodePort: Invalid value: 80: '
        "provided port is not in the valid range. The range of valid ports is 30000-32767"
    )


def test_node_port_range_full_is_internal_error():
    c = Cluster(ServiceConfig(node_port_range=(30000, 30000)))
    c.create({"type": "NodePort", "ports": _ports()}, "a")
    assert c.fails({"type": "NodePort", "ports": _ports()}) == "Internal error occurred: failed to allocate a nodePort: range is full"


def test_tcp_and_udp_of_one_port_share_a_node_port():
    c = Cluster()
    svc = c.create({"type": "NodePort", "ports": [{"name": "t", "port": 53}, {"name": "u", "port": 53, "protocol": "UDP"}]})
    a, b = (p["nodePort"] for p in svc["spec"]["ports"])
    assert a == b and c.ports.used == 1
    svc = c.create({"type": "NodePort", "ports": [{"name": "t", "port": 80}, {"name": "u", "port": 80, "protocol": "UDP", "nodePort": 30080}]}, "x")
    assert [p["nodePort"] for p in svc["spec"]["ports"]] == [30080, 30080]


def test_load_balancer_without_node_ports_honours_explicit_ones():
    c = Cluster()
    svc = c.create({"type": "LoadBalancer", "allocateLoadBalancerNodePorts": False, "ports": [{"name": "a", "port": 80}, {"name": "b", "port": 81, "nodePort": 30081}]})
    assert "nodePort" not in svc["spec"]["ports"][0] and svc["spec"]["ports"][1]["nodePort"] == 30081
    assert list(c.ports.allocated()) == [30081]


def test_health_check_node_port_for_local_load_balancer():
    c = Cluster()
    svc = c.create({"type": "LoadBalancer", "externalTrafficPolicy": "Local", "ports": _ports()})
    hc = svc["spec"]["healthCheckNodePort"]
    assert c.ports.has(hc) and c.ports.used == 2


def test_requested_health_check_port_taken_is_internal_error():
    c = Cluster()
    c.create({"type": "NodePort", "ports": [{"port": 80, "nodePort": 30080}]}, "a")
    msg = c.fails({"type": "LoadBalancer", "externalTrafficPolicy": "Local", "healthCheckNodePort": 30080, "ports": _ports()})
    assert msg == "Internal error occurred: failed to allocate requested HealthCheck NodePort 30080: provided port is already allocated"
    assert c.ports.used == 1 and c.ip4.used == 1


def test_headless_and_external_name_take_nothing():
    c = Cluster()
    c.create({"clusterIP": "None", "selector": {"a": "b"}})
    c.create({"type": "ExternalName", "externalName": "foo.example.com"}, "e")
    assert c.ip4.used == 0 and c.ports.used == 0


def test_ip_family_errors_come_back_as_field_errors():
    msg = Cluster().fails({"ipFamilyPolicy": "RequireDualStack", "ports": _ports()})
    assert msg == 'Service "svc" is invalid: spec.ipFamilyPolicy: Invalid value: "RequireDualStack": this cluster is not configured for dual-stack services'


# --------------------------------------------------------------------------
# type transitions


def test_cluster_ip_to_node_port_allocates_node_ports():
    c = Cluster()
    old = c.create({"clusterIP": "10.0.10.10", "ports": _ports()})
    new = c.update(old, lambda s: s.update(type="NodePort"))
    assert new["spec"]["clusterIP"] == "10.0.10.10" and c.ports.has(new["spec"]["ports"][0]["nodePort"])
    assert new["spec"]["externalTrafficPolicy"] == "Cluster"


def test_node_port_to_cluster_ip_releases_on_commit_and_clears():
    c = Cluster()
    old = c.create({"type": "NodePort", "ports": [{"port": 80, "nodePort": 30080}]})
    new = c.update(old, lambda s: s.update(type="ClusterIP"), commit=False)
    assert c.ports.has(30080)  # a failed write keeps the old object's port
    new = c.update(old, lambda s: s.update(type="ClusterIP"))
    assert "nodePort" not in new["spec"]["ports"][0] and "externalTrafficPolicy" not in new["spec"]
    assert not c.ports.has(30080)


def test_node_port_to_load_balancer_keeps_node_ports():
    c = Cluster()
    old = c.create({"type": "NodePort", "ports": [{"port": 80, "nodePort": 30080}]})
    new = c.update(old, lambda s: s.update(type="LoadBalancer"))
    assert new["spec"]["ports"][0]["nodePort"] == 30080 and new["spec"]["allocateLoadBalancerNodePorts"] is True
    assert c.ports.used == 1


def test_health_check_port_follows_external_traffic_policy():
    c = Cluster()
    old = c.create({"type": "LoadBalancer", "ports": _ports()})
    local = c.update(old, lambda s: s.update(externalTrafficPolicy="Local"))
    hc = local["spec"]["healthCheckNodePort"]
    assert c.ports.has(hc)
    back = c.update(local, lambda s: s.update(externalTrafficPolicy="Cluster"))
    assert "healthCheckNodePort" not in back["spec"] and not c.ports.has(hc)


def test_load_balancer_to_cluster_ip_releases_health_check_port():
    c = Cluster()
    old = c.create({"type": "LoadBalancer", "externalTrafficPolicy": "Local", "ports": _ports()})
    hc, np = old["spec"]["healthCheckNodePort"], old["spec"]["ports"][0]["nodePort"]
    new = c.update(old, lambda s: s.update(type="ClusterIP"))
    assert c.ports.used == 0 and not c.ports.has(hc) and not c.ports.has(np)
    assert not {"healthCheckNodePort", "externalTrafficPolicy", "allocateLoadBalancerNodePorts"} & set(new["spec"])


def test_cluster_ip_to_external_name_releases_ip():
    c = Cluster()
    old = c.create({"clusterIP": "10.0.10.10", "ports": _ports()})
    new = c.update(old, lambda s: s.update(type="ExternalName", externalName="other.default.svc.cluster.local"))
    assert not {"clusterIP", "clusterIPs", "ipFamilies", "ipFamilyPolicy"} & set(new["spec"])
    assert not c.ip4.has("10.0.10.10")


def test_node_port_to_external_name_releases_ip_and_ports():
    c = Cluster()
    old = c.create({"type": "NodePort", "ports": [{"port": 80, "nodePort": 30080}]})
    new = c.update(old, lambda s: s.update(type="ExternalName", externalName="foo.example.com"))
    assert c.ip4.used == 0 and c.ports.used == 0 and "nodePort" not in new["spec"]["ports"][0]


def test_external_name_to_cluster_ip_allocates():
    c = Cluster()
    old = c.create({"type": "ExternalName", "externalName": "foo.example.com"})

    def change(s):
        s.update(type="ClusterIP", ports=_ports())
        s.pop("externalName")

    new = c.update(old, change)
    assert c.ip4.has(new["spec"]["clusterIP"]) and new["spec"]["ipFamilies"] == ["IPv4"]


def test_external_name_to_cluster_ip_with_chosen_ip():
    c = Cluster()
    old = c.create({"type": "ExternalName", "externalName": "foo.example.com"})
    new = c.update(old, lambda s: s.update(type="ClusterIP", clusterIP="10.0.10.10", ports=_ports()))
    assert new["spec"]["clusterIPs"] == ["10.0.10.10"] and c.ip4.has("10.0.10.10")


def test_external_name_to_node_port_allocates_ip_and_port():
    c = Cluster()
    old = c.create({"type": "ExternalName", "externalName": "foo.example.com"})
    new = c.update(old, lambda s: s.update(type="NodePort", ports=_ports()))
    assert c.ip4.used == 1 and c.ports.has(new["spec"]["ports"][0]["nodePort"])


def test_headless_stays_headless():
    c = Cluster()
    old = c.create({"clusterIP": "None", "selector": {"a": "b"}})
    new = c.update(old, lambda s: s.update(ports=_ports()))
    assert new["spec"]["clusterIPs"] == ["None"] and c.ip4.used == 0


def test_node_port_update_adds_and_removes_ports():
    c = Cluster()
    old = c.create({"type": "NodePort", "ports": [{"name": "a", "port": 80, "nodePort": 30080}]})
    grown = c.update(old, lambda s: s["ports"].append({"name": "b", "port": 81}))
    added = grown["spec"]["ports"][1]["nodePort"]
    assert c.ports.has(30080) and c.ports.has(added)
    shrunk = c.update(grown, lambda s: s.update(ports=[s["ports"][1]]))
    assert shrunk["spec"]["ports"][0]["nodePort"] == added and not c.ports.has(30080)


def test_update_failure_releases_new_and_keeps_old():
    c = Cluster()
    old = c.create({"type": "NodePort", "ports": [{"name": "a", "port": 80, "nodePort": 30080}]})
    new = c.update(old, lambda s: s.update(ports=[{"name": "b", "port": 81, "nodePort": 30081}]), commit=False)
    assert new["spec"]["ports"][0]["nodePort"] == 30081
    assert c.ports.has(30080) and not c.ports.has(30081)


def test_update_duplicate_node_port_same_protocol():
    c = Cluster()
    old = c.create({"type": "NodePort", "ports": [{"name": "a", "port": 80}]})
    new = copy.deepcopy(old)
    new["spec"]["ports"] = [{"name": "a", "port": 80, "nodePort": 30080}, {"name": "b", "port": 81, "nodePort": 30080}]
    default_service_update(new, old, c.cfg)
    with pytest.raises(AllocationError) as e:
        plan_allocations(new, old, c.ips, c.ports)
    assert e.value.status("svc").message == "Internal error occurred: duplicate nodePort: {TCP 30080}"
    assert not c.ports.has(30080)


# --------------------------------------------------------------------------
# delete, dry run, rebuild


def test_delete_releases_everything():
    c = Cluster()
    svc = c.create({"type": "LoadBalancer", "externalTrafficPolicy": "Local", "ports": [{"name": "t", "port": 53}, {"name": "u", "port": 53, "protocol": "UDP"}]})
    assert c.ip4.used == 1 and c.ports.used == 2
    c.delete(svc)
    assert c.ip4.used == 0 and c.ports.used == 0


def test_dry_run_is_plan_then_rollback():
    c = Cluster()
    svc = {"metadata": {"name": "s", "namespace": "d"}, "spec": {"type": "NodePort", "ports": _ports()}}
    default_service(svc, c.cfg)
    txn = plan_allocations(svc, None, c.ips, c.ports)
    assert svc["spec"]["clusterIP"] and svc["spec"]["ports"][0]["nodePort"]
    txn.rollback()
    txn.commit()  # no effect after rollback
    assert c.ip4.used == 0 and c.ports.used == 0


def test_rebuild_restores_and_reports_duplicates():
    c = Cluster()
    a = c.create({"type": "NodePort", "clusterIP": "10.0.10.10", "ports": [{"port": 80, "nodePort": 30080}]}, "a")
    b = copy.deepcopy(a)
    b["metadata"].update(name="b", creationTimestamp="2030-01-01T00:00:00Z")
    a["metadata"]["creationTimestamp"] = "2020-01-01T00:00:00Z"
    fresh = Cluster(seed=2)
    problems = rebuild([b, a], fresh.ips, fresh.ports)
    assert [(p.service, p.field, p.value, p.problem) for p in problems] == [
        ("default/b", "spec.clusterIPs[0]", "10.0.10.10", "duplicate"),
        ("default/b", "spec.ports[0].nodePort", 30080, "duplicate"),
    ]
    assert fresh.ip4.has("10.0.10.10") and fresh.ports.has(30080)


def test_many_creates_never_duplicate():
    c = Cluster(ServiceConfig(service_cidr="10.0.0.0/24", node_port_range=(30000, 30299)))
    rng = random.Random(3)
    seen_ips: set[str] = set()
    seen_ports: set[int] = set()
    for i in range(200):
        spec: dict = {"type": "NodePort", "ports": [{"port": 80}]}
        if rng.random() < 0.3:
            spec["clusterIP"] = f"10.0.0.{rng.randrange(1, 255)}"
        if rng.random() < 0.3:
            spec["ports"][0]["nodePort"] = 30000 + rng.randrange(300)
        try:
            svc = c.create(spec, f"s{i}")
        except AllocationError:
            continue
        ip, port = svc["spec"]["clusterIP"], svc["spec"]["ports"][0]["nodePort"]
        assert ip not in seen_ips and port not in seen_ports
        seen_ips.add(ip)
        seen_ports.add(port)
    assert c.ip4.used == len(seen_ips) and c.ports.used == len(seen_ports)


# --------------------------------------------------------------------------
# dual-stack (kept open: a second CIDR makes the cluster dual-stack)

DUAL = ServiceConfig(secondary_service_cidr="fd00:10::/108")


def test_dual_stack_create_and_delete():
    c = Cluster(DUAL)
    svc = c.create({"ipFamilyPolicy": "PreferDualStack", "ports": _ports()})
    v4, v6 = svc["spec"]["clusterIPs"]
    assert svc["spec"]["ipFamilies"] == ["IPv4", "IPv6"] and c.ips["IPv6"].has(v6) and c.ip4.has(v4)
    c.delete(svc)
    assert c.ip4.used == 0 and c.ips["IPv6"].used == 0


def test_dual_stack_upgrade_and_downgrade():
    c = Cluster(DUAL)
    old = c.create({"ports": _ports()})
    up = c.update(old, lambda s: s.update(ipFamilyPolicy="RequireDualStack"))
    assert len(up["spec"]["clusterIPs"]) == 2 and c.ips["IPv6"].used == 1

    def down(s):
        s.update(ipFamilyPolicy="SingleStack")

    back = c.update(up, down)
    assert back["spec"]["clusterIPs"] == [old["spec"]["clusterIP"]] and c.ips["IPv6"].used == 0
