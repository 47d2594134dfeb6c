"""Start-up repair: duplicates found by rebuild() are fixed, out-of-range values only reported."""

from __future__ import annotations

import asyncio
import copy
from typing import Any

from kubesvc.registry.service.allocation import RepairProblem, Transaction
from kubesvc.registry.service.bitmap import RestoreResult
from kubesvc.registry.service.ipallocator import IPAllocator
from kubesvc.registry.service.portallocator import PortAllocator
from kubesvc.registry.service.repair import repair_service
from kubesvc.registry.service.strategy import EVENTS, SERVICES, service_strategy
from kubesvc.storage import MemoryStore


def svc(name: str, ip: str, node_port: int, created: str, hc: int = 0) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "type": "LoadBalancer" if hc else "NodePort", "clusterIP": ip, "clusterIPs": [ip],
        "ipFamilies": ["IPv4"], "ipFamilyPolicy": "SingleStack",
        "externalTrafficPolicy": "Local" if hc else "Cluster",
        "ports": [{"name": "u", "port": 53, "protocol": "UDP", "nodePort": node_port},
                  {"name": "t", "port": 53, "protocol": "TCP", "nodePort": node_port}],
    }
    if hc:
        spec["healthCheckNodePort"] = hc
    return {"apiVersion": "v1", "kind": "Service",
            "metadata": {"name": name, "namespace": "default", "uid": f"uid-{name}", "creationTimestamp": created},
            "spec": spec}


def test_repair_service_moves_shared_ports_together_and_reports_out_of_range() -> None:
    ips, ports = IPAllocator("10.0.0.0/16"), PortAllocator((30000, 32767))
    ips.allocate("10.0.10.10")
    ports.allocate(30100)
    s = svc("b", "10.0.10.10", 30100, "2024-01-01T00:00:00Z")
    problems = [
        RepairProblem("default/b", "spec.clusterIPs[0]", "10.0.10.10", RestoreResult.DUPLICATE),
        RepairProblem("default/b", "spec.ports[0].nodePort", 30100, RestoreResult.DUPLICATE),
        RepairProblem("default/b", "spec.healthCheckNodePort", 40000, RestoreResult.OUT_OF_RANGE),
    ]
    before = copy.deepcopy(s)
    txn = Transaction({"IPv4": ips}, ports)
    fixed, notes = repair_service(s, problems, txn)
    assert s == before  # the input is not touched
    assert fixed is not None
    new_ip = fixed["spec"]["clusterIP"]
    assert new_ip != "10.0.10.10" and fixed["spec"]["clusterIPs"] == [new_ip] and ips.has(new_ip)
    np = [p["nodePort"] for p in fixed["spec"]["ports"]]
    assert np[0] == np[1] != 30100 and ports.has(np[0])
    assert [n.reason for n in notes] == ["ClusterIPAlreadyAllocated", "PortAlreadyAllocated", "PortOutOfRange"]
    assert notes[2].message == "Port 40000 is not within the port range 30000-32767; please recreate service"
    txn.rollback()
    assert not ips.has(new_ip) and not ports.has(np[0])


def test_restore_fixes_the_newer_duplicate_and_records_events() -> None:
    async def scenario() -> None:
        store = MemoryStore()
        old = svc("old", "10.0.10.10", 30100, "2024-01-01T00:00:00Z", hc=30101)
        new = svc("new", "10.0.10.10", 30100, "2024-01-02T00:00:00Z", hc=30101)
        for s in (new, old):
            await store.create(SERVICES.key("default", s["metadata"]["name"]), s)
        strat = service_strategy(store, "10.0.0.0/16", (30000, 32767))
        await strat.restore()
        kept = (await store.get(SERVICES.key("default", "old"))).value["spec"]
        moved = (await store.get(SERVICES.key("default", "new"))).value["spec"]
        assert kept == old["spec"]
        assert moved["clusterIP"] not in ("10.0.10.10", "") and moved["ports"][0]["nodePort"] not in (30100, 30101)
        assert moved["healthCheckNodePort"] not in (30100, 30101, moved["ports"][0]["nodePort"])
        for ip in ("10.0.10.10", moved["clusterIP"]):
            assert strat.ips["IPv4"].has(ip)
        for port in (30100, 30101, moved["ports"][0]["nodePort"], moved["healthCheckNodePort"]):
            assert strat.ports.has(port)
        events = [e.value for e in (await store.list(EVENTS.prefix("default"))).items]
        assert sorted(e["reason"] for e in events) == ["ClusterIPAlreadyAllocated", "PortAlreadyAllocated", "PortAlreadyAllocated"]
        assert {e["involvedObject"]["name"] for e in events} == {"new"}
        assert all(e["type"] == "Warning" and e["involvedObject"]["uid"] == "uid-new" for e in events)

    asyncio.run(scenario())
