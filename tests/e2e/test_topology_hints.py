"""Topology-aware hints, Events and /metrics of the real EndpointSlice controller against the real API server.

The API server runs alone (``kubesvc apiserver``) so this test's own
controller is the only one writing slices; nodes are fakes
(:class:`kubesvc.testing.fakenodes.FakeNodes`) with zones and allocatable CPU
that make their pods Ready.  A third zone comes and goes as a Node written
here by hand, whose pods' status is written here too.
"""

from __future__ import annotations

import asyncio
import itertools
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any, TypeVar

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from kubesvc.api.meta import now_rfc3339
from kubesvc.api.resources import by_kind
from kubesvc.client.rest import ApiClient
from kubesvc.controllers.endpointslice.controller import EndpointSliceController
from kubesvc.controllers.metricsserver import start_metrics_server
from kubesvc.testing.cluster import Cluster, start_cluster
from kubesvc.testing.fakenodes import FakeNodes, ready_pod_status

pytestmark = pytest.mark.e2e
T = TypeVar("T")
Obj = dict[str, Any]
NS, SVC, POD, NODE, SLICE, EVENT = (by_kind("v1", "Namespace"), by_kind("v1", "Service"), by_kind("v1", "Pod"),
                                    by_kind("v1", "Node"), by_kind("discovery.k8s.io/v1", "EndpointSlice"),
                                    by_kind("v1", "Event"))
ZONES = {"node-a": "zone-a", "node-b": "zone-b"}
AUTO = {"service.kubernetes.io/topology-mode": "Auto"}
_ns = itertools.count(1)
_ip = itertools.count(10)


@pytest.fixture(scope="module")
def apiserver(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    base = tmp_path_factory.mktemp("hints")
    c = start_cluster(base / "data", base / "kcache", "--storage", "memory://", command="apiserver")
    yield c
    assert c.stop() == 0


@pytest.fixture(scope="module")
def nodes(apiserver: Cluster) -> Iterator[FakeNodes]:
    labels = {n: {"topology.kubernetes.io/zone": z} for n, z in ZONES.items()}
    with FakeNodes(apiserver.kubeconfig, list(ZONES), labels=labels, cpu={"node-a": "4", "node-b": "4"}) as n:
        yield n


class Env:
    def __init__(self, client: ApiClient, ctl: EndpointSliceController, metrics_url: str) -> None:
        self.client, self.ctl, self.metrics_url = client, ctl, metrics_url
        self.ns = f"hints-{next(_ns)}"

    async def service(self, name: str, annotations: Obj | None = None) -> Obj:
        body = {"metadata": {"name": name, "annotations": annotations or {}},
                "spec": {"selector": {"app": name}, "ports": [{"port": 80, "targetPort": 8080}]}}
        return await self.client.create(SVC, body, self.ns)

    async def pods(self, app: str, *nodes: str) -> list[str]:
        names = []
        for node in nodes:
            name = f"{app}-{next(_ip)}"
            body = {"metadata": {"name": name, "labels": {"app": app}},
                    "spec": {"nodeName": node, "containers": [{"name": "c", "image": "nginx"}]}}
            await self.client.create(POD, body, self.ns)
            if node not in ZONES:  # no fake agent there: be its agent
                status = ready_pod_status(f"127.245.0.{next(_ip)}", now_rfc3339())
                await self.client.patch(POD, name, {"status": status}, self.ns, subresource="status")
            names.append(name)
        return names

    async def slices(self, svc: str) -> list[Obj]:
        got = await self.client.list(SLICE, self.ns, label_selector=f"kubernetes.io/service-name={svc}")
        return got["items"]

    async def hints(self, svc: str) -> dict[str, str | None]:
        out: dict[str, str | None] = {}
        for s in await self.slices(svc):
            for ep in s.get("endpoints") or []:
                zones = (ep.get("hints") or {}).get("forZones")
                out[ep["targetRef"]["name"]] = zones[0]["name"] if zones else None
        return out

    async def ready(self, svc: str) -> int:
        return sum(1 for s in await self.slices(svc) for ep in s.get("endpoints") or []
                   if ep["conditions"].get("ready"))

    async def events(self, svc: str) -> list[tuple[str, str, str]]:
        got = await self.client.list(EVENT, self.ns)
        return [(e["type"], e["reason"], e["message"]) for e in got["items"]
                if e["involvedObject"].get("name") == svc and e["involvedObject"].get("kind") == "Service"]

    async def scrape(self) -> dict[str, list[tuple[dict[str, str], float]]]:
        async with aiohttp.ClientSession() as http, http.get(self.metrics_url) as resp:
            assert resp.status == 200
            text = await resp.text()
        out: dict[str, list[tuple[dict[str, str], float]]] = {}
        for fam in text_string_to_metric_families(text):
            for s in fam.samples:
                out.setdefault(s.name, []).append((s.labels, s.value))
        return out


async def wait_for(fn: Callable[[], Awaitable[T]], what: str, timeout: float = 15.0) -> T:
    deadline = asyncio.get_running_loop().time() + timeout
    last: Any = None
    while asyncio.get_running_loop().time() < deadline:
        last = await fn()
        if last:
            return last
        await asyncio.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}; last: {last!r}")


