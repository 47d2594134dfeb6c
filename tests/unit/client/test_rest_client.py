"""The REST client against the fake: verbs, error mapping, paging, watch parsing."""

from __future__ import annotations

import asyncio

import orjson
import pytest
from aiohttp import web

from kubesvc.api import errors
from kubesvc.api.resources import by_kind
from kubesvc.client.config import ClientConfig
from kubesvc.client.rest import ApiClient, ApiError, iter_watch_events, parse_watch_line, resource_path

CM = by_kind("v1", "ConfigMap")
NS = by_kind("v1", "Namespace")
DEPLOY = by_kind("apps/v1", "Deployment")


def cm(name: str, ns: str = "default", **labels: str) -> dict:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "namespace": ns, "labels": labels},
            "data": {"k": "v"}}


@pytest.fixture
async def default_ns(api: ApiClient) -> None:
    await api.create(NS, {"metadata": {"name": "default"}})


async def test_paths() -> None:
    """Core and group resources, namespaced or not, with subresources."""
    assert resource_path(CM, "ns", "x") == "/api/v1/namespaces/ns/configmaps/x"
    assert resource_path(DEPLOY, "ns", "d", "scale") == "/apis/apps/v1/namespaces/ns/deployments/d/scale"
    assert resource_path(DEPLOY) == "/apis/apps/v1/deployments"
    assert resource_path(NS, "ignored", "a", "finalize") == "/api/v1/namespaces/a/finalize"


async def test_crud_round_trip(api: ApiClient, default_ns: None) -> None:
    """create -> get -> replace -> patch -> delete, with server-set metadata."""
    made = await api.create(CM, cm("a"))
    assert made["metadata"]["uid"] and made["metadata"]["resourceVersion"]
    got = await api.get(CM, "a", "default")
    got["data"] = {"k": "w"}
    replaced = await api.replace(CM, got)
    assert int(replaced["metadata"]["resourceVersion"]) > int(made["metadata"]["resourceVersion"])
    patched = await api.patch(CM, "a", {"data": {"x": "1"}}, "default")
    assert patched["data"] == {"k": "w", "x": "1"}
    patched = await api.patch(CM, "a", [{"op": "remove", "path": "/data/k"}], "default", patch_type="json")
    assert patched["data"] == {"x": "1"}
    status = await api.delete(CM, "a", "default")
    assert status["status"] == "Success" and status["details"]["name"] == "a"
    with pytest.raises(ApiError) as e:
        await api.get(CM, "a", "default")
    assert (e.value.code, e.value.reason, e.value.message) == (404, "NotFound", 'configmaps "a" not found')


async def test_errors_carry_the_servers_status(api: ApiClient, default_ns: None) -> None:
    """AlreadyExists, optimistic-lock Conflict and precondition failures map to ApiError."""
    made = await api.create(CM, cm("a"))
    with pytest.raises(ApiError) as e:
        await api.create(CM, cm("a"))
    assert e.value.code == 409 and e.value.reason == "AlreadyExists"
    await api.patch(CM, "a", {"data": {"y": "2"}}, "default")
    with pytest.raises(ApiError) as e:
        await api.replace(CM, made)
    assert e.value.reason == "Conflict" and "the object has been modified" in e.value.message
    with pytest.raises(ApiError) as e:
        await api.delete(CM, "a", "default", preconditions={"uid": "other"})
    assert e.value.code == 409 and "Precondition failed: UID in precondition: other" in e.value.message


async def test_non_status_error_body_is_synthesized() -> None:
    """A bare 503 without a Status body still becomes ApiError with client-go's reason."""
    app = web.Application()
    async def down(request: web.Request) -> web.Response:
        return web.Response(status=503, text="upstream down")

    app.router.add_get("/api/v1/namespaces/x", down)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]
    try:
        async with ApiClient(ClientConfig(server=f"http://127.0.0.1:{port}")) as api:
            with pytest.raises(ApiError) as e:
                await api.get(NS, "x")
        assert e.value.code == 503 and e.value.reason == "ServiceUnavailable"
    finally:
        await runner.cleanup()


async def test_injected_fault_is_reported(api: ApiClient, fake, default_ns: None) -> None:
    """A Status from the server (here injected) is kept whole, details included."""
    fake.fail("GET", "/configmaps/a", errors.internal_error("etcd timeout"))
    with pytest.raises(ApiError) as e:
        await api.get(CM, "a", "default")
    assert e.value.code == 500 and e.value.message == "Internal error occurred: etcd timeout"


