"""DNS figures for Prometheus: queries and answers by type and rcode, latency.

Counting happens on the hot path of every query, so it is plain integer
arithmetic on dicts; prometheus-client only sees the totals when scraped,
through a custom collector.  Each server has its own registry, so several
servers in one process (tests, ``kubesvc up``) never collide.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterator

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.registry import Collector

BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
KNOWN_TYPES = {"A", "AAAA", "SRV", "PTR", "CNAME", "TXT", "SOA", "NS", "MX", "ANY"}


class Stats:
    """Counters the server bumps per query; cheap enough for 100k queries/s."""

    def __init__(self) -> None:
        self.requests: dict[tuple[str, str], int] = {}  # (proto, qtype)
        self.responses: dict[tuple[str, str], int] = {}  # (proto, rcode)
        self.dropped: dict[str, int] = {}  # reason
        self.cache_hits = 0
        self.forwards: dict[str, int] = {}  # ok, failed
        self.latency_counts = [0] * (len(BUCKETS) + 1)
        self.latency_sum = 0.0
        self.cache_size = 0
        self.synced = 0

    @staticmethod
    def keys(proto: str, qtype: str, rcode: str) -> tuple[tuple[str, str], tuple[str, str]]:
        """The counter keys for one kind of answer; cached answers keep them (no allocation per hit)."""
        return (proto, qtype if qtype in KNOWN_TYPES else "other"), (proto, rcode)

    def observe(self, proto: str, qtype: str, rcode: str, seconds: float) -> None:
        self.observe_keys(*self.keys(proto, qtype, rcode), seconds)

    def observe_keys(self, key: tuple[str, str], rkey: tuple[str, str], seconds: float) -> None:
        self.requests[key] = self.requests.get(key, 0) + 1
        self.responses[rkey] = self.responses.get(rkey, 0) + 1
        self.latency_counts[bisect.bisect_left(BUCKETS, seconds)] += 1
        self.latency_sum += seconds

    def drop(self, reason: str) -> None:
        self.dropped[reason] = self.dropped.get(reason, 0) + 1

    def forward(self, ok: bool) -> None:
        key = "ok" if ok else "failed"
        self.forwards[key] = self.forwards.get(key, 0) + 1


class _Collector(Collector):
    def __init__(self, stats: Stats) -> None:
        self.stats = stats

    def collect(self) -> Iterator[object]:  # type: ignore[override]
        s = self.stats
        req = CounterMetricFamily("kubesvc_dns_requests", "DNS queries received, by transport and type.",
                                  labels=["proto", "type"])
        for (proto, qtype), n in sorted(s.requests.items()):
            req.add_metric([proto, qtype], n)
        yield req
        resp = CounterMetricFamily("kubesvc_dns_responses", "DNS answers sent, by transport and rcode.",
                                   labels=["proto", "rcode"])
        for (proto, rcode), n in sorted(s.responses.items()):
            resp.add_metric([proto, rcode], n)
        yield resp
        dropped = CounterMetricFamily("kubesvc_dns_dropped", "Packets dropped unanswered, by reason.",
                                      labels=["reason"])
        for reason, n in sorted(s.dropped.items()):
            dropped.add_metric([reason], n)
        yield dropped
        fwd = CounterMetricFamily("kubesvc_dns_forward_requests", "Questions forwarded upstream, by result.",
                                  labels=["result"])
        for result, n in sorted(s.forwards.items()):
            fwd.add_metric([result], n)
        yield fwd
        yield CounterMetricFamily("kubesvc_dns_cache_hits", "Answers served from the encoded-answer cache.",
                                  value=s.cache_hits)
        yield GaugeMetricFamily("kubesvc_dns_cache_entries", "Encoded answers cached.", value=s.cache_size)
        yield GaugeMetricFamily("kubesvc_dns_synced", "1 once the Service and EndpointSlice caches synced.",
                                value=s.synced)
        buckets, total = [], 0
        for bound, n in zip((*BUCKETS, float("inf")), s.latency_counts, strict=True):
            total += n
            buckets.append(("+Inf" if bound == float("inf") else repr(bound), total))
        yield HistogramMetricFamily("kubesvc_dns_request_duration_seconds",
                                    "Time from a query's arrival to its answer being sent.",
                                    buckets=buckets, sum_value=s.latency_sum)


def registry_for(stats: Stats) -> CollectorRegistry:
    reg = CollectorRegistry(auto_describe=False)
    reg.register(_Collector(stats))
    return reg


async def start_metrics_server(stats: Stats, host: str, port: int) -> web.AppRunner:
    """Serve ``/metrics`` on ``host:port`` (loopback or the address given, never all)."""
    reg = registry_for(stats)

    async def metrics(_: web.Request) -> web.Response:
        return web.Response(body=generate_latest(reg), headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def health(_: web.Request) -> web.Response:
        return web.Response(text="ok\n" if stats.synced else "not synced\n", status=200 if stats.synced else 503)

    app = web.Application()
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/ready", health)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    return runner


def bound_port(runner: web.AppRunner) -> int:
    """The port actually bound (useful with port 0)."""
    for site in runner.sites:
        server = getattr(site, "_server", None)
        if server is not None and server.sockets:
            return int(server.sockets[0].getsockname()[1])
    return 0
