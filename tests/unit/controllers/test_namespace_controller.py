"""The namespace controller against the fake: empty every kind, report leftovers, finalize."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

import pytest

from kubesvc.api.resources import by_kind
from kubesvc.client.rest import ApiClient, ApiError
from kubesvc.controllers.garbagecollector import GarbageCollector
from kubesvc.controllers.namespace import ContentReport, NamespaceController, updated_conditions
from kubesvc.testing.fakeapi import FakeApiServer

NS = by_kind("v1", "Namespace")
CM = by_kind("v1", "ConfigMap")
POD = by_kind("v1", "Pod")
SVC = by_kind("v1", "Service")
DEPLOY = by_kind("apps/v1", "Deployment")
RS = by_kind("apps/v1", "ReplicaSet")


async def until(cond: Callable[[], bool], timeout: float = 5.0) -> None:
    async with asyncio.timeout(timeout):
        while not cond():
            await asyncio.sleep(0.01)


@pytest.fixture
async def nsc(api: ApiClient) -> AsyncIterator[NamespaceController]:
    controller = NamespaceController(api, content_poll=0.05)
    await controller.start()
    yield controller
    await controller.stop()


async def fill(api: ApiClient, ns: str) -> None:
    await api.create(NS, {"metadata": {"name": ns}})
    await api.create(CM, {"metadata": {"name": "cm", "namespace": ns}})
    await api.create(SVC, {"metadata": {"name": "svc", "namespace": ns}, "spec": {}})
    await api.create(DEPLOY, {"metadata": {"name": "d", "namespace": ns}, "spec": {}})
    await api.create(POD, {"metadata": {"name": "p", "namespace": ns}, "spec": {}})


async def test_namespace_content_is_deleted_then_namespace_finalized(nsc, api: ApiClient,
                                                                     fake: FakeApiServer) -> None:
    """Every kind found by discovery is emptied; then `kubernetes` goes via /finalize and so does the namespace."""
    await fill(api, "team")
    await fill(api, "bystander")
    gone = await api.delete(NS, "team")
    assert gone["status"]["phase"] == "Terminating" and gone["spec"]["finalizers"] == ["kubernetes"]
    with pytest.raises(ApiError) as e:
        await api.create(CM, {"metadata": {"name": "late", "namespace": "team"}})
    assert e.value.code == 403
    await until(lambda: fake.get_object(NS, None, "team") is None)
    for res in (CM, SVC, DEPLOY, POD):
        assert fake.list_objects(res, "team") == []
        assert len(fake.list_objects(res, "bystander")) == 1
    assert any(m == "PUT" and p == "/api/v1/namespaces/team/finalize" for m, p in fake.requests)


async def test_finalizers_in_content_hold_the_namespace_with_conditions(nsc, api: ApiClient,
                                                                        fake: FakeApiServer) -> None:
    """Content held by a finalizer keeps the namespace Terminating and says why in its conditions."""
    await api.create(NS, {"metadata": {"name": "held"}})
    await api.create(CM, {"metadata": {"name": "cm", "namespace": "held", "finalizers": ["example.com/hold"]}})
    await api.delete(NS, "held")

    def conditions() -> dict[str, dict]:
        ns = fake.get_object(NS, None, "held") or {}
        return {c["type"]: c for c in (ns.get("status") or {}).get("conditions") or []}

    await until(lambda: conditions().get("NamespaceFinalizersRemaining", {}).get("status") == "True")
    c = conditions()
    assert c["NamespaceContentRemaining"]["message"] == \
        "Some resources are remaining: configmaps. has 1 resource instances"
    assert c["NamespaceFinalizersRemaining"]["reason"] == "SomeFinalizerRemain"
    assert c["NamespaceFinalizersRemaining"]["message"] == \
        "Some finalizers are remaining: example.com/hold in 1 resource instances"
    assert c["NamespaceDeletionDiscoveryFailure"] == {**c["NamespaceDeletionDiscoveryFailure"],
                                                     "status": "False", "reason": "ResourcesDiscovered"}
    assert fake.get_object(NS, None, "held")["status"]["phase"] == "Terminating"
    await api.patch(CM, "cm", {"metadata": {"finalizers": None}}, "held")
    await until(lambda: fake.get_object(NS, None, "held") is None)


async def test_with_gc_owned_chains_go_too(nsc, api: ApiClient, fake: FakeApiServer) -> None:
    """Namespace controller and GC together: foreground-held owners in the namespace still finish."""
    gc = GarbageCollector(api)
    await gc.start()
    try:
        await api.create(NS, {"metadata": {"name": "apps"}})
        d = await api.create(DEPLOY, {"metadata": {"name": "d", "namespace": "apps"}, "spec": {}})
        owner = {"apiVersion": "apps/v1", "kind": "Deployment", "name": "d", "uid": d["metadata"]["uid"],
                 "blockOwnerDeletion": True}
        await api.create(RS, {"metadata": {"name": "rs", "namespace": "apps", "ownerReferences": [owner]}})
        await api.delete(DEPLOY, "d", "apps", propagation_policy="Foreground")
        await api.delete(NS, "apps")
        await until(lambda: fake.get_object(NS, None, "apps") is None)
        assert fake.list_objects(RS, "apps") == [] and fake.list_objects(DEPLOY, "apps") == []
    finally:
        await gc.stop()


async def test_condition_bookkeeping_is_upstreams() -> None:
    """All five types are written; a transition time only changes when the status flips."""
    first = updated_conditions([], ContentReport(), "t1")
    assert first is not None and len(first) == 5 and all(c["status"] == "False" for c in first)
    assert updated_conditions(first, ContentReport(), "t2") is None
    failing = ContentReport()
    failing.remaining["pods."] = 2
    second = updated_conditions(first, failing, "t3")
    assert second is not None
    by_type = {c["type"]: c for c in second}
    assert by_type["NamespaceContentRemaining"]["lastTransitionTime"] == "t3"
    assert by_type["NamespaceDeletionContentFailure"]["lastTransitionTime"] == "t1"
