"""Fixtures for controller tests: the fake API server, a client, helpers, and a
guard that fails any test leaving asyncio tasks behind."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from kubesvc.api.resources import by_kind
from kubesvc.client.config import ClientConfig
from kubesvc.client.rest import ApiClient
from kubesvc.testing.fakeapi import FakeApiServer
from kubesvc.testing.tasks import leftover_tasks


@pytest.fixture(autouse=True)
async def no_leftover_tasks() -> AsyncIterator[None]:
    """Fail the test if it leaves asyncio tasks running (they are cancelled first)."""
    yield
    left = await leftover_tasks()
    if left:
        pytest.fail(f"test left {len(left)} asyncio task(s) running: {left}")


@pytest.fixture
async def fake() -> AsyncIterator[FakeApiServer]:
    async with FakeApiServer(bookmark_interval=0.5) as server:
        yield server


@pytest.fixture
async def api(fake: FakeApiServer) -> AsyncIterator[ApiClient]:
    async with ApiClient(ClientConfig(server=fake.url), timeout=5) as client:
        await client.create(by_kind("v1", "Namespace"), {"metadata": {"name": "default"}})
        yield client
