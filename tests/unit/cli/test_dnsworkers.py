"""``kubesvc dns --workers N``: the extra workers' command line and the flag checks."""

from __future__ import annotations

import os
import sys

import pytest

from kubesvc.cli.dnsworkers import check_workers, worker_argv
from kubesvc.cli.errors import CliError
from kubesvc.cli.main import build_parser


def test_extra_workers_serve_the_same_names_on_the_same_addresses() -> None:
    first = build_parser().parse_args(["dns", "--kubeconfig", "/k", "--listen", "127.0.0.1:5353", "--listen",
                                       "172.18.0.1:53", "--ttl", "5", "--upstream", "10.1.1.1", "--pods",
                                       "verified", "--cluster-domain", "example.local", "--workers", "3"])
    argv = worker_argv(first)
    assert argv[:3] == [sys.executable, "-m", "kubesvc"]
    w = build_parser().parse_args(argv[3:])
    assert (w.listen, w.ttl, w.upstream, w.pods, w.cluster_domain) == (
        ["127.0.0.1:5353", "172.18.0.1:53"], 5, ["10.1.1.1"], "verified", "example.local")
    assert w.reuse_port and w.workers == 1 and w.metrics == "none"  # one /metrics: the first worker's
    assert w.parent_pid == os.getpid()


@pytest.mark.parametrize(("workers", "ports", "message"), [
    (0, [53], "want 1 or more"),
    (2, [0], "needs fixed ports"),
])
def test_bad_worker_settings_are_one_line(workers: int, ports: list[int], message: str) -> None:
    args = build_parser().parse_args(["dns", "--kubeconfig", "/k", "--workers", str(workers)])
    with pytest.raises(CliError, match=message):
        check_workers(args, ports)


def test_one_worker_may_take_any_port() -> None:
    check_workers(build_parser().parse_args(["dns", "--kubeconfig", "/k"]), [0])
