"""The record of applied transactions and its /debug/programmed stream (bench_proxy's (c) reads it)."""

from __future__ import annotations

import asyncio
import copy
import time

import aiohttp
import orjson
from proxy_builders import LOCAL_IPS, endpoint, endpoint_slice, service

from kubesvc.proxy.proxier import Proxier, ProxyConfig
from kubesvc.proxy.server import start_metrics_server
from kubesvc.testing.cluster import free_port
from kubesvc.testing.fakenft import FakeNft


def synced_proxier() -> tuple[Proxier, FakeNft]:
    fake = FakeNft(local_ips=LOCAL_IPS)
    p = Proxier(ProxyConfig("node-1", cluster_cidr="10.244.0.0/16"), fake)
    p.mark_synced("services")
    p.mark_synced("endpointslices")
    return p, fake


def versioned(obj: dict, rv: str) -> dict:
    obj = copy.deepcopy(obj)
    obj["metadata"]["resourceVersion"] = rv
    return obj


async def test_each_sync_records_when_nft_returned_and_the_slice_versions_it_carried() -> None:
    p, fake = synced_proxier()
    p.on_service(None, service())
    s1 = versioned(endpoint_slice("web", endpoint("10.244.1.5")), "5")
    p.on_slice(None, s1)
    before = time.time()
    await p.sync()
    rec = p.programmed.records[-1]
    assert rec.slices == {"default/web-abc": "5"} and rec.services == 1 and rec.full
    assert before <= rec.at <= time.time()
    s2 = versioned(endpoint_slice("web", endpoint("10.244.1.5", ready=False)), "6")
    p.on_slice(s1, s2)
    fake.fail_next = 1  # a failed transaction: the retry must still report version 6
    await p.sync()
    assert p.programmed.records[-1].seq == rec.seq
    await p.sync()
    assert p.programmed.records[-1].slices == {"default/web-abc": "6"}


async def test_the_stream_sends_the_backlog_asked_for_then_each_new_record() -> None:
    p, _ = synced_proxier()
    p.on_service(None, service())
    await p.sync()
    port = free_port()
    runner = await start_metrics_server(p.metrics, "127.0.0.1", port, lambda: True, programmed=p.programmed)
    try:
        async with aiohttp.ClientSession() as http:
            async with http.get(f"http://127.0.0.1:{port}/debug/programmed?since=0") as resp:
                assert resp.status == 200
                first = orjson.loads(await asyncio.wait_for(resp.content.readline(), 5))
                assert first["seq"] == 1 and first["full"]
                p.on_slice(None, versioned(endpoint_slice("web", endpoint("10.244.1.5")), "11"))
                await p.sync()
                second = orjson.loads(await asyncio.wait_for(resp.content.readline(), 5))
                assert second["seq"] == 2 and second["slices"] == {"default/web-abc": "11"}
                p.programmed.close()  # what the proxy does on shutdown: the stream ends
                assert await asyncio.wait_for(resp.content.readline(), 5) == b""
            async with http.get(f"http://127.0.0.1:{port}/debug/programmed?since=x") as resp:
                assert resp.status == 400
    finally:
        await runner.cleanup()
