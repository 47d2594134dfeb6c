"""The proxier end to end over the fake nft: events in, table and follow-ups out."""

from __future__ import annotations

import copy
import time
from datetime import UTC, datetime

from proxy_builders import LOCAL_IPS, endpoint, endpoint_slice, endpoints_of, reach, service, verdicts

from kubesvc.proxy.proxier import Proxier, ProxyConfig
from kubesvc.testing.fakenft import FakeNft

NODE_OBJ = {"metadata": {"name": "node-1", "labels": {}}, "spec": {"podCIDR": "10.244.1.0/24"},
            "status": {"addresses": [{"type": "InternalIP", "address": "172.18.0.2"}]}}


def make() -> tuple[Proxier, FakeNft]:
    fake = FakeNft(local_ips=LOCAL_IPS)
    p = Proxier(ProxyConfig("node-1", cluster_cidr="10.244.0.0/16"), fake)
    p.on_node(None, NODE_OBJ)
    return p, fake


async def test_nothing_is_programmed_before_both_caches_sync() -> None:
    p, fake = make()
    p.on_service(None, service())
    p.mark_synced("services")
    await p.sync()
    assert fake.transactions == []
    p.mark_synced("endpointslices")
    await p.sync()
    assert verdicts(reach(fake, "10.244.1.50", "10.0.0.5")) == {"REJECT"}


async def test_events_become_partial_syncs_and_latency_is_measured() -> None:
    p, fake = make()
    p.mark_synced("services")
    p.mark_synced("endpointslices")
    p.on_service(None, service())
    await p.sync()
    assert p.last_result and p.last_result.full
    stamp = datetime.fromtimestamp(time.time() - 0.2, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    p.on_slice(None, endpoint_slice("web", endpoint("10.244.1.5"), trigger=stamp))
    await p.sync()
    assert p.last_result and not p.last_result.full
    assert endpoints_of(reach(fake, "10.244.1.50", "10.0.0.5")) == {"10.244.1.5:8080"}
    count = p.metrics.registry.get_sample_value("kubeproxy_network_programming_duration_seconds_count")
    total = p.metrics.registry.get_sample_value("kubeproxy_network_programming_duration_seconds_sum")
    assert count == 1 and 0.15 < total < 5


async def test_a_failed_sync_retries_as_a_full_sync() -> None:
    p, fake = make()
    p.mark_synced("services")
    p.mark_synced("endpointslices")
    p.on_service(None, service())
    await p.sync()
    fake.fail_next = 1
    p.on_slice(None, endpoint_slice("web", endpoint("10.244.1.5")))
    await p.sync()
    assert p.metrics.registry.get_sample_value("kubeproxy_sync_proxy_rules_nftables_sync_failures_total") == 1
    assert verdicts(reach(fake, "10.244.1.50", "10.0.0.5")) == {"REJECT"}  # last good rules
    await p.sync()
    assert p.last_result and p.last_result.full
    assert endpoints_of(reach(fake, "10.244.1.50", "10.0.0.5")) == {"10.244.1.5:8080"}


async def test_health_checks_count_ready_local_endpoints() -> None:
    p, _ = make()
    svc = service(type="LoadBalancer", externalTrafficPolicy="Local", healthCheckNodePort=32000,
                  ports=[{"name": "http", "port": 80, "protocol": "TCP", "nodePort": 30080},
                         {"name": "alt", "port": 81, "protocol": "TCP", "nodePort": 30081}])
    p.on_service(None, svc)
    sl = endpoint_slice("web", endpoint("10.244.1.5"), endpoint("10.244.1.6"), endpoint("10.244.2.5", "node-2"),
                        ports=[{"name": "http", "port": 8080, "protocol": "TCP"},
                               {"name": "alt", "port": 8081, "protocol": "TCP"}])
    p.on_slice(None, sl)
    hc = p.health_checks()[32000]
    assert (hc.namespace, hc.name, hc.local_endpoints) == ("default", "web", 2)
    sl2 = copy.deepcopy(sl)
    for e in sl2["endpoints"][:2]:
        e["conditions"] = {"ready": False, "serving": True, "terminating": True}
    p.on_slice(sl, sl2)
    assert p.health_checks()[32000].local_endpoints == 0  # terminating endpoints don't count


async def test_health_server_answers_like_kube_proxy() -> None:
    import aiohttp

    from kubesvc.proxy.server import HealthCheck, HealthServers
    from kubesvc.testing.cluster import free_port

    port = free_port()
    hs = HealthServers(host="127.0.0.1")
    await hs.update({port: HealthCheck("default", "web", port, 2)})
    async with aiohttp.ClientSession() as s:
        async with s.get(f"http://127.0.0.1:{port}/healthz") as r:
            assert r.status == 200 and r.headers["X-Load-Balancing-Endpoint-Weight"] == "2"
            assert await r.json() == {"service": {"namespace": "default", "name": "web"},
                                      "localEndpoints": 2, "serviceProxyHealthy": True}
        await hs.update({port: HealthCheck("default", "web", port, 0)})
        async with s.get(f"http://127.0.0.1:{port}/anything") as r:
            assert r.status == 503
    await hs.update({})
    await hs.close()
