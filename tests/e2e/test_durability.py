"""No acknowledged write is lost: SIGKILL the server under 50 concurrent writers."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path

import aiohttp
import orjson
import pytest

from kubesvc.client.config import load_kubeconfig
from kubesvc.testing.cluster import start_cluster

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


async def _write_until_killed(server: str, ssl_ctx: object, headers: dict[str, str], acked: dict[str, str],
                              kill: asyncio.Event) -> None:
    conn = aiohttp.TCPConnector(ssl=ssl_ctx, limit=0)
    async with aiohttp.ClientSession(connector=conn, headers=headers) as s:

        async def writer(w: int) -> None:
            i = 0
            while True:
                name = f"w{w}-{i}"
                body = orjson.dumps({"metadata": {"name": name}, "data": {"v": name * 20}})
                try:
                    async with s.post(f"{server}/api/v1/namespaces/default/configmaps", data=body,
                                      headers={"Content-Type": "application/json"}) as r:
                        payload = await r.read()
                        if r.status != 201:
                            raise AssertionError(f"create answered {r.status}: {payload[:200]!r}")
                        acked[name] = orjson.loads(payload)["metadata"]["uid"]
                except (TimeoutError, aiohttp.ClientError, ConnectionError):
                    return
                i += 1
                if len(acked) >= 300:
                    kill.set()

        await asyncio.gather(*(writer(w) for w in range(50)))


def test_sigkill_under_load_loses_no_acknowledged_write(tmp_path: Path) -> None:
    c = start_cluster(tmp_path / "data", tmp_path / "cache")
    cfg = load_kubeconfig(c.kubeconfig)
    acked: dict[str, str] = {}

    async def scenario() -> None:
        kill = asyncio.Event()
        task = asyncio.create_task(_write_until_killed(cfg.server, cfg.ssl_context, cfg.auth_headers, acked, kill))
        await asyncio.wait_for(kill.wait(), 60)
        c.proc.send_signal(signal.SIGKILL)
        await asyncio.wait_for(task, 30)

    try:
        asyncio.run(scenario())
    finally:
        c.stop(signal.SIGKILL)  # already killed on success; never leave it running on failure
    assert len(acked) >= 300
    c2 = start_cluster(tmp_path / "data", tmp_path / "cache", port=c.port)
    try:
        from kubernetes import client

        v1 = client.CoreV1Api(c2.client())
        stored = {cm.metadata.name: cm for cm in v1.list_namespaced_config_map("default").items}
        missing = [n for n in acked if n not in stored]
        assert not missing, f"{len(missing)} acknowledged writes lost, e.g. {missing[:5]}"
        for name, uid in acked.items():
            assert stored[name].metadata.uid == uid
            assert stored[name].data == {"v": name * 20}
    finally:
        assert c2.stop() == 0