@pytest.fixture
async def env(apiserver: Cluster, nodes: FakeNodes) -> AsyncIterator[Env]:
    async with ApiClient.from_kubeconfig(apiserver.kubeconfig, timeout=15) as client:
        ctl = EndpointSliceController(client, workers=2)
        await ctl.start()
        runner, port = await start_metrics_server([ctl.metrics.registry], "127.0.0.1", 0)
        e = Env(client, ctl, f"http://127.0.0.1:{port}/metrics")
        await client.create(NS, {"metadata": {"name": e.ns}})
        try:
            yield e
        finally:
            await runner.cleanup()
            await ctl.stop()


def value(samples: dict[str, list[tuple[dict[str, str], float]]], name: str, **labels: str) -> float:
    return sum(v for lab, v in samples.get(name, []) if all(lab.get(k) == x for k, x in labels.items()))


async def test_hints_follow_zones_as_nodes_come_and_go(env: Env) -> None:
    await env.service("web", AUTO)
    await env.pods("web", "node-a", "node-a", "node-b", "node-b")

    async def own_zone_hints() -> bool:
        h = await env.hints("web")
        return len(h) == 4 and Counter(h.values()) == {"zone-a": 2, "zone-b": 2}

    await wait_for(own_zone_hints, "a hint per endpoint, for its own zone")
    enabled = ("Normal", "TopologyAwareHintsEnabled", "Topology Aware Hints has been enabled, addressType: IPv4")
    await wait_for(lambda: _has(env.events("web"), enabled), "the TopologyAwareHintsEnabled event")

    # a third zone appears with as much CPU and no endpoints of ours: zones would be overloaded, hints go
    now = now_rfc3339()
    await env.client.create(NODE, {"metadata": {"name": "node-c", "labels": {"topology.kubernetes.io/zone": "zone-c"}}})
    await env.client.patch(NODE, "node-c", {"status": {
        "allocatable": {"cpu": "4"}, "conditions": [{"type": "Ready", "status": "True", "lastHeartbeatTime": now,
                                                      "lastTransitionTime": now}]}}, subresource="status")
    try:
        async def no_hints() -> bool:
            return set((await env.hints("web")).values()) == {None}

        await wait_for(no_hints, "hints taken off once zone-c has none of the endpoints")
        refused = ("Warning", "TopologyAwareHintsDisabled",
                   "Unable to allocate minimum required endpoints to each zone without exceeding overload threshold "
                   "(4 endpoints, 3 zones), addressType: IPv4")
        await wait_for(lambda: _has(env.events("web"), refused), "the TopologyAwareHintsDisabled event")

        # two endpoints in zone-c: 6 over 3 equal zones, two each
        await env.pods("web", "node-c", "node-c")

        async def three_zones() -> bool:
            return Counter((await env.hints("web")).values()) == {"zone-a": 2, "zone-b": 2, "zone-c": 2}

        await wait_for(three_zones, "two hints per zone")
    finally:
        await env.client.delete(NODE, "node-c")

    # zone-c is gone: its pods' node is unknown, so they are left out (and retried); two zones, two each again
    async def two_zones_again() -> bool:
        h = await env.hints("web")
        return len(h) == 4 and Counter(h.values()) == {"zone-a": 2, "zone-b": 2}

    await wait_for(two_zones_again, "hints for the two zones left")