async def test_list_pages_and_selectors(api: ApiClient, fake, default_ns: None) -> None:
    """limit/continue pages; list_all joins them; labelSelector and fieldSelector filter."""
    for i in range(5):
        await api.create(CM, cm(f"c{i}", app="web" if i % 2 else "db"))
    page = await api.list(CM, "default", limit=2)
    assert [o["metadata"]["name"] for o in page["items"]] == ["c0", "c1"]
    assert page["metadata"]["continue"] and page["metadata"]["remainingItemCount"] == 3
    everything = await api.list_all(CM, "default", page_size=2)
    assert len(everything["items"]) == 5
    assert sum(1 for m, p in fake.requests if "limit=2" in p) >= 3
    web_ = await api.list(CM, "default", label_selector="app=web")
    assert [o["metadata"]["name"] for o in web_["items"]] == ["c1", "c3"]
    one = await api.list(CM, field_selector="metadata.name=c4")
    assert [o["metadata"]["name"] for o in one["items"]] == ["c4"]


async def test_delete_options_and_deletecollection(api: ApiClient, fake, default_ns: None) -> None:
    """Foreground/Orphan policies become finalizers; deletecollection honours the selector."""
    await api.create(CM, cm("f"))
    held = await api.delete(CM, "f", "default", propagation_policy="Foreground")
    assert held["metadata"]["finalizers"] == ["foregroundDeletion"] and held["metadata"]["deletionTimestamp"]
    await api.create(CM, cm("x", app="web"))
    await api.create(CM, cm("y", app="db"))
    await api.delete_collection(CM, "default", label_selector="app=web")
    names = [o["metadata"]["name"] for o in fake.list_objects(CM)]
    assert names == ["f", "y"]


async def test_server_resources_from_discovery(api: ApiClient) -> None:
    """Discovery yields top-level resources with scope and verbs, subresources skipped."""
    res = {r.qualified: r for r in await api.server_resources()}
    assert res["pods"].namespaced and not res["namespaces"].namespaced
    assert "deletecollection" in res["deployments.apps"].verbs
    assert not any("/" in q for q in res)


async def test_watch_streams_events_and_410(api: ApiClient, fake, default_ns: None) -> None:
    """Watch from a resourceVersion replays later events; a compacted one gets an ERROR 410 event."""
    first = await api.create(CM, cm("a"))
    await api.create(CM, cm("b"))
    await api.delete(CM, "a", "default")
    seen = []
    async for etype, obj in api.watch(CM, "default", resource_version=first["metadata"]["resourceVersion"],
                                      timeout_seconds=1, allow_bookmarks=False):
        seen.append((etype, obj["metadata"]["name"]))
    assert seen == [("ADDED", "b"), ("DELETED", "a")]
    fake.compact()
    events = [e async for e in api.watch(CM, resource_version=first["metadata"]["resourceVersion"])]
    assert len(events) == 1 and events[0][0] == "ERROR" and events[0][1]["code"] == 410
    assert events[0][1]["reason"] == "Expired"


async def test_watch_line_parsing_across_chunks() -> None:
    """Events split across chunks, several per chunk, and lines over aiohttp's 128 KiB cap all parse."""
    big = {"type": "ADDED", "object": {"metadata": {"name": "big"}, "data": {"x": "y" * 300_000}}}
    wire = b"".join(orjson.dumps(e) + b"\n" for e in [
        {"type": "ADDED", "object": {"metadata": {"name": "a"}}}, big,
        {"type": "BOOKMARK", "object": {"metadata": {"resourceVersion": "9"}}}]) + b"\n"
    reader = _Reader([wire[i:i + 7000] for i in range(0, len(wire), 7000)])
    got = [(t, o["metadata"].get("name") or o["metadata"].get("resourceVersion"))
           async for t, o in iter_watch_events(reader)]  # type: ignore[arg-type]
    assert got == [("ADDED", "a"), ("ADDED", "big"), ("BOOKMARK", "9")]
    assert parse_watch_line(b"  \r") is None
    with pytest.raises(ApiError):
        parse_watch_line(b"{not json")


class _Reader:
    """Just enough of aiohttp.StreamReader: ``iter_any`` over given chunks."""

    def __init__(self, chunks: list[bytes]) -> None:
        self.chunks = chunks

    async def iter_any(self):  # type: ignore[no-untyped-def]
        for c in self.chunks:
            await asyncio.sleep(0)
            yield c
