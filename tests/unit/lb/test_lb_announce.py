"""The route announcer against a fake ``ip`` runner, and the agent prober's state machine."""

from __future__ import annotations

import pytest

from kubesvc.lb.announce import ROUTE_PROTO, AgentProber, RouteAnnouncer


class FakeIp:
    """Records commands; fails those containing ``fail_on``."""

    def __init__(self) -> None:
        self.calls: list[list[str]] = []
        self.fail_on = ""

    async def __call__(self, argv: list[str]) -> tuple[int, str]:
        self.calls.append(argv)
        if self.fail_on and self.fail_on in argv:
            return 2, "RTNETLINK answers: Network is unreachable"
        return 0, ""


async def test_sync_installs_moves_and_removes_only_what_changed() -> None:
    """Replace for new or moved addresses, delete for withdrawn ones, nothing for unchanged."""
    ip = FakeIp()
    ann = RouteAnnouncer("kubesvc0", runner=ip)
    assert await ann.sync({"172.18.255.200": "172.18.0.2", "172.18.255.201": "172.18.0.3"}) == [
        "172.18.255.200", "172.18.255.201"]
    assert ip.calls[0] == ["ip", "route", "replace", "172.18.255.200/32", "via", "172.18.0.2", "dev", "kubesvc0",
                           "proto", ROUTE_PROTO]
    ip.calls.clear()
    assert await ann.sync({"172.18.255.200": "172.18.0.3", "172.18.255.201": "172.18.0.3"}) == ["172.18.255.200"]
    assert len(ip.calls) == 1
    ip.calls.clear()
    assert await ann.sync({"172.18.255.201": "172.18.0.3"}) == ["172.18.255.200"]
    assert ip.calls == [["ip", "route", "del", "172.18.255.200/32", "dev", "kubesvc0", "proto", ROUTE_PROTO]]
    await ann.stop()
    assert ann.installed == {}


async def test_failures_raise_after_applying_the_rest() -> None:
    """One bad route does not block the others; the error says which, for the retry."""
    ip = FakeIp()
    ip.fail_on = "172.18.0.9"
    ann = RouteAnnouncer("kubesvc0", runner=ip)
    with pytest.raises(OSError, match="172.18.255.200 via 172.18.0.9"):
        await ann.sync({"172.18.255.200": "172.18.0.9", "172.18.255.201": "172.18.0.3"})
    assert ann.installed == {"172.18.255.201": "172.18.0.3"}


async def test_start_flushes_leftover_routes() -> None:
    """Routes tagged with our protocol number from a crashed run go at start."""
    ip = FakeIp()
    await RouteAnnouncer("kubesvc0", runner=ip).start()
    assert ip.calls == [["ip", "route", "flush", "dev", "kubesvc0", "proto", ROUTE_PROTO]]


def test_prober_marks_a_node_only_after_it_answered_once() -> None:
    """Consecutive failures after a success make a node unhealthy; one success heals it."""
    p = AgentProber(lambda: None, failures=2)
    p.record("node-1", False)
    p.record("node-1", False)
    assert p.unhealthy == set()  # never seen up: an agent without a server is not held against its node
    p.record("node-1", True)
    p.record("node-1", False)
    assert p.unhealthy == set()
    p.record("node-1", False)
    assert p.unhealthy == {"node-1"}
    p.record("node-1", True)
    assert p.unhealthy == set()


async def test_prober_probes_real_sockets() -> None:
    """A listening port is up; a closed one fails; changes call back."""
    import asyncio

    server = await asyncio.start_server(lambda r, w: w.close(), "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    changes: list[int] = []
    p = AgentProber(lambda: changes.append(1), failures=1, timeout=1)
    p.targets = lambda: [("node-1", "127.0.0.1", port)]
    await p.probe_once()
    server.close()
    await server.wait_closed()
    await p.probe_once()
    assert p.unhealthy == {"node-1"} and changes == [1]