async def test_hints_go_when_the_annotation_does(env: Env) -> None:
    await env.service("api", AUTO)
    await env.pods("api", "node-a", "node-b")

    async def hinted() -> bool:
        return set((await env.hints("api")).values()) == {"zone-a", "zone-b"}

    await wait_for(hinted, "hints")
    await env.client.patch(SVC, "api", {"metadata": {"annotations": {"service.kubernetes.io/topology-mode": None}}},
                           env.ns)

    async def plain() -> bool:
        h = await env.hints("api")
        return len(h) == 2 and set(h.values()) == {None}

    await wait_for(plain, "hints removed")
    disabled = ("Warning", "TopologyAwareHintsDisabled", "Topology Aware Hints has been disabled, addressType: IPv4")
    await wait_for(lambda: _has(env.events("api"), disabled), "the TopologyAwareHintsDisabled event")


async def test_failed_sync_is_an_event_and_metrics_count_it_all(env: Env) -> None:
    """A pod on a node nobody knows cannot be placed: upstream's FailedToUpdateEndpointSlices, and an error sync."""
    await env.service("lost")
    await env.pods("lost", "node-a", "node-a")
    await wait_for(lambda: env.ready("lost"), "the placed pods' endpoints")
    await env.client.create(POD, {"metadata": {"name": "stray", "labels": {"app": "lost"}},
                                  "spec": {"nodeName": "node-nowhere", "containers": [{"name": "c", "image": "x"}]}},
                            env.ns)
    await env.client.patch(POD, "stray", {"status": ready_pod_status("127.245.9.9", now_rfc3339())}, env.ns,
                           subresource="status")

    async def failed() -> bool:
        return any(r == "FailedToUpdateEndpointSlices" and t == "Warning"
                   and m.startswith(f"Error updating Endpoint Slices for Service {env.ns}/lost: skipping Pod stray")
                   and "Node node-nowhere Not Found" in m
                   for t, r, m in await env.events("lost"))

    await wait_for(failed, "the FailedToUpdateEndpointSlices event")
    await env.service("quiet")
    await wait_for(lambda: env.slices("quiet"), "the placeholder slice")

    m = await env.scrape()
    assert value(m, "endpoint_slice_controller_syncs", result="success") >= 2
    assert value(m, "endpoint_slice_controller_syncs", result="error") >= 1
    assert value(m, "endpoint_slice_controller_changes", operation="create") >= 2
    assert value(m, "endpoint_slice_controller_changes_total", operation="create") == \
        value(m, "endpoint_slice_controller_changes", operation="create")
    assert value(m, "endpoint_slice_controller_endpoints_added_per_sync_count") >= 2
    assert value(m, "endpoint_slice_controller_endpoints_added_per_sync_sum") >= 2
    assert value(m, "endpoint_slice_controller_endpointslices_changed_per_sync_count", topology="Disabled") >= 2

    async def gauges_match_the_cluster() -> bool:
        m = await env.scrape()
        got = await env.client.list(SLICE, label_selector="endpointslice.kubernetes.io/managed-by="
                                                          "endpointslice-controller.k8s.io")
        slices = got["items"]
        endpoints = sum(len(s.get("endpoints") or []) for s in slices)
        return (value(m, "endpoint_slice_controller_num_endpoint_slices") == len(slices)
                and value(m, "endpoint_slice_controller_endpoints_desired") == endpoints
                and value(m, "endpoint_slice_controller_desired_endpoint_slices") <= len(slices))

    await wait_for(gauges_match_the_cluster, "the gauges to describe the slices there are")


async def _has(events: Awaitable[list[tuple[str, str, str]]], want: tuple[str, str, str]) -> bool:
    return want in await events
